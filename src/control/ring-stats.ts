import type { DivergenceKind } from '../policy/divergence.ts';
import type { Ring } from '../rings/state.ts';

/** One governed request as the ring statistics see it. Recorded after the response has ended. */
export interface RingSample {
  readonly ring: Ring;
  readonly at: number;
  readonly requestId: string;
  /** The request failed for reasons other than policy: upstream 5xx, timeouts, unreachable provider. */
  readonly error: boolean;
  /** Any guardrail of the enforcing bundle fired (input or output, any verdict but pass). */
  readonly triggered: boolean;
  /** An output guardrail blocked the response (a data leak stopped). */
  readonly leakBlock: boolean;
  readonly latencyMs: number;
  /** Time the candidate's evaluation took (shadow or canary), when it ran. */
  readonly candidateEvalUs: number | undefined;
  readonly candidatePolicyError: boolean;
  readonly divergence:
    | { readonly kinds: readonly DivergenceKind[]; readonly prodRule: string; readonly candRule: string }
    | undefined;
}

/** A divergence group: production rule → candidate rule. */
export interface DivergenceGroup {
  readonly key: string;
  readonly prodRule: string;
  readonly candRule: string;
  count: number;
  readonly kinds: Partial<Record<DivergenceKind, number>>;
  readonly samples: string[];
  ack: { by: string; reason: string; at: string } | undefined;
}

/** Per-ring counters since the stage began. */
export interface RingCounters {
  requests: number;
  errors: number;
  triggered: number;
  leakBlocks: number;
}

const RESERVOIR = 10_000;

/** A source of percentiles: the local reservoir, or a fleet-wide merged histogram. */
export interface Percentiles {
  percentile(p: number): number;
}

/** A bounded ring buffer of numbers with their timestamps: percentiles over all of it or over a recent window. */
class Samples {
  readonly #v = new Float64Array(RESERVOIR);
  readonly #t = new Float64Array(RESERVOIR);
  #n = 0;
  add(value: number, at: number): void {
    const i = this.#n % RESERVOIR;
    this.#v[i] = value;
    this.#t[i] = at;
    this.#n++;
  }
  get size(): number {
    return Math.min(this.#n, RESERVOIR);
  }
  /** Calls `fn` with every value kept (the newest RESERVOIR). */
  forEach(fn: (value: number) => void): void {
    for (let i = 0; i < this.size; i++) fn(this.#v[i]!);
  }
  /** The p-th percentile (0–100) of the samples taken at or after `since`; NaN when there are none. */
  percentile(p: number, since = 0): number {
    const vals: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.#t[i]! >= since) vals.push(this.#v[i]!);
    if (!vals.length) return Number.NaN;
    vals.sort((a, b) => a - b);
    return vals[Math.min(vals.length - 1, Math.floor((p / 100) * vals.length))]!;
  }
}

/** A stretch of recent time in one-second buckets, for rollback triggers ("sustained for a window"). */
class Recent {
  readonly #buckets = new Map<number, RingCounters>();
  add(sample: RingSample): void {
    const sec = Math.floor(sample.at / 1000);
    let b = this.#buckets.get(sec);
    if (!b) {
      b = { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 };
      this.#buckets.set(sec, b);
      if (this.#buckets.size > 3600)
        for (const k of this.#buckets.keys()) if (k < sec - 3600) this.#buckets.delete(k);
    }
    b.requests++;
    if (sample.error) b.errors++;
    if (sample.triggered) b.triggered++;
    if (sample.leakBlock) b.leakBlocks++;
  }
  /** Sums the buckets from `since` (ms) on. */
  since(since: number): RingCounters {
    const out = { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 };
    const from = Math.floor(since / 1000);
    for (const [sec, b] of this.#buckets) {
      if (sec < from) continue;
      out.requests += b.requests;
      out.errors += b.errors;
      out.triggered += b.triggered;
      out.leakBlocks += b.leakBlocks;
    }
    return out;
  }
}

/**
 * What the gates and the rollback triggers measure, for one candidate stage (a new stage starts new statistics).
 * Fed by the request observer after each response; read by the control loop. Nothing here is on the hot path.
 */
export class RingStats {
  readonly epoch: string;
  readonly since: number;
  readonly counters: Record<Ring, RingCounters> = {
    production: { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 },
    canary: { requests: 0, errors: 0, triggered: 0, leakBlocks: 0 },
  };
  readonly latency: Record<Ring, Samples> = { production: new Samples(), canary: new Samples() };
  readonly recent: Record<Ring, Recent> = { production: new Recent(), canary: new Recent() };
  readonly candidateEval = new Samples();
  candidateEvaluations = 0;
  candidatePolicyErrors = 0;
  divergent = 0;
  readonly divergenceKinds: Partial<Record<DivergenceKind, number>> = {};
  readonly groups = new Map<string, DivergenceGroup>();

  constructor(epoch: string, since: number) {
    this.epoch = epoch;
    this.since = since;
  }

  record(s: RingSample): void {
    const c = this.counters[s.ring];
    c.requests++;
    if (s.error) c.errors++;
    if (s.triggered) c.triggered++;
    if (s.leakBlock) c.leakBlocks++;
    this.latency[s.ring].add(s.latencyMs, s.at);
    this.recent[s.ring].add(s);
    if (s.candidateEvalUs !== undefined) {
      this.candidateEvaluations++;
      this.candidateEval.add(s.candidateEvalUs, s.at);
    }
    if (s.candidatePolicyError) this.candidatePolicyErrors++;
    if (s.divergence) {
      this.divergent++;
      const key = `${s.divergence.prodRule} → ${s.divergence.candRule}`;
      let g = this.groups.get(key);
      if (!g) {
        g = {
          key,
          prodRule: s.divergence.prodRule,
          candRule: s.divergence.candRule,
          count: 0,
          kinds: {},
          samples: [],
          ack: undefined,
        };
        this.groups.set(key, g);
      }
      g.count++;
      if (g.samples.length < 5) g.samples.push(s.requestId);
      for (const k of s.divergence.kinds) {
        g.kinds[k] = (g.kinds[k] ?? 0) + 1;
        this.divergenceKinds[k] = (this.divergenceKinds[k] ?? 0) + 1;
      }
    }
  }

  /** Total requests seen in this stage. */
  get total(): number {
    return this.counters.production.requests + this.counters.canary.requests;
  }
}
