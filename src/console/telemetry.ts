import type { RequestRecord } from '../gateway/context.ts';
import type { RingSnapshot } from '../rings/runtime.ts';

/**
 * The console's own rolling window of what the gateway served, fed by the request observer (`observe`, wired in
 * main.ts after the ring statistics and the metrics). It holds what the charts need and the ring statistics do
 * not: time buckets per lane (production, canary, and the candidate shadowing production traffic), the class
 * each bundle gave each request (for the classification shift) and the cost per class. This replica only;
 * off the response path (the observer runs after the response ended); bounded memory.
 */

/** A lane of traffic: the ring that enforced it, or `shadow` for the candidate's observe-only evaluations. */
export type Lane = 'production' | 'canary' | 'shadow';
export const LANES: readonly Lane[] = ['production', 'canary', 'shadow'];

/** What prices a request (observability/cost.ts `Pricing`). */
export interface CostModel {
  cost(provider: string, model: string, tokens: { input: number; output: number }): number | undefined;
}

interface LaneBucket {
  requests: number;
  policyErrors: number;
  triggered: number;
  /** A reservoir of request latencies (ms), at most LATENCY_KEEP. */
  latency: number[];
  seen: number;
}

interface Bucket {
  start: number;
  lanes: Record<Lane, LaneBucket>;
  cost: Map<string, { requests: number; usd: number; priced: number }>;
}

const LATENCY_KEEP = 200;
const MAX_CLASSES = 64;

const lane = (): LaneBucket => ({ requests: 0, policyErrors: 0, triggered: 0, latency: [], seen: 0 });

function percentile(values: readonly number[], p: number): number | null {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]!;
}

/** One lane over time: per bucket, requests and the rates (null where a bucket saw no request). */
export interface LaneSeries {
  readonly requests: readonly number[];
  readonly policyErrorRate: readonly (number | null)[];
  readonly triggerRate: readonly (number | null)[];
}

/** What the console's charts read. */
export interface TelemetryView {
  readonly bucketMs: number;
  /** Start of the first bucket and end of the last (ms since epoch). */
  readonly start: number;
  readonly end: number;
  readonly lanes: Readonly<Record<Lane, LaneSeries>>;
  /** Canary minus production latency per bucket (ms), where both rings served requests in it. */
  readonly latencyDelta: {
    readonly p50: readonly (number | null)[];
    readonly p95: readonly (number | null)[];
  };
  /** Latency over the whole window per enforcing ring (ms). */
  readonly latency: Readonly<
    Record<'production' | 'canary', { p50: number | null; p95: number | null; n: number }>
  >;
  /** Since the current stage began: the class production gave vs the class the candidate gave, same requests. */
  readonly classes: {
    readonly epoch: string | undefined;
    readonly compared: number;
    readonly moved: number;
    readonly production: Readonly<Record<string, number>>;
    readonly candidate: Readonly<Record<string, number>>;
  };
  /** Over the window, per class the enforcing bundle gave: requests, estimated dollars, requests priced. */
  readonly cost: ReadonlyArray<{ cls: string; requests: number; usd: number; priced: number }>;
}

export class ConsoleTelemetry {
  readonly bucketMs: number;
  readonly #n: number;
  readonly #buckets: (Bucket | undefined)[];
  readonly #now: () => number;
  readonly #pricing: CostModel | undefined;
  #epoch: string | undefined;
  #compared = 0;
  #moved = 0;
  #prodClasses = new Map<string, number>();
  #candClasses = new Map<string, number>();

  constructor(pricing?: CostModel, opts: { bucketMs?: number; buckets?: number; now?: () => number } = {}) {
    this.#pricing = pricing;
    this.bucketMs = opts.bucketMs ?? 10_000;
    this.#n = opts.buckets ?? 60;
    this.#buckets = new Array(this.#n).fill(undefined);
    this.#now = opts.now ?? Date.now;
  }

