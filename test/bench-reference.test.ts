import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchMock, REPLY_TEXT, startBenchMock } from '../bench/mock-provider.ts';
import { type ReferenceProxy, startReferenceProxy } from '../bench/reference-proxy.ts';
import { type MockProvider, startMockProvider } from '../src/providers/mock/server.ts';

// The reference proxy is the bench's floor for ringfence: it is a fair floor only if it is a correct proxy.
// These are the SDK passthrough checks of test/e2e/openai-sdk.test.ts, pointed at the reference proxy.

let mock: MockProvider;
let proxy: ReferenceProxy;
let client: OpenAI;

beforeAll(async () => {
  mock = await startMockProvider({ expectKey: 'sk-provider' });
  proxy = await startReferenceProxy({ upstream: mock.url });
  client = new OpenAI({ apiKey: 'sk-provider', baseURL: `${proxy.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await proxy.close();
  await mock.close();
});

describe('reference proxy in front of the src mock provider, OpenAI SDK', () => {
  it('chat non-stream: the text is the provider text, and the body is forwarded byte for byte', async () => {
    const body = {
      model: 'mock-gpt',
      messages: [{ role: 'user' as const, content: 'exact bytes 1.0e3 "q" \u00e9' }],
      temperature: 0.25,
    };
    const res = await client.chat.completions.create(body);
    expect(res.choices[0]?.message.content).toBe('Mock reply: exact bytes 1.0e3 "q" \u00e9');
    const got = mock.received.at(-1)!;
    expect(got.path).toBe('/v1/chat/completions');
    expect(got.body.toString('utf8')).toBe(JSON.stringify(body));
  });

  it('chat stream: the deltas assemble to the same text as the non-stream answer', async () => {
    const content = 'stream me a fairly long answer please, in many small pieces';
    const whole = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content }],
    });
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content }],
      stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(text).toBe(`Mock reply: ${content}`);
  });

  it('relays provider errors with their status and headers', async () => {
    const err = await client.chat.completions
      .create(
        { model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-mock-status': '429' } },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('7');
  });

  it('answers 400 to a body that is not JSON, without calling the provider', async () => {
    const before = mock.received.length;
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(mock.received.length).toBe(before);
  });
});

describe('bench mock behind the reference proxy, OpenAI SDK', () => {
  let bench: BenchMock;
  let benchProxy: ReferenceProxy;
  let c: OpenAI;
  beforeAll(async () => {
    bench = await startBenchMock();
    benchProxy = await startReferenceProxy({ upstream: bench.url });
    c = new OpenAI({ apiKey: 'unused', baseURL: `${benchProxy.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await benchProxy.close();
    await bench.close();
  });

  it('answers the same precomputed text streamed (50 chunks) and not', async () => {
    const messages = [{ role: 'user' as const, content: 'x'.repeat(2048) }];
    const whole = await c.chat.completions.create({ model: 'mock-gpt', messages });
    expect(whole.choices[0]?.message.content).toBe(REPLY_TEXT);
    const stream = await c.chat.completions.create({ model: 'mock-gpt', messages, stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunks).toBe(50);
    expect(text).toBe(REPLY_TEXT);
  });
});
