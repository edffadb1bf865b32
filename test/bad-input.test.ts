import { connect } from 'node:net';
import type { Hono } from 'hono';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/app.ts';
import { parseConfig } from '../src/config/load.ts';
import { MemoryCounters } from '../src/control/counters.ts';
import { ERROR_CODES, type ErrorCode } from '../src/core/errors.ts';
import type { DataEnv, Lifecycle } from '../src/gateway/context.ts';
import { allowAllBundle } from '../src/policy/builtin.ts';
import { type MockProvider, startMockProvider } from '../src/providers/mock/server.ts';
import { productionOnly } from '../src/rings/runtime.ts';
import { createBreakers } from '../src/upstream/breakers.ts';
import { createUpstreams, type Upstreams } from '../src/upstream/targets.ts';
import { APP_KEY, LogCapture, PROVIDER_KEY, type Stack, stackConfig, startStack } from './helpers/stack.ts';

const ENV = { TEST_PROVIDER_KEY: PROVIDER_KEY, TEST_APP_KEY: APP_KEY };
const LIMIT = 4 * 1024 * 1024; // limits.maxBodyBytes of stackConfig
/**
 * The stack config with short provider timeouts, so a timeout case stays fast. undici's headers and body timers
 * tick about every 0.5 s, so a 400 ms timeout fires within about 1.4 s: slow answers in tests take 2.5 s.
 */
function fastConfig(mockUrl: string): string {
  const yaml = stackConfig(mockUrl).replace('headersMs: 3000, bodyMs: 3000', 'headersMs: 400, bodyMs: 400');
  if (!yaml.includes('headersMs: 400')) throw new Error('stackConfig changed: update fastConfig');
  return yaml;
}

const AUTH = { authorization: `Bearer ${APP_KEY}` };
const CHAT = JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] });
const MSG = JSON.stringify({
  model: 'mock-claude',
  max_tokens: 8,
  messages: [{ role: 'user', content: 'hi' }],
});

/** The assistant text of a chat completion or of an Anthropic message. */
async function replyText(res: Response): Promise<string | undefined> {
  const b = (await res.json()) as {
    choices?: Array<{ message: { content: string } }>;
    content?: Array<{ text: string }>;
  };
  return b.choices?.[0]?.message.content ?? b.content?.[0]?.text;
}

/** One way of reaching the data plane: a real socket, or the Hono app in process. */
interface Transport {
  readonly lifecycle: Lifecycle;
  send(path: string, init?: RequestInit): Promise<Response>;
}

interface OpenAIError {
  error: { message: string; type: string; param: null; code: string };
}
interface AnthropicError {
  type: 'error';
  error: { type: string; message: string; code: string };
  request_id: string;
}

/** Asserts a gateway error in the OpenAI shape, and returns the body. */
async function expectOpenAIError(res: Response, code: ErrorCode): Promise<OpenAIError> {
  const text = await res.text();
  expect(res.status, text).toBe(ERROR_CODES[code].status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('x-request-id')).toBeTruthy();
  const body = JSON.parse(text) as OpenAIError;
  expect(body).toEqual({
    error: { message: expect.any(String), type: ERROR_CODES[code].openai, param: null, code },
  });
  return body;
}

/** Asserts a gateway error in the Anthropic shape, and returns the body. */
async function expectAnthropicError(res: Response, code: ErrorCode): Promise<AnthropicError> {
  const text = await res.text();
  expect(res.status, text).toBe(ERROR_CODES[code].status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as AnthropicError;
  expect(body).toEqual({
    type: 'error',
    error: { type: ERROR_CODES[code].anthropic, message: expect.any(String), code },
    request_id: res.headers.get('x-request-id'),
  });
  return body;
}

/** A body of `size` bytes sent without Content-Length (chunked on a socket). */
function chunkedBody(size: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= size) return c.close();
      const n = Math.min(chunk, size - sent);
      sent += n;
      c.enqueue(new Uint8Array(n).fill(0x61));
    },
  });
}

