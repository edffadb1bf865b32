import { z } from 'zod';
import type { ModeResult, PayloadFigures, PayloadInfo } from './lib/results.ts';

/**
 * The performance budget: pure checks of one run's results against bench/budget.json. Timings are judged only as
 * ratios or deltas against the baseline mode (`reference`) measured in the same run, never as absolute times, so
 * a budget holds on any machine. Counts (errors) and memory growth are absolute.
 */

/** What each budgeted figure is, how it is compared, and how it is named in messages. */
export const FIGURES = {
  cpuPerRequest: { compare: 'ratio', label: 'cpu/req', perPayload: true },
  addedLatencyP50: { compare: 'delta', label: 'added p50', perPayload: true },
  addedLatencyP90: { compare: 'delta', label: 'added p90', perPayload: true },
  addedLatencyP99: { compare: 'delta', label: 'added p99', perPayload: true },
  addedTtfbP50: { compare: 'delta', label: 'added TTFB p50', perPayload: true },
  addedTtfbP99: { compare: 'delta', label: 'added TTFB p99', perPayload: true },
  errors: { compare: 'absolute', label: 'errors', perPayload: true },
  rssGrowthSoakMB: {
    compare: 'absolute',
    label: "RSS growth over the soak's second half",
    perPayload: false,
  },
  liveHeapGrowthSoakMB: {
    compare: 'absolute',
    label: 'live heap growth over soak',
    perPayload: false,
  },
} as const;

/** A budgeted figure. */
export type Figure = keyof typeof FIGURES;

const entrySchema = z
  .strictObject({
    /** The mode the budget applies to. */
    mode: z.string().min(1),
    figure: z.enum(Object.keys(FIGURES) as [Figure, ...Figure[]]),
    /** Must match the figure's kind: ratio (×baseline), delta (ms over baseline) or absolute. */
    compare: z.enum(['ratio', 'delta', 'absolute']),
    max: z.number().nonnegative(),
    /** Payload ids to check; all (that the figure applies to) when absent. */
    payloads: z.array(z.string()).optional(),
  })
  .refine((e) => FIGURES[e.figure].compare === e.compare, {
    message:
      'compare does not match the figure (cpuPerRequest: ratio; added*: delta; errors, rss*: absolute)',
    path: ['compare'],
  });

/** The budget file's schema. */
export const budgetSchema = z.strictObject({
  $comment: z.string().optional(),
  /** The mode ratios and deltas are taken against. */
  baseline: z.string().min(1),
  budgets: z.array(entrySchema),
});

/** A validated budget. */
export type Budget = z.infer<typeof budgetSchema>;
/** One budget line. */
export type BudgetEntry = Budget['budgets'][number];

/** One check's outcome. `not measured` never passes and never fails the run. */
export interface BudgetOutcome {
  readonly mode: string;
  readonly figure: Figure;
  readonly payload?: string;
  readonly status: 'pass' | 'fail' | 'not measured';
  readonly message: string;
}

/** Every outcome, and the messages of the failing ones. */
export interface BudgetReport {
  readonly outcomes: readonly BudgetOutcome[];
  readonly violations: readonly string[];
}

/** What the checker reads from a run. */
export interface BudgetInput {
  readonly payloads: readonly Pick<PayloadInfo, 'id' | 'label' | 'stream'>[];
  readonly modes: readonly ModeResult[];
}

