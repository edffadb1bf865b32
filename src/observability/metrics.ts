import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RingEvent } from '../control/rings-controller.ts';
import type { RequestRecord } from '../gateway/context.ts';
import type { RingSnapshot } from '../rings/runtime.ts';
import type { BreakerState, Breakers } from '../upstream/breakers.ts';
import type { Pricing } from './cost.ts';
import { FastCounter, FastHistogram } from './fast-metrics.ts';
import { LabelCache } from './label-cache.ts';

const BREAKER_STATE: Record<BreakerState, number> = { closed: 0, halfOpen: 1, open: 2 };

/** 10 µs … 10 s: evaluation and gateway overhead live at the bottom, a stalled call at the top. */
const FINE_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5, 5, 10,
];
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const statusClass = (s: number) => (s >= 500 ? '5xx' : s >= 400 ? '4xx' : s >= 300 ? '3xx' : '2xx');

/**
 * Every metric of the gateway, on its own registry (no global state). Labels stay low-cardinality: ring, app id,
 * class, action, status class, error code, guardrail id, provider and priced/listed model (others are `*`),
 * divergence kind, breaker target. Never a request id, an end user or a free-form model name.
 * Updated after the response ends, never on the response path.
 *
 * Rings in labels: `production` and `canary` are the ring that enforced the request; `shadow` is the candidate
 * evaluated beside production without enforcing.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #pricing: Pricing;
  readonly #c = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  readonly #g = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  readonly #h = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  // The series observe() updates on every request: plain numbers until a scrape reads them (fast-metrics.ts).
  readonly #fc = (name: string, help: string, labelNames: readonly string[]) =>
    new FastCounter(this.registry, name, help, labelNames);
  readonly #fh = (name: string, help: string, labelNames: readonly string[], buckets: number[]) =>
    new FastHistogram(this.registry, name, help, labelNames, buckets);

  readonly requests = this.#fc(
    'ringfence_requests_total',
    'Governed requests by the ring that enforced them, app, class, action and status class.',
    ['ring', 'app', 'class', 'action', 'status'],
  );
  readonly rejected = this.#c(
    'ringfence_rejected_requests_total',
    'API requests refused before any policy ran (unauthenticated, invalid body, too large, no route), by code.',
    ['code'],
  );
  readonly requestErrors = this.#fc(
    'ringfence_request_errors_total',
    'Requests answered with a gateway error, by ring and error code (docs/errors.md).',
    ['ring', 'code'],
  );
  readonly evaluations = this.#fc(
    'ringfence_evaluations_total',
    'Bundle evaluations by ring (production, canary enforcing; shadow observing), class and action.',
    ['ring', 'class', 'action'],
  );
  readonly triggers = this.#fc(
    'ringfence_guardrail_triggers_total',
    'Guardrail verdicts other than pass, by ring, stage, guardrail and verdict.',
    ['ring', 'stage', 'guardrail', 'verdict'],
  );
  readonly policyErrors = this.#fc(
    'ringfence_policy_errors_total',
    'Policy evaluations that threw, by ring (production/canary: the request was denied; shadow: counted only).',
    ['ring'],
  );
  readonly divergence = this.#fc(
    'ringfence_divergence_total',
    'Requests on which the candidate and production decided differently, by ring and kind.',
    ['ring', 'kind'],
  );
  readonly tokens = this.#fc(
    'ringfence_tokens_total',
    'Tokens by class, provider, model and direction (input, output); estimated when the provider reports none.',
    ['class', 'provider', 'model', 'direction'],
  );
  readonly cost = this.#fc(
    'ringfence_cost_usd_total',
    'Estimated cost in US dollars by class, provider and model (from providers.<id>.pricing).',
    ['class', 'provider', 'model'],
  );
  readonly rollbacks = this.#c(
    'ringfence_rollbacks_total',
    'Rollbacks by trigger (manual, or the automatic trigger that fired).',
    ['trigger'],
  );
  readonly promotions = this.#c(
    'ringfence_promotions_total',
    'Candidate promotions by the ring entered (shadow, canary, production).',
    ['to'],
  );
  readonly logEvents = this.#c('ringfence_decision_log_events_total', 'Decision log events written.');
  readonly logDropped = this.#c(
    'ringfence_decision_log_dropped_total',
    'Decision log events dropped because the sink could not keep up (the buffer was full).',
  );
  readonly budgetRejections = this.#fc(
    'ringfence_budget_rejections_total',
    'Requests refused because a token budget was spent.',
    ['ring'],
  );
  readonly budgetStoreFailures = this.#c(
    'ringfence_budget_store_failures_total',
    'Budget reservations the counter store (Redis) did not answer in time, by how the budgets handled the request: open (admitted, uncounted), closed (refused, 503).',
    ['mode'],
  );
  readonly budgetSettleFailures = this.#c(
    'ringfence_budget_settle_failures_total',
    'Budget settlements (usage corrections, releases) the counter store did not take in time; the reservation stands as reserved.',
  );
  readonly breakerTransitions = this.#c(
    'ringfence_breaker_transitions_total',
    'Circuit breaker state changes per target.',
    ['target', 'to'],
  );
  readonly fallbacks = this.#c(
    'ringfence_fallbacks_total',
    'Answers served by a fallback, by the target that failed and kind (target, degraded, fail).',
    ['from', 'kind'],
  );

  readonly duration = this.#fh(
    'ringfence_request_duration_seconds',
    'Whole request time through the gateway, by ring and API.',
    ['ring', 'api'],
    CALL_BUCKETS,
  );
  readonly overhead = this.#fh(
    'ringfence_gateway_overhead_seconds',
    'Time the gateway adds: the whole request time minus the upstream call, by ring.',
    ['ring'],
    FINE_BUCKETS,
  );
  readonly evaluation = this.#fh(
    'ringfence_policy_evaluation_seconds',
    'Policy evaluation time by ring (production, canary, shadow).',
    ['ring'],
    FINE_BUCKETS,
  );
  readonly upstream = this.#fh(
    'ringfence_upstream_seconds',
    'Upstream call time by provider and phase (ttfb: until response headers; total: until the body ended).',
    ['provider', 'phase'],
    CALL_BUCKETS,
  );

  readonly breakerState = this.#g(
    'ringfence_breaker_state',
    'Circuit breaker state per target: 0 closed, 1 half-open, 2 open.',
    ['target'],
  );
  readonly killSwitches = this.#g(
    'ringfence_kill_switches_active',
    'Kill switches on, by kind (target, candidate).',
    ['kind'],
  );
  readonly ringVersion = this.#g('ringfence_ring_state_version', 'Version of the ring state in force.');
  readonly candidateStage = this.#g(
    'ringfence_candidate_stage',
    'The candidate stage in force: 0 none, 1 shadow, 2 canary.',
  );
  readonly slicePercent = this.#g(
    'ringfence_canary_slice_percent',
    'Sticky share of traffic in the canary slice (0 when no canary runs).',
  );
  readonly bundleInfo = this.#g(
    'ringfence_bundle_info',
    'The bundle in each ring (production, candidate, previous = rollback target): always 1.',
    ['ring', 'bundle_id', 'name', 'version'],
  );
  readonly storeUp = this.#g(
    'ringfence_control_store_up',
    'Whether the control-plane store answers (0: serving with the last known ring state; writes refused).',
  );
  readonly replicas = this.#g(
    'ringfence_fleet_replicas',
    'Replicas whose statistics are in the fleet-wide gate view of the current stage.',
  );
  readonly propagation = this.#h(
    'ringfence_state_propagation_seconds',
    'From a ring-state change on any replica to this replica enforcing it.',
    [],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  );
  readonly overridesActive = this.#g(
    'ringfence_overrides_active',
    'Gate overrides in force (logged decisions with an expiry).',
  );
  readonly overrideExpiry = this.#g(
    'ringfence_override_expiry_timestamp_seconds',
    'When each gate override in force expires (unix seconds).',
    ['gate'],
  );

  // Children of the metrics observe() updates on every request, by label values (never reset nor removed).
  readonly #requests = new LabelCache(this.requests);
  readonly #requestErrors = new LabelCache(this.requestErrors);
  readonly #policyErrors = new LabelCache(this.policyErrors);
  readonly #budgetRejections = new LabelCache(this.budgetRejections);
  readonly #evaluations = new LabelCache(this.evaluations);
  readonly #triggers = new LabelCache(this.triggers);
  readonly #divergence = new LabelCache(this.divergence);
  readonly #tokens = new LabelCache(this.tokens);
  readonly #cost = new LabelCache(this.cost);
  readonly #duration = new LabelCache(this.duration);
  readonly #overhead = new LabelCache(this.overhead);
  readonly #evaluation = new LabelCache(this.evaluation);
  readonly #upstream = new LabelCache(this.upstream);

  constructor(pricing: Pricing) {
    this.#pricing = pricing;
    // Series that exist from the start, so rates and alerts see 0 rather than nothing.
    this.overridesActive.set(0);
    this.storeUp.set(1);
    this.replicas.set(1);
    for (const k of ['target', 'candidate']) this.killSwitches.labels(k).set(0);
    for (const t of ['manual', 'error_rate', 'guardrail_spike', 'leak_block', 'latency_sla'])
      this.rollbacks.labels(t).inc(0);
    for (const to of ['shadow', 'canary', 'production']) this.promotions.labels(to).inc(0);
    for (const ring of ['production', 'canary', 'shadow']) this.policyErrors.labels(ring).inc(0);
    for (const mode of ['open', 'closed']) this.budgetStoreFailures.labels(mode).inc(0);
    this.budgetSettleFailures.inc(0);
  }

  /** Counts one request after its response ended. */
  observe(r: RequestRecord, snap: RingSnapshot): void {
    const { ring, decision: d, timings: t } = r;
    const cls = d?.class ?? 'unclassified';
    this.#requests.get5(ring, r.input.app.appId, cls, d?.action ?? 'none', statusClass(r.status)).inc();
    this.#duration.get2(ring, r.input.api).observe(t.totalMs / 1000);
    const upstreamMs = t.upstreamTotalMs ?? t.upstreamHeadersMs;
    this.#overhead.get1(ring).observe(Math.max(0, t.totalMs - (upstreamMs ?? 0)) / 1000);
    if (r.errorCode) {
      this.#requestErrors.get2(ring, r.errorCode).inc();
      if (r.errorCode === 'policy_error') this.#policyErrors.get1(ring).inc();
      else if (r.errorCode === 'budget_exceeded') this.#budgetRejections.get1(ring).inc();
    }

    this.#evaluation.get1(ring).observe(t.evalUs / 1e6);
    if (d) {
      this.#evaluations.get3(ring, d.class, d.action).inc();
      for (const v of d.verdicts)
        if (v.verdict !== 'pass') this.#triggers.get4(ring, 'input', v.guardrail, v.verdict).inc();
    }
    for (const v of r.output?.verdicts ?? [])
      if (v.verdict !== 'pass') this.#triggers.get4(ring, 'output', v.guardrail, v.verdict).inc();

    // The candidate observing production traffic: the shadow ring. (On canary traffic the other decision is
    // production's, already counted by its own ring on the rest of the traffic.)
    if (ring === 'production' && r.shadowBundleId !== undefined) {
      if (t.candidateEvalUs !== undefined) this.#evaluation.get1('shadow').observe(t.candidateEvalUs / 1e6);
      if (r.shadowError) this.#policyErrors.get1('shadow').inc();
      const s = r.shadow;
      if (s) {
        this.#evaluations.get3('shadow', s.class, s.action).inc();
        for (const v of s.verdicts)
          if (v.verdict !== 'pass') this.#triggers.get4('shadow', 'input', v.guardrail, v.verdict).inc();
      }
      for (const v of r.shadowOutput ?? [])
        if (v.verdict !== 'pass') this.#triggers.get4('shadow', 'output', v.guardrail, v.verdict).inc();
    }
    if (r.divergence)
      for (const k of r.divergence) this.#divergence.get2(ring === 'canary' ? 'canary' : 'shadow', k).inc();

    if (t.upstreamHeadersMs !== undefined && r.target) {
      this.#upstream.get2(r.target.provider, 'ttfb').observe(t.upstreamHeadersMs / 1000);
      if (t.upstreamTotalMs !== undefined)
        this.#upstream.get2(r.target.provider, 'total').observe(t.upstreamTotalMs / 1000);
    }
    if (r.tokens && r.target && r.target.provider !== 'degraded') {
      const { provider } = r.target;
      const model = this.#pricing.modelLabel(provider, r.target.model);
      this.#tokens.get4(cls, provider, model, 'input').inc(r.tokens.input);
      this.#tokens.get4(cls, provider, model, 'output').inc(r.tokens.output);
      const usd = this.#pricing.cost(provider, r.target.model, r.tokens);
      if (usd !== undefined) this.#cost.get3(cls, provider, model).inc(usd);
    }
    if (snap.state.version !== this.#lastVersion) this.ring(snap);
  }

  #lastVersion = -1;

  /** Mirrors the ring state in force. */
  ring(snap: RingSnapshot): void {
    const s = snap.state;
    this.#lastVersion = s.version;
    this.ringVersion.set(s.version);
    const live = s.candidate && !s.killed?.candidate ? s.candidate : undefined;
    this.candidateStage.set(!live ? 0 : live.stage === 'shadow' ? 1 : 2);
    this.slicePercent.set(live?.stage === 'canary' ? (live.slice?.percent ?? 100) : 0);
    this.killSwitches.labels('target').set(s.killed?.targets.length ?? 0);
    this.killSwitches.labels('candidate').set(s.killed?.candidate ? 1 : 0);
  }

  /** The bundle in each ring, as `ringfence_bundle_info` (replaces the previous set). */
  bundles(placements: ReadonlyArray<{ ring: string; id: string; name: string; version: string }>): void {
    this.bundleInfo.reset();
    for (const p of placements) this.bundleInfo.labels(p.ring, p.id, p.name, p.version).set(1);
  }

  /** Counts promotions and rollbacks as the control plane applies them. */
  ringEvent(e: RingEvent): void {
    if (e.kind === 'promotion') this.promotions.labels(e.to).inc();
    else if (e.kind === 'rollback') this.rollbacks.labels(e.trigger).inc();
    else if (e.kind === 'store') this.storeUp.set(e.up ? 1 : 0);
    else if (e.kind === 'propagated') this.propagation.observe(e.seconds);
    else if (e.kind === 'fleet') this.replicas.set(e.replicas);
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