function post(body: RequestInit['body'], headers: Record<string, string> = {}): RequestInit {
  const init: RequestInit & { duplex?: 'half' } = {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json', ...headers },
    body,
  };
  if (body instanceof ReadableStream) init.duplex = 'half';
  return init;
}

let stack: Stack;
let mock: MockProvider;
let upstreams: Upstreams;
let app: Hono<DataEnv>;
const appLifecycle: Lifecycle = { ready: true, draining: false };
const appLogs = new LogCapture();

beforeAll(async () => {
  stack = await startStack({ config: fastConfig });
  // The in-process app is built the way src/main.ts builds it, minus the listening.
  mock = await startMockProvider({ expectKey: PROVIDER_KEY });
  const loaded = parseConfig(stackConfig(mock.url), 'inline.yaml', ENV);
  upstreams = createUpstreams(loaded);
  app = createGateway({
    loaded,
    upstreams,
    rings: productionOnly(allowAllBundle()),
    counters: new MemoryCounters(),
    breakers: createBreakers(loaded.config.providers),
    logger: pino({ level: 'debug' }, appLogs),
    lifecycle: appLifecycle,
  }).data;
});
afterAll(async () => {
  await stack.close();
  await upstreams.close();
  await mock.close();
});

const transports: Array<[string, () => Transport]> = [
  [
    'socket',
    () => ({
      lifecycle: stack.gw.lifecycle,
      send: (path, init) => fetch(`${stack.gw.dataUrl}${path}`, init),
    }),
  ],
  ['in-process', () => ({ lifecycle: appLifecycle, send: async (path, init) => app.request(path, init) })],
];