/** Parses budget.json content; throws naming the bad field. */
export function parseBudget(json: unknown): Budget {
  const r = budgetSchema.safeParse(json);
  if (!r.success)
    throw new Error(
      `invalid budget: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}

const fmt = (n: number) => String(Math.round(n * 100) / 100);

function payloadValue(f: Figure, p: PayloadFigures): number | undefined {
  switch (f) {
    case 'cpuPerRequest':
      return p.cpuPerRequestUs.median;
    case 'addedLatencyP50':
      return p.addedLatencyMs?.p50.median;
    case 'addedLatencyP90':
      return p.addedLatencyMs?.p90.median;
    case 'addedLatencyP99':
      return p.addedLatencyMs?.p99.median;
    case 'addedTtfbP50':
      return p.addedTtfbMs?.p50.median;
    case 'addedTtfbP99':
      return p.addedTtfbMs?.p99.median;
    case 'errors':
      return p.errors + p.non2xx;
    default:
      return undefined;
  }
}

function applies(f: Figure, payload: { stream: boolean }): boolean {
  return !(f === 'addedTtfbP50' || f === 'addedTtfbP99') || payload.stream;
}

/** Checks every budget entry against the results. Pure: no I/O. */
export function checkBudgets(results: BudgetInput, budget: Budget): BudgetReport {
  const outcomes: BudgetOutcome[] = [];
  const byName = new Map(results.modes.map((m) => [m.name, m]));
  const base = byName.get(budget.baseline);

  for (const e of budget.budgets) {
    const spec = FIGURES[e.figure];
    const mode = byName.get(e.mode);
    const push = (status: BudgetOutcome['status'], message: string, payload?: string) =>
      outcomes.push({ mode: e.mode, figure: e.figure, status, message, ...(payload ? { payload } : {}) });
    const notMeasured = (why: string) =>
      push('not measured', `${e.mode} ${spec.label}: not measured (${why})`);

    if (!mode) {
      notMeasured('no such mode in this run');
      continue;
    }
    if (!mode.available) {
      notMeasured(`mode not available: ${mode.reason ?? 'no reason given'}`);
      continue;
    }
    if (spec.compare !== 'absolute' && !base?.available) {
      notMeasured(`baseline ${budget.baseline} not measured`);
      continue;
    }

    if (!spec.perPayload) {
      const v =
        e.figure === 'liveHeapGrowthSoakMB' ? mode.memory?.liveHeapGrowthSoakMB : mode.memory?.soakGrowthMB;
      if (v === undefined)
        notMeasured(
          e.figure === 'liveHeapGrowthSoakMB' ? 'no live-heap probe in this run' : 'no soak in this run',
        );
      else {
        const ok = v <= e.max;
        push(
          ok ? 'pass' : 'fail',
          `${e.mode} ${spec.label}: ${fmt(v)} MB ${ok ? '≤' : '>'} ${fmt(e.max)} MB`,
        );
      }
      continue;
    }

    for (const p of results.payloads) {
      if (e.payloads && !e.payloads.includes(p.id)) continue;
      if (!applies(e.figure, p)) continue;
      const where = `${e.mode} ${spec.label} ${p.label}`;
      const mine = mode.payloads[p.id];
      const v = mine && payloadValue(e.figure, mine);
      const b = base?.payloads[p.id];
      const bv = b && payloadValue(e.figure, b);
      if (
        v === undefined ||
        Number.isNaN(v) ||
        (spec.compare !== 'absolute' && (bv === undefined || Number.isNaN(bv)))
      ) {
        push('not measured', `${where}: not measured (no figure in this run)`, p.id);
        continue;
      }
      let ok: boolean;
      let message: string;
      if (spec.compare === 'ratio') {
        const ratio = v / bv!;
        ok = ratio <= e.max;
        message = `${where}: ${fmt(ratio)}x ${budget.baseline} ${ok ? '≤' : '>'} ${fmt(e.max)}x`;
      } else if (spec.compare === 'delta') {
        const delta = v - bv!;
        ok = delta <= e.max;
        const sign = delta >= 0 ? '+' : '−';
        message = `${where}: ${sign}${fmt(Math.abs(delta))} ms over ${budget.baseline} ${ok ? '≤' : '>'} +${fmt(e.max)} ms`;
      } else {
        ok = v <= e.max;
        message = `${where}: ${fmt(v)} ${ok ? '≤' : '>'} ${fmt(e.max)}`;
      }
      push(ok ? 'pass' : 'fail', message, p.id);
    }
  }
  return { outcomes, violations: outcomes.filter((o) => o.status === 'fail').map((o) => o.message) };
}
