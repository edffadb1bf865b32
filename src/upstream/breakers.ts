import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { BreakerConfig } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import {
  type Attempt,
  attempt,
  type BreakerSend,
  bodyOutcome,
  failedAttempt,
  isCountedFailure,
} from './breaker-call.ts';
import type { UpstreamResponse } from './forward.ts';
import type { UpstreamTarget } from './targets.ts';

export type { Attempt, BreakerSend } from './breaker-call.ts';
export { discardBody } from './breaker-call.ts';

/** Where a target's breaker stands: calls flow, calls are rejected, or one probe is allowed through. */
export type BreakerState = 'closed' | 'open' | 'halfOpen';

/** A breaker changed state. `target` is the breaker key (`provider/model`, or `provider/*`). */
export interface BreakerTransition {
  readonly target: string;
  readonly from: BreakerState;
  readonly to: BreakerState;
}

/** How a fallback answered: another target, the canned degraded answer, or a hard 503. */
export type FallbackKind = 'target' | 'degraded' | 'fail';

/** A fallback served a request instead of its primary target (`from`, a breaker key); `to` for kind `target`. */
export interface FallbackServed {
  readonly from: string;
  readonly kind: FallbackKind;
  readonly to: string | undefined;
}

/** What the metrics (or a test) subscribe to. Called synchronously on the request path: keep it cheap. */
export interface BreakerListener {
  onTransition?(e: BreakerTransition): void;
  onFallback?(e: FallbackServed): void;
}

/** The breakers of every upstream target, created lazily. Built once at start; `close()` at shutdown. */
export interface Breakers {
  /** The breaker key of a target: `provider/model` for a model the provider lists, else `provider/*`. */
  keyOf(target: UpstreamTarget, model: string): string;
  /**
   * Runs `send` through the target's breaker (rejected at once, without calling, while open). Resolves at the
   * response headers; the breaker counts the call when its body ends, so the caller must read the body to
   * the end or destroy it (as the relay does).
   */
  call(target: UpstreamTarget, model: string, send: BreakerSend, signal?: AbortSignal): Promise<Attempt>;
  /** A breaker's state; `closed` for one never used. */
  state(key: string): BreakerState;
  /** Every breaker created so far and its state. */
  states(): ReadonlyMap<string, BreakerState>;
  /** Milliseconds until an open breaker lets a probe through (0 while half-open); undefined when closed. */
  retryAfterMs(key: string): number | undefined;
  /** Adds a listener; returns its removal. */
  subscribe(listener: BreakerListener): () => void;
  /** Reports a fallback served (called by `dispatch`). */
  fallbackServed(e: FallbackServed): void;
  /** Stops every breaker's timers. Later calls fail with `not_ready`. */
  close(): void;
}

type Thunk = () => Promise<UpstreamResponse>;

interface Entry {
  readonly key: string;
  readonly opts: BreakerConfig;
  readonly breaker: CircuitBreaker<[Thunk], UpstreamResponse>;
  /** Drives the rolling window: one `rotate` per bucket interval, or `rollingCountBuckets` at once to clear it. */
  readonly rotate: EventEmitter;
  state: BreakerState;
  openedAt: number;
}

/**
 * Builds the breakers over the providers' `breaker` options (`config.providers`). `now` is for tests.
 *
 * Opossum is used as is, with four choices made here:
 * - Its own call `timeout` is off (`false`; its default is 10 s): it would reject without aborting the request,
 *   leaking the upstream call. `timeoutMs` is enforced here instead, by aborting this call's signal.
 * - The window rotates from one timer per provider (opossum would run one per breaker), and is cleared when a
 *   breaker closes, so a recovered target starts afresh instead of reopening on its first failure.
 * - `errorFilter` passes everything that is not counted (client aborts, gateway bugs) — except during a
 *   half-open probe, where opossum would take a passed error as a success and close: an inconclusive probe
 *   reopens the breaker instead, and the next probe comes after `resetTimeoutMs`.
 * - A 5xx response is a failure: the action rejects with it wrapped, `call()` unwraps it.
 * - The action hands the response over at its headers but settles when the body ends, so a provider that
 *   drops or stalls streams midway counts too, and a half-open probe succeeds only on a whole response.
 */