describe.each(transports)('bad input (%s)', (_name, get) => {
  let t: Transport;
  beforeAll(() => {
    t = get();
  });

  it('a well-formed request works (the baseline)', async () => {
    const res = await t.send('/v1/chat/completions', post(CHAT));
    expect(res.status).toBe(200);
    expect(await replyText(res)).toBe('Mock reply: hi');
    const res2 = await t.send('/v1/messages', post(MSG, { 'anthropic-version': '2023-06-01' }));
    expect(res2.status).toBe(200);
    expect(await replyText(res2)).toBe('Mock reply: hi');
  });

  it('malformed JSON: 400 invalid_json, in each API family’s shape', async () => {
    const oa = await expectOpenAIError(
      await t.send('/v1/chat/completions', post('{"model": "mock-gpt",')),
      'invalid_json',
    );
    expect(oa.error.message).toMatch(/not valid JSON/);
    await expectAnthropicError(await t.send('/v1/messages', post('{model: mock-claude}')), 'invalid_json');
    await expectOpenAIError(await t.send('/v1/embeddings', post('')), 'invalid_json');
    await expectAnthropicError(await t.send('/v1/messages/count_tokens', post('')), 'invalid_json');
  });

  it('JSON that is not an object: 400 invalid_json', async () => {
    for (const body of ['[]', '[{"model":"mock-gpt"}]', 'null', '42', '"text"', 'true']) {
      const b = await expectOpenAIError(await t.send('/v1/chat/completions', post(body)), 'invalid_json');
      expect(b.error.message).toBe('request body must be a JSON object');
      await expectAnthropicError(await t.send('/v1/messages', post(body)), 'invalid_json');
    }
  });

  it('a missing or empty model: 400 invalid_request, and the provider is not called', async () => {
    const before = [stack.mock.received.length, mock.received.length];
    for (const body of [{}, { model: '' }, { model: 42 }, { model: null }, { messages: [] }]) {
      const b = await expectOpenAIError(
        await t.send('/v1/chat/completions', post(JSON.stringify(body))),
        'invalid_request',
      );
      expect(b.error.message).toContain('`model`');
      await expectAnthropicError(await t.send('/v1/messages', post(JSON.stringify(body))), 'invalid_request');
    }
    expect([stack.mock.received.length, mock.received.length]).toEqual(before);
  });

  it('a body nested deeper than 128 levels: 400 invalid_request, not a stack overflow', async () => {
    // Content parts inside content parts: what a recursive text reader would follow to the end of the stack.
    const nested = (n: number) =>
      `{"model":"mock-gpt","messages":[{"role":"user","content":[${'{"content":['.repeat(n)}"deep"${']}'.repeat(n)}]}]}`;
    const b = await expectOpenAIError(
      await t.send('/v1/chat/completions', post(nested(100_000))),
      'invalid_request',
    );
    expect(b.error.message).toBe('request body nests deeper than 128 levels');
    await expectAnthropicError(
      await t.send('/v1/messages', post(nested(100_000).replace('mock-gpt', 'mock-claude'))),
      'invalid_request',
    );
    // Exactly 128 levels is still fine: the body, messages, a message, its content, then 62 part+content pairs.
    const ok = await t.send('/v1/chat/completions', post(nested(62)));
    expect(ok.status).toBe(200);
    expect(await replyText(ok)).toBe('Mock reply: deep');
    await expectOpenAIError(await t.send('/v1/chat/completions', post(nested(63))), 'invalid_request');
  });

  it('no key or a wrong key: 401 before the body is even looked at', async () => {
    const noKey = { method: 'POST', body: 'not json' };
    await expectOpenAIError(await t.send('/v1/chat/completions', noKey), 'unauthenticated');
    await expectAnthropicError(
      await t.send('/v1/messages', { ...noKey, headers: { 'x-api-key': 'wrong' } }),
      'unauthenticated',
    );
  });

  it('a body over limits.maxBodyBytes with Content-Length: 413 body_too_large', async () => {
    const big = new Uint8Array(5 * 1024 * 1024).fill(0x61);
    const init = post(big, { 'content-length': String(big.length) });
    const oa = await expectOpenAIError(await t.send('/v1/chat/completions', init), 'body_too_large');
    expect(oa.error.message).toContain(String(LIMIT));
    const an = await t.send('/v1/messages', post(big, { 'content-length': String(big.length) }));
    expect(an.headers.get('connection')).toBe('close');
    const b = await expectAnthropicError(an, 'body_too_large');
    expect(b.error.type).toBe('request_too_large');
  });

  it('a body over the limit without Content-Length (chunked): 413 body_too_large', async () => {
    await expectOpenAIError(
      await t.send('/v1/chat/completions', post(chunkedBody(5 * 1024 * 1024))),
      'body_too_large',
    );
    await expectAnthropicError(
      await t.send('/v1/messages', post(chunkedBody(5 * 1024 * 1024))),
      'body_too_large',
    );
    // Just under the limit, chunked, is read whole and judged on its content.
    await expectOpenAIError(await t.send('/v1/chat/completions', post(chunkedBody(LIMIT))), 'invalid_json');
  });

  it('an unknown route: 404 route_not_found', async () => {
    const b = await expectOpenAIError(await t.send('/v1/nope', post(CHAT)), 'route_not_found');
    expect(b.error.message).toBe('no route POST /v1/nope');
    await expectOpenAIError(await t.send('/'), 'route_not_found');
    await expectOpenAIError(await t.send('/v2/chat/completions', post(CHAT)), 'route_not_found');
    // Under /v1/messages, or with anthropic-version, the client speaks Anthropic.
    await expectAnthropicError(await t.send('/v1/messages/batches/x'), 'route_not_found');
    await expectAnthropicError(
      await t.send('/v1/complete', { headers: { 'anthropic-version': '2023-06-01' } }),
      'route_not_found',
    );
  });

  it('a wrong method: 405 with Allow', async () => {
    const get = await t.send('/v1/chat/completions', { headers: AUTH });
    expect(get.headers.get('allow')).toBe('POST');
    const b = await expectOpenAIError(get, 'method_not_allowed');
    expect(b.error.message).toBe('GET is not allowed on /v1/chat/completions');
    const del = await t.send('/v1/messages', { method: 'DELETE', headers: AUTH });
    expect(del.headers.get('allow')).toBe('POST');
    await expectAnthropicError(del, 'method_not_allowed');
    const models = await t.send('/v1/models', post(CHAT));
    expect(models.headers.get('allow')).toBe('GET');
    await expectOpenAIError(models, 'method_not_allowed');
  });

  it('/healthz is 200; /readyz is 200 when ready and 503 while starting or draining', async () => {
    const h = await t.send('/healthz');
    expect([h.status, await h.json()]).toEqual([200, { status: 'ok' }]);
    const r = await t.send('/readyz');
    expect(r.status).toBe(200);
    // Fail static: a control-plane detail may ride along (a full gateway); the status is what matters here.
    expect(await r.json()).toMatchObject({ status: 'ready' });
    t.lifecycle.draining = true;
    try {
      const d = await t.send('/readyz');
      expect([d.status, await d.json()]).toEqual([503, { status: 'draining' }]);
      // Liveness does not change, and API calls are refused in the client's shape.
      expect((await t.send('/healthz')).status).toBe(200);
      await expectOpenAIError(await t.send('/v1/chat/completions', post(CHAT)), 'not_ready');
      await expectAnthropicError(await t.send('/v1/messages', post(MSG)), 'not_ready');
    } finally {
      t.lifecycle.draining = false;
    }
    t.lifecycle.ready = false;
    try {
      const s = await t.send('/readyz');
      expect([s.status, await s.json()]).toEqual([503, { status: 'starting' }]);
    } finally {
      t.lifecycle.ready = true;
    }
    expect((await t.send('/readyz')).status).toBe(200);
  });
});

