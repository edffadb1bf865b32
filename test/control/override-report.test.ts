import { describe, expect, it } from 'vitest';
import {
  DEPRECATION_CHOICES,
  formatOverrideReport,
  overrideReport,
  weekOf,
} from '../../src/control/override-report.ts';
import { type GateOverride, overrideSchema } from '../../src/control/override-schema.ts';

const NOW = new Date('2026-11-30T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();
let seq = 0;

/** An override of `gates` approved `ago` days before NOW. */
function ovr(
  gates: string[],
  ago: number,
  who: [string, string] = ['alice', 'bob'],
  id?: string,
): GateOverride {
  const approvedAt = daysAgo(ago);
  return overrideSchema.parse({
    apiVersion: 'ringfence/v1',
    kind: 'GateOverride',
    id: id ?? `ovr_${++seq}`,
    changeId: 'CHG-1',
    controlBundleId: `sha256:${'a'.repeat(64)}`,
    candidateBundleId: `sha256:${'c'.repeat(64)}`,
    transition: 'canary_to_production',
    gates: gates.map((name) => ({
      name,
      observed: 1,
      threshold: '<= 0',
      verdict: 'fail',
      confidenceNote: 'n = 10',
    })),
    rationale: 'twenty characters at the very least',
    evidence: { sampleSize: 10, severityMix: {}, mitigation: 'none' },
    expiry: { expiresAt: NOW.toISOString() },
    onExpiry: 'block_widening',
    requestedBy: who[0],
    requestedAt: new Date(Date.parse(approvedAt) - 3_600_000).toISOString(),
    approvedBy: who[1],
    approvedAt,
  });
}

describe('overrideReport', () => {
  it('flags a gate overridden 3 times in the last 30 days as effectively deprecated, with both choices', () => {
    const r = overrideReport(
      [ovr(['error_rate_delta'], 1), ovr(['error_rate_delta'], 10), ovr(['error_rate_delta'], 29)],
      NOW,
    );
    expect(r.deprecated).toHaveLength(1);
    expect(r.deprecated[0]).toMatchObject({
      gate: 'error_rate_delta',
      count: 3,
      choices: DEPRECATION_CHOICES,
    });
    expect(r.gates[0]).toMatchObject({ gate: 'error_rate_delta', count: 3, last30Days: 3, deprecated: true });
    const text = formatOverrideReport(r);
    expect(text).toMatch(
      /error_rate_delta is effectively deprecated: overridden 3 times in the last 30 days/,
    );
    expect(text).toMatch(/1\. tighten execution so the gate passes/);
    expect(text).toMatch(/2\. change the policy or the threshold/);
  });

  it('does not flag a gate overridden twice', () => {
    const r = overrideReport([ovr(['latency_p95_delta_ms'], 2), ovr(['latency_p95_delta_ms'], 3)], NOW);
    expect(r.deprecated).toEqual([]);
    expect(r.gates[0]).toMatchObject({ gate: 'latency_p95_delta_ms', count: 2, deprecated: false });
    expect(formatOverrideReport(r)).not.toMatch(/deprecated/);
  });

  it('does not count overrides older than 30 days towards the flag', () => {
    const r = overrideReport(
      [ovr(['min_samples'], 5), ovr(['min_samples'], 20), ovr(['min_samples'], 31), ovr(['min_samples'], 45)],
      NOW,
      60,
    );
    expect(r.deprecated).toEqual([]);
    expect(r.gates[0]).toMatchObject({ gate: 'min_samples', count: 4, last30Days: 2, deprecated: false });
    // …nor in a 30-day report at all.
    expect(overrideReport([ovr(['min_samples'], 31)], NOW).gates).toEqual([]);
  });

  it('counts per gate per week, with the last use and who asked and approved', () => {
    const r = overrideReport(
      [
        ovr(['error_rate_delta', 'min_samples'], 1, ['carol', 'dave']),
        ovr(['error_rate_delta'], 2, ['alice', 'bob']),
        ovr(['error_rate_delta'], 9, ['alice', 'dave']),
      ],
      NOW,
    );
    const e = r.gates.find((g) => g.gate === 'error_rate_delta')!;
    // NOW is Monday 2026-11-30: 1 and 2 days ago fall in the week of 11-23, 9 days ago in the week of 11-16.
    expect(e.weeks).toEqual([
      { week: '2026-11-16', count: 1 },
      { week: '2026-11-23', count: 2 },
    ]);
    expect(e.lastUsed).toBe(daysAgo(1));
    expect(e.requestedBy).toEqual(['carol', 'alice']);
    expect(e.approvedBy).toEqual(['dave', 'bob']);
    expect(r.gates.map((g) => [g.gate, g.count])).toEqual([
      ['error_rate_delta', 3],
      ['min_samples', 1],
    ]);
    expect(r.total).toBe(3);
  });

  it('counts an override recorded twice once, and nothing approved after now', () => {
    const a = ovr(['error_rate_delta'], 1, undefined, 'ovr_same');
    const r = overrideReport([a, a, { ...a }, ovr(['error_rate_delta'], -1)], NOW);
    expect(r.duplicates).toBe(2);
    expect(r.gates[0]!.count).toBe(1);
  });

  it('weekOf gives the Monday (UTC)', () => {
    expect(weekOf(Date.parse('2026-11-30T00:00:00Z'))).toBe('2026-11-30');
    expect(weekOf(Date.parse('2026-11-29T23:59:59Z'))).toBe('2026-11-23');
    expect(weekOf(Date.parse('2026-11-25T10:00:00Z'))).toBe('2026-11-23');
  });
});
