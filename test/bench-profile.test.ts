import { describe, expect, it } from 'vitest';
import { type CpuProfile, topSelfFrames } from '../bench/lib/cpu-profile.ts';
import { addedStats, stat } from '../bench/lib/stats.ts';

const frame = (id: number, functionName: string, url = '', lineNumber = 0) => ({
  id,
  callFrame: { functionName, url, lineNumber, columnNumber: 0 },
});

describe('bench cpu profile summary', () => {
  it('sums self time per function and location, idle apart, percentages of busy time', () => {
    const profile: CpuProfile = {
      nodes: [
        frame(1, '(root)'),
        frame(2, '(idle)'),
        frame(3, 'proxy', 'file:///repo/src/gateway/proxy.ts', 41),
        frame(4, 'proxy', 'file:///repo/src/gateway/proxy.ts', 41), // same frame under another parent
        frame(5, 'parse', 'node:internal/json', 9),
      ],
      startTime: 0,
      // samples at 0, 1000, 3000, 6000, 7000 µs; the last lasts until endTime.
      samples: [3, 2, 4, 5, 3],
      timeDeltas: [0, 1000, 2000, 3000, 1000],
      endTime: 10_000,
    };
    const s = topSelfFrames(profile, '/repo/', 15);
    expect(s.sampledMs).toBe(10);
    expect(s.idleMs).toBe(2);
    expect(s.frames).toEqual([
      { functionName: 'proxy', location: 'src/gateway/proxy.ts:42', selfMs: 7, percent: 87.5 },
      { functionName: 'parse', location: 'node:internal/json:10', selfMs: 1, percent: 12.5 },
    ]);
  });
});

describe('bench round statistics', () => {
  it('median, min and max over rounds', () => {
    expect(stat([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(stat([4, 1, 2, 3])).toEqual({ median: 2.5, min: 1, max: 4 });
  });

  it('added latency is mode minus base, round by round', () => {
    const p = (p50: number) => ({ p50, p90: p50 * 2, p99: p50 * 3, max: 0, count: 1 });
    const added = addedStats([p(1.5), p(1.2), p(2)], [p(1), p(1), p(1)]);
    expect(added.p50).toEqual({ median: 0.5, min: 0.2, max: 1 });
  });
});