describe('bad input on a raw socket', () => {
  /** Writes raw bytes to the data port and resolves with everything read until the server closes. */
  function raw(request: string | Buffer, endAfterWrite = false): Promise<string> {
    const { hostname, port } = new URL(stack.gw.dataUrl);
    return new Promise((resolve, reject) => {
      const sock = connect(Number(port), hostname);
      const parts: Buffer[] = [];
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no close; got: ${Buffer.concat(parts).toString('latin1').slice(0, 300)}`));
      }, 3000);
      sock.on('data', (d) => parts.push(d));
      sock.on('error', () => {}); // a reset after the answer is fine; what was read is what counts
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(parts).toString('latin1'));
      });
      sock.write(request);
      if (endAfterWrite) sock.end();
    });
  }

  it('a declared Content-Length over the limit is refused before any body is sent', async () => {
    const reply = await raw(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${APP_KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${5 * 1024 * 1024}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply.toLowerCase()).toContain('connection: close');
    expect(reply).toContain('"code":"body_too_large"');
  });

  it('requests the HTTP parser rejects get a 400 and the gateway keeps serving', async () => {
    const garbage = [
      'GARBAGE\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello',
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n',
      Buffer.from([0x50, 0x4f, 0x53, 0x54, 0x20, 0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]),
    ];
    for (const g of garbage) expect(await raw(g, true)).toMatch(/^HTTP\/1\.1 400 /);
    const ok = await fetch(`${stack.gw.dataUrl}/v1/chat/completions`, post(CHAT));
    expect(ok.status).toBe(200);
  });
});

/** Deterministic PRNG (mulberry32), so a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, pick, bytes };
}
type Rng = ReturnType<typeof rng>;

/** A random JSON value, a few levels deep, with awkward keys and numbers. */
function randomJson(r: Rng, depth: number): unknown {
  const k = r.int(depth > 0 ? 9 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.pick([true, false]);
    case 2:
      return r.pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 2.5, Number.MAX_SAFE_INTEGER]);
    case 3:
      return r.bytes(r.int(40)).toString('latin1');
    case 4:
      return r.pick(['', 'mock-gpt', '__proto__', 'constructor', '\u0000', '\ud800', '👩‍👩‍👧']);
    case 5:
      return 'x'.repeat(r.int(5000));
    case 6:
    case 7:
      return Array.from({ length: r.int(5) }, () => randomJson(r, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(6); i > 0; i--)
        o[
          r.pick([
            'model',
            'messages',
            'content',
            'role',
            'stream',
            'tools',
            'input',
            'system',
            'x',
            '__proto__',
          ])
        ] = randomJson(r, depth - 1);
      return o;
    }
  }
}

/** One garbage body. The kinds cover what a confused or hostile client sends. */
function garbageBody(r: Rng): { kind: string; body: Buffer } {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const kind = r.pick([
    'empty',
    'bytes',
    'invalid-utf8',
    'nested-array',
    'nested-content',
    'huge-numbers',
    'scalar',
    'wrong-types',
    'random-json',
    'random-json-with-model',
    'bom',
    'truncated',
    'proto',
  ] as const);
  switch (kind) {
    case 'empty':
      return { kind, body: Buffer.alloc(0) };
    case 'bytes':
      return { kind, body: r.bytes(1 + r.int(4096)) };
    case 'invalid-utf8': {
      const bad = r.pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80, 0x80]]);
      return {
        kind,
        body: Buffer.concat([
          Buffer.from('{"model":"mock-gpt","messages":[{"role":"user","content":"a'),
          Buffer.from(bad),
          Buffer.from('b"}]}'),
        ]),
      };
    }
    case 'nested-array': {
      const n = 1000 + r.int(200_000);
      return { kind, body: Buffer.from(`${'['.repeat(n)}${r.int(2) ? ']'.repeat(n) : ''}`) };
    }
    case 'nested-content': {
      // Content parts nested in content parts: a recursive text flattener would overflow its stack.
      const n = 1000 + r.int(100_000);
      const open = '{"content":['.repeat(n);
      const close = ']}'.repeat(n);
      return {
        kind,
        body: Buffer.from(
          `{"model":"mock-gpt","messages":[{"role":"user","content":[${open}"deep"${close}]}]}`,
        ),
      };
    }
    case 'huge-numbers':
      return {
        kind,
        body: Buffer.from(
          `{"model":"mock-gpt","max_tokens":1e999,"temperature":-1e400,"n":${'9'.repeat(400)},` +
            `"messages":[{"role":"user","content":"n"}],"top_p":0.${'1'.repeat(1000)}}`,
        ),
      };
    case 'scalar':
      return { kind, body: Buffer.from(r.pick(['null', '0', '"x"', 'true', '[]', '{}', '[null]', '""'])) };
    case 'wrong-types':
      return {
        kind,
        body: json({
          model: r.pick(['mock-gpt', 'mock-claude', 'unknown-model']),
          messages: r.pick(['string', 42, [null, 1, 'x', []], [{ role: 7, content: { text: 5 } }], {}]),
          max_tokens: r.pick(['ten', -1, null, [1]]),
          stream: r.pick(['yes', 1, null, false]),
          tools: r.pick([[null], 'tool', [{ function: null }], [{ name: 5 }]]),
          metadata: r.pick([[], 'm', { user_id: 5 }, null]),
          system: r.pick([5, [{ text: null }], null]),
          input: r.pick([5, [null, { type: 'function_call_output' }], null]),
        }),
      };
    case 'random-json':
      return { kind, body: json(randomJson(r, 4)) };
    case 'random-json-with-model': {
      const v = randomJson(r, 4);
      const o = v && typeof v === 'object' && !Array.isArray(v) ? v : { x: v };
      return { kind, body: json({ ...o, model: r.pick(['mock-gpt', 'mock-claude', 'x'.repeat(3000)]) }) };
    }
    case 'bom':
      return { kind, body: Buffer.from(`\ufeff${CHAT}`) };
    case 'truncated':
      return { kind, body: Buffer.from(CHAT.slice(0, r.int(CHAT.length))) };
    case 'proto':
      return {
        kind,
        body: Buffer.from(
          '{"__proto__":{"model":"polluted","admin":true},"constructor":{"prototype":{"x":1}},' +
            '"model":"mock-gpt","messages":[{"role":"user","content":"p"}]}',
        ),
      };
  }
}

/** Random headers that still pass the HTTP parser: credentials, content types, family switches, faults. */
function garbageHeaders(r: Rng): Record<string, string> {
  const h: Record<string, string> = {};
  const auth = r.int(10);
  if (auth < 6) h.authorization = `Bearer ${APP_KEY}`;
  else if (auth === 6) h['x-api-key'] = APP_KEY;
  else if (auth === 7) h['api-key'] = APP_KEY;
  else if (auth === 8)
    h.authorization = r.pick(['Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', `bearer ${'k'.repeat(5000)}`]);
  const ct = r.pick([
    'application/json',
    'application/json; charset=utf-16',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    '*/*',
    ';;;',
    '',
  ]);
  if (ct) h['content-type'] = ct;
  if (r.int(4) === 0) h['anthropic-version'] = r.pick(['2023-06-01', 'garbage', '']);
  if (r.int(4) === 0)
    h['x-request-id'] = r.pick(['ok-id-1', 'has spaces', 'x'.repeat(500), '../../etc/passwd', '<script>']);
  if (r.int(6) === 0) h['content-encoding'] = r.pick(['gzip', 'br', 'identity', 'x-bogus']);
  if (r.int(6) === 0) h.accept = r.pick(['text/event-stream', 'application/xml', '*/*']);
  if (r.int(8) === 0) h['x-mock-status'] = r.pick(['400', '401', '404', '429', '500', '529']);
  if (r.int(12) === 0) h['x-mock-drop'] = r.pick(['connect', 'mid-stream']);
  if (r.int(8) === 0) h['x-mock-chunks'] = String(1 + r.int(20));
  if (r.int(10) === 0) h['x-forwarded-for'] = r.bytes(8).toString('hex');
  return h;
}

const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/embeddings',
  '/v1/messages',
  '/v1/messages/count_tokens',
] as const;

describe('robustness: garbage bodies and headers over a real socket', () => {
  it('every answer is a 200 or a well-formed JSON error, and the gateway keeps serving', async () => {
    const seed = 20261125;
    const r = rng(seed);
    const cases = ENDPOINTS.flatMap((path) =>
      Array.from({ length: 200 }, (_, i) => ({ path, i, ...garbageBody(r), headers: garbageHeaders(r) })),
    );
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const where = `seed ${seed} ${c.path} #${c.i} (${c.kind}, headers ${JSON.stringify(Object.keys(c.headers))})`;
        try {
          const res = await fetch(`${stack.gw.dataUrl}${c.path}`, {
            method: 'POST',
            headers: c.headers,
            body: c.body,
          });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const problem = checkAnswer(c.path, c.headers, res, text);
          if (problem) problems.push(`${where}: ${problem}`);
        } catch (err) {
          problems.push(`${where}: request failed: ${String((err as Error).cause ?? err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(problems, problems.slice(0, 10).join('\n')).toEqual([]);
    // The run exercised both outcomes, and many distinct error statuses.
    expect(statuses.get(200)).toBeGreaterThan(50);
    expect(statuses.get(400)).toBeGreaterThan(50);
    expect(statuses.size).toBeGreaterThan(4);

    // Still alive and well.
    const ok = await fetch(`${stack.gw.dataUrl}/v1/chat/completions`, post(CHAT));
    expect(ok.status).toBe(200);
    expect(await replyText(ok)).toBe('Mock reply: hi');
    expect((await fetch(`${stack.gw.dataUrl}/readyz`)).status).toBe(200);
    // No bug surfaced as an unhandled error.
    expect(stack.logs.text).not.toContain('unhandled error');
  });
});

/** Returns what is wrong with an answer, or undefined when it is a 200 or a well-formed error. */
function checkAnswer(
  path: string,
  sent: Record<string, string>,
  res: Response,
  text: string,
): string | undefined {
  if (!res.headers.get('x-request-id')) return 'no x-request-id';
  const type = res.headers.get('content-type') ?? '';
  if (res.status === 200) {
    if (type.startsWith('text/event-stream')) return /^(data|event): /m.test(text) ? undefined : 'empty SSE';
    try {
      JSON.parse(text);
      return undefined;
    } catch {
      return `200 with a body that is not JSON: ${text.slice(0, 100)}`;
    }
  }
  if (res.status < 400) return `unexpected status ${res.status}`;
  if (!type.startsWith('application/json')) return `${res.status} with content-type ${type}`;
  let body: { type?: unknown; error?: { type?: unknown; message?: unknown; code?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    return `${res.status} with a body that is not JSON: ${text.slice(0, 100)}`;
  }
  const e = body.error;
  if (!e || typeof e.type !== 'string' || typeof e.message !== 'string') return `malformed error: ${text}`;
  const anthropicShape = body.type === 'error';
  const code = typeof e.code === 'string' && e.code in ERROR_CODES ? (e.code as ErrorCode) : undefined;
  if (code) {
    // One of the gateway's own errors: the table decides status and type, the client's API the shape.
    const anthropic = path.startsWith('/v1/messages') || 'anthropic-version' in sent;
    if (anthropic !== anthropicShape) return `wrong shape for the family: ${text}`;
    if (res.status !== ERROR_CODES[code].status) return `${code} with status ${res.status}`;
    if (e.type !== ERROR_CODES[code][anthropic ? 'anthropic' : 'openai'])
      return `${code} with type ${e.type}`;
    if (code === 'internal_error') return `internal_error: ${text}`;
  }
  return undefined;
}

describe('credentials stay where they belong', () => {
  it('the gateway key never reaches the provider; neither key reaches the logs, errors included', async () => {
    // The mock keeps only its last 200 requests: mark this test's own so they can be told apart.
    const mark = { 'x-test-run': 'credentials' };
    const send = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${stack.gw.dataUrl}${path}`, post(body, { ...mark, ...headers })).then(
        async (r) => [r.status, await r.text()] as const,
      );
    const results = [
      await send('/v1/chat/completions', CHAT),
      await send('/v1/messages', MSG, { authorization: '', 'x-api-key': APP_KEY }),
      await send('/v1/embeddings', JSON.stringify({ model: 'mock-gpt', input: 'e' }), {
        authorization: '',
        'api-key': APP_KEY,
      }),
      await send('/v1/chat/completions', CHAT, { 'x-mock-status': '500' }),
      await send('/v1/messages', MSG, { 'x-mock-status': '429' }),
      await send('/v1/chat/completions', CHAT, { 'x-mock-drop': 'connect' }),
      await send('/v1/messages', MSG, { 'x-mock-delay-ms': '2500' }),
      await send(
        '/v1/chat/completions',
        JSON.stringify({
          model: 'mock-gpt',
          stream: true,
          messages: [{ role: 'user', content: 'a long one' }],
        }),
        { 'x-mock-drop': 'mid-stream', 'x-mock-chunks': '10', 'x-mock-chunk-delay-ms': '5' },
      ),
      await send('/v1/chat/completions', '{"broken', {}),
      await send('/v1/chat/completions', CHAT, { authorization: `Bearer ${APP_KEY}x` }),
    ];
    expect(results.map(([s]) => s)).toEqual([200, 200, 200, 500, 429, 502, 504, 200, 400, 401]);
    // The stream that died midway ended with an in-protocol error frame.
    expect(results[7]?.[1]).toContain('"code":"upstream_unreachable"');

    const got = stack.mock.received.filter((r) => r.headers['x-test-run'] === 'credentials');
    expect(got.length).toBeGreaterThanOrEqual(7);
    for (const r of got) {
      // The provider key replaced the gateway key (the mock answers 401 otherwise)...
      const presented = r.headers.authorization ?? r.headers['x-api-key'];
      expect([`Bearer ${PROVIDER_KEY}`, PROVIDER_KEY]).toContain(presented);
      // ...and the gateway key is in no header and no body the provider saw.
      expect(JSON.stringify(r.headers)).not.toContain(APP_KEY);
      expect(r.body.toString('latin1')).not.toContain(APP_KEY);
      expect(r.headers['api-key']).toBeUndefined();
    }
    // Everything the robustness run sent upstream (app keys in three different headers) too.
    for (const r of stack.mock.received) expect(JSON.stringify(r.headers)).not.toContain(APP_KEY);

    // The errors were logged, without either secret.
    const logs = stack.logs.text;
    expect(logs).toContain('upstream_unreachable');
    expect(logs).toContain('upstream_timeout');
    expect(logs).not.toContain(PROVIDER_KEY);
    expect(logs).not.toContain(APP_KEY);
    expect(appLogs.text).not.toContain(PROVIDER_KEY);
    expect(appLogs.text).not.toContain(APP_KEY);
  });
});
