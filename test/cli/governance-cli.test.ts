/**
 * The governed control plane from the operator's terminal (issue #9): the real `ringfence` CLI against a gateway's
 * admin API. An override is requested by one identity and approved by another; canary then enters on it; the
 * override report reads the gateway's own journal.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRingfence } from '../helpers/processes.ts';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');
const OPERATOR = 'rf-cli-operator-0123456789';
const APPROVER = 'rf-cli-approver-0123456789';
const stateDir = mkdtempSync(join(tmpdir(), 'ringfence-gov-cli-'));

let stack: Stack;

async function cli(args: string[], token: string) {
  const p = spawnRingfence([...args, '--admin', stack.gw.adminUrl, '--token', token]);
  const code = await p.exited;
  return { code, out: p.stdout, err: p.stderr };
}

beforeAll(async () => {
  stack = await startStack({
    config: (url) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a: { kind: mock, baseUrl: ${url}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt] }
  b: { kind: mock, baseUrl: ${url}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt-b] }
defaults: { openai: a }
applications:
  - { id: jobs, keys: [{ id: jobs-key, env: TEST_APP_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
admin:
  tokens:
    - { id: olivia, env: T_OPERATOR, roles: [operator] }
    - { id: alex, env: T_APPROVER, roles: [approver] }
rings:
  stateDir: ${stateDir}
  gates:
    shadowToCanary: { minSamples: 1000, minDurationS: 0, maxCandidateEvalP95Us: 1000000000 }
log: { level: warn, decisions: { enabled: false } }
`,
    env: { T_OPERATOR: OPERATOR, T_APPROVER: APPROVER },
  });
  const cand = await stack.gw.rings.registerBundle(
    readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8'),
    'c',
  );
  await stack.gw.rings.shadow(cand.id, { by: 'olivia', at: new Date() });
  const client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  for (let i = 0; i < 3; i++)
    await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: `hi ${i}` }],
    });
});
afterAll(async () => {
  await stack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('override and approvals from the CLI', () => {
  it('requests an override, is refused as its own approver, approved by another; canary enters on it', async () => {
    const blocked = await cli(['rollout', 'canary', '--apps', 'jobs'], OPERATOR);
    expect(blocked.code).toBe(1);
    expect(blocked.err).toMatch(/min_samples +3 +>= 1000 +INSUFFICIENT_DATA/);

    const asked = await cli(
      [
        'override',
        'request',
        '--gate',
        'min_samples',
        '--note',
        'three samples, all identical to production',
        '--rationale',
        'the candidate only adds a keyword block that no canary app sends',
        '--sample-size',
        '3',
        '--severity',
        'high=0,low=0',
        '--mitigation',
        'error-rate trigger armed',
        '--expires-in',
        '2h',
        '--on-expiry',
        'rollback',
      ],
      OPERATOR,
    );
    expect(asked.code, asked.err).toBe(0);
    const id = /approval (apr_[0-9a-f-]+)/.exec(asked.out)?.[1];
    expect(id).toBeDefined();

    const shown = await cli(['approvals', 'show', id!], APPROVER);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain('override (risk: high)');
    expect(shown.out).toContain('gates min_samples; on expiry: rollback');
    expect(shown.out).toContain('requested by olivia');

    const own = await cli(['approvals', 'approve', id!], OPERATOR);
    expect(own.code).toBe(1);
    expect(own.err).toContain('same_identity');
    const ok = await cli(['approvals', 'approve', id!, '--reason', 'reviewed the evidence'], APPROVER);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('approved by alex');

    const list = await cli(['override', 'list'], APPROVER);
    expect(list.out).toMatch(
      /ovr_\S+ {2}min_samples {2}shadow_to_canary {2}by olivia\+alex {2}\d+ (min|h) left, on expiry: rollback/,
    );

    const canary = await cli(['rollout', 'canary', '--apps', 'jobs'], OPERATOR);
    expect(canary.code, canary.err).toBe(0);
    const cid = /approval (apr_[0-9a-f-]+)/.exec(canary.out)![1]!;
    expect((await cli(['approvals', 'approve', cid], APPROVER)).code).toBe(0);
    expect(stack.gw.rings.runtime.snapshot().state.candidate?.stage).toBe('canary');

    const report = spawnRingfence(['override', 'report', '--state-dir', stateDir, '--json']);
    expect(await report.exited).toBe(0);
    const r = JSON.parse(report.stdout) as { gates: Array<{ gate: string; count: number }> };
    expect(r.gates.find((g) => g.gate === 'min_samples')?.count).toBe(1);

    const pending = await cli(['approvals', 'list'], APPROVER);
    expect(pending.out).toContain('no pending approval requests');
  });
});
