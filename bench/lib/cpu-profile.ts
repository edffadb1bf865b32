import { fileURLToPath } from 'node:url';

/** The parts of a V8 .cpuprofile (as written by `node --cpu-prof`) that self time needs. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: {
      readonly functionName: string;
      readonly url: string;
      readonly lineNumber: number;
      readonly columnNumber: number;
    };
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One frame's self time, summed over every node with the same function and location. */
export interface SelfFrame {
  readonly functionName: string;
  /** `path:line` (1-based), relative to the repository when inside it. */
  readonly location: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) sampled time. */
  readonly percent: number;
}

/** Top frames by self time, plus totals. */
export interface ProfileSummary {
  readonly sampledMs: number;
  readonly idleMs: number;
  readonly frames: readonly SelfFrame[];
}

function location(url: string, line: number, repoDir: string): string {
  if (!url) return '(native)';
  let path = url;
  if (url.startsWith('file://')) {
    path = fileURLToPath(url);
    if (path.startsWith(repoDir)) path = path.slice(repoDir.length);
  }
  return `${path}:${line + 1}`;
}

/**
 * Self time per frame. Sample i lasts until sample i+1 (timeDeltas[i+1]); the last one until endTime. `(idle)` is
 * reported apart and the percentages are of the busy time.
 */
export function topSelfFrames(p: CpuProfile, repoDir: string, n = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map<string, { functionName: string; location: string; us: number }>();
  let t = p.startTime;
  const stamps = p.timeDeltas.map((d) => (t += d));
  let idle = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dur = Math.max(0, (i + 1 < stamps.length ? stamps[i + 1]! : p.endTime) - stamps[i]!);
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    total += dur;
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') {
      idle += dur;
      continue;
    }
    const name = cf.functionName || '(anonymous)';
    const loc = location(cf.url, cf.lineNumber, repoDir);
    const key = `${name}\0${loc}`;
    const e = self.get(key) ?? { functionName: name, location: loc, us: 0 };
    e.us += dur;
    self.set(key, e);
  }
  const busy = total - idle;
  const frames = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({
      functionName: e.functionName,
      location: e.location,
      selfMs: Math.round(e.us / 100) / 10,
      percent: busy > 0 ? Math.round((e.us / busy) * 1000) / 10 : 0,
    }));
  return { sampledMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), frames };
}

/** The summary as a Markdown table. */
export function renderFrames(s: ProfileSummary): string {
  const rows = s.frames.map(
    (f, i) =>
      `| ${i + 1} | \`${f.functionName}\` | ${f.location} | ${f.selfMs.toFixed(1)} | ${f.percent.toFixed(1)}% |`,
  );
  return [
    `sampled ${s.sampledMs} ms, idle ${s.idleMs} ms, busy ${s.sampledMs - s.idleMs} ms (percentages are of busy time)`,
    '',
    '| # | function | url:line | self ms | % |',
    '| ---: | --- | --- | ---: | ---: |',
    ...rows,
  ].join('\n');
}
