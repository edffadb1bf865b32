import { describe, expect, it } from 'vitest';
import { type RingSample, RingStats } from '../../src/control/ring-stats.ts';
import type { Decision } from '../../src/core/decision.ts';
import type { PolicyInput } from '../../src/core/policy-input.ts';
import { decidingRule, diffDecisions } from '../../src/policy/divergence.ts';
import { evaluateGates, type GateThresholds, gatesPass } from '../../src/rings/gates.ts';
import { bucketOf, inSlice } from '../../src/rings/select.ts';
import { ringStateSchema } from '../../src/rings/state.ts';
import {
  initialState,
  promote,
  rollback,
  setCanary,
  startShadow,
  TransitionError,
} from '../../src/rings/transitions.ts';
import { checkTriggers } from '../../src/rings/triggers.ts';

const P = `sha256:${'a'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const at = (s = 0) => ({ by: 'op', at: new Date(Date.UTC(2026, 10, 25, 12, 0, s)) });

function input(app: string, endUser?: string, requestId = 'r1'): PolicyInput {
  return {
    requestId,
    app: { appId: app, keyId: 'k', tags: [] },
    api: 'openai.chat',
    family: 'openai',
    model: 'm',
    messages: [],
    tools: [],
    stream: false,
    maxTokens: undefined,
    endUser,
    metadata: {},
  };
}

describe('transitions', () => {
  it('walk shadow → canary → promote → rollback, each one new state with version + 1 and a new change id', () => {
    const s0 = initialState(P, at());
    const s1 = startShadow(s0, C, at(1));
    expect(s1).toMatchObject({ version: 2, candidate: { bundleId: C, stage: 'shadow' } });
    const s2 = setCanary(s1, { apps: ['web'], classes: [], percent: 100 }, at(2));
    expect(s2.candidate).toMatchObject({ stage: 'canary', slice: { apps: ['web'] } });
    const s3 = promote(s2, at(3));
    expect(s3).toMatchObject({ version: 4, production: { bundleId: C }, previous: [{ bundleId: P }] });
    expect(s3.candidate).toBeUndefined();
    const s4 = rollback(s3, at(4));
    expect(s4).toMatchObject({ version: 5, production: { bundleId: P }, previous: [] });
    const ids = new Set([s0, s1, s2, s3, s4].map((s) => s.changeId));
    expect(ids.size).toBe(5);
    for (const s of [s0, s1, s2, s3, s4]) expect(ringStateSchema.parse(s)).toEqual(s);
    expect(Object.isFrozen(s0) || s1 !== s0).toBe(true);
  });

  it('rollback drops a candidate first, and refuses when there is nothing to go back to', () => {
    const s1 = startShadow(initialState(P, at()), C, at(1));
    const s2 = rollback(s1, at(2));
    expect(s2.candidate).toBeUndefined();
    expect(s2.production.bundleId).toBe(P);
    expect(() => rollback(s2, at(3))).toThrow(TransitionError);
  });

  it('refuses transitions that do not apply', () => {
    const s0 = initialState(P, at());
    expect(() => promote(s0, at())).toThrow(/no candidate/);
    expect(() => startShadow(s0, P, at())).toThrow(/already in production/);
    const s1 = startShadow(s0, C, at());
    expect(() => promote(s1, at())).toThrow(/only a canary/);
    expect(() => startShadow(s1, C, at())).toThrow(/already in shadow/);
  });
});

describe('canary slice selection', () => {
  it('is sticky per app + end user, and spreads users close to the asked share', () => {
    const slice = { apps: [], classes: [], percent: 25 };
    let inside = 0;
    for (let i = 0; i < 10_000; i++) {
      const a = inSlice(slice, input('web', `user-${i}`, `r${i}`), 'x');
      const b = inSlice(slice, input('web', `user-${i}`, `other-${i}`), 'x');
      expect(b).toBe(a);
      if (a) inside++;
    }
    expect(inside / 10_000).toBeGreaterThan(0.23);
    expect(inside / 10_000).toBeLessThan(0.27);
  });

  it('falls back to the request id without an end user; buckets are 0–9,999', () => {
    const b = bucketOf(input('web', undefined, 'req-42'));
    expect(b).toBeGreaterThanOrEqual(0);
    expect(b).toBeLessThan(10_000);
    expect(bucketOf(input('web', undefined, 'req-42'))).toBe(b);
  });

  it('combines apps, classes (production class) and percent: every listed dimension must hold', () => {
    const slice = { apps: ['web'], classes: ['external'], percent: 100 };
    expect(inSlice(slice, input('web'), 'external')).toBe(true);
    expect(inSlice(slice, input('web'), 'internal')).toBe(false);
    expect(inSlice(slice, input('jobs'), 'external')).toBe(false);
    expect(inSlice({ apps: [], classes: [], percent: 0 }, input('web'), 'x')).toBe(false);
  });
});

const T: GateThresholds = {
  shadowToCanary: {
    maxCandidatePolicyErrorRate: 0.01,
    ackMinGroupCount: 2,
    maxCandidateEvalP95Us: 500,
    minSamples: 10,
    minDurationS: 0,
  },
  canaryToProduction: {
    maxErrorRateDelta: 0.05,
    maxTriggerRateDelta: 0.2,
    maxLatencyP50DeltaMs: 50,
    maxLatencyP95DeltaMs: 100,
    minSamples: 10,
    minDurationS: 0,
  },
};

function sample(p: Partial<RingSample> = {}): RingSample {
  return {
    ring: 'production',
    at: Date.now(),
    requestId: 'r',
    error: false,
    triggered: false,
    leakBlock: false,
    latencyMs: 10,
    candidateEvalUs: 20,
    candidatePolicyError: false,
    divergence: undefined,
    ...p,
  };
}

describe('gates', () => {
  const shadow = startShadow(initialState(P, at()), C, at(1));
  it('insufficient data is never a pass', () => {
    const stats = new RingStats('e', Date.now());
    for (let i = 0; i < 3; i++) stats.record(sample());
    const r = evaluateGates(shadow, stats, T, Date.now())!;
    expect(r.transition).toBe('shadow_to_canary');
    expect(r.gates.find((g) => g.name === 'min_samples')).toMatchObject({
      verdict: 'insufficient_data',
      observed: 3,
    });
    expect(gatesPass(r.gates)).toBe(false);
  });

  it('pass with enough clean data; an unacknowledged divergence group above the threshold fails until acked', () => {
    const stats = new RingStats('e', Date.now());
    for (let i = 0; i < 20; i++) stats.record(sample());
    expect(gatesPass(evaluateGates(shadow, stats, T, Date.now())!.gates)).toBe(true);
    stats.record(sample({ divergence: { kinds: ['route'], prodRule: 'a', candRule: 'b' } }));
    expect(gatesPass(evaluateGates(shadow, stats, T, Date.now())!.gates)).toBe(true); // one request: below ackMinGroupCount
    stats.record(sample({ divergence: { kinds: ['route'], prodRule: 'a', candRule: 'b' } }));
    const failing = evaluateGates(shadow, stats, T, Date.now())!.gates;
    expect(failing.find((g) => g.name === 'unacknowledged_divergence_groups')).toMatchObject({
      verdict: 'fail',
      observed: 1,
    });
    stats.groups.get('a → b')!.ack = { by: 'op', reason: 'intended', at: '' };
    expect(gatesPass(evaluateGates(shadow, stats, T, Date.now())!.gates)).toBe(true);
  });

  it('candidate policy errors and slow candidate evaluation fail the shadow gates', () => {
    const stats = new RingStats('e', Date.now());
    for (let i = 0; i < 20; i++) stats.record(sample({ candidatePolicyError: i < 2, candidateEvalUs: 900 }));
    const g = evaluateGates(shadow, stats, T, Date.now())!.gates;
    expect(g.find((x) => x.name === 'candidate_policy_error_rate')).toMatchObject({
      verdict: 'fail',
      observed: 0.1,
    });
    expect(g.find((x) => x.name === 'candidate_eval_p95_us')).toMatchObject({ verdict: 'fail' });
  });

  it('canary gates compare canary with production traffic', () => {
    const canary = setCanary(shadow, { apps: [], classes: [], percent: 10 }, at(2));
    const stats = new RingStats('e', Date.now());
    for (let i = 0; i < 20; i++) stats.record(sample());
    for (let i = 0; i < 20; i++) stats.record(sample({ ring: 'canary', error: i < 4 }));
    const g = evaluateGates(canary, stats, T, Date.now())!;
    expect(g.transition).toBe('canary_to_production');
    expect(g.gates.find((x) => x.name === 'error_rate_delta')).toMatchObject({
      verdict: 'fail',
      observed: 0.2,
    });
  });
});

describe('rollback triggers', () => {
  const th = {
    errorRateFactor: 2,
    minErrorRate: 0.2,
    windowS: 60,
    minSamples: 5,
    triggerSpikeFactor: 3,
    latencyP95SlaMs: 1000,
    leakBlock: true,
  };
  it('fires on a canary error rate above k × production, with the figures', () => {
    const stats = new RingStats('e', Date.now() - 1000);
    for (let i = 0; i < 10; i++) stats.record(sample());
    for (let i = 0; i < 10; i++) stats.record(sample({ ring: 'canary', error: i < 5 }));
    const f = checkTriggers(stats, th, Date.now())!;
    expect(f.trigger).toBe('error_rate');
    expect(f.figures.canaryErrorRate).toBe(0.5);
  });
  it('fires at once on a leak block in canary traffic; stays quiet on healthy traffic', () => {
    const stats = new RingStats('e', Date.now() - 1000);
    for (let i = 0; i < 10; i++) stats.record(sample({ ring: 'canary' }));
    expect(checkTriggers(stats, th, Date.now())).toBeUndefined();
    stats.record(sample({ ring: 'canary', leakBlock: true }));
    expect(checkTriggers(stats, th, Date.now())?.trigger).toBe('leak_block');
  });
  it('needs a minimum of canary samples before a rate counts', () => {
    const stats = new RingStats('e', Date.now() - 1000);
    for (let i = 0; i < 3; i++) stats.record(sample({ ring: 'canary', error: true }));
    expect(checkTriggers(stats, th, Date.now())).toBeUndefined();
  });
});

describe('divergence', () => {
  const base: Decision = {
    bundleId: P,
    action: 'allow',
    class: 'internal',
    confidence: 1,
    matchedRules: ['internal-rule'],
    route: { provider: undefined, model: 'm', rule: undefined },
    verdicts: [{ stage: 'input', guardrail: 'pii', detector: 'pii', verdict: 'pass', spans: 0, kinds: [] }],
    tools: [],
    budgets: [],
    deny: undefined,
    contentLogging: 'none',
  };
  it('is empty for agreeing decisions, names each kind that differs', () => {
    expect(diffDecisions(base, { ...base, bundleId: C })).toEqual([]);
    const other: Decision = {
      ...base,
      action: 'deny',
      class: 'external',
      route: { provider: 'b', model: 'm2', rule: 'r' },
      verdicts: [
        {
          stage: 'input',
          guardrail: 'pii2',
          detector: 'pii',
          verdict: 'block',
          spans: 1,
          kinds: ['pii.email'],
        },
      ],
      deny: { rule: 'pii2', message: 'x' },
    };
    expect(diffDecisions(base, other)).toEqual(['action', 'class', 'route', 'input_verdicts']);
    expect(decidingRule(other)).toBe('pii2');
    expect(decidingRule(base)).toBe('internal-rule');
  });
});
