import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashKey, type LoadedConfig, parseConfig } from '../../src/config/load.ts';
import { type ApiFamily, errorBody, GatewayError } from '../../src/core/errors.ts';
import type { ApiKind } from '../../src/core/policy-input.ts';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import { type Breakers, createBreakers, type FallbackServed } from '../../src/upstream/breakers.ts';
import { circuitOpenError, DEGRADED_HEADER, degradedReply } from '../../src/upstream/degraded.ts';
import { dispatch } from '../../src/upstream/dispatch.ts';
import { ClientClosedError } from '../../src/upstream/errors.ts';
import { forward } from '../../src/upstream/forward.ts';
import { createUpstreams, type Upstreams } from '../../src/upstream/targets.ts';

/**
 * `dispatch` end to end: two mock providers on loopback (`primary`, `backup`), dead ones on a refused port, and a
 * small HTTP server standing in for the proxy route (dispatch, then relay / degraded / 503), called with the
 * official SDKs. Fault headers (`x-mock-*`) reach the primary only, so the fallback answers normally.
 */
const DEGRADED = 'The assistant is degraded right now; please try again later.';

function config(a: string, b: string): string {
  const dead = (models: string, breaker: string) => `
    kind: mock
    baseUrl: http://127.0.0.1:1
    models: [${models}]
    breaker: ${breaker}`;
  return `
providers:
  primary:
    kind: mock
    baseUrl: ${a}
    models: [mock-gpt, mock-claude]
    timeouts: { connectMs: 500, headersMs: 300, bodyMs: 2000 }
    breaker: { volumeThreshold: 2, resetTimeoutMs: 400 }
  backup:
    kind: mock
    baseUrl: ${b}
    models: [backup-gpt, backup-claude]
  dead: ${dead('dead-gpt, dead-claude', '{ volumeThreshold: 1 }')}
  dead2: ${dead('dead-gpt, dead-claude', '{ volumeThreshold: 1 }')}
  lonely: ${dead('lonely-gpt, lonely-claude', '{ volumeThreshold: 1, resetTimeoutMs: 5000 }')}
  strict: ${dead('strict-gpt', '{ volumeThreshold: 1 }')}
applications:
  - id: app
    keys: [{ id: k1, sha256: ${hashKey('unused')} }]
fallbacks:
  - target: primary/mock-gpt
    then: [{ provider: backup, model: backup-gpt }]
  - target: primary
    then: [{ provider: backup, model: backup-claude }]
  - target: dead
    then:
      - { provider: dead2 }
      - { degraded: { message: "${DEGRADED}" } }
  - target: strict
    then: [{ fail: { retryAfterSeconds: 17 } }]
`;
}

let a: MockProvider;
let b: MockProvider;
let loaded: LoadedConfig;
let upstreams: Upstreams;
let breakers: Breakers;
let served: FallbackServed[];
let harness: Server;
let base: string;

function writeError(res: ServerResponse, family: ApiFamily, err: GatewayError): void {
  res.writeHead(err.status, { 'content-type': 'application/json', ...err.headers });
  res.end(errorBody(family, err.code, err.message, 'req-harness'));
}

