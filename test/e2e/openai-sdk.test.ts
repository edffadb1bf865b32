import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_KEY, PROVIDER_KEY, type Stack, startStack } from '../helpers/stack.ts';

let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
});
afterAll(() => stack.close());

function lastReceived() {
  const r = stack.mock.received.at(-1);
  if (!r) throw new Error('mock received nothing');
  return r;
}

describe('OpenAI SDK through ringfence', () => {
  it('chat completion: answer relayed, provider key swapped in, gateway key never forwarded', async () => {
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'hello gateway' }],
    });
    expect(res.choices[0]?.message.content).toBe('Mock reply: hello gateway');
    expect(res.usage?.total_tokens).toBeGreaterThan(0);
    const got = lastReceived();
    expect(got.path).toBe('/v1/chat/completions');
    expect(got.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(got.headers)).not.toContain(APP_KEY);
    expect(got.headers['x-request-id']).toBeTruthy();
  });

  it('forwards the request body byte for byte', async () => {
    const body = {
      model: 'mock-gpt',
      messages: [{ role: 'user' as const, content: 'exact bytes 1.0e3 "q" \u00e9' }],
      temperature: 0.25,
    };
    await client.chat.completions.create(body);
    expect(JSON.parse(lastReceived().body.toString('utf8'))).toEqual(body);
  });

  it('streams chat: deltas assemble to the provider text and the usage chunk arrives', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'stream me a fairly long answer please, in many small pieces' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Mock reply: stream me a fairly long answer please, in many small pieces');
    expect(chunks).toBeGreaterThan(5);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('tool calls come back intact, streamed and not', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'lookup_order',
          parameters: { type: 'object', properties: { query: { type: 'string' } } },
        },
      },
    ];
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'order 42' }],
      tools,
    });
    const call = res.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('lookup_order');
    expect(res.choices[0]?.finish_reason).toBe('tool_calls');

    const runner = client.chat.completions.stream({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: 'order 42' }],
      tools,
    });
    const final = await runner.finalChatCompletion();
    const sc = final.choices[0]?.message.tool_calls?.[0];
    expect(sc?.type === 'function' && JSON.parse(sc.function.arguments)).toEqual({ query: 'order 42' });
  });

  it('responses API, plain and streamed', async () => {
    const r = await client.responses.create({ model: 'mock-gpt', input: 'what is a ring?' });
    expect(r.output_text).toBe('Mock reply: what is a ring?');
    const s = client.responses.stream({ model: 'mock-gpt', input: 'stream a ring' });
    let deltas = '';
    s.on('response.output_text.delta', (e) => {
      deltas += e.delta;
    });
    const final = await s.finalResponse();
    expect(deltas).toBe('Mock reply: stream a ring');
    expect(final.output_text).toBe('Mock reply: stream a ring');
    expect(lastReceived().path).toBe('/v1/responses');
  });

  it('embeddings (base64 by default in the SDK) and models', async () => {
    const e = await client.embeddings.create({ model: 'mock-gpt', input: ['alpha', 'beta'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]?.embedding).toHaveLength(8);
    expect(e.data[0]?.embedding.every((x) => Number.isFinite(x))).toBe(true);
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toEqual(['mock-gpt', 'mock-claude']);
  });

  it('upstream 429 surfaces as RateLimitError with retry-after kept', async () => {
    const err = await client.chat.completions
      .create(
        { model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '429' } },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('7');
  });

  it('upstream 500 surfaces as InternalServerError', async () => {
    const err = await client.chat.completions
      .create(
        { model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '500' } },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(500);
  });

  it('a bad gateway key is AuthenticationError, and the provider is never called', async () => {
    const before = stack.mock.received.length;
    const bad = new OpenAI({ apiKey: 'nope', baseURL: stack.openaiBase, maxRetries: 0 });
    const err = await bad.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('unauthenticated');
    expect(stack.mock.received.length).toBe(before);
  });

  it('unicode and emoji intact byte for byte, both ways', async () => {
    const text = 'naïve café — 日本語テキスト — 👩‍👩‍👧‍👦🏳️‍🌈 — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — \u0000\u2028';
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: text }],
    });
    expect(res.choices[0]?.message.content).toBe(`Mock reply: ${text}`);
    const stream = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: text }],
      stream: true,
    });
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(`Mock reply: ${text}`);
    expect(JSON.parse(lastReceived().body.toString('utf8')).messages[0].content).toBe(text);
  });

  it('a 2 MB prompt goes through whole', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    const res = await client.chat.completions.create({
      model: 'mock-gpt',
      messages: [{ role: 'user', content: big }],
    });
    expect(res.choices[0]?.message.content).toContain('(2097152 characters)');
    expect(lastReceived().body.length).toBeGreaterThan(2 * 1024 * 1024);
  });

  it('50 concurrent requests all succeed with their own answers', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2
          ? client.chat.completions
              .create({ model: 'mock-gpt', messages: [{ role: 'user', content: `n${i}` }] })
              .then((r) => r.choices[0]?.message.content)
          : (async () => {
              const s = await client.chat.completions.create({
                model: 'mock-gpt',
                messages: [{ role: 'user', content: `n${i}` }],
                stream: true,
              });
              let t = '';
              for await (const c of s) t += c.choices[0]?.delta.content ?? '';
              return t;
            })(),
      ),
    );
    expect(results).toEqual(results.map((_, i) => `Mock reply: n${i}`));
  });

  it('echoes the caller request id, or makes one', async () => {
    const { response } = await client.chat.completions
      .create(
        { model: 'mock-gpt', messages: [{ role: 'user', content: 'id' }] },
        { headers: { 'x-request-id': 'req-abc-123' } },
      )
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe('req-abc-123');
    expect(lastReceived().headers['x-request-id']).toBe('req-abc-123');
    const { response: r2 } = await client.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'id' }] })
      .withResponse();
    expect(r2.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
