import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  type BudgetWindow,
  type Counters,
  type Hold,
  holdFor,
  NOTHING_HELD,
  type Reservation,
  type ReserveResult,
  windowStart,
} from './counters.ts';

/**
 * Reserves tokens in every budget window of a request, all or nothing, atomically (a script runs alone).
 * KEYS[i]: the window's counter. ARGV[3i-2]: the tokens to reserve in it, ARGV[3i-1]: the budget's maxTokens,
 * ARGV[3i]: when the counter expires (unix ms: the window's end plus a grace for late settlements).
 * Returns 0 when reserved, else the 1-based index of the first window without room (nothing is changed).
 */
export const RESERVE_LUA = `
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then return i end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  redis.call('PEXPIREAT', KEYS[i], ARGV[3 * i])
end
return 0
`;

/**
 * Corrects reservations: adds ARGV[i] (the tokens used minus those reserved; negative releases) to KEYS[i], only
 * while the window's counter still exists (an expired window is never re-created without its expiry).
 */
export const SETTLE_LUA = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
return 0
`;

/**
 * How long a window's counter outlives the window: as long as the window, at most a minute. A response that ends
 * within it still settles into its own window; clocks of replicas and Redis that disagree by less than it never
 * see a window's counter vanish early.
 */
export function graceMs(windowMs: number): number {
  return Math.min(windowMs, 60_000);
}

type WarnKind = 'connection' | 'reserve' | 'settle';

type Script = (numKeys: number, ...args: (string | number)[]) => Promise<number>;

/** The counter store's failures, for metrics: a reservation (and how its budgets handled it) or a settlement. */
export type CounterFailure = { op: 'reserve'; mode: 'open' | 'closed' } | { op: 'settle' };

export interface RedisCountersOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string;
  /** Every key starts with it (`ringfence:`): `${prefix}budget:${budgetId}:${scope}:${subject}:${windowStart}`. */
  readonly keyPrefix: string;
  /** The longest a request waits for the store; past it, each budget follows its `mode`. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Warnings about an unavailable store: at most one per this many ms (the rest are counted in it). */
  readonly warnEveryMs?: number;
  /** Commands in flight beyond which calls fail at once instead of queueing behind a store that stalls. */
  readonly maxInFlight?: number;
  /** Delay before reconnect attempt n (default: 50 ms doubling, at most 1 s). */
  readonly retryDelayMs?: (attempt: number) => number;
}

/** Admitted open after a timeout: holds nothing yet; `late` is held if the script's late answer says reserved. */
class LateReservation implements Reservation {
  readonly holds: readonly Hold[] = [];
  readonly late: readonly Hold[];
  readonly reserved: Promise<boolean>;
  constructor(late: readonly Hold[], reserved: Promise<boolean>) {
    this.late = late;
    this.reserved = reserved;
  }
}

/**
 * Budget counters shared by every replica, in Redis. One round trip per admitted request (the reservation
 * script) and one fire-and-forget settlement after the response. The data plane never waits longer than
 * `timeoutMs`: a store that is down (no connection: the call fails at once, no offline queue), slow or saturated
 * answers "unavailable", and each budget follows its `mode` (`failOpen`: admitted, and counted only if the
 * script's answer still comes; `failClosed`: refused, and a late reservation given back). The client reconnects
 * in the background.
 */
export class RedisCounters implements Counters {
  readonly #redis: Redis;
  readonly #reserve: Script;
  readonly #settle: Script;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #warnEveryMs: number;
  readonly #maxInFlight: number;
  #inFlight = 0;
  /** Per kind of warning: when it was last logged, and how many were suppressed since. */
  readonly #warned = new Map<WarnKind, { at: number; suppressed: number }>();
  #closing = false;
  #settling = new Set<Promise<unknown>>();
  /** Told of every failure (metrics). */
  onFailure: ((f: CounterFailure) => void) | undefined;

  constructor(opts: RedisCountersOptions) {
    this.#prefix = opts.keyPrefix;
    this.#timeoutMs = opts.timeoutMs;
    this.#logger = opts.logger;
    this.#warnEveryMs = opts.warnEveryMs ?? 10_000;
    this.#maxInFlight = opts.maxInFlight ?? 1024;
    const retry = opts.retryDelayMs ?? ((n: number) => Math.min(1000, 50 * 2 ** Math.min(n, 10)));
    this.#redis = new Redis(opts.url, {
      connectionName: 'ringfence-counters',
      // Fail fast instead of queueing: no offline queue, no resend of commands caught by a disconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: Math.max(1000, opts.timeoutMs * 40),
      // A connection that stops answering while commands wait is dropped and reconnected (a hung host).
      socketTimeout: Math.max(2000, opts.timeoutMs * 80),
      retryStrategy: (n) => (this.#closing ? null : retry(n)),
    });
    this.#redis.on('error', (err: Error) =>
      this.#warn('connection', err, 'budget counter store (Redis) connection error'),
    );
    this.#redis.on('ready', () => this.#logger.info('budget counter store (Redis) connected'));
    this.#redis.defineCommand('rfBudgetReserve', { lua: RESERVE_LUA });
    this.#redis.defineCommand('rfBudgetSettle', { lua: SETTLE_LUA });
    const scripts = this.#redis as unknown as Record<'rfBudgetReserve' | 'rfBudgetSettle', Script>;
    this.#reserve = scripts.rfBudgetReserve.bind(this.#redis);
    this.#settle = scripts.rfBudgetSettle.bind(this.#redis);
  }

  /** Resolves true once connected, false if not within `ms` (the gateway starts anyway and keeps trying). */
  ready(ms: number): Promise<boolean> {
    if (this.#redis.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.#redis.on('ready', onReady);
    });
  }

  /** The Redis key of a budget window. */
  key(budget: BudgetWindow, start: number): string {
    return `${this.#prefix}budget:${budget.key}:${start}`;
  }

  reserve(
    budgets: readonly BudgetWindow[],
    tokens: number,
    now: number,
  ): ReserveResult | Promise<ReserveResult> {
    if (budgets.length === 0) return NOTHING_HELD;
    const holds: Hold[] = budgets.map((b) => ({
      budget: b,
      start: windowStart(b.windowMs, now),
      tokens: holdFor(b, tokens),
    }));
    const unavailable = this.#unavailable();
    if (unavailable) return this.#failed(holds, unavailable);
    const args: (string | number)[] = holds.map((h) => this.key(h.budget, h.start));
    for (const h of holds)
      args.push(h.tokens, h.budget.maxTokens, h.start + h.budget.windowMs + graceMs(h.budget.windowMs));
    const call = this.#call(this.#reserve, holds.length, args);
    return new Promise<ReserveResult>((resolve) => {
      let answered = false;
      const timer = setTimeout(() => {
        // Timers run before I/O in an event-loop turn: a reply that has arrived but is not read yet (a busy loop,
        // not a slow store) gets this one turn to be read before the request stops waiting.
        setImmediate(() => {
          if (answered) return;
          answered = true;
          resolve(this.#failed(holds, new Error(`no answer within ${this.#timeoutMs} ms`), call));
        });
      }, this.#timeoutMs);
      call.then(
        (refused) => {
          if (answered) return; // late: #failed decided what becomes of it
          answered = true;
          clearTimeout(timer);
          const h = holds[refused - 1];
          resolve(
            refused === 0 || !h
              ? { ok: true, reservation: { holds } }
              : {
                  ok: false,
                  reason: 'spent',
                  budget: h.budget,
                  retryAfterMs: h.start + h.budget.windowMs - now,
                },
          );
        },
        (err: unknown) => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          resolve(this.#failed(holds, err));
        },
      );
    });
  }

  settle(reservation: Reservation, tokens: number): void {
    if (reservation instanceof LateReservation) {
      // Settled when the late answer is known: if the script did reserve, correct it like any other.
      void reservation.reserved.then((ok) => {
        if (ok) this.#send(reservation.late.map((h) => [h, tokens - h.tokens]));
      });
      return;
    }
    if (reservation.holds.length === 0) return;
    this.#send(reservation.holds.map((h) => [h, tokens - h.tokens]));
  }

  async close(): Promise<void> {
    this.#closing = true;
    // Settlements in flight get a second to land (a stalled store does not hold the shutdown longer).
    const grace = () => new Promise((r) => setTimeout(r, 1000).unref());
    await Promise.race([Promise.allSettled([...this.#settling]), grace()]);
    await Promise.race([this.#redis.quit().catch(() => undefined), grace()]);
    this.#redis.disconnect();
  }

  /** Sends corrections (fire and forget, same timeout as reservations; failures counted, the rest reported late). */
  #send(corrections: Array<[Hold, number]>): void {
    const keys: string[] = [];
    const deltas: number[] = [];
    for (const [h, d] of corrections)
      if (d !== 0) {
        keys.push(this.key(h.budget, h.start));
        deltas.push(Math.round(d));
      }
    if (keys.length === 0) return;
    const fail = (err: unknown) => {
      this.onFailure?.({ op: 'settle' });
      this.#warn('settle', err, 'budget settlement not recorded: the reservation stands as reserved');
    };
    const unavailable = this.#unavailable();
    if (unavailable) {
      fail(unavailable);
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      fail(new Error(`no answer within ${this.#timeoutMs} ms (it may still apply)`));
    }, this.#timeoutMs);
    const p = this.#call(this.#settle, keys.length, [...keys, ...deltas]).then(
      () => clearTimeout(timer),
      (err: unknown) => {
        clearTimeout(timer);
        if (!timedOut) fail(err);
      },
    );
    this.#settling.add(p);
    void p.finally(() => this.#settling.delete(p));
  }

  #call(script: Script, numKeys: number, args: (string | number)[]): Promise<number> {
    this.#inFlight++;
    let p: Promise<number>;
    try {
      p = script(numKeys, ...args);
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.finally(() => this.#inFlight--);
  }

  /** Why a call would fail at once (not connected, or too many calls waiting on a stalled store), if it would. */
  #unavailable(): Error | undefined {
    if (this.#redis.status !== 'ready') return new Error(`not connected (${this.#redis.status})`);
    if (this.#inFlight >= this.#maxInFlight)
      return new Error(`${this.#inFlight} commands already waiting for the store`);
    return undefined;
  }

  /**
   * The store did not answer: a failClosed budget refuses the request; otherwise it is admitted. When the call is
   * still pending (a timeout), its late answer is not lost: a reservation made for a request that was refused is
   * given back; one made for a request admitted open is kept and settled like any other.
   */
  #failed(holds: readonly Hold[], err: unknown, pending?: Promise<number>): ReserveResult {
    const closed = holds.find((h) => h.budget.mode === 'failClosed');
    this.onFailure?.({ op: 'reserve', mode: closed ? 'closed' : 'open' });
    this.#warn(
      'reserve',
      err,
      closed
        ? `budget counter store unavailable: budget ${closed.budget.id} fails closed, request refused`
        : 'budget counter store unavailable: budgets fail open, request admitted',
    );
    const reserved = pending?.then(
      (refused) => refused === 0,
      () => false,
    );
    if (closed) {
      void reserved?.then((ok) => {
        if (ok) this.#send(holds.map((h) => [h, -h.tokens]));
      });
      return { ok: false, reason: 'unavailable', budget: closed.budget };
    }
    return reserved ? { ok: true, reservation: new LateReservation(holds, reserved) } : NOTHING_HELD;
  }

  /** At most one warning of each kind per `warnEveryMs`, with how many were suppressed since the last. */
  #warn(kind: WarnKind, err: unknown, msg: string): void {
    if (this.#closing) return;
    const now = performance.now();
    const w = this.#warned.get(kind);
    if (w && now - w.at < this.#warnEveryMs) {
      w.suppressed++;
      return;
    }
    this.#warned.set(kind, { at: now, suppressed: 0 });
    this.#logger.warn(
      { err: err instanceof Error ? err.message : String(err), suppressed: w?.suppressed ?? 0 },
      msg,
    );
  }
}
