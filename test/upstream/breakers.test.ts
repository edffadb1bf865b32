import { text } from 'node:stream/consumers';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashKey, type LoadedConfig, parseConfig } from '../../src/config/load.ts';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import {
  type Attempt,
  type Breakers,
  type BreakerTransition,
  createBreakers,
} from '../../src/upstream/breakers.ts';
import { ClientClosedError } from '../../src/upstream/errors.ts';
import { forward } from '../../src/upstream/forward.ts';
import { createUpstreams, type Upstreams } from '../../src/upstream/targets.ts';

/**
 * Breakers over the real `forward()` against a real mock provider on loopback; no gateway. Every provider has
 * its own small thresholds so each test opens a breaker in a handful of calls.
 */
function config(mockUrl: string): string {
  const p = (
    base: string,
    breaker: string,
    timeouts = '{ connectMs: 500, headersMs: 300, bodyMs: 2000 }',
  ) => `
    kind: openai
    baseUrl: ${base}
    models: [mock-gpt]
    timeouts: ${timeouts}
    breaker: ${breaker}`;
  return `
providers:
  up: ${p(`${mockUrl}/v1`, '{ volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 400 }')}
  pair: ${p(`${mockUrl}/v1`, '{ volumeThreshold: 2, resetTimeoutMs: 400 }')}
  timed: ${p(`${mockUrl}/v1`, '{ volumeThreshold: 2, timeoutMs: 150 }', '{ connectMs: 500, headersMs: 10000, bodyMs: 10000 }')}
  refused: ${p('http://127.0.0.1:1/v1', '{ volumeThreshold: 2, resetTimeoutMs: 400 }')}
applications:
  - id: app
    keys: [{ id: k1, sha256: ${hashKey('unused')} }]
`;
}

const BODY = Buffer.from(JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] }));
const STREAM = Buffer.from(
  JSON.stringify({
    model: 'mock-gpt',
    stream: true,
    messages: [{ role: 'user', content: 'a longer reply' }],
  }),
);

let mock: MockProvider;
let loaded: LoadedConfig;
let upstreams: Upstreams;
let breakers: Breakers;
let transitions: BreakerTransition[];

beforeAll(async () => {
  mock = await startMockProvider();
  loaded = parseConfig(config(mock.url), 'breakers.yaml', {});
  upstreams = createUpstreams(loaded);
});
afterAll(async () => {
  await upstreams.close();
  await mock.close();
});
beforeEach(() => {
  breakers = createBreakers(loaded.config.providers);
  transitions = [];
  breakers.subscribe({ onTransition: (t) => transitions.push(t) });
});
afterEach(() => breakers.close());

/** One call to `provider` through its breaker; `fault` headers go to the mock. */
function call(
  provider: string,
  fault: Record<string, string> = {},
  signal?: AbortSignal,
  body = BODY,
): Promise<Attempt> {
  const target = upstreams.byProvider('openai', provider)!;
  const headers = { 'content-type': 'application/json', ...fault };
  return breakers.call(
    target,
    'mock-gpt',
    (sig) => forward(target, 'POST', '/v1/chat/completions', headers, body, sig, 'req-test'),
    signal,
  );
}

/** A one-word summary of an attempt (bodies drained): `ok:200`, `response:500`, `error:upstream_timeout`, `open`. */
async function outcome(p: Promise<Attempt>): Promise<string> {
  const a = await p;
  if (a.ok || a.reason === 'response') {
    await text(a.response.body);
    return `${a.ok ? 'ok' : 'response'}:${a.response.status}`;
  }
  return a.reason === 'error' ? `error:${a.error.code}` : 'open';
}

const state = (provider: string) => breakers.state(`${provider}/mock-gpt`);
const status = (s: number) => ({ 'x-mock-status': String(s) });

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens `provider`'s breaker with 5xx answers (`n` = its volume threshold). */
async function trip(provider: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await outcome(call(provider, status(500)));
  expect(state(provider)).toBe('open');
}

