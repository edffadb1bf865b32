import type { GateStats } from '../control/fleet-stats.ts';
import type { RingState } from './state.ts';

/** The outcome of one measured condition. */
export interface GateResult {
  readonly name: string;
  readonly observed: number | null;
  readonly threshold: string;
  readonly verdict: 'pass' | 'fail' | 'insufficient_data';
  readonly sampleSize: number;
  readonly window: { readonly since: string; readonly until: string };
}

/** Gate thresholds (config `rings.gates`). */
export interface GateThresholds {
  readonly shadowToCanary: {
    readonly maxCandidatePolicyErrorRate: number;
    readonly ackMinGroupCount: number;
    readonly maxCandidateEvalP95Us: number;
    readonly minSamples: number;
    readonly minDurationS: number;
  };
  readonly canaryToProduction: {
    readonly maxErrorRateDelta: number;
    readonly maxTriggerRateDelta: number;
    readonly maxLatencyP50DeltaMs: number;
    readonly maxLatencyP95DeltaMs: number;
    readonly minSamples: number;
    readonly minDurationS: number;
    /** Promotion needs a passed kill-switch drill within `drillMaxAgeDays` (a failed last drill always blocks). */
    readonly requireDrill?: boolean;
    readonly drillMaxAgeDays?: number;
  };
}

/** The last kill-switch drill (rollback readiness evidence), if any was run. */
export interface DrillEvidence {
  readonly ok: boolean;
  readonly at: string;
}

/** Which transition a gate table is for. */
export type GateTransition = 'shadow_to_canary' | 'canary_to_production';

const rate = (n: number, d: number) => (d > 0 ? n / d : Number.NaN);
const round = (x: number, digits = 4) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/**
 * Evaluates the gates of the candidate's next transition from the stage's statistics. Every gate is a measured
 * condition with its figure, threshold and sample size; too little data is `insufficient_data`, never a pass.
 */
export function evaluateGates(
  state: RingState,
  stats: GateStats,
  t: GateThresholds,
  now: number,
  lastDrill?: DrillEvidence,
): { transition: GateTransition; gates: GateResult[]; replicas: number } | undefined {
  const cand = state.candidate;
  if (!cand) return undefined;
  const window = { since: new Date(stats.since).toISOString(), until: new Date(now).toISOString() };
  const elapsedS = (now - stats.since) / 1000;
  const gates: GateResult[] = [];
  const add = (
    name: string,
    observed: number,
    threshold: string,
    ok: boolean,
    sampleSize: number,
    enough = sampleSize > 0,
  ) =>
    gates.push({
      name,
      observed: round(observed),
      threshold,
      verdict: !enough || !Number.isFinite(observed) ? 'insufficient_data' : ok ? 'pass' : 'fail',
      sampleSize,
      window,
    });

  if (cand.stage === 'shadow') {
    const g = t.shadowToCanary;
    const n = stats.candidateEvaluations;
    add('min_samples', n, `>= ${g.minSamples}`, n >= g.minSamples, n, n >= g.minSamples);
    add(
      'min_duration_s',
      elapsedS,
      `>= ${g.minDurationS}`,
      elapsedS >= g.minDurationS,
      n,
      elapsedS >= g.minDurationS,
    );
    const per = rate(stats.candidatePolicyErrors, n);
    add(
      'candidate_policy_error_rate',
      per,
      `<= ${g.maxCandidatePolicyErrorRate}`,
      per <= g.maxCandidatePolicyErrorRate,
      n,
    );
    const unacked = [...stats.groups.values()].filter((x) => x.count >= g.ackMinGroupCount && !x.ack).length;
    add('unacknowledged_divergence_groups', unacked, '= 0', unacked === 0, stats.divergent, true);
    gates.push({
      name: 'divergence_rate',
      observed: round(rate(stats.divergent, stats.total)),
      threshold: 'reported',
      verdict: 'pass',
      sampleSize: stats.total,
      window,
    });
    const p95 = stats.candidateEval.percentile(95);
    add('candidate_eval_p95_us', p95, `<= ${g.maxCandidateEvalP95Us}`, p95 <= g.maxCandidateEvalP95Us, n);
    return { transition: 'shadow_to_canary', gates, replicas: stats.replicas ?? 1 };
  }

  const g = t.canaryToProduction;
  const c = stats.counters.canary;
  const p = stats.counters.production;
  const both = Math.min(c.requests, p.requests);
  add(
    'min_samples',
    c.requests,
    `>= ${g.minSamples}`,
    c.requests >= g.minSamples,
    c.requests,
    c.requests >= g.minSamples,
  );
  add(
    'min_duration_s',
    elapsedS,
    `>= ${g.minDurationS}`,
    elapsedS >= g.minDurationS,
    c.requests,
    elapsedS >= g.minDurationS,
  );
  const errDelta = rate(c.errors, c.requests) - rate(p.errors, p.requests);
  add('error_rate_delta', errDelta, `<= ${g.maxErrorRateDelta}`, errDelta <= g.maxErrorRateDelta, both);
  const trigDelta = Math.abs(rate(c.triggered, c.requests) - rate(p.triggered, p.requests));
  add(
    'guardrail_trigger_rate_delta',
    trigDelta,
    `<= ${g.maxTriggerRateDelta}`,
    trigDelta <= g.maxTriggerRateDelta,
    both,
  );
  const p50 = stats.latency.canary.percentile(50) - stats.latency.production.percentile(50);
  add('latency_p50_delta_ms', p50, `<= ${g.maxLatencyP50DeltaMs}`, p50 <= g.maxLatencyP50DeltaMs, both);
  const p95 = stats.latency.canary.percentile(95) - stats.latency.production.percentile(95);
  add('latency_p95_delta_ms', p95, `<= ${g.maxLatencyP95DeltaMs}`, p95 <= g.maxLatencyP95DeltaMs, both);
  // Any output data-leak block in canary traffic: the candidate let something out that production would not.
  add('output_leak_blocks', c.leakBlocks, '= 0', c.leakBlocks === 0, c.requests, true);
  // Rollback readiness: a failed last drill always blocks; with `requireDrill`, so does none (or a stale one).
  const maxAgeMs = (g.drillMaxAgeDays ?? 30) * 86_400_000;
  if (lastDrill && !lastDrill.ok) add('rollback_drill', 0, 'last drill passed', false, 1, true);
  else if (g.requireDrill) {
    const fresh = lastDrill !== undefined && now - Date.parse(lastDrill.at) <= maxAgeMs;
    add(
      'rollback_drill',
      fresh ? 1 : 0,
      `passed within ${g.drillMaxAgeDays ?? 30} days`,
      fresh,
      lastDrill ? 1 : 0,
      true,
    );
  } else if (lastDrill) add('rollback_drill', 1, 'last drill passed', true, 1, true);
  return { transition: 'canary_to_production', gates, replicas: stats.replicas ?? 1 };
}

/** True when every gate passes, or fails only where `covered` (an active override) says it may. */
export function gatesPass(gates: readonly GateResult[], covered?: (gate: string) => boolean): boolean {
  return gates.every((g) => g.verdict === 'pass' || (covered?.(g.name) ?? false));
}
