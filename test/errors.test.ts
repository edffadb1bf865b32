import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode, errorBody } from '../src/core/errors.ts';
import { APP_KEY, type Stack, startStack } from './helpers/stack.ts';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('docs/errors.md', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8');
  /** Rows of the code table: `| \`code\` | status | openai | anthropic | when |`. */
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        m[2]!.split('|').map((c) => c.trim().replace(/`/g, '')),
      );
  }

  it('documents every error code with its status and both error types', () => {
    expect(CODES.length).toBeGreaterThan(10);
    for (const code of CODES) {
      const spec = ERROR_CODES[code];
      const row = rows.get(code);
      expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
      expect(row?.slice(0, 3), code).toEqual([String(spec.status), spec.openai, spec.anthropic]);
      // The "when" column carries the summary (possibly followed by more).
      expect(row?.[3]?.startsWith(spec.summary.replace(/`/g, '')), code).toBe(true);
    }
  });

  it('documents no code that does not exist', () => {
    expect([...rows.keys()].sort()).toEqual([...CODES].sort());
  });
});

describe('errorBody', () => {
  it('OpenAI shape: {error:{message,type,param,code}}', () => {
    const body = JSON.parse(errorBody('openai', 'model_not_routed', 'no provider for "x"', 'req-1'));
    expect(body).toEqual({
      error: {
        message: 'no provider for "x"',
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_routed',
      },
    });
  });

  it('Anthropic shape: {type:"error",error:{type,message},request_id}', () => {
    const body = JSON.parse(errorBody('anthropic', 'body_too_large', 'too big', 'req-2'));
    expect(body).toEqual({
      type: 'error',
      error: { type: 'request_too_large', message: 'too big', code: 'body_too_large' },
      request_id: 'req-2',
    });
  });

  it('every code maps to its table entry in both shapes, and messages are escaped', () => {
    const msg = 'quote " backslash \\ newline \n </script> \u2028';
    for (const code of CODES) {
      const oa = JSON.parse(errorBody('openai', code, msg, 'r'));
      expect(oa.error).toEqual({ message: msg, type: ERROR_CODES[code].openai, param: null, code });
      const an = JSON.parse(errorBody('anthropic', code, msg, 'r'));
      expect(an.error.type).toBe(ERROR_CODES[code].anthropic);
      expect(an.error.message).toBe(msg);
      expect(ERROR_CODES[code].status).toBeGreaterThanOrEqual(400);
    }
  });
});

/**
 * Two providers per family on the same mock, each listing its own models and no `defaults`: with more than one
 * provider for a family none is the implicit default, so an unlisted model is not routed anywhere.
 */
function twoPerFamily(mockUrl: string): string {
  const p = (kind: string, base: string, models: string) => `
    kind: ${kind}
    baseUrl: ${base}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [${models}]
    timeouts: { connectMs: 1000, headersMs: 400, bodyMs: 1000 }`;
  return `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  oa-1: ${p('openai', `${mockUrl}/v1`, 'mock-gpt')}
  oa-2: ${p('openai', `${mockUrl}/v1`, 'mock-gpt-mini')}
  an-1: ${p('anthropic', mockUrl, 'mock-claude')}
  an-2: ${p('anthropic', mockUrl, 'mock-claude-haiku')}
applications:
  - id: test-app
    keys: [{ id: test-key, env: TEST_APP_KEY }]
limits:
  maxBodyBytes: 1mb
  shutdownGraceMs: 2000
`;
}

