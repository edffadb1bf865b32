import type { RingStats } from '../control/ring-stats.ts';

/** Automatic rollback triggers (config `rings.triggers`), evaluated during canary. */
export interface TriggerThresholds {
  /** Canary error rate above this many times production's (and above `minErrorRate`) … */
  readonly errorRateFactor: number;
  readonly minErrorRate: number;
  /** … sustained over this window. */
  readonly windowS: number;
  /** Fewest canary requests in the window before a rate counts. */
  readonly minSamples: number;
  /** Canary guardrail trigger rate above this many times production's (and above 0.05). */
  readonly triggerSpikeFactor: number;
  /** Canary p95 latency over the window above this. */
  readonly latencyP95SlaMs: number;
  /** Any output data-leak block in canary traffic rolls back at once. */
  readonly leakBlock: boolean;
}

/** A trigger that fired, with the figures that made it fire. */
export interface FiredTrigger {
  readonly trigger: 'error_rate' | 'guardrail_spike' | 'leak_block' | 'latency_sla';
  readonly figures: Readonly<Record<string, number>>;
  readonly message: string;
}

/** Checks the triggers over the recent window. Returns the first that holds, or undefined. */
export function checkTriggers(stats: RingStats, t: TriggerThresholds, now: number): FiredTrigger | undefined {
  const since = Math.max(stats.since, now - t.windowS * 1000);
  const c = stats.recent.canary.since(since);
  const p = stats.recent.production.since(since);
  if (t.leakBlock && stats.counters.canary.leakBlocks > 0) {
    return {
      trigger: 'leak_block',
      figures: { canaryLeakBlocks: stats.counters.canary.leakBlocks },
      message: `an output guardrail blocked a data leak in canary traffic (${stats.counters.canary.leakBlocks})`,
    };
  }
  if (c.requests < t.minSamples) return undefined;
  const cErr = c.errors / c.requests;
  const pErr = p.requests ? p.errors / p.requests : 0;
  if (cErr >= t.minErrorRate && cErr > t.errorRateFactor * pErr) {
    return {
      trigger: 'error_rate',
      figures: {
        canaryErrorRate: cErr,
        productionErrorRate: pErr,
        canaryRequests: c.requests,
        windowS: t.windowS,
      },
      message: `canary error rate ${(cErr * 100).toFixed(1)}% > ${t.errorRateFactor} × production's ${(pErr * 100).toFixed(1)}% over ${t.windowS}s`,
    };
  }
  const cTrig = c.triggered / c.requests;
  const pTrig = p.requests ? p.triggered / p.requests : 0;
  if (cTrig >= 0.05 && cTrig > t.triggerSpikeFactor * pTrig) {
    return {
      trigger: 'guardrail_spike',
      figures: { canaryTriggerRate: cTrig, productionTriggerRate: pTrig, canaryRequests: c.requests },
      message: `canary guardrail trigger rate ${(cTrig * 100).toFixed(1)}% > ${t.triggerSpikeFactor} × production's`,
    };
  }
  const p95 = stats.latency.canary.percentile(95, since);
  if (Number.isFinite(p95) && p95 > t.latencyP95SlaMs) {
    return {
      trigger: 'latency_sla',
      figures: { canaryLatencyP95Ms: p95, slaMs: t.latencyP95SlaMs },
      message: `canary p95 ${p95.toFixed(0)} ms over the ${t.latencyP95SlaMs} ms SLA`,
    };
  }
  return undefined;
}
