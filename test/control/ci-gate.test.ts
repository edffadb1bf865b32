import { describe, expect, it } from 'vitest';
import {
  type CiGateInput,
  evaluateCiGate,
  gateStatsSchema,
  measuredFromStats,
  type OverrideSource,
} from '../../src/control/ci-gate.ts';
import type { GateOverride } from '../../src/control/override-schema.ts';
import { overrideSchema } from '../../src/control/override-schema.ts';
import type { BundleChange } from '../../src/policy/diff.ts';
import type { GateResult } from '../../src/rings/gates.ts';

const CAND = `sha256:${'c'.repeat(64)}`;
const PROD = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'e'.repeat(64)}`;
const NOW = new Date('2026-11-05T00:00:00Z');
const window = { since: '2026-11-04T00:00:00Z', until: '2026-11-05T00:00:00Z' };

const gate = (name: string, verdict: GateResult['verdict'], observed: number | null = 0.5): GateResult => ({
  name,
  observed,
  threshold: '<= 0.1',
  verdict,
  sampleSize: 900,
  window,
});

/** A valid, two-keyed, unexpired override of `gates`, bound to CAND over PROD. */
function ovr(gates: string[], patch: Partial<GateOverride> = {}): GateOverride {
  return overrideSchema.parse({
    apiVersion: 'ringfence/v1',
    kind: 'GateOverride',
    id: `ovr_${gates.join('-').replaceAll('_', '-')}`,
    changeId: 'CHG-1',
    controlBundleId: PROD,
    candidateBundleId: CAND,
    transition: 'canary_to_production',
    gates: gates.map((name) => ({
      name,
      observed: 0.5,
      threshold: '<= 0.1',
      verdict: 'fail',
      confidenceNote: '900 requests, one incident',
    })),
    rationale: 'a provider incident explains the whole delta',
    evidence: { sampleSize: 900, severityMix: { high: 0, low: 3 }, mitigation: 'fallback armed' },
    expiry: { expiresAt: '2026-11-10T00:00:00Z', reevaluateAt: '2026-11-07T00:00:00Z' },
    onExpiry: 'rollback',
    requestedBy: 'alice',
    requestedAt: '2026-11-04T09:00:00Z',
    approvedBy: 'bob',
    approvedAt: '2026-11-04T10:00:00Z',
    ...patch,
  });
}

const src = (...os: GateOverride[]): OverrideSource[] =>
  os.map((o, i) => ({ source: `o${i}.yaml`, override: o }));

function input(patch: Partial<CiGateInput> = {}): CiGateInput {
  return {
    candidate: { id: CAND, name: 'corp', version: '2', issues: [] },
    golden: { results: [{ name: 'a case', passed: true, mismatches: [] }] },
    diff: { production: { id: PROD, name: 'corp', version: '1' }, changes: [] },
    productionId: PROD,
    measured: {
      transition: 'canary_to_production',
      gates: [gate('min_samples', 'pass', 1200), gate('error_rate_delta', 'pass', 0.01)],
    },
    overrides: [],
    now: NOW,
    ...patch,
  };
}

const withGates = (...gates: GateResult[]): Partial<CiGateInput> => ({
  measured: { transition: 'canary_to_production', gates },
});
const row = (r: ReturnType<typeof evaluateCiGate>, name: string) => {
  const x = r.rows.find((y) => y.gate === name);
  if (!x) throw new Error(`no row ${name}: ${r.rows.map((y) => y.gate).join(', ')}`);
  return x;
};

const loosening: BundleChange = {
  section: 'budgets',
  op: 'changed',
  id: 'app-tokens',
  field: 'maxTokens',
  before: 1,
  after: 2,
  explanation: 'budget app-tokens: maxTokens 1 → 2 (looser)',
  loosened: true,
};

describe('evaluateCiGate: verdicts', () => {
  it('ALLOWs a valid candidate whose cases and gates all pass, with a row per gate', () => {
    const r = evaluateCiGate(input());
    expect(r.verdict).toBe('ALLOW');
    expect(r.rows.map((x) => x.gate)).toEqual([
      'bundle_valid',
      'golden_cases',
      'guardrail_loosening',
      'min_samples',
      'error_rate_delta',
    ]);
    expect(r.rows.every((x) => x.outcome === 'ALLOW')).toBe(true);
    expect(row(r, 'golden_cases')).toMatchObject({ observed: '1/1 passed', sampleSize: 1 });
  });

  it('marks what was not given as skipped without blocking', () => {
    const r = evaluateCiGate(input({ golden: undefined, diff: undefined, measured: undefined }));
    expect(r.verdict).toBe('ALLOW');
    expect(r.rows.filter((x) => x.verdict === 'skipped').map((x) => x.gate)).toEqual([
      'golden_cases',
      'guardrail_loosening',
      'measured_gates',
    ]);
  });

  it('BLOCKs an invalid bundle, and no override can bind to it', () => {
    const r = evaluateCiGate(
      input({
        candidate: { id: null, issues: ['classification.default: unknown class "x"'] },
        golden: { results: [] },
        overrides: src(ovr(['bundle_valid'])),
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'bundle_valid')).toMatchObject({ verdict: 'fail', outcome: 'BLOCK', overridable: false });
    expect(r.ignoredOverrides[0]!.reasons.join('\n')).toMatch(/candidate bundle is invalid/);
  });

  it('BLOCKs on a failing golden case even when an override names golden_cases', () => {
    const r = evaluateCiGate(
      input({
        golden: {
          results: [
            { name: 'ok', passed: true, mismatches: [] },
            { name: 'ssn is redacted', passed: false, mismatches: ['expected action redact, got allow'] },
          ],
        },
        overrides: src(ovr(['golden_cases'])),
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'golden_cases')).toMatchObject({
      observed: '1/2 passed',
      verdict: 'fail',
      outcome: 'BLOCK',
      coveredBy: null,
    });
    expect(row(r, 'golden_cases').note).toMatch(/ssn is redacted/);
    expect(r.honouredOverrides).toEqual([]);
  });

  it('BLOCKs when the case files do not load', () => {
    const r = evaluateCiGate(input({ golden: { loadIssues: ['a.yaml: [0].expect: expect needs …'] } }));
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'golden_cases').outcome).toBe('BLOCK');
  });

  it('REQUIREs an OVERRIDE for a failed or insufficient overridable gate', () => {
    for (const verdict of ['fail', 'insufficient_data'] as const) {
      const r = evaluateCiGate(
        input(withGates(gate('min_samples', 'pass'), gate('error_rate_delta', verdict))),
      );
      expect(r.verdict).toBe('REQUIRE_OVERRIDE');
      expect(row(r, 'error_rate_delta')).toMatchObject({ outcome: 'REQUIRE_OVERRIDE', coveredBy: null });
    }
  });

  it('ALLOWs a failed overridable gate covered by a valid override, naming it', () => {
    const o = ovr(['error_rate_delta']);
    const r = evaluateCiGate(input({ ...withGates(gate('error_rate_delta', 'fail')), overrides: src(o) }));
    expect(r.verdict).toBe('ALLOW');
    expect(row(r, 'error_rate_delta')).toMatchObject({ outcome: 'ALLOW', coveredBy: o.id, verdict: 'fail' });
    expect(r.honouredOverrides.map((x) => [x.id, x.covers])).toEqual([[o.id, ['error_rate_delta']]]);
    expect(r.ignoredOverrides).toEqual([]);
  });

  it('an override covering one of two failing gates leaves REQUIRE_OVERRIDE', () => {
    const r = evaluateCiGate(
      input({
        ...withGates(gate('error_rate_delta', 'fail'), gate('min_samples', 'insufficient_data')),
        overrides: src(ovr(['error_rate_delta'])),
      }),
    );
    expect(r.verdict).toBe('REQUIRE_OVERRIDE');
    expect(row(r, 'min_samples').outcome).toBe('REQUIRE_OVERRIDE');
    expect(row(r, 'error_rate_delta').outcome).toBe('ALLOW');
  });

  it('BLOCKs on a non-overridable gate even with an otherwise valid override, and says so', () => {
    const o = ovr(['candidate_policy_error_rate', 'error_rate_delta']);
    const r = evaluateCiGate(
      input({
        ...withGates(gate('candidate_policy_error_rate', 'fail'), gate('error_rate_delta', 'fail')),
        overrides: src(o),
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    const x = row(r, 'candidate_policy_error_rate');
    expect(x).toMatchObject({ outcome: 'BLOCK', overridable: false, coveredBy: null });
    expect(x.note).toMatch(/non-overridable: ovr_\S+ names it, not honoured/);
    // The override still covers the overridable gate it names.
    expect(row(r, 'error_rate_delta').coveredBy).toBe(o.id);
    expect(r.honouredOverrides[0]!.reasons.join('\n')).toMatch(
      /candidate_policy_error_rate is non-overridable/,
    );
  });

  it('an override naming only a non-overridable gate is listed as ignored, saying why', () => {
    const r = evaluateCiGate(
      input({
        ...withGates(gate('output_leak_blocks', 'fail')),
        overrides: src(ovr(['output_leak_blocks'])),
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(r.ignoredOverrides[0]!.reasons.join('\n')).toMatch(/output_leak_blocks is non-overridable/);
  });

  it('--non-overridable turns an overridable gate into a BLOCK', () => {
    const r = evaluateCiGate(
      input({
        ...withGates(gate('error_rate_delta', 'fail')),
        overrides: src(ovr(['error_rate_delta'])),
        nonOverridable: ['error_rate_delta'],
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'error_rate_delta')).toMatchObject({ outcome: 'BLOCK', coveredBy: null });
  });

  it('BLOCK wins over REQUIRE_OVERRIDE', () => {
    const r = evaluateCiGate(
      input(withGates(gate('rollback_drill', 'insufficient_data'), gate('error_rate_delta', 'fail'))),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'error_rate_delta').outcome).toBe('REQUIRE_OVERRIDE');
  });

  it('any loosening vs production REQUIREs an OVERRIDE of guardrail_loosening', () => {
    const diff = { production: { id: PROD, name: 'corp', version: '1' }, changes: [loosening] };
    const r = evaluateCiGate(input({ diff }));
    expect(r.verdict).toBe('REQUIRE_OVERRIDE');
    expect(row(r, 'guardrail_loosening')).toMatchObject({ observed: 1, outcome: 'REQUIRE_OVERRIDE' });
    expect(r.loosened).toEqual([loosening]);
    const covered = evaluateCiGate(input({ diff, overrides: src(ovr(['guardrail_loosening'])) }));
    expect(covered.verdict).toBe('ALLOW');
    expect(row(covered, 'guardrail_loosening').coveredBy).toBe('ovr_guardrail-loosening');
  });

  it('BLOCKs a gate table measured for another candidate', () => {
    const r = evaluateCiGate(
      input({
        measured: { transition: 'canary_to_production', gates: [gate('x', 'pass')], candidateId: OTHER },
      }),
    );
    expect(r.verdict).toBe('BLOCK');
    expect(row(r, 'gate_table_candidate').outcome).toBe('BLOCK');
  });

  it('no gate table at all (no candidate in the rings) is insufficient data', () => {
    const r = evaluateCiGate(input({ measured: { transition: null, gates: [], candidateId: null } }));
    expect(r.verdict).toBe('BLOCK'); // the rings hold no candidate, let alone this one
    const r2 = evaluateCiGate(input({ measured: { transition: null, gates: [] } }));
    expect(r2.verdict).toBe('REQUIRE_OVERRIDE');
    expect(row(r2, 'measured_gates').verdict).toBe('insufficient_data');
  });
});

describe('evaluateCiGate: ignored overrides', () => {
  const failing = withGates(gate('error_rate_delta', 'fail'));
  /** Evaluates with one override and returns the verdict and its ignore reasons. */
  function ignored(o: GateOverride | OverrideSource, patch: Partial<CiGateInput> = {}) {
    const overrides = 'source' in o ? [o] : src(o);
    const r = evaluateCiGate(input({ ...failing, overrides, ...patch }));
    expect(r.honouredOverrides).toEqual([]);
    expect(r.ignoredOverrides).toHaveLength(1);
    expect(row(r, 'error_rate_delta').outcome).toBe('REQUIRE_OVERRIDE');
    return { verdict: r.verdict, reasons: r.ignoredOverrides[0]!.reasons.join('\n') };
  }

  it('bound to another candidate (wrong sha256)', () => {
    const r = ignored(ovr(['error_rate_delta'], { candidateBundleId: OTHER }));
    expect(r.verdict).toBe('REQUIRE_OVERRIDE');
    expect(r.reasons).toMatch(/candidateBundleId sha256:eeee.* is not the candidate/);
  });

  it('bound to another production (controlBundleId)', () => {
    expect(ignored(ovr(['error_rate_delta'], { controlBundleId: OTHER })).reasons).toMatch(
      /controlBundleId .* is not production/,
    );
  });

  it('expired, or past its re-evaluation', () => {
    const expired = ovr(['error_rate_delta'], { expiry: { expiresAt: '2026-11-04T23:59:59Z' } });
    expect(ignored(expired).reasons).toMatch(/expired at 2026-11-04T23:59:59Z/);
    const exactlyNow = ovr(['error_rate_delta'], { expiry: { expiresAt: NOW.toISOString() } });
    expect(ignored(exactlyNow).reasons).toMatch(/expired/);
    const due = ovr(['error_rate_delta'], {
      expiry: { expiresAt: '2026-12-01T00:00:00Z', reevaluateAt: '2026-11-04T12:00:00Z' },
    });
    expect(ignored(due).reasons).toMatch(/re-evaluation was due at 2026-11-04T12:00:00Z/);
  });

  it('without a time bound CI can check', () => {
    const o = ovr(['error_rate_delta'], { expiry: { maxRequests: 5000 } });
    expect(ignored(o).reasons).toMatch(/no time bound/);
  });

  it('requested and approved by the same identity, also when only case or spaces differ', () => {
    expect(ignored(ovr(['error_rate_delta'], { approvedBy: 'alice' })).reasons).toMatch(/two keys/);
    const o = ovr(['error_rate_delta'], {
      requestedBy: 'Alice@Example.com',
      approvedBy: ' alice@example.COM ',
    });
    expect(ignored(o).reasons).toMatch(/same identity "alice@example.COM": two keys are required/);
  });

  it('approved before (or at the moment) it was requested, or in the future', () => {
    const before = ovr(['error_rate_delta'], { approvedAt: '2026-11-04T08:00:00Z' });
    expect(ignored(before).reasons).toMatch(/approvedAt 2026-11-04T08:00:00Z is not after requestedAt/);
    const same = ovr(['error_rate_delta'], { approvedAt: '2026-11-04T09:00:00Z' });
    expect(ignored(same).reasons).toMatch(/is not after requestedAt/);
    const future = ovr(['error_rate_delta'], { approvedAt: '2026-11-06T00:00:00Z' });
    expect(ignored(future).reasons).toMatch(/in the future/);
  });

  it('naming another gate than the failing one', () => {
    const r = ignored(ovr(['latency_p95_delta_ms']));
    expect(r.reasons).toMatch(/names none of the gates that need an override \(latency_p95_delta_ms\)/);
  });

  it('for the other transition', () => {
    const r = ignored(ovr(['error_rate_delta'], { transition: 'shadow_to_canary' }));
    expect(r.reasons).toMatch(
      /error_rate_delta is for canary_to_production, the override for shadow_to_canary/,
    );
  });

  it('a file that is not a GateOverride', () => {
    const r = ignored({ source: 'bad.yaml', issues: ['rationale: a rationale of at least 20 characters'] });
    expect(r.reasons).toMatch(/not a valid GateOverride: rationale/);
  });

  it('lists every reason of an override wrong in several ways', () => {
    const o = ovr(['error_rate_delta'], {
      candidateBundleId: OTHER,
      approvedBy: 'ALICE',
      expiry: { expiresAt: '2026-11-01T00:00:00Z' },
    });
    const { reasons } = ignored(o);
    expect(reasons).toMatch(/candidateBundleId/);
    expect(reasons).toMatch(/expired/);
    expect(reasons).toMatch(/two keys/);
  });
});

describe('measuredFromStats', () => {
  const table = { transition: 'canary_to_production', gates: [gate('min_samples', 'pass')] };
  it('reads a bare gate table (GET /admin/v1/rollout/gates)', () => {
    const m = measuredFromStats(gateStatsSchema.parse(table));
    expect(m.measured).toEqual({ transition: 'canary_to_production', gates: table.gates });
    expect(m.productionId).toBeUndefined();
  });
  it('reads the rollout status (GET /admin/v1/rollout) with its candidate and production ids', () => {
    const m = measuredFromStats(
      gateStatsSchema.parse({ version: 3, production: { id: PROD }, candidate: { id: CAND }, gates: table }),
    );
    expect(m).toEqual({
      measured: { transition: 'canary_to_production', gates: table.gates, candidateId: CAND },
      productionId: PROD,
    });
    const none = measuredFromStats(
      gateStatsSchema.parse({ production: { id: PROD }, candidate: null, gates: null }),
    );
    expect(none.measured).toEqual({ transition: null, gates: [], candidateId: null });
  });
  it('refuses anything else', () => {
    expect(gateStatsSchema.safeParse({ gates: [{ name: 'x' }] }).success).toBe(false);
    expect(gateStatsSchema.safeParse([]).success).toBe(false);
  });
});
