/**
 * Two keys for high-risk control-plane actions, overrides with an expiry (issue #9), through the real admin API of
 * a gateway in this process: requester and approver are different admin tokens; the ring state only moves when a
 * different identity holding `approver` approves, before the request expires.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');
const TOKENS = {
  operator: 'rf-gov-operator-0123456789',
  approver: 'rf-gov-approver-0123456789',
  approver2: 'rf-gov-approver2-0123456789',
  both: 'rf-gov-both-0123456789',
  viewer: 'rf-gov-viewer-0123456789',
};

const config = (mockUrl: string) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a: { kind: mock, baseUrl: ${mockUrl}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt] }
  b: { kind: mock, baseUrl: ${mockUrl}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt-b] }
defaults: { openai: a }
applications:
  - { id: jobs, tags: [internal], keys: [{ id: jobs-key, env: TEST_APP_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
log: { level: warn, decisions: { destination: decisions.log } }
admin:
  tokens:
    - { id: olivia, env: T_OPERATOR, roles: [operator] }
    - { id: alex, env: T_APPROVER, roles: [approver] }
    - { id: sam, env: T_APPROVER2, roles: [approver, viewer] }
    - { id: pat, env: T_BOTH, roles: [operator, approver] }
    - { id: vic, env: T_VIEWER, roles: [viewer] }
rings:
  gates:
    shadowToCanary: { minSamples: 3, minDurationS: 0, maxCandidateEvalP95Us: 1000000000 }
    canaryToProduction: { minSamples: 100000, minDurationS: 0 }
  triggers: { checkIntervalMs: 3600000 }
governance: { approvalTtlS: 600, expiryCheckIntervalMs: 3600000 }
`;

let stack: Stack;
let client: OpenAI;

async function admin(token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${stack.gw.adminUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: test reads arbitrary JSON
  return { status: r.status, json: (await r.json()) as any };
}

const stage = () => stack.gw.rings.runtime.snapshot().state.candidate?.stage;
const traffic = async (n: number) => {
  for (let i = 0; i < n; i++)
    await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: `hello ${i}` }],
    });
};

const overrideAsk = (gates: string[], onExpiry: 'rollback' | 'block_widening', expiry: object) => ({
  gates: gates.map((name) => ({ name, confidenceNote: 'canary traffic is thin on a test machine' })),
  rationale: 'the sample is small but every request so far matched production exactly',
  evidence: {
    sampleSize: 5,
    severityMix: { high: 0, low: 0 },
    mitigation: 'auto rollback triggers stay armed',
  },
  expiry,
  onExpiry,
});

beforeAll(async () => {
  stack = await startStack({
    config,
    env: {
      T_OPERATOR: TOKENS.operator,
      T_APPROVER: TOKENS.approver,
      T_APPROVER2: TOKENS.approver2,
      T_BOTH: TOKENS.both,
      T_VIEWER: TOKENS.viewer,
    },
  });
  client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  const text = readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8');
  const reg = await admin(TOKENS.operator, 'POST', '/bundles', undefined);
  expect(reg.status).toBe(400); // no body: refused, nothing registered
  const cand = await stack.gw.rings.registerBundle(text, 'candidate.yaml');
  // Shadow is fail-safe: one key.
  const s = await admin(TOKENS.operator, 'POST', '/rollout/shadow', { bundleId: cand.id });
  expect(s.status).toBe(200);
  await traffic(3);
});
afterAll(() => stack?.close());

describe('two keys', () => {
  let id: string;

  it('entering canary is a request: 202, nothing changes, the approver sees what they approve', async () => {
    const r = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 50 });
    expect(r.status).toBe(202);
    id = r.json.approval.id;
    expect(stage()).toBe('shadow');
    const shown = (await admin(TOKENS.approver, 'GET', `/approvals/${id}`)).json;
    expect(shown).toMatchObject({
      status: 'pending',
      requestedBy: 'olivia',
      ask: { action: 'canary.enter' },
      summary: {
        risk: 'high',
        action: 'canary.enter',
        production: { name: 'rings-e2e', version: '1' },
        candidate: { name: 'rings-e2e', version: '2', stage: 'shadow' },
        slice: { apps: ['jobs'], classes: [], percent: 50 },
        gates: { transition: 'shadow_to_canary' },
      },
    });
    expect(
      shown.summary.diff.added + shown.summary.diff.changed + shown.summary.diff.removed,
    ).toBeGreaterThan(0);
    expect(shown.summary.gates.gates.map((g: { name: string }) => g.name)).toContain('min_samples');
  });

  it('refuses the wrong role and the same identity, whatever roles it holds', async () => {
    expect((await admin(TOKENS.viewer, 'POST', `/approvals/${id}/approve`, {})).json.error.code).toBe(
      'forbidden',
    );
    expect((await admin(TOKENS.operator, 'POST', `/approvals/${id}/approve`, {})).json.error.code).toBe(
      'same_identity',
    );
    // pat holds both roles: may request, never approve their own request.
    const mine = await admin(TOKENS.both, 'POST', '/rollout/promote', {});
    expect(mine.status).toBe(409); // promotion needs canary: refused at request time
    const own = await admin(TOKENS.both, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 10 });
    expect(own.status).toBe(202);
    const r = await admin(TOKENS.both, 'POST', `/approvals/${own.json.approval.id}/approve`, {});
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('same_identity');
    await admin(TOKENS.approver, 'POST', `/approvals/${own.json.approval.id}/reject`, {
      reason: 'duplicate request',
    });
    expect(stage()).toBe('shadow');
    // Read-only operations work for everyone with a role.
    expect((await admin(TOKENS.viewer, 'GET', '/approvals')).status).toBe(200);
    expect((await admin(TOKENS.viewer, 'GET', '/rollout')).status).toBe(200);
  });

  it('an expired request cannot be approved', async () => {
    const r = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 20 });
    const later = new Date(Date.now() + 601_000);
    await expect(
      stack.gw.governance.approve(r.json.approval.id, { id: 'alex', roles: ['approver'] }, undefined, later),
    ).rejects.toMatchObject({ code: 'expired' });
    expect(stage()).toBe('shadow');
    expect((await admin(TOKENS.viewer, 'GET', `/approvals/${r.json.approval.id}`)).json.status).toBe(
      'expired',
    );
  });

  it('a different approver approves: the action runs once, attributed to both keys', async () => {
    const r = await admin(TOKENS.approver, 'POST', `/approvals/${id}/approve`, { reason: 'gates pass' });
    expect(r.status).toBe(200);
    expect(stage()).toBe('canary');
    const state = stack.gw.rings.runtime.snapshot().state;
    expect(state.candidate?.slice).toEqual({ apps: ['jobs'], classes: [], percent: 50 });
    expect(state.candidate?.by).toBe('olivia+alex');
    expect((await admin(TOKENS.approver2, 'POST', `/approvals/${id}/approve`, {})).json.error.code).toBe(
      'not_pending',
    );
  });

  it('narrowing the slice is fail-safe (one key); widening is high-risk (two)', async () => {
    const narrow = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 25 });
    expect(narrow.status).toBe(200);
    expect(stack.gw.rings.runtime.snapshot().state.candidate?.slice?.percent).toBe(25);
    const widen = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: [], percent: 25 });
    expect(widen.status).toBe(202);
    expect(widen.json.approval.ask.action).toBe('canary.widen');
    // The state moved since? No: approve it, then a stale one is refused.
    const stale = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: [], percent: 90 });
    expect(
      (await admin(TOKENS.approver, 'POST', `/approvals/${widen.json.approval.id}/approve`, {})).status,
    ).toBe(200);
    const r = await admin(TOKENS.approver, 'POST', `/approvals/${stale.json.approval.id}/approve`, {});
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe('stale');
    expect(stack.gw.rings.runtime.snapshot().state.candidate?.slice?.percent).toBe(25);
  });
});

describe('overrides', () => {
  it('failed gates refuse the request at once; non-overridable gates are refused', async () => {
    const p = await admin(TOKENS.operator, 'POST', '/rollout/promote', {});
    expect(p.status).toBe(409);
    expect(p.json.error.code).toBe('gates_failed');
    expect(p.json.error.gates.map((g: { name: string }) => g.name)).toContain('min_samples');
    const bad = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(['min_samples', 'output_leak_blocks'], 'rollback', { maxRequests: 100 }),
    );
    expect(bad.status).toBe(422);
    expect(bad.json.error).toMatchObject({ code: 'not_overridable', gates: ['output_leak_blocks'] });
    const none = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(['min_samples'], 'rollback', {}),
    );
    expect(none.status).toBe(400); // an expiry is required
  });

  it('an approved override lets the promotion through, recorded with evidence and both identities', async () => {
    // No canary traffic yet: every measured gate lacks data. The override must name each one.
    const table = (await admin(TOKENS.viewer, 'GET', '/rollout/gates')).json;
    const failing = table.gates
      .filter((g: { verdict: string }) => g.verdict !== 'pass')
      .map((g: { name: string }) => g.name);
    expect(failing).toEqual([
      'min_samples',
      'error_rate_delta',
      'guardrail_trigger_rate_delta',
      'latency_p50_delta_ms',
      'latency_p95_delta_ms',
    ]);
    const partial = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(['min_samples'], 'rollback', { expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
    );
    await admin(TOKENS.approver, 'POST', `/approvals/${partial.json.approval.id}/approve`, {});
    const p0 = await admin(TOKENS.operator, 'POST', '/rollout/promote', {});
    expect(p0.json.error.code).toBe('gates_failed'); // the other gates are not covered
    const o = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(failing, 'rollback', { expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
    );
    expect(o.status).toBe(202);
    const g = await admin(TOKENS.approver, 'POST', `/approvals/${o.json.approval.id}/approve`, {});
    expect(g.status).toBe(200);
    expect(g.json.result).toMatchObject({
      kind: 'GateOverride',
      transition: 'canary_to_production',
      requestedBy: 'olivia',
      approvedBy: 'alex',
      onExpiry: 'rollback',
    });
    expect(g.json.result.gates[0]).toMatchObject({
      name: 'min_samples',
      verdict: 'insufficient_data',
      threshold: '>= 100000',
    });
    const list = (await admin(TOKENS.viewer, 'GET', '/overrides')).json;
    expect(list.active).toHaveLength(2);
    const metrics = await (await fetch(`${stack.gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ringfence_overrides_active 2$/m);
    expect(metrics).toMatch(/^ringfence_override_expiry_timestamp_seconds\{gate="min_samples"\} \d+/m);

    const candId = stack.gw.rings.runtime.snapshot().state.candidate!.bundleId;
    const p = await admin(TOKENS.operator, 'POST', '/rollout/promote', {});
    const r = await admin(TOKENS.approver2, 'POST', `/approvals/${p.json.approval.id}/approve`, {});
    expect(r.status).toBe(200);
    expect(stack.gw.rings.runtime.snapshot().state.production.bundleId).toBe(candId);
  });

  it('at expiry the gate is evaluated again and the declared action runs when the state still depends on it', async () => {
    const rings = stack.gw.rings;
    const gov = stack.gw.governance;
    const promoted = rings.runtime.snapshot().state.production.bundleId;
    // The time box of the promotion override ends: the production bundle still stands on it: roll back.
    await gov.checkExpiry(new Date(Date.now() + 3_601_000));
    expect(rings.runtime.snapshot().state.production.bundleId).not.toBe(promoted);
    expect(rings.lastRollback?.by).toBe('override-expiry');
    const recs = (await admin(TOKENS.viewer, 'GET', '/overrides')).json.records;
    // One rollback: the first override to end rolls back; the second finds the state no longer depends on it.
    expect(recs.map((r: { ended: { action: string } }) => r.ended.action).sort()).toEqual([
      'none',
      'rollback',
    ]);
    expect(gov.active()).toHaveLength(0);
  });

  it('block_widening: after a traffic cap the candidate cannot widen until its gates pass', async () => {
    const rings = stack.gw.rings;
    const text = readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8');
    const cand = await rings.registerBundle(text, 'candidate.yaml');
    await rings.shadow(cand.id, { by: 'test', at: new Date() });
    await traffic(3);
    const ask = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 10 });
    expect(
      (await admin(TOKENS.approver, 'POST', `/approvals/${ask.json.approval.id}/approve`, {})).status,
    ).toBe(200);
    const o = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(['min_samples'], 'block_widening', { maxRequests: 2 }),
    );
    expect(
      (await admin(TOKENS.approver, 'POST', `/approvals/${o.json.approval.id}/approve`, {})).status,
    ).toBe(200);
    await traffic(2); // the canary slice (apps: jobs, 10%) may or may not take these; drive the cap directly
    for (let i = 0; i < 2; i++)
      rings.runtime.snapshot().stats.record({
        ring: 'canary',
        at: Date.now(),
        requestId: `r${i}`,
        error: false,
        triggered: false,
        leakBlock: false,
        latencyMs: 1,
        candidateEvalUs: 1,
        candidatePolicyError: false,
        divergence: undefined,
      });
    await stack.gw.governance.checkExpiry();
    expect(stack.gw.governance.wideningBlocked()).toMatch(/^ovr_/);
    const widen = await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: [], percent: 50 });
    expect(widen.status).toBe(409);
    expect(widen.json.error.code).toBe('widening_blocked');
    // Narrowing stays possible (fail-safe).
    expect(
      (await admin(TOKENS.operator, 'POST', '/rollout/canary', { apps: ['jobs'], percent: 5 })).status,
    ).toBe(200);
  });
});

describe('audit trail', () => {
  it('every change is in the hash-chained trail, attributable, and verifies', async () => {
    const a = (await admin(TOKENS.viewer, 'GET', '/audit')).json;
    expect(a.ok).toBe(true);
    expect(a.firstBad).toBeNull();
    const kinds = new Set(a.records.map((r: { kind: string }) => r.kind));
    for (const k of [
      'ring.entered',
      'approval.requested',
      'promotion.decided',
      'approval.rejected',
      'approval.granted',
      'override.created',
      'override.expired',
      'rollback',
    ])
      expect(kinds, k).toContain(k);
    // Each record carries the previous one's hash.
    for (let i = 1; i < a.records.length; i++) expect(a.records[i].prev).toBe(a.records[i - 1].hash);
    const granted = a.records.find(
      (r: { kind: string; data: { action?: string } }) =>
        r.kind === 'promotion.decided' && r.data.action === 'canary.enter',
    );
    expect(granted.data).toMatchObject({ requestedBy: 'olivia', approvedBy: 'alex', outcome: 'approved' });
    // Raw bytes for `ringfence audit verify --admin`.
    const raw = await fetch(`${stack.gw.adminUrl}/admin/v1/audit?format=raw`, {
      headers: { authorization: `Bearer ${TOKENS.viewer}` },
    });
    expect(raw.headers.get('x-ringfence-audit-head')).toMatch(/^\d+:sha256:[0-9a-f]{64}$/);
    expect((await raw.text()).trim().split('\n')).toHaveLength(a.records.length);
  });

  it('a request traces to the change that put its bundle in force: same change id in decision log and audit', async () => {
    const { response } = await client.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'trace me' }] })
      .withResponse();
    const id = response.headers.get('x-request-id');
    const file = join(stack.configFile, '..', 'decisions.log');
    let ev: { changeId: string; requestId: string } | undefined;
    for (let i = 0; i < 100 && !ev; i++) {
      ev = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((e: { requestId: string }) => e.requestId === id);
      if (!ev) await new Promise((r) => setTimeout(r, 10));
    }
    expect(ev?.changeId).toBe(stack.gw.rings.runtime.snapshot().state.changeId);
    const a = (await admin(TOKENS.viewer, 'GET', '/audit')).json;
    const sameChange = a.records.filter((r: { changeId: string }) => r.changeId === ev?.changeId);
    expect(sameChange.map((r: { kind: string }) => r.kind)).toContain('ring.entered');
  });
});

describe('a bundle that marks its own gates as never overridable', () => {
  it('refuses an override of a gate the candidate names in metadata.nonOverridableGates', async () => {
    const rings = stack.gw.rings;
    await rings.rollback({ by: 'test', at: new Date() }, 'clear the stage for the next candidate');
    const text = readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8').replace(
      'metadata: { name: rings-e2e, version: "2" }',
      'metadata: { name: rings-e2e, version: "2-strict", nonOverridableGates: [min_samples] }',
    );
    const cand = await rings.registerBundle(text, 'strict.yaml');
    await rings.shadow(cand.id, { by: 'test', at: new Date() });
    const r = await admin(
      TOKENS.operator,
      'POST',
      '/overrides',
      overrideAsk(['min_samples'], 'rollback', { maxRequests: 10 }),
    );
    expect(r.status).toBe(422);
    expect(r.json.error).toMatchObject({ code: 'not_overridable', gates: ['min_samples'] });
    await rings.rollback({ by: 'test', at: new Date() }, 'done');
  });
});
