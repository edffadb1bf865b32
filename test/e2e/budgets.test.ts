import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

const BUNDLE = join(import.meta.dirname, '..', 'fixtures', 'bundles', 'budgets.yaml');
const stateDir = mkdtempSync(join(tmpdir(), 'ringfence-budgets-'));
const config = (url: string) => `
listeners: { data: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: 0 } }
providers:
  mock: { kind: mock, baseUrl: ${url}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt] }
applications:
  - { id: app, keys: [{ id: k, env: TEST_APP_KEY }] }
policy: { bundle: ${BUNDLE} }
rings: { stateDir: ${stateDir} }
`;

let stack: Stack;
const client = () => new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
const ask = (user: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) =>
  client().chat.completions.create({
    model: 'mock-gpt',
    user,
    messages: [{ role: 'user', content: 'count me in' }],
    ...extra,
  });

beforeAll(async () => {
  stack = await startStack({ config });
});
afterAll(() => stack.close());

describe('token budgets', () => {
  it('an end-user budget admits requests until its provider-counted usage reaches the limit, then 429 with retry-after', async () => {
    const first = await ask('alice');
    const cost = first.usage!.total_tokens;
    expect(cost).toBeGreaterThan(0);
    // Admitted while used < 100: exactly ceil(100 / cost) requests, counted from the provider's usage.
    const admitted = Math.ceil(100 / cost);
    for (let i = 1; i < admitted; i++) await ask('alice');
    const err = await ask('alice').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('budget_exceeded');
    expect(String(e.message)).toContain('per-user');
    expect(Number(e.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another end user of the same app has a budget of their own.
    expect((await ask('bob')).choices[0]?.message.content).toBe('Mock reply: count me in');
  });

  it('a request asking for more than the per-request cap is refused with 429', async () => {
    const err = await ask('carol', { max_tokens: 501 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(String((err as Error).message)).toContain('per-request cap of 500');
    expect((await ask('carol', { max_tokens: 500 })).choices[0]?.message.content).toBeTruthy();
  });

  it('spent budgets survive a restart', async () => {
    await stack.gw.shutdown(1000);
    await stack.mock.close();
    stack = await startStack({ config });
    const err = await ask('alice').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((await ask('dave')).choices[0]?.message.content).toBe('Mock reply: count me in');
  });
});
