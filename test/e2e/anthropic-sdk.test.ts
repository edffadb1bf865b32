import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_KEY, PROVIDER_KEY, type Stack, startStack } from '../helpers/stack.ts';

let stack: Stack;
let client: Anthropic;

beforeAll(async () => {
  stack = await startStack();
  client = new Anthropic({ apiKey: APP_KEY, baseURL: stack.anthropicBase, maxRetries: 0 });
});
afterAll(() => stack.close());

const last = () => stack.mock.received.at(-1)!;

describe('Anthropic SDK through ringfence', () => {
  it('messages.create: answer relayed, x-api-key swapped, anthropic-version passed through', async () => {
    const msg = await client.messages.create({
      model: 'mock-claude',
      max_tokens: 100,
      system: 'be brief',
      messages: [{ role: 'user', content: 'hello claude' }],
    });
    expect(msg.content[0]?.type === 'text' && msg.content[0].text).toBe('Mock reply: hello claude');
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    const got = last();
    expect(got.path).toBe('/v1/messages');
    expect(got.headers['x-api-key']).toBe(PROVIDER_KEY);
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers['anthropic-version']).toBeTruthy();
  });

  it('messages.stream(...).finalMessage() assembles the streamed text', async () => {
    const stream = client.messages.stream({
      model: 'mock-claude',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'stream this one out to me in many pieces' }],
    });
    let deltas = 0;
    stream.on('text', () => {
      deltas++;
    });
    const final = await stream.finalMessage();
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe(
      'Mock reply: stream this one out to me in many pieces',
    );
    expect(deltas).toBeGreaterThan(3);
    expect(final.stop_reason).toBe('end_turn');
  });

  it('tool use, streamed and not', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_weather',
        description: 'weather',
        input_schema: { type: 'object', properties: { query: { type: 'string' } } },
      },
    ];
    const msg = await client.messages.create({
      model: 'mock-claude',
      max_tokens: 100,
      tools,
      messages: [{ role: 'user', content: 'Paris' }],
    });
    const block = msg.content[0];
    expect(block?.type === 'tool_use' && block.name).toBe('get_weather');
    const final = await client.messages
      .stream({
        model: 'mock-claude',
        max_tokens: 100,
        tools,
        messages: [{ role: 'user', content: 'Paris' }],
      })
      .finalMessage();
    const sb = final.content[0];
    expect(sb?.type === 'tool_use' && sb.input).toEqual({ query: 'Paris' });
  });

  it('count_tokens and models.list', async () => {
    const count = await client.messages.countTokens({
      model: 'mock-claude',
      messages: [{ role: 'user', content: 'count these tokens please' }],
    });
    expect(count.input_tokens).toBeGreaterThan(0);
    expect(last().path).toBe('/v1/messages/count_tokens');
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(['mock-gpt', 'mock-claude']);
  });

  it('upstream 429 is RateLimitError (retry-after kept), 500 is InternalServerError', async () => {
    const rl = await client.messages
      .create(
        { model: 'mock-claude', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '429' } },
      )
      .catch((e: unknown) => e);
    expect(rl).toBeInstanceOf(Anthropic.RateLimitError);
    expect((rl as InstanceType<typeof Anthropic.RateLimitError>).headers?.get('retry-after')).toBe('7');
    const ise = await client.messages
      .create(
        { model: 'mock-claude', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-mock-status': '500' } },
      )
      .catch((e: unknown) => e);
    expect(ise).toBeInstanceOf(Anthropic.InternalServerError);
  });

  it('bad key is AuthenticationError in Anthropic shape', async () => {
    const bad = new Anthropic({ apiKey: 'wrong', baseURL: stack.anthropicBase, maxRetries: 0 });
    const err = await bad.messages
      .create({ model: 'mock-claude', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    const e = err as InstanceType<typeof Anthropic.AuthenticationError>;
    expect((e.error as { type: string; error: { type: string } }).error.type).toBe('authentication_error');
  });

  it('unicode and emoji survive a streamed round trip', async () => {
    const text = 'Grüße 🌍🔥 — 中文 — עברית — 🧑🏽‍💻';
    const final = await client.messages
      .stream({ model: 'mock-claude', max_tokens: 50, messages: [{ role: 'user', content: text }] })
      .finalMessage();
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe(`Mock reply: ${text}`);
  });
});