describe('the official SDKs raise the right classes on gateway errors', () => {
  let stack: Stack;
  let oa: OpenAI;
  let an: Anthropic;
  const chat = (model: string, content = 'hi') => ({ model, messages: [{ role: 'user' as const, content }] });
  const msg = (model: string, content = 'hi') => ({
    model,
    max_tokens: 16,
    messages: [{ role: 'user' as const, content }],
  });
  const caught = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  beforeAll(async () => {
    stack = await startStack({ config: twoPerFamily });
    oa = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
    an = new Anthropic({ apiKey: APP_KEY, baseURL: stack.anthropicBase, maxRetries: 0 });
  });
  afterAll(() => stack.close());

  it('the configured models route (the setup works)', async () => {
    const r = await oa.chat.completions.create(chat('mock-gpt-mini'));
    expect(r.choices[0]?.message.content).toBe('Mock reply: hi');
    const m = await an.messages.create(msg('mock-claude-haiku'));
    expect(m.content[0]?.type === 'text' && m.content[0].text).toBe('Mock reply: hi');
  });

  it('a bad gateway key: AuthenticationError in both SDKs, provider never called', async () => {
    const before = stack.mock.received.length;
    const badOa = new OpenAI({ apiKey: 'wrong', baseURL: stack.openaiBase, maxRetries: 0 });
    const e1 = await caught(badOa.chat.completions.create(chat('mock-gpt')));
    expect(e1).toBeInstanceOf(OpenAI.AuthenticationError);
    const oe = e1 as InstanceType<typeof OpenAI.AuthenticationError>;
    expect([oe.status, oe.type, oe.code]).toEqual([401, 'authentication_error', 'unauthenticated']);
    expect(oe.requestID).toMatch(/^[0-9a-f-]{36}$/);

    const badAn = new Anthropic({ apiKey: 'wrong', baseURL: stack.anthropicBase, maxRetries: 0 });
    const e2 = await caught(badAn.messages.create(msg('mock-claude')));
    expect(e2).toBeInstanceOf(Anthropic.AuthenticationError);
    const ae = e2 as InstanceType<typeof Anthropic.AuthenticationError>;
    expect(ae.status).toBe(401);
    expect(ae.type).toBe('authentication_error');
    expect(ae.error).toMatchObject({ type: 'error', error: { code: 'unauthenticated' } });
    expect(stack.mock.received.length).toBe(before);
  });

  it('an empty model: BadRequestError in both SDKs (invalid_request)', async () => {
    const e1 = await caught(oa.chat.completions.create(chat('')));
    expect(e1).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_request');
    const e2 = await caught(an.messages.create(msg('')));
    expect(e2).toBeInstanceOf(Anthropic.BadRequestError);
    expect((e2 as InstanceType<typeof Anthropic.APIError>).type).toBe('invalid_request_error');
  });

  it('an unrouted model: NotFoundError in both SDKs (model_not_routed)', async () => {
    const e1 = await caught(oa.chat.completions.create(chat('gpt-unlisted')));
    expect(e1).toBeInstanceOf(OpenAI.NotFoundError);
    const oe = e1 as InstanceType<typeof OpenAI.NotFoundError>;
    expect([oe.status, oe.type, oe.code]).toEqual([404, 'invalid_request_error', 'model_not_routed']);
    expect(oe.message).toContain('gpt-unlisted');

    // A model listed only for the other family is not routed either.
    const e2 = await caught(an.messages.create(msg('mock-gpt')));
    expect(e2).toBeInstanceOf(Anthropic.NotFoundError);
    const ae = e2 as InstanceType<typeof Anthropic.NotFoundError>;
    expect(ae.type).toBe('not_found_error');
    expect(ae.error).toMatchObject({ error: { code: 'model_not_routed' } });
  });

  it('a body over the limit: 413 APIError (OpenAI) and ContentTooLargeError (Anthropic)', async () => {
    const big = 'x'.repeat(1024 * 1024 + 10);
    const e1 = await caught(oa.chat.completions.create(chat('mock-gpt', big)));
    expect(e1).toBeInstanceOf(OpenAI.APIError);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('body_too_large');
    const e2 = await caught(an.messages.create(msg('mock-claude', big)));
    expect(e2).toBeInstanceOf(Anthropic.ContentTooLargeError);
    expect((e2 as InstanceType<typeof Anthropic.APIError>).type).toBe('request_too_large');
  });

  it('the provider unreachable: InternalServerError 502 in both', async () => {
    const drop = { headers: { 'x-mock-drop': 'connect' } };
    const e1 = await caught(oa.chat.completions.create(chat('mock-gpt'), drop));
    expect(e1).toBeInstanceOf(OpenAI.InternalServerError);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_unreachable');
    const e2 = await caught(an.messages.create(msg('mock-claude'), drop));
    expect(e2).toBeInstanceOf(Anthropic.InternalServerError);
    expect((e2 as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    expect((e2 as InstanceType<typeof Anthropic.APIError>).type).toBe('api_error');
  });

  it('the provider too slow: 504 InternalServerError / GatewayTimeoutError', async () => {
    // undici's timers tick about every 0.5 s: a 400 ms headers timeout fires within about 1.4 s.
    const slow = { headers: { 'x-mock-delay-ms': '2500' } };
    const e1 = await caught(oa.chat.completions.create(chat('mock-gpt'), slow));
    expect(e1).toBeInstanceOf(OpenAI.InternalServerError);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_timeout');
    const e2 = await caught(an.messages.create(msg('mock-claude'), slow));
    expect(e2).toBeInstanceOf(Anthropic.GatewayTimeoutError);
    expect((e2 as InstanceType<typeof Anthropic.APIError>).type).toBe('timeout_error');
  });

  it('while draining: 503 InternalServerError / ServiceUnavailableError', async () => {
    stack.gw.lifecycle.draining = true;
    try {
      const e1 = await caught(oa.chat.completions.create(chat('mock-gpt')));
      expect(e1).toBeInstanceOf(OpenAI.InternalServerError);
      expect((e1 as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect((e1 as InstanceType<typeof OpenAI.APIError>).code).toBe('not_ready');
      const e2 = await caught(an.messages.create(msg('mock-claude')));
      expect(e2).toBeInstanceOf(Anthropic.ServiceUnavailableError);
      expect((e2 as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');
    } finally {
      stack.gw.lifecycle.draining = false;
    }
    expect((await oa.chat.completions.create(chat('mock-gpt'))).choices).toHaveLength(1);
  });
});