describe('what opens a breaker', () => {
  it('5xx answers open it exactly at the volume threshold, and are kept as responses', async () => {
    const codes = [500, 502, 503, 529];
    for (const [i, code] of codes.entries()) {
      expect(await outcome(call('up', status(code)))).toBe(`response:${code}`);
      expect(state('up'), `after ${i + 1} failures`).toBe(i < 3 ? 'closed' : 'open');
    }
    expect(transitions).toEqual([{ target: 'up/mock-gpt', from: 'closed', to: 'open' }]);
  });

  it('it opens only when the failed share exceeds errorThresholdPercentage', async () => {
    for (const s of [200, 200, 500, 500]) await outcome(call('up', s === 200 ? {} : status(s)));
    expect(state('up')).toBe('closed'); // 2 of 4 is 50%, not more
    expect(await outcome(call('up', status(500)))).toBe('response:500');
    expect(state('up')).toBe('open'); // 3 of 5
  });

  it('4xx answers never trip it: they are answers, relayed as is', async () => {
    for (const s of [400, 401, 404, 429, 400, 422, 404, 429]) {
      expect(await outcome(call('up', status(s)))).toBe(`ok:${s}`);
    }
    expect(state('up')).toBe('closed');
    expect(transitions).toEqual([]);
  });

  it('client aborts never trip it', async () => {
    const aborts = Array.from({ length: 6 }, async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      return call('up', { 'x-mock-delay-ms': '1000' }, ac.signal).catch((e: unknown) => e);
    });
    for (const e of await Promise.all(aborts)) expect(e).toBeInstanceOf(ClientClosedError);
    expect(state('up')).toBe('closed');
    // Were the aborts counted, 4 of them would have opened it; with them as neutral, 1 failure of 7 is not enough.
    await outcome(call('up', status(500)));
    expect(state('up')).toBe('closed');
  });

  it('a hanging provider (no headers within headersMs) counts as a failure', async () => {
    const hang = { 'x-mock-delay-ms': '2000' };
    // undici's timers tick about every 0.5 s: a 300 ms headers timeout fires within about 1.3 s.
    const results = await Promise.all([outcome(call('pair', hang)), outcome(call('pair', hang))]);
    expect(results).toEqual(['error:upstream_timeout', 'error:upstream_timeout']);
    expect(state('pair')).toBe('open');
  });

  it('the breaker call timeout (timeoutMs) aborts the upstream call and counts; a client abort stays one', async () => {
    const target = upstreams.byProvider('openai', 'timed')!;
    const slow = { 'x-mock-delay-ms': '5000' };
    const first = await call('timed', slow);
    expect(first.ok === false && first.reason === 'error' && first.error.message).toContain('call timeout');
    await until(() => target.pool.stats.running === 0);

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await expect(call('timed', slow, ac.signal)).rejects.toBeInstanceOf(ClientClosedError);
    expect(state('timed')).toBe('closed'); // 1 failure of 2 calls: 50%, not more

    expect(await outcome(call('timed', slow))).toBe('error:upstream_timeout');
    expect(state('timed')).toBe('open');
  });

  it('a stream the provider drops midway counts, though its response was already handed over', async () => {
    const drop = { 'x-mock-drop': 'mid-stream', 'x-mock-chunks': '10', 'x-mock-chunk-delay-ms': '5' };
    for (let i = 0; i < 2; i++) {
      const a = await call('pair', drop, undefined, STREAM);
      expect(a.ok).toBe(true);
      if (a.ok) await expect(text(a.response.body)).rejects.toThrow();
    }
    await until(() => state('pair') === 'open');
  });

  it('a body the gateway itself closes early (a guardrail stop, a client gone) does not count', async () => {
    for (let i = 0; i < 4; i++) {
      const a = await call('up', { 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '5' }, undefined, STREAM);
      if (!a.ok) throw new Error('expected a response');
      for await (const _ of a.response.body) break; // destroys the body after its first chunk
    }
    await outcome(call('up', status(500)));
    expect(state('up')).toBe('closed'); // 1 failure of 5
  });

  it('connection refused counts as a failure', async () => {
    expect(await outcome(call('refused'))).toBe('error:upstream_unreachable');
    expect(state('refused')).toBe('closed');
    expect(await outcome(call('refused'))).toBe('error:upstream_unreachable');
    expect(state('refused')).toBe('open');
    expect(await outcome(call('refused'))).toBe('open');
  });
});

describe('an open breaker', () => {
  it('rejects at once without calling the provider, with the time left until the probe', async () => {
    await trip('up', 4);
    const before = mock.received.length;
    for (let i = 0; i < 5; i++) {
      const a = await call('up');
      expect(a.ok === false && a.reason).toBe('open');
      const left = a.ok === false && a.reason === 'open' ? a.retryAfterMs : -1;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(400);
    }
    expect(mock.received.length).toBe(before);
  });

  it('after resetTimeoutMs lets one probe through; its success closes the breaker with a fresh window', async () => {
    const thrower = breakers.subscribe({
      onTransition: () => {
        throw new Error('a broken listener');
      },
    });
    await trip('pair', 2);
    await until(() => state('pair') === 'halfOpen', 2000);
    expect(breakers.retryAfterMs('pair/mock-gpt')).toBe(0);

    const before = mock.received.length;
    const probe = outcome(call('pair', { 'x-mock-delay-ms': '200' }));
    // While the probe is out, other calls are still rejected.
    expect(await outcome(call('pair'))).toBe('open');
    expect(await probe).toBe('ok:200');
    expect(mock.received.length).toBe(before + 1);
    await until(() => state('pair') === 'closed'); // counted when the body has ended
    expect(transitions.map((t) => `${t.from}>${t.to}`)).toEqual([
      'closed>open',
      'open>halfOpen',
      'halfOpen>closed',
    ]);

    // The failures from before are forgotten: one new failure does not reopen it.
    await outcome(call('pair', status(500)));
    expect(state('pair')).toBe('closed');
    thrower();
    expect(breakers.states()).toEqual(new Map([['pair/mock-gpt', 'closed']]));
  });

  it('a failed probe opens it again', async () => {
    await trip('pair', 2);
    await until(() => state('pair') === 'halfOpen', 2000);
    expect(await outcome(call('pair', status(503)))).toBe('response:503');
    expect(state('pair')).toBe('open');
    expect(breakers.retryAfterMs('pair/mock-gpt')).toBeGreaterThan(0);
  });

  it('a probe the client aborts proves nothing: the breaker opens again instead of closing', async () => {
    await trip('pair', 2);
    await until(() => state('pair') === 'halfOpen', 2000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await expect(call('pair', { 'x-mock-delay-ms': '1000' }, ac.signal)).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    expect(state('pair')).toBe('open');
    await until(() => state('pair') === 'halfOpen', 2000);
    expect(await outcome(call('pair'))).toBe('ok:200');
    await until(() => state('pair') === 'closed');
  });
});

describe('breaker keys', () => {
  it('are provider/model for listed models and provider/* for the rest, so clients cannot mint breakers', () => {
    const target = upstreams.byProvider('openai', 'up')!;
    expect(breakers.keyOf(target, 'mock-gpt')).toBe('up/mock-gpt');
    expect(breakers.keyOf(target, 'anything-else')).toBe('up/*');
  });
});
