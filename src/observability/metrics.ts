import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestRecord } from '../gateway/context.ts';
import type { RingSnapshot } from '../rings/runtime.ts';
import type { BreakerState, Breakers } from '../upstream/breakers.ts';

const BREAKER_STATE: Record<BreakerState, number> = { closed: 0, halfOpen: 1, open: 2 };

/**
 * Every metric of the gateway, on its own registry (no global state), with low-cardinality labels only:
 * ring, api, outcome, status class, divergence kind, target (provider/model as configured), guardrail id.
 * Updated after the response ends, never on the response path.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'ringfence_requests_total',
    help: 'Governed requests by ring, API, outcome and status class.',
    labelNames: ['ring', 'api', 'outcome', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'ringfence_request_duration_seconds',
    help: 'Whole request time through the gateway, by ring and API.',
    labelNames: ['ring', 'api'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly evaluation = new Histogram({
    name: 'ringfence_policy_evaluation_seconds',
    help: 'Policy evaluation time by role (enforcing, candidate).',
    labelNames: ['role'] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
    registers: [this.registry],
  });
  readonly divergence = new Counter({
    name: 'ringfence_divergence_total',
    help: 'Requests on which the candidate and production decided differently, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly candidateErrors = new Counter({
    name: 'ringfence_candidate_policy_errors_total',
    help: 'Candidate evaluations that threw (shadow: the request was unaffected).',
    registers: [this.registry],
  });
  readonly verdicts = new Counter({
    name: 'ringfence_guardrail_verdicts_total',
    help: 'Guardrail verdicts other than pass, by ring, stage, guardrail and verdict.',
    labelNames: ['ring', 'stage', 'guardrail', 'verdict'] as const,
    registers: [this.registry],
  });
  readonly budgetRejections = new Counter({
    name: 'ringfence_budget_rejections_total',
    help: 'Requests refused because a token budget was spent.',
    registers: [this.registry],
  });
  readonly breakerState = new Gauge({
    name: 'ringfence_breaker_state',
    help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open.',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });
  readonly breakerTransitions = new Counter({
    name: 'ringfence_breaker_transitions_total',
    help: 'Circuit breaker state changes per target.',
    labelNames: ['target', 'to'] as const,
    registers: [this.registry],
  });
  readonly fallbacks = new Counter({
    name: 'ringfence_fallbacks_total',
    help: 'Answers served by a fallback, by kind (target, degraded, fail).',
    labelNames: ['from', 'kind'] as const,
    registers: [this.registry],
  });
  readonly killSwitches = new Gauge({
    name: 'ringfence_kill_switches_active',
    help: 'Kill switches on, by kind (target, candidate).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly ringVersion = new Gauge({
    name: 'ringfence_ring_state_version',
    help: 'Version of the ring state in force.',
    registers: [this.registry],
  });
  readonly candidateStage = new Gauge({
    name: 'ringfence_candidate_stage',
    help: 'The candidate stage in force: 0 none, 1 shadow, 2 canary.',
    registers: [this.registry],
  });

  /** Counts one request after its response ended. */
  observe(r: RequestRecord, snap: RingSnapshot): void {
    const status = r.status >= 500 ? '5xx' : r.status >= 400 ? '4xx' : '2xx';
    this.requests.labels(r.ring, r.input.api, r.outcome, status).inc();
    this.duration.labels(r.ring, r.input.api).observe(r.timings.totalMs / 1000);
    this.evaluation.labels('enforcing').observe(r.timings.evalUs / 1e6);
    if (r.timings.candidateEvalUs !== undefined)
      this.evaluation.labels('candidate').observe(r.timings.candidateEvalUs / 1e6);
    for (const k of r.divergence ?? []) this.divergence.labels(k).inc();
    if (r.shadowError) this.candidateErrors.inc();
    for (const v of r.decision.verdicts)
      if (v.verdict !== 'pass') this.verdicts.labels(r.ring, 'input', v.guardrail, v.verdict).inc();
    for (const v of r.output?.verdicts ?? [])
      if (v.verdict !== 'pass') this.verdicts.labels(r.ring, 'output', v.guardrail, v.verdict).inc();
    if (r.errorCode === 'budget_exceeded') this.budgetRejections.inc();
    this.ring(snap);
  }

  /** Mirrors the ring state in force. */
  ring(snap: RingSnapshot): void {
    const s = snap.state;
    this.ringVersion.set(s.version);
    this.candidateStage.set(!s.candidate || s.killed?.candidate ? 0 : s.candidate.stage === 'shadow' ? 1 : 2);
    this.killSwitches.labels('target').set(s.killed?.targets.length ?? 0);
    this.killSwitches.labels('candidate').set(s.killed?.candidate ? 1 : 0);
  }

  /** Follows breaker transitions and fallbacks. */
  follow(breakers: Breakers): () => void {
    return breakers.subscribe({
      onTransition: (e) => {
        this.breakerState.labels(e.target).set(BREAKER_STATE[e.to]);
        this.breakerTransitions.labels(e.target, e.to).inc();
      },
      onFallback: (e) => this.fallbacks.labels(e.from, e.kind).inc(),
    });
  }
}
