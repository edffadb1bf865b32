import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Budget, type BudgetInput, checkBudgets, parseBudget } from '../bench/budget.ts';
import type { LatencyStats, ModeResult, PayloadFigures, Stat } from '../bench/lib/results.ts';

const s = (median: number): Stat => ({ median, min: median, max: median });
const lat = (p50: number, p99: number): LatencyStats => ({
  p50: s(p50),
  p90: s((p50 + p99) / 2),
  p99: s(p99),
});

function figures(cpu: number, added50: number, added99: number, ttfb50 = 0, errors = 0): PayloadFigures {
  return {
    rps: s(1000),
    cpuPerRequestUs: s(cpu),
    latencyMs: lat(1 + added50, 1 + added99),
    addedLatencyMs: lat(added50, added99),
    ttfbMs: lat(0.3 + ttfb50, 1),
    addedTtfbMs: lat(ttfb50, 1),
    errors,
    non2xx: 0,
  };
}

const PAYLOADS = [
  { id: '2k-json', label: '2KB non-stream', stream: false },
  { id: '2k-sse', label: '2KB stream', stream: true },
];

function mode(name: string, f: PayloadFigures, soakGrowthMB?: number): ModeResult {
  return {
    name,
    description: name,
    available: true,
    payloads: { '2k-json': f, '2k-sse': f },
    memory: { startMB: 80, afterRoundsMB: 100, ...(soakGrowthMB !== undefined ? { soakGrowthMB } : {}) },
  };
}

const unavailable: ModeResult = {
  name: 'prod+shadow',
  description: 'shadow',
  available: false,
  reason: 'needs release rings',
  payloads: {},
};

const budget: Budget = parseBudget({
  baseline: 'reference',
  budgets: [
    { mode: 'passthrough', figure: 'cpuPerRequest', compare: 'ratio', max: 1.5 },
    { mode: 'passthrough', figure: 'addedLatencyP50', compare: 'delta', max: 0.5 },
    { mode: 'passthrough', figure: 'addedLatencyP99', compare: 'delta', max: 2 },
    { mode: 'passthrough', figure: 'addedTtfbP50', compare: 'delta', max: 1 },
    { mode: 'passthrough', figure: 'errors', compare: 'absolute', max: 0 },
    { mode: 'passthrough', figure: 'rssGrowthSoakMB', compare: 'absolute', max: 30 },
    { mode: 'prod+shadow', figure: 'cpuPerRequest', compare: 'ratio', max: 1.5 },
  ],
});

const reference = mode('reference', figures(100, 0.2, 1, 0.3));

function run(passthrough: PayloadFigures, soakGrowthMB = 5): BudgetInput {
  return {
    payloads: PAYLOADS,
    modes: [reference, mode('passthrough', passthrough, soakGrowthMB), unavailable],
  };
}

