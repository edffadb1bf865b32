import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_KEY, type Stack, stackConfig, startStack } from '../helpers/stack.ts';

let stack: Stack;
let client: OpenAI;
const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  process.on('warning', onWarning);
});
afterAll(async () => {
  process.off('warning', onWarning);
  await stack.close();
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const chatBody = (content: string, stream = true) =>
  JSON.stringify({ model: 'mock-gpt', stream, messages: [{ role: 'user', content }] });

function pool() {
  const t = stack.gw.upstreams.targets.find((x) => x.family === 'openai')!;
  return t.pool;
}

describe('streaming through the gateway', () => {
  it('chunks arrive as the provider sends them, not buffered to the end', async () => {
    const started = Date.now();
    const res = await request(`${stack.openaiBase}/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${APP_KEY}`,
        'content-type': 'application/json',
        'x-mock-chunks': '10',
        'x-mock-chunk-delay-ms': '100',
      },
      body: chatBody('a slow stream of ten chunks'),
    });
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    const firstAt = Date.now() - started;
    expect(first.value.toString()).toContain('chat.completion.chunk');
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += r.value.toString();
    const total = Date.now() - started;
    expect(rest).toContain('data: [DONE]');
    // The stream lasts ≥1 s at the provider; the first chunk must come long before the end.
    expect(total).toBeGreaterThanOrEqual(900);
    expect(firstAt).toBeLessThan(total - 600);
  });

  it('a client abort mid-stream aborts the upstream call, and the next request is healthy', async () => {
    const abortedBefore = stack.mock.stats.streamsAborted;
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'mock-gpt', messages: [{ role: 'user', content: 'abort me soon please' }], stream: true },
      { signal: ac.signal, headers: { 'x-mock-chunks': '40', 'x-mock-chunk-delay-ms': '50' } },
    );
    let seen = 0;
    // The SDK ends the iteration quietly on abort; what matters is that it ended early and upstream saw it.
    await (async () => {
      for await (const _ of stream) if (++seen === 2) ac.abort();
    })().catch(() => undefined);
    expect(seen).toBeLessThan(10);
    await until(() => stack.mock.stats.streamsAborted > abortedBefore);
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'ok?' }],
    });
    expect(res.choices[0]?.message.content).toBe('Mock reply: ok?');
  });

  it('back-pressure: a client that stops reading stalls the provider instead of filling memory', async () => {
    const size = 48 * 1024 * 1024;
    const completedBefore = stack.mock.stats.streamsCompleted;
    const res = await request(`${stack.openaiBase}/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${APP_KEY}`,
        'content-type': 'application/json',
        'x-mock-reply-bytes': String(size),
        'x-mock-chunks': '3000',
      },
      body: chatBody('big'),
    });
    // Read nothing for a while: the provider must be blocked on its socket, not done.
    await new Promise((r) => setTimeout(r, 800));
    expect(stack.mock.stats.streamsCompleted).toBe(completedBefore);
    expect(stack.mock.stats.openStreams).toBeGreaterThan(0);
    let bytes = 0;
    for await (const chunk of res.body) bytes += (chunk as Buffer).length;
    expect(bytes).toBeGreaterThan(size);
    await until(() => stack.mock.stats.streamsCompleted > completedBefore);
  });

  it('1,000 aborted streams leak nothing: no open upstream streams, no pending requests, no listener warnings', async () => {
    const dispatcher = new Agent({ connections: 64 });
    const abortOne = async (i: number) => {
      const ac = new AbortController();
      try {
        const res = await request(`${stack.openaiBase}/chat/completions`, {
          method: 'POST',
          dispatcher,
          signal: ac.signal,
          headers: {
            authorization: `Bearer ${APP_KEY}`,
            'content-type': 'application/json',
            'x-mock-chunks': '20',
            'x-mock-chunk-delay-ms': '20',
          },
          body: chatBody(`abort ${i}`),
        });
        for await (const _ of res.body) {
          ac.abort();
        }
      } catch {
        // the abort itself
      }
    };
    const abortedBefore = stack.mock.stats.streamsAborted;
    const n = 1000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < n) await abortOne(next++);
      }),
    );
    await dispatcher.close();
    await until(() => stack.mock.stats.openStreams === 0, 10_000);
    expect(stack.mock.stats.streamsAborted - abortedBefore).toBeGreaterThanOrEqual(n * 0.95);
    await until(() => pool().stats.running === 0 && pool().stats.pending === 0, 5000);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'still fine' }],
    });
    expect(res.choices[0]?.message.content).toBe('Mock reply: still fine');
  }, 60_000);
});

describe('upstream failures', () => {
  let fast: Stack;
  beforeAll(async () => {
    fast = await startStack({
      config: (url) =>
        stackConfig(url).replace(
          'timeouts: { connectMs: 2000, headersMs: 3000, bodyMs: 3000 }',
          'timeouts: { connectMs: 500, headersMs: 300, bodyMs: 300 }',
        ),
    });
  });
  afterAll(() => fast.close());

  const post = (base: string, headers: Record<string, string> = {}, stream = false) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...headers },
      body: chatBody('x', stream),
    });

  it('a provider that does not answer in time gives 504 upstream_timeout', async () => {
    const res = await post(fast.gw.dataUrl, { 'x-mock-delay-ms': '1000' });
    expect(res.status).toBe(504);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ code: 'upstream_timeout', type: 'server_error' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('a provider that drops the connection before answering gives 502 upstream_unreachable', async () => {
    const res = await post(fast.gw.dataUrl, { 'x-mock-drop': 'connect' });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_unreachable');
  });

  it('a stream that dies midway ends with an in-protocol error the SDK raises; the gateway keeps serving', async () => {
    const c = new OpenAI({ apiKey: APP_KEY, baseURL: `${fast.gw.dataUrl}/v1`, maxRetries: 0 });
    const s = await c.chat.completions.create(
      {
        model: 'mock-gpt',
        messages: [{ role: 'user', content: 'this stream will break in the middle' }],
        stream: true,
      },
      { headers: { 'x-mock-drop': 'mid-stream', 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '10' } },
    );
    let text = '';
    const err = await (async () => {
      for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toContain('unreachable');
    expect(text.length).toBeGreaterThan(0);
    expect((await post(fast.gw.dataUrl)).status).toBe(200);
    expect(fast.logs.text).toContain('upstream stream failed midway');
  });

  it('a provider whose port refuses connections gives 502 in the Anthropic shape on /v1/messages', async () => {
    const refused = await startStack({ config: () => stackConfig('http://127.0.0.1:1') });
    try {
      const res = await fetch(`${refused.gw.dataUrl}/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': APP_KEY,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          model: 'mock-claude',
          max_tokens: 5,
          messages: [{ role: 'user', content: 'x' }],
        }),
      });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: Record<string, unknown> };
      expect(body).toMatchObject({
        type: 'error',
        error: { type: 'api_error', code: 'upstream_unreachable' },
      });
      expect(String(body.error.message)).toContain('ECONNREFUSED');
    } finally {
      await refused.close();
    }
  });
});
