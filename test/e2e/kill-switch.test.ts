import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import { PROVIDER_KEY, type Stack, startStack } from '../helpers/stack.ts';

const OPERATOR = 'adm-operator-token-1';
const VIEWER = 'adm-viewer-token-1';
const stateDir = mkdtempSync(join(tmpdir(), 'ringfence-kill-'));
let backup: MockProvider;
let stack: Stack;

const config = (url: string) => `
listeners: { data: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: 0 } }
providers:
  main: { kind: openai, baseUrl: ${url}/v1, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt] }
  backup: { kind: openai, baseUrl: ${backup.url}/v1, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt-backup] }
fallbacks:
  - { target: main, then: [ { provider: backup, model: mock-gpt-backup } ] }
applications:
  - { id: app, keys: [{ id: k, env: TEST_APP_KEY }] }
admin:
  tokens:
    - { id: oncall, env: T_OPERATOR, roles: [sre] }
    - { id: watcher, env: T_VIEWER, roles: [viewer] }
rings: { stateDir: ${stateDir} }
`;

async function admin(path: string, body?: unknown, token = OPERATOR) {
  const res = await fetch(`${stack.gw.adminUrl}/admin/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const env = { T_OPERATOR: OPERATOR, T_VIEWER: VIEWER };
const client = () =>
  new OpenAI({ apiKey: 'rf-test-app-key-0123456789', baseURL: stack.openaiBase, maxRetries: 0 });
const ask = () =>
  client().chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello' }] });

beforeAll(async () => {
  backup = await startMockProvider({ expectKey: PROVIDER_KEY });
  stack = await startStack({ config, env });
});
afterAll(async () => {
  await stack.close();
  await backup.close();
});

describe('kill switches', () => {
  it('kill target moves traffic to the fallback at once; restore brings it back; both audited with who and why', async () => {
    expect((await ask()).model).toBe('mock-gpt');
    const k = await admin('/kill', { target: 'main', reason: 'provider incident INC-42' });
    expect(k.status).toBe(200);
    const before = stack.mock.received.length;
    const r = await ask();
    expect(r.model).toBe('mock-gpt-backup');
    expect(stack.mock.received.length).toBe(before);
    const status = await admin('/rollout');
    expect(status.json.killed).toMatchObject({
      targets: [{ target: 'main', by: 'oncall', reason: 'provider incident INC-42' }],
    });
    const metrics = await (await fetch(`${stack.gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ringfence_kill_switches_active\{kind="target"\} 1/);
    expect(metrics).toMatch(/ringfence_fallbacks_total\{from="main\/mock-gpt",kind="target"\} [1-9]/);
    expect(metrics).toMatch(
      /ringfence_requests_total\{ring="production",app="[^"]+",class="[^"]+",action="allow",status="2xx"\} [1-9]/,
    );
    expect((await admin('/restore', { target: 'main', reason: 'resolved' })).status).toBe(200);
    expect((await ask()).model).toBe('mock-gpt');
  });

  it('a viewer cannot kill; no token is 401; a reason is required', async () => {
    expect((await admin('/kill', { target: 'main', reason: 'nope nope' }, VIEWER)).status).toBe(403);
    expect((await admin('/kill', { target: 'main', reason: 'x' }, 'wrong')).status).toBe(401);
    expect((await admin('/kill', { target: 'main' })).status).toBe(400);
  });

  it('kill and restore under concurrent load lose no accepted request', async () => {
    let stop = false;
    const results: string[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) results.push((await ask()).model);
    });
    for (let i = 0; i < 5; i++) {
      await admin('/kill', { target: 'main', reason: `flip ${i}` });
      await new Promise((r) => setTimeout(r, 20));
      await admin('/restore', { target: 'main', reason: `flip ${i}` });
      await new Promise((r) => setTimeout(r, 20));
    }
    stop = true;
    await Promise.all(load);
    expect(results.length).toBeGreaterThan(20);
    expect(new Set(results)).toEqual(new Set(['mock-gpt', 'mock-gpt-backup']));
  });

  it('a drill flips, verifies the fallback served, restores and records the result', async () => {
    const d = await admin('/drill', { target: 'main' });
    expect(d.status).toBe(200);
    expect(d.json).toMatchObject({ target: 'main', passed: true, by: 'oncall' });
    expect((d.json.steps as { killed: { servedBy: string } }).killed.servedBy).toBe('backup/mock-gpt-backup');
    const list = await admin('/drills');
    expect((list.json.drills as unknown[]).length).toBeGreaterThanOrEqual(1);
    expect((await admin('/rollout')).json.killed).toMatchObject({ targets: [] });
  });

  it('a kill switch survives a restart of the gateway', async () => {
    await admin('/kill', { target: 'main', reason: 'survive restart' });
    await stack.gw.shutdown(1000);
    await stack.mock.close();
    stack = await startStack({ config, env });
    const status = await admin('/rollout');
    expect(status.json.killed).toMatchObject({ targets: [{ target: 'main', reason: 'survive restart' }] });
    expect((await ask()).model).toBe('mock-gpt-backup');
    await admin('/restore', { target: 'main', reason: 'done' });
    expect((await ask()).model).toBe('mock-gpt');
  });
});