describe('bench budget checker', () => {
  it('a figure over its ratio fails, naming the mode, figure, payload and both numbers', () => {
    const r = checkBudgets(run(figures(173, 0.3, 1.5, 0.5)), budget);
    expect(r.violations).toEqual([
      'passthrough cpu/req 2KB non-stream: 1.73x reference > 1.5x',
      'passthrough cpu/req 2KB stream: 1.73x reference > 1.5x',
    ]);
  });

  it('figures under their budgets pass', () => {
    const r = checkBudgets(run(figures(149, 0.6, 2.9, 1.2)), budget);
    expect(r.violations).toEqual([]);
    const passed = r.outcomes.filter((o) => o.status === 'pass').map((o) => o.message);
    expect(passed).toContain('passthrough cpu/req 2KB non-stream: 1.49x reference ≤ 1.5x');
    expect(passed).toContain('passthrough added p50 2KB stream: +0.4 ms over reference ≤ +0.5 ms');
    expect(passed).toContain("passthrough RSS growth over the soak's second half: 5 MB ≤ 30 MB");
  });

  it('deltas are taken over the baseline, not over zero', () => {
    const r = checkBudgets(run(figures(100, 0.8, 3.5, 1.4)), budget);
    expect(r.violations).toEqual([
      'passthrough added p50 2KB non-stream: +0.6 ms over reference > +0.5 ms',
      'passthrough added p50 2KB stream: +0.6 ms over reference > +0.5 ms',
      'passthrough added p99 2KB non-stream: +2.5 ms over reference > +2 ms',
      'passthrough added p99 2KB stream: +2.5 ms over reference > +2 ms',
      'passthrough added TTFB p50 2KB stream: +1.1 ms over reference > +1 ms',
    ]);
  });

  it('TTFB budgets apply to stream payloads only', () => {
    const r = checkBudgets(run(figures(100, 0.2, 1, 0.3)), budget);
    const ttfb = r.outcomes.filter((o) => o.figure === 'addedTtfbP50');
    expect(ttfb.map((o) => o.payload)).toEqual(['2k-sse']);
  });

  it('errors and memory growth are absolute', () => {
    const r = checkBudgets(run(figures(100, 0.2, 1, 0.3, 3), 41.2), budget);
    expect(r.violations).toEqual([
      'passthrough errors 2KB non-stream: 3 > 0',
      'passthrough errors 2KB stream: 3 > 0',
      "passthrough RSS growth over the soak's second half: 41.2 MB > 30 MB",
    ]);
  });

  it('a budget for an unavailable mode is "not measured", never a pass', () => {
    const r = checkBudgets(run(figures(100, 0.2, 1, 0.3)), budget);
    const shadow = r.outcomes.filter((o) => o.mode === 'prod+shadow');
    expect(shadow).toEqual([
      {
        mode: 'prod+shadow',
        figure: 'cpuPerRequest',
        status: 'not measured',
        message: 'prod+shadow cpu/req: not measured (mode not available: needs release rings)',
      },
    ]);
    expect(r.violations).toEqual([]);
  });

  it('no soak in the run: the memory budget is "not measured"', () => {
    const input = run(figures(100, 0.2, 1, 0.3));
    const noSoak = {
      ...input,
      modes: input.modes.map((m) => ({ ...m, memory: { startMB: 1, afterRoundsMB: 2 } })),
    };
    const rss = checkBudgets(noSoak, budget).outcomes.find((o) => o.figure === 'rssGrowthSoakMB');
    expect(rss?.status).toBe('not measured');
  });

  it('the live heap after a full GC is its own leak figure: over its bound fails, named; without a probe, not measured', () => {
    const leakBudget = parseBudget({
      baseline: 'reference',
      budgets: [{ mode: 'passthrough', figure: 'liveHeapGrowthSoakMB', compare: 'absolute', max: 10 }],
    });
    const withLive = (growth: number | undefined) => {
      const input = run(figures(100, 0.2, 1, 0.3));
      return {
        ...input,
        modes: input.modes.map((m) =>
          m.name === 'passthrough'
            ? {
                ...m,
                memory: {
                  startMB: 80,
                  afterRoundsMB: 100,
                  soakGrowthMB: 250, // RSS sizing: not this figure's business
                  ...(growth === undefined
                    ? {}
                    : {
                        liveHeapAfterRoundsMB: 25,
                        liveHeapAfterSoakMB: 25 + growth,
                        liveHeapGrowthSoakMB: growth,
                      }),
                },
              }
            : m,
        ),
      };
    };
    expect(checkBudgets(withLive(1.5), leakBudget).violations).toEqual([]);
    expect(checkBudgets(withLive(42), leakBudget).violations).toEqual([
      'passthrough live heap growth over soak: 42 MB > 10 MB',
    ]);
    expect(checkBudgets(withLive(undefined), leakBudget).outcomes[0]?.status).toBe('not measured');
  });

  it('rejects a budget whose compare does not fit its figure', () => {
    expect(() =>
      parseBudget({
        baseline: 'reference',
        budgets: [{ mode: 'passthrough', figure: 'cpuPerRequest', compare: 'delta', max: 1 }],
      }),
    ).toThrow(/compare/);
  });

  it('bench/budget.json is valid, budgets every figure the issue names, and holds passthrough at least as tight', () => {
    const file = parseBudget(
      JSON.parse(readFileSync(new URL('../bench/budget.json', import.meta.url), 'utf8')),
    );
    expect(file.baseline).toBe('reference');
    const payloads = ['2k-json', '2k-sse', '32k-json', '32k-sse'];
    /** The budget of `mode` for `figure` on `payload` (the entry that covers it), or undefined. */
    const max = (mode: string, figure: string, payload?: string) =>
      file.budgets.find(
        (b) =>
          b.mode === mode &&
          b.figure === figure &&
          (payload === undefined || b.payloads === undefined || b.payloads.includes(payload)),
      )?.max;
    for (const mode of ['prod+shadow', 'passthrough']) {
      for (const p of payloads) expect(max(mode, 'cpuPerRequest', p), `${mode} cpu ${p}`).toBeDefined();
      for (const f of [
        'addedLatencyP50',
        'addedLatencyP99',
        'addedTtfbP50',
        'errors',
        'rssGrowthSoakMB',
        'liveHeapGrowthSoakMB',
      ])
        expect(max(mode, f), `${mode} ${f}`).toBeDefined();
    }
    expect(max('prod+shadow', 'errors')).toBe(0);
    // A mode that does less (no policy) is never allowed more.
    for (const b of file.budgets.filter((x) => x.mode === 'passthrough'))
      for (const p of b.payloads ?? [undefined])
        expect(b.max, `${b.figure} ${p ?? ''}`).toBeLessThanOrEqual(max('prod+shadow', b.figure, p)!);
  });
});
