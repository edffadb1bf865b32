/**
 * RedisCounters against real Redis: the machine's server under a random key prefix (removed afterwards) for
 * counting, and private `redis-server` processes for outages (killed, paused, frozen, restarted).
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BudgetWindow, ReserveResult } from '../../src/control/counters.ts';
import { type CounterFailure, graceMs, RedisCounters } from '../../src/control/redis-counters.ts';
import {
  dropPrefix,
  freePort,
  type PrivateRedis,
  privateRedis,
  rawCommand,
  SHARED_REDIS_URL,
  testPrefix,
} from '../helpers/redis.ts';
import { LogCapture } from '../helpers/stack.ts';

const prefix = testPrefix();
const open: RedisCounters[] = [];
let direct: Redis;

function counters(
  opts: { url?: string; timeoutMs?: number; logs?: LogCapture; warnEveryMs?: number } = {},
): RedisCounters & { failures: CounterFailure[] } {
  const c = new RedisCounters({
    url: opts.url ?? SHARED_REDIS_URL,
    keyPrefix: prefix,
    timeoutMs: opts.timeoutMs ?? 2000,
    logger: pino({ level: 'info' }, opts.logs ?? new LogCapture()),
    ...(opts.warnEveryMs !== undefined ? { warnEveryMs: opts.warnEveryMs } : {}),
    retryDelayMs: () => 50,
  });
  const failures: CounterFailure[] = [];
  c.onFailure = (f) => failures.push(f);
  open.push(c);
  return Object.assign(c, { failures });
}

let seq = 0;
const budget = (over: Partial<BudgetWindow> = {}): BudgetWindow => {
  const id = over.id ?? `b${++seq}`;
  return { id, key: `${id}:app:app-${seq}`, maxTokens: 1000, windowMs: 3_600_000, mode: 'failOpen', ...over };
};
const keyOf = (b: BudgetWindow, now: number) => `${prefix}budget:${b.key}:${now - (now % b.windowMs)}`;
const used = async (b: BudgetWindow, now: number) => Number((await direct.get(keyOf(b, now))) ?? 0);
const ok = (r: ReserveResult) => {
  if (!r.ok) throw new Error(`refused: ${r.reason} (${r.budget.id})`);
  return r.reservation;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  direct = new Redis(SHARED_REDIS_URL);
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await dropPrefix(SHARED_REDIS_URL, prefix);
  direct.disconnect();
});

describe('RedisCounters on a live Redis', () => {
  it('admits exactly floor(N / tokens) of many concurrent reservations from several clients', async () => {
    const replicas = [counters(), counters(), counters()];
    for (const c of replicas) expect(await c.ready(5000)).toBe(true);
    const b = budget({ maxTokens: 1000 });
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => replicas[i % 3]!.reserve([b], 7, now)),
    );
    const admitted = results.filter((r) => r.ok).length;
    expect(admitted).toBe(Math.floor(1000 / 7));
    expect(await used(b, now)).toBe(admitted * 7);
    for (const r of results.filter((r) => !r.ok))
      expect(r).toMatchObject({ ok: false, reason: 'spent', budget: { id: b.id } });
    for (const c of replicas) expect(c.failures).toEqual([]);
  });

  it('reserves in all of a request’s budgets or in none, and names the budget without room', async () => {
    const c = counters();
    await c.ready(5000);
    const wide = budget({ maxTokens: 100 });
    const narrow = budget({ maxTokens: 10 });
    const now = Date.now();
    ok(await c.reserve([wide, narrow], 8, now));
    const r = await c.reserve([wide, narrow], 8, now);
    expect(r).toMatchObject({ ok: false, reason: 'spent', budget: { id: narrow.id } });
    if (!r.ok && r.reason === 'spent') {
      const windowEnd = now - (now % narrow.windowMs) + narrow.windowMs;
      expect(r.retryAfterMs).toBe(windowEnd - now);
    }
    expect(await used(wide, now)).toBe(8);
    expect(await used(narrow, now)).toBe(8);
  });

  it('a request larger than the whole budget is admitted only into an empty window', async () => {
    const c = counters();
    await c.ready(5000);
    const b = budget({ maxTokens: 50 });
    const now = Date.now();
    const r = ok(await c.reserve([b], 500, now));
    expect(r.holds[0]?.tokens).toBe(50);
    expect((await c.reserve([b], 1, now)).ok).toBe(false);
  });

  it('settles: the reservation is replaced by the tokens used; 0 releases it', async () => {
    const c = counters();
    await c.ready(5000);
    const b = budget({ maxTokens: 100 });
    const now = Date.now();
    const a = ok(await c.reserve([b], 60, now));
    expect((await c.reserve([b], 60, now)).ok).toBe(false);
    c.settle(a, 25);
    const x = ok(await c.reserve([b], 60, now)); // 25 used + 60 reserved
    expect(await used(b, now)).toBe(85);
    c.settle(x, 0);
    await sleep(50);
    expect(await used(b, now)).toBe(25);
    // Over the reservation: the difference is added (the bound's "actual − reserved" term).
    const y = ok(await c.reserve([b], 10, now));
    c.settle(y, 40);
    await sleep(50);
    expect(await used(b, now)).toBe(65);
    expect(c.failures).toEqual([]);
  });

  it('window counters expire at the window end plus the grace; a settlement never re-creates an expired one', async () => {
    const c = counters();
    await c.ready(5000);
    const b = budget({ maxTokens: 100, windowMs: 1000 });
    const now = Date.now();
    const r = ok(await c.reserve([b], 10, now));
    const start = now - (now % 1000);
    const pttl = await direct.pttl(keyOf(b, now));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(start + 1000 + graceMs(1000) - Date.now() + 5);
    // The next window counts afresh.
    const next = ok(await c.reserve([b], 95, now + 1000));
    expect(await used(b, now + 1000)).toBe(95);
    await direct.del(keyOf(b, now)); // as if expired
    c.settle(r, 50);
    c.settle(next, 5);
    await sleep(50);
    expect(await direct.exists(keyOf(b, now))).toBe(0);
    expect(await used(b, now + 1000)).toBe(5);
  });

  it('answers synchronously with nothing held when no budget applies', () => {
    const c = counters();
    const r = c.reserve([], 10, Date.now());
    expect(r instanceof Promise).toBe(false);
    expect(r).toMatchObject({ ok: true, reservation: { holds: [] } });
  });
});

describe('RedisCounters when Redis fails', () => {
  let srv: PrivateRedis;
  beforeAll(async () => {
    srv = await privateRedis();
  });
  afterAll(async () => {
    srv.thaw();
    await srv.kill();
  });

  it('unreachable: failOpen admits uncounted, failClosed refuses; both answer at once and are counted', async () => {
    const port = await freePort(); // nobody listens
    const logs = new LogCapture();
    const c = counters({ url: `redis://127.0.0.1:${port}`, timeoutMs: 25, logs, warnEveryMs: 60_000 });
    expect(await c.ready(200)).toBe(false);
    const open = budget();
    const closed = budget({ mode: 'failClosed' });
    const t0 = performance.now();
    const a = await c.reserve([open], 10, Date.now());
    const b = await c.reserve([open, closed], 10, Date.now());
    const ms = performance.now() - t0;
    expect(a).toMatchObject({ ok: true, reservation: { holds: [] } });
    expect(b).toMatchObject({ ok: false, reason: 'unavailable', budget: { id: closed.id } });
    expect(ms).toBeLessThan(25);
    expect(c.failures).toEqual([
      { op: 'reserve', mode: 'open' },
      { op: 'reserve', mode: 'closed' },
    ]);
    // Warnings are rate-limited per kind: many failures, one line each for refused/admitted requests and for the
    // connection.
    for (let i = 0; i < 50; i++) await c.reserve([open], 1, Date.now());
    const warnings = (what: string) =>
      logs.lines.filter((l) => l.includes('"level":40') && l.includes(what)).length;
    expect(warnings('budget counter store unavailable')).toBe(1);
    expect(warnings('connection error')).toBeLessThanOrEqual(1);
  });

  it('a server that stops answering (CLIENT PAUSE) costs a request at most the timeout; late answers are not lost', async () => {
    const c = counters({ url: srv.url, timeoutMs: 25 });
    expect(await c.ready(5000)).toBe(true);
    const open = budget({ maxTokens: 100 });
    const closed = budget({ maxTokens: 100, mode: 'failClosed' });
    const now = Date.now();
    ok(await c.reserve([open], 10, now));
    ok(await c.reserve([closed], 10, now));
    expect(await rawCommand(srv.port, 'CLIENT PAUSE 600 ALL')).toBe('+OK');
    const times: number[] = [];
    const timed = async (b: BudgetWindow) => {
      const t0 = performance.now();
      const r = await c.reserve([b], 10, now);
      times.push(performance.now() - t0);
      return r;
    };
    const opened = await Promise.all(Array.from({ length: 20 }, () => timed(open)));
    const refused = await Promise.all(Array.from({ length: 20 }, () => timed(closed)));
    expect(Math.max(...times)).toBeLessThan(25 + 40);
    for (const r of opened) expect(r).toMatchObject({ ok: true, reservation: { holds: [] } });
    for (const r of refused) expect(r).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(c.failures.filter((f) => f.op === 'reserve')).toHaveLength(40);
    // Admitted open: settled with 5 tokens each. Once the pause ends the scripts run (room for 9 of each):
    // the open ones that reserved are settled to 5, the closed ones given back.
    for (const r of opened) if (r.ok) c.settle(r.reservation, 5);
    await sleep(900);
    const check = new Redis(srv.url);
    expect(Number(await check.get(keyOf(open, now)))).toBe(10 + 9 * 5);
    expect(Number(await check.get(keyOf(closed, now)))).toBe(10);
    check.disconnect();
  });

  it('a frozen server (SIGSTOP) never hangs a request; counting resumes when it thaws', async () => {
    const c = counters({ url: srv.url, timeoutMs: 25 });
    expect(await c.ready(5000)).toBe(true);
    const b = budget({ maxTokens: 100, mode: 'failClosed' });
    srv.freeze();
    try {
      const t0 = performance.now();
      const r = await c.reserve([b], 10, Date.now());
      expect(performance.now() - t0).toBeLessThan(25 + 40);
      expect(r).toMatchObject({ ok: false, reason: 'unavailable' });
    } finally {
      srv.thaw();
    }
    const deadline = Date.now() + 5000;
    let r = await c.reserve([b], 10, Date.now());
    while (!r.ok && Date.now() < deadline) {
      await sleep(50);
      r = await c.reserve([b], 10, Date.now());
    }
    expect(r.ok).toBe(true);
  });

  it('reconnects after the server restarts, and counting resumes', async () => {
    const c = counters({ url: srv.url, timeoutMs: 25 });
    expect(await c.ready(5000)).toBe(true);
    const b = budget({ maxTokens: 30 });
    const now = Date.now();
    ok(await c.reserve([b], 10, now));
    await srv.kill();
    const t0 = performance.now();
    expect(await c.reserve([b], 10, now)).toMatchObject({ ok: true, reservation: { holds: [] } });
    expect(performance.now() - t0).toBeLessThan(25 + 40);
    await srv.start(); // empty: nothing is kept on disk
    expect(await c.ready(5000)).toBe(true);
    ok(await c.reserve([b], 10, now));
    ok(await c.reserve([b], 10, now));
    ok(await c.reserve([b], 10, now));
    expect(await c.reserve([b], 10, now)).toMatchObject({ ok: false, reason: 'spent' });
  });
});
