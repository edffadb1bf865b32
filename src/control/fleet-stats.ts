import type { Ring } from '../rings/state.ts';
import type { DivergenceGroup, Percentiles, RingCounters, RingStats } from './ring-stats.ts';

/**
 * Gate statistics across replicas. Each replica publishes a summary of its stage statistics to the control-plane
 * store every few seconds (`stats:<epoch>`, keyed by replica); gates judge the sum. Counters add exactly;
 * latency and evaluation-time distributions travel as log-bucketed histograms (20 buckets per decade, so a
 * merged percentile is within ~12 % of the exact one: plenty for a gate threshold, and bounded in size).
 */

const PER_DECADE = 20;
const DECADES = 9; // 1 µs … 1,000 s
const N_BUCKETS = PER_DECADE * DECADES + 1;

/** The bucket of a value in µs: 0 for < 1 µs, then log-spaced. */
function bucketOf(us: number): number {
  if (!(us >= 1)) return 0;
  return Math.min(N_BUCKETS - 1, 1 + Math.floor(Math.log10(us) * PER_DECADE));
}

/** A representative value (µs) of a bucket: its geometric middle. */
function midpointOf(bucket: number): number {
  if (bucket === 0) return 0.5;
  return 10 ** ((bucket - 0.5) / PER_DECADE);
}

/** A sparse histogram: bucket index → count. */
export type Histogram = Record<string, number>;

function histogramOf(values: { forEach(fn: (v: number) => void): void }, scale: number): Histogram {
  const h: Histogram = {};
  values.forEach((v) => {
    const b = String(bucketOf(v * scale));
    h[b] = (h[b] ?? 0) + 1;
  });
  return h;
}

/** Percentiles over merged histograms, in the unit the local reservoir uses (`1 / scale` of µs). */
class MergedPercentiles implements Percentiles {
  readonly #counts = new Map<number, number>();
  #n = 0;
  readonly #scale: number;
  constructor(scale: number) {
    this.#scale = scale;
  }
  add(h: Histogram): void {
    for (const [k, c] of Object.entries(h)) {
      this.#counts.set(Number(k), (this.#counts.get(Number(k)) ?? 0) + c);
      this.#n += c;
    }
  }
  percentile(p: number): number {
    if (this.#n === 0) return Number.NaN;
    const rank = Math.min(this.#n - 1, Math.floor((p / 100) * this.#n));
    let seen = 0;
    for (const b of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(b)!;
      if (seen > rank) return midpointOf(b) / this.#scale;
    }
    return Number.NaN;
  }
}

/** What one replica publishes about its current stage. Plain JSON. */
export interface StatsSummary {
  readonly v: 1;
  readonly replica: string;
  readonly epoch: string;
  readonly since: number;
  readonly at: number;
  readonly counters: Record<Ring, RingCounters>;
  readonly candidateEvaluations: number;
  readonly candidatePolicyErrors: number;
  readonly divergent: number;
  readonly groups: ReadonlyArray<Omit<DivergenceGroup, 'ack'>>;
  /** Request latency (ms, as µs buckets) per ring, and candidate evaluation time (µs). */
  readonly latency: Record<Ring, Histogram>;
  readonly candidateEval: Histogram;
}

/** Summarises one replica's stage statistics for publication. */
export function summarize(stats: RingStats, replica: string, now: number): StatsSummary {
  return {
    v: 1,
    replica,
    epoch: stats.epoch,
    since: stats.since,
    at: now,
    counters: { production: { ...stats.counters.production }, canary: { ...stats.counters.canary } },
    candidateEvaluations: stats.candidateEvaluations,
    candidatePolicyErrors: stats.candidatePolicyErrors,
    divergent: stats.divergent,
    groups: [...stats.groups.values()].map((g) => ({
      key: g.key,
      prodRule: g.prodRule,
      candRule: g.candRule,
      count: g.count,
      kinds: { ...g.kinds },
      samples: [...g.samples],
    })),
    latency: {
      production: histogramOf(stats.latency.production, 1000),
      canary: histogramOf(stats.latency.canary, 1000),
    },
    candidateEval: histogramOf(stats.candidateEval, 1),
  };
}

/** The statistics the promotion gates read: one replica's RingStats, or the fleet's merged view. */
export interface GateStats {
  readonly since: number;
  readonly counters: Readonly<Record<Ring, RingCounters>>;
  readonly candidateEvaluations: number;
  readonly candidatePolicyErrors: number;
  readonly divergent: number;
  readonly total: number;
  readonly groups: ReadonlyMap<string, DivergenceGroup>;
  readonly latency: Readonly<Record<Ring, Percentiles>>;
  readonly candidateEval: Percentiles;
  /** Replicas whose figures are in here (absent: this replica alone). */
  readonly replicas?: number;
}

/**
 * The fleet-wide view: this replica's live statistics plus the latest summaries the others published for the
 * same stage (epoch). Divergence groups merge by key; acknowledgements come from the local stats (they are
 * journaled and re-applied on every replica).
 */
export function fleetView(
  local: RingStats,
  replica: string,
  others: readonly StatsSummary[],
  now: number,
): GateStats {
  const all = [
    summarize(local, replica, now),
    ...others.filter((o) => o.epoch === local.epoch && o.replica !== replica),
  ];
  const counters: Record<Ring, RingCounters> = {
    production: { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 },
    canary: { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 },
  };
  const latency = { production: new MergedPercentiles(1000), canary: new MergedPercentiles(1000) };
  const candidateEval = new MergedPercentiles(1);
  const groups = new Map<string, DivergenceGroup>();
  let candidateEvaluations = 0;
  let candidatePolicyErrors = 0;
  let divergent = 0;
  let since = local.since;
  for (const s of all) {
    since = Math.min(since, s.since);
    for (const ring of ['production', 'canary'] as const) {
      const c = counters[ring];
      const x = s.counters[ring];
      c.requests += x.requests;
      c.errors += x.errors;
      c.triggered += x.triggered;
      c.leakBlocks += x.leakBlocks;
      latency[ring].add(s.latency[ring]);
    }
    candidateEval.add(s.candidateEval);
    candidateEvaluations += s.candidateEvaluations;
    candidatePolicyErrors += s.candidatePolicyErrors;
    divergent += s.divergent;
    for (const g of s.groups) {
      const have = groups.get(g.key);
      if (!have) {
        groups.set(g.key, {
          ...g,
          kinds: { ...g.kinds },
          samples: [...g.samples],
          ack: local.groups.get(g.key)?.ack,
        });
        continue;
      }
      have.count += g.count;
      for (const [k, n] of Object.entries(g.kinds))
        have.kinds[k as keyof typeof have.kinds] = (have.kinds[k as keyof typeof have.kinds] ?? 0) + (n ?? 0);
      for (const id of g.samples) if (have.samples.length < 5) have.samples.push(id);
    }
  }
  return {
    since,
    counters,
    candidateEvaluations,
    candidatePolicyErrors,
    divergent,
    total: counters.production.requests + counters.canary.requests,
    groups,
    latency,
    candidateEval,
    replicas: all.length,
  };
}