export function createBreakers(
  providers: Readonly<Record<string, { readonly breaker: BreakerConfig }>>,
  now: () => number = Date.now,
): Breakers {
  const entries = new Map<string, Entry>();
  const rotations = new Map<string, { timer: NodeJS.Timeout; entries: Set<Entry> }>();
  const listeners = new Set<BreakerListener>();
  let closed = false;

  /** Tells every listener; a listener (metrics) that throws must never fail a request. */
  const notify = (tell: (l: BreakerListener) => void) => {
    for (const l of listeners) {
      try {
        tell(l);
      } catch {
        // ignored, see above
      }
    }
  };

  function rotationOf(providerId: string, opts: BreakerConfig) {
    let r = rotations.get(providerId);
    if (!r) {
      const set = new Set<Entry>();
      const timer = setInterval(
        () => {
          for (const e of set) e.rotate.emit('rotate');
        },
        Math.floor(opts.rollingCountTimeoutMs / opts.rollingCountBuckets),
      );
      timer.unref();
      r = { timer, entries: set };
      rotations.set(providerId, r);
    }
    return r;
  }

  function entryFor(target: UpstreamTarget, key: string): Entry {
    const found = entries.get(key);
    if (found) return found;
    const opts = providers[target.providerId]?.breaker;
    if (!opts) throw new Error(`no breaker options for provider ${target.providerId}`);
    const rotate = new EventEmitter();
    const breaker: CircuitBreaker<[Thunk], UpstreamResponse> = new CircuitBreaker((run: Thunk) => run(), {
      name: key,
      timeout: false,
      resetTimeout: opts.resetTimeoutMs,
      errorThresholdPercentage: opts.errorThresholdPercentage,
      volumeThreshold: opts.volumeThreshold,
      rollingCountTimeout: opts.rollingCountTimeoutMs,
      rollingCountBuckets: opts.rollingCountBuckets,
      rotateBucketController: rotate,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      errorFilter: (err: unknown) => !isCountedFailure(err) && !breaker.halfOpen,
    });
    const entry: Entry = { key, opts, breaker, rotate, state: 'closed', openedAt: 0 };
    const move = (to: BreakerState) => {
      const from = entry.state;
      entry.state = to;
      if (from !== to) notify((l) => l.onTransition?.({ target: key, from, to }));
    };
    breaker.on('open', () => {
      entry.openedAt = now();
      move('open');
    });
    breaker.on('halfOpen', () => move('halfOpen'));
    breaker.on('close', () => {
      for (let i = 0; i < opts.rollingCountBuckets; i++) rotate.emit('rotate');
      move('closed');
    });
    rotationOf(target.providerId, opts).entries.add(entry);
    entries.set(key, entry);
    return entry;
  }

  const keyOf = (target: UpstreamTarget, model: string) =>
    target.models.includes(model) ? `${target.providerId}/${model}` : `${target.providerId}/*`;

  function retryAfterMs(key: string): number | undefined {
    const e = entries.get(key);
    if (!e || e.state === 'closed') return undefined;
    if (e.state === 'halfOpen') return 0;
    return Math.max(0, e.openedAt + e.opts.resetTimeoutMs - now());
  }

  return {
    keyOf,
    retryAfterMs,

    call(target, model, send, signal) {
      if (closed) return Promise.reject(new GatewayError('not_ready', 'the gateway is shutting down'));
      const e = entryFor(target, keyOf(target, model));
      return new Promise<Attempt>((resolve, reject) => {
        let handedOver = false;
        // The action hands the response over at its headers, but settles (and is counted) when its body ends.
        const action = async () => {
          const response = await attempt(send, target.providerId, e.opts.timeoutMs, signal);
          handedOver = true;
          resolve({ ok: true, response });
          await bodyOutcome(response.body, target.providerId, signal);
          return response;
        };
        e.breaker.fire(action).catch((err: unknown) => {
          // After the handover a failure is only counted: the relay ends the stream in the client's protocol.
          if (handedOver) return;
          try {
            resolve(failedAttempt(err, () => retryAfterMs(e.key) ?? 0));
          } catch (neutral) {
            reject(neutral);
          }
        });
      });
    },

    state: (key) => entries.get(key)?.state ?? 'closed',

    states: () => new Map([...entries.values()].map((e) => [e.key, e.state])),

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    fallbackServed: (e) => notify((l) => l.onFallback?.(e)),

    close() {
      closed = true;
      for (const r of rotations.values()) clearInterval(r.timer);
      for (const e of entries.values()) e.breaker.shutdown();
      rotations.clear();
      entries.clear();
      listeners.clear();
    },
  };
}