  #bucket(now: number): Bucket {
    const start = Math.floor(now / this.bucketMs) * this.bucketMs;
    const i = Math.floor(start / this.bucketMs) % this.#n;
    let b = this.#buckets[i];
    if (!b || b.start !== start) {
      b = { start, lanes: { production: lane(), canary: lane(), shadow: lane() }, cost: new Map() };
      this.#buckets[i] = b;
    }
    return b;
  }

  /** Counts one governed request (the request observer's signature). */
  observe(r: RequestRecord, snap: RingSnapshot): void {
    const b = this.#bucket(this.#now());
    const enforcing = b.lanes[r.ring];
    enforcing.requests++;
    if (r.errorCode === 'policy_error') enforcing.policyErrors++;
    if (
      r.decision?.verdicts.some((v) => v.verdict !== 'pass') ||
      r.output?.verdicts.some((v) => v.verdict !== 'pass')
    )
      enforcing.triggered++;
    enforcing.seen++;
    if (enforcing.latency.length < LATENCY_KEEP) enforcing.latency.push(r.timings.totalMs);
    else {
      const j = Math.floor(Math.random() * enforcing.seen);
      if (j < LATENCY_KEEP) enforcing.latency[j] = r.timings.totalMs;
    }
    // The candidate observing production traffic (shadow, or production's share during a canary).
    if (r.ring === 'production' && r.shadowBundleId !== undefined) {
      const s = b.lanes.shadow;
      s.requests++;
      if (r.shadowError) s.policyErrors++;
      if (
        r.shadow?.verdicts.some((v) => v.verdict !== 'pass') ||
        r.shadowOutput?.some((v) => v.verdict !== 'pass')
      )
        s.triggered++;
    }

    const cls = r.decision?.class ?? 'unclassified';
    if (r.tokens && r.target && r.target.provider !== 'degraded') {
      const c =
        b.cost.get(cls) ?? (b.cost.size < MAX_CLASSES ? { requests: 0, usd: 0, priced: 0 } : undefined);
      if (c) {
        c.requests++;
        const usd = this.#pricing?.cost(r.target.provider, r.target.model, r.tokens);
        if (usd !== undefined) {
          c.usd += usd;
          c.priced++;
        }
        b.cost.set(cls, c);
      }
    }

    if (snap.stats.epoch !== this.#epoch) {
      this.#epoch = snap.stats.epoch;
      this.#compared = 0;
      this.#moved = 0;
      this.#prodClasses = new Map();
      this.#candClasses = new Map();
    }
    const [prod, cand] = r.ring === 'canary' ? [r.shadow, r.decision] : [r.decision, r.shadow];
    if (prod && cand) {
      this.#compared++;
      if (prod.class !== cand.class) this.#moved++;
      const bump = (m: Map<string, number>, k: string) => {
        if (m.has(k) || m.size < MAX_CLASSES) m.set(k, (m.get(k) ?? 0) + 1);
      };
      bump(this.#prodClasses, prod.class);
      bump(this.#candClasses, cand.class);
    }
  }

  /** The window as the charts read it, oldest bucket first, ending with the bucket holding `now`. */
  view(now = this.#now()): TelemetryView {
    const last = Math.floor(now / this.bucketMs) * this.bucketMs;
    const start = last - (this.#n - 1) * this.bucketMs;
    const buckets: (Bucket | undefined)[] = [];
    for (let t = start; t <= last; t += this.bucketMs) {
      const b = this.#buckets[Math.floor(t / this.bucketMs) % this.#n];
      buckets.push(b && b.start === t ? b : undefined);
    }
    const rate = (n: number, d: number) => (d > 0 ? n / d : null);
    const lanes = {} as Record<Lane, LaneSeries>;
    for (const l of LANES)
      lanes[l] = {
        requests: buckets.map((b) => b?.lanes[l].requests ?? 0),
        policyErrorRate: buckets.map((b) => (b ? rate(b.lanes[l].policyErrors, b.lanes[l].requests) : null)),
        triggerRate: buckets.map((b) => (b ? rate(b.lanes[l].triggered, b.lanes[l].requests) : null)),
      };
    const delta = (p: number) =>
      buckets.map((b) => {
        const c = b && percentile(b.lanes.canary.latency, p);
        const q = b && percentile(b.lanes.production.latency, p);
        return c != null && q != null ? c - q : null;
      });
    const whole = (ring: 'production' | 'canary') => {
      const all = buckets.flatMap((b) => b?.lanes[ring].latency ?? []);
      return { p50: percentile(all, 50), p95: percentile(all, 95), n: all.length };
    };
    const cost = new Map<string, { requests: number; usd: number; priced: number }>();
    for (const b of buckets)
      for (const [cls, c] of b?.cost ?? []) {
        const have = cost.get(cls) ?? { requests: 0, usd: 0, priced: 0 };
        have.requests += c.requests;
        have.usd += c.usd;
        have.priced += c.priced;
        cost.set(cls, have);
      }
    return {
      bucketMs: this.bucketMs,
      start,
      end: last + this.bucketMs,
      lanes,
      latencyDelta: { p50: delta(50), p95: delta(95) },
      latency: { production: whole('production'), canary: whole('canary') },
      classes: {
        epoch: this.#epoch,
        compared: this.#compared,
        moved: this.#moved,
        production: Object.fromEntries(this.#prodClasses),
        candidate: Object.fromEntries(this.#candClasses),
      },
      cost: [...cost].map(([cls, c]) => ({ cls, ...c })).sort((a, b) => a.cls.localeCompare(b.cls)),
    };
  }
}