/** What proxy.ts does around `dispatch`, minus auth and policy. `x-test-provider` picks the primary provider. */
function startHarness(): Promise<Server> {
  const server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
    const path = (req.url ?? '/').split('?')[0]!;
    const api: ApiKind =
      path === '/v1/messages'
        ? 'anthropic.messages'
        : path === '/v1/responses'
          ? 'openai.responses'
          : 'openai.chat';
    const family: ApiFamily = api === 'anthropic.messages' ? 'anthropic' : 'openai';
    const providerId = String(req.headers['x-test-provider'] ?? 'primary');
    const faults: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (k.startsWith('x-mock-')) faults[k] = String(v);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    try {
      const r = await dispatch({
        family,
        providerId,
        model: String(body.model),
        upstreams,
        breakers,
        fallbacks: loaded.config.fallbacks,
        signal: ac.signal,
        send: (target, model, signal) =>
          forward(
            target,
            'POST',
            path,
            { 'content-type': 'application/json', ...(target.providerId === providerId ? faults : {}) },
            Buffer.from(JSON.stringify({ ...body, model })),
            signal,
            'req-harness',
          ),
      });
      if (r.kind === 'upstream') {
        const extra: Record<string, string> = { 'x-served-by': r.target.providerId };
        if (r.fallbackFrom) extra['x-fallback-from'] = r.fallbackFrom;
        res.writeHead(r.response.status, { ...r.response.headers, ...extra });
        await pipeline(r.response.body, res);
      } else if (r.kind === 'degraded') {
        const stream = body.stream === true;
        const reply = degradedReply(api, {
          message: r.message,
          model: String(body.model),
          stream,
          from: r.from,
        })!;
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      } else writeError(res, family, circuitOpenError(r.from, r.retryAfterSeconds));
    } catch (err) {
      if (err instanceof GatewayError) writeError(res, family, err);
      else res.destroy();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  a = await startMockProvider();
  b = await startMockProvider();
  loaded = parseConfig(config(a.url, b.url), 'fallback.yaml', {});
  upstreams = createUpstreams(loaded);
  harness = await startHarness();
  base = `http://127.0.0.1:${(harness.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => {
    harness.close(() => r());
    harness.closeAllConnections();
  });
  await upstreams.close();
  await Promise.all([a.close(), b.close()]);
});
beforeEach(() => {
  breakers = createBreakers(loaded.config.providers);
  served = [];
  breakers.subscribe({ onFallback: (e) => served.push(e) });
});
afterEach(() => breakers.close());

const openai = (provider = 'primary') =>
  new OpenAI({
    apiKey: 'k',
    baseURL: `${base}/v1`,
    maxRetries: 0,
    defaultHeaders: { 'x-test-provider': provider },
  });
const anthropic = (provider = 'primary') =>
  new Anthropic({
    apiKey: 'k',
    baseURL: base,
    maxRetries: 0,
    defaultHeaders: { 'x-test-provider': provider },
  });
const chat = (model: string, content = 'hi') => ({ model, messages: [{ role: 'user' as const, content }] });
const msg = (model: string, content = 'hi') => ({
  model,
  max_tokens: 16,
  messages: [{ role: 'user' as const, content }],
});
const lastModel = (m: MockProvider) => JSON.parse(m.received.at(-1)!.body.toString('utf8')).model;

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fallback to another target', () => {
  it('a primary answering 500 is replaced by the fallback target, with the fallback model', async () => {
    const [na, nb] = [a.received.length, b.received.length];
    const { data, response } = await openai()
      .chat.completions.create(chat('mock-gpt'), { headers: { 'x-mock-status': '500' } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('Mock reply: hi');
    expect(data.model).toBe('backup-gpt');
    expect(response.headers.get('x-served-by')).toBe('backup');
    expect(response.headers.get('x-fallback-from')).toBe('primary/mock-gpt');
    expect([a.received.length - na, b.received.length - nb]).toEqual([1, 1]);
    expect(lastModel(b)).toBe('backup-gpt');
    expect(served).toEqual([{ from: 'primary/mock-gpt', kind: 'target', to: 'backup/backup-gpt' }]);
  });

  it('once the breaker is open the fallback serves without calling the primary; the half-open probe restores it', async () => {
    const client = openai();
    for (let i = 0; i < 2; i++)
      await client.chat.completions.create(chat('mock-gpt'), { headers: { 'x-mock-status': '503' } });
    expect(breakers.state('primary/mock-gpt')).toBe('open');

    const na = a.received.length;
    const open = await client.chat.completions.create(chat('mock-gpt', 'while open')).withResponse();
    expect(open.response.headers.get('x-served-by')).toBe('backup');
    expect(open.data.choices[0]?.message.content).toBe('Mock reply: while open');
    expect(a.received.length).toBe(na);

    await until(() => breakers.state('primary/mock-gpt') === 'halfOpen', 2000);
    const probe = await client.chat.completions.create(chat('mock-gpt', 'recovered')).withResponse();
    expect(probe.response.headers.get('x-served-by')).toBe('primary');
    expect(probe.data.model).toBe('mock-gpt');
    expect(a.received.length).toBe(na + 1);
    await until(() => breakers.state('primary/mock-gpt') === 'closed'); // counted once the body has ended
  });

  it('a 4xx from the primary is relayed as is: no fallback, no breaker count', async () => {
    const nb = b.received.length;
    const err = await openai()
      .chat.completions.create(chat('mock-gpt'), { headers: { 'x-mock-status': '400' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(b.received.length).toBe(nb);
    expect(served).toEqual([]);
  });

  it('a streaming request whose primary drops the connection before the first byte is served by the fallback', async () => {
    const na = a.received.length;
    const stream = await openai().chat.completions.create(
      { ...chat('mock-gpt', 'stream me'), stream: true },
      { headers: { 'x-mock-drop': 'connect' } },
    );
    let text = '';
    const models = new Set<string>();
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      models.add(chunk.model);
    }
    expect(text).toBe('Mock reply: stream me');
    expect([...models]).toEqual(['backup-gpt']);
    expect(a.received.length).toBe(na + 1); // the primary was tried first

    // Anthropic, a 529 before the stream starts: the provider-wide entry for `primary` picks backup-claude.
    const final = await anthropic()
      .messages.stream(msg('mock-claude', 'overloaded'), { headers: { 'x-mock-status': '529' } })
      .finalMessage();
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe('Mock reply: overloaded');
    expect(final.model).toBe('backup-claude');
  });

  it('a primary that hangs past its headers timeout is replaced by the fallback', async () => {
    const r = await openai()
      .chat.completions.create(chat('mock-gpt', 'slow'), { headers: { 'x-mock-delay-ms': '2000' } })
      .withResponse();
    expect(r.response.headers.get('x-served-by')).toBe('backup');
    expect(r.data.choices[0]?.message.content).toBe('Mock reply: slow');
  });

  it('a client that leaves is not fallen back for, and does not count against the breaker', async () => {
    const nb = b.received.length;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const target = upstreams.byProvider('openai', 'primary')!;
    const p = dispatch({
      family: 'openai',
      providerId: 'primary',
      model: 'mock-gpt',
      upstreams,
      breakers,
      fallbacks: loaded.config.fallbacks,
      signal: ac.signal,
      send: (t, model, signal) =>
        forward(
          t,
          'POST',
          '/v1/chat/completions',
          { 'content-type': 'application/json', 'x-mock-delay-ms': '1000' },
          Buffer.from(JSON.stringify(chat(model))),
          signal,
          'req-abort',
        ),
    });
    await expect(p).rejects.toBeInstanceOf(ClientClosedError);
    expect(b.received.length).toBe(nb);
    expect(breakers.state(breakers.keyOf(target, 'mock-gpt'))).toBe('closed');
  });
});

describe('the chain runs out: degraded answer in each SDK shape', () => {
  const check = (h: Headers) => expect(h.get(DEGRADED_HEADER)).toMatch(/^dead\/dead-(gpt|claude)$/);

  it('OpenAI chat completions, plain and streamed', async () => {
    const client = openai('dead');
    const { data, response } = await client.chat.completions.create(chat('dead-gpt')).withResponse();
    check(response.headers);
    expect(data.choices[0]?.message).toMatchObject({ role: 'assistant', content: DEGRADED });
    expect(data.choices[0]?.finish_reason).toBe('stop');

    const s = await client.chat.completions.create({ ...chat('dead-gpt'), stream: true }).withResponse();
    check(s.response.headers);
    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of s.data) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect([text, finish]).toEqual([DEGRADED, 'stop']);
    expect(served.map((e) => e.kind)).toEqual(['degraded', 'degraded']);
  });

  it('OpenAI responses, plain and streamed', async () => {
    const client = openai('dead');
    const { data, response } = await client.responses
      .create({ model: 'dead-gpt', input: 'hi' })
      .withResponse();
    check(response.headers);
    expect(data.output_text).toBe(DEGRADED);
    expect(data.status).toBe('completed');

    const s = client.responses.stream({ model: 'dead-gpt', input: 'hi' });
    let deltas = '';
    s.on('response.output_text.delta', (e) => {
      deltas += e.delta;
    });
    const final = await s.finalResponse();
    expect(final.output_text).toBe(DEGRADED);
    expect(deltas).toBe(DEGRADED);
  });

  it('Anthropic messages, plain and streamed', async () => {
    const client = anthropic('dead');
    const { data, response } = await client.messages.create(msg('dead-claude')).withResponse();
    check(response.headers);
    expect(data.content).toEqual([{ type: 'text', text: DEGRADED }]);
    expect(data.stop_reason).toBe('end_turn');

    const final = await client.messages.stream(msg('dead-claude')).finalMessage();
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe(DEGRADED);
    expect(final.stop_reason).toBe('end_turn');
  });
});

describe('the chain runs out: 503 upstream_circuit_open', () => {
  it('without a fallback: the first failure surfaces as is, then the open breaker answers 503 with retry-after', async () => {
    const client = openai('lonely');
    const first = await client.chat.completions.create(chat('lonely-gpt')).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(OpenAI.InternalServerError);
    expect((first as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_unreachable');

    const second = (await client.chat.completions
      .create(chat('lonely-gpt'))
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(second).toBeInstanceOf(OpenAI.InternalServerError);
    expect([second.status, second.type, second.code]).toEqual([503, 'server_error', 'upstream_circuit_open']);
    const retry = Number(second.headers?.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(5);

    const an = (await anthropic('lonely')
      .messages.create(msg('lonely-claude'))
      .catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    // lonely-claude has its own breaker: its first failure surfaces, the second is the 503.
    expect(an.status).toBe(502);
    const an2 = (await anthropic('lonely')
      .messages.create(msg('lonely-claude'))
      .catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(an2).toBeInstanceOf(Anthropic.ServiceUnavailableError);
    expect(an2.type).toBe('overloaded_error');
    expect(an2.error).toMatchObject({ error: { code: 'upstream_circuit_open' } });
    expect(served.map((e) => e.kind)).toEqual(['fail', 'fail']);
  });

  it('an explicit fail step answers 503 with its own retry-after, from the first failure on', async () => {
    const err = (await openai('strict')
      .chat.completions.create(chat('strict-gpt'))
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect([err.status, err.code]).toEqual([503, 'upstream_circuit_open']);
    expect(err.headers?.get('retry-after')).toBe('17');
  });
});

describe('degradedReply', () => {
  it('has no shape for APIs without a text answer (embeddings, count_tokens)', () => {
    const o = { message: 'x', model: 'm', stream: false, from: 'p/m' };
    expect(degradedReply('openai.embeddings', o)).toBeUndefined();
    expect(degradedReply('anthropic.count_tokens', o)).toBeUndefined();
  });
});
