import { finished, type Readable } from 'node:stream';
import CircuitBreaker from 'opossum';
import { GatewayError } from '../core/errors.ts';
import { toGatewayError } from './errors.ts';
import type { UpstreamResponse } from './forward.ts';

/**
 * One call through a breaker. Counted failures come back as values, not rejections, so a 5xx response is kept
 * (relayable when no fallback serves); only errors that are not the provider's fault (client abort, gateway
 * bug) reject.
 */
export type Attempt =
  | { readonly ok: true; readonly response: UpstreamResponse }
  | { readonly ok: false; readonly reason: 'open'; readonly retryAfterMs: number }
  | { readonly ok: false; readonly reason: 'response'; readonly response: UpstreamResponse }
  | { readonly ok: false; readonly reason: 'error'; readonly error: GatewayError };

/** Makes the upstream call; `signal` (the client's, plus the breaker's call timeout) must reach `forward`. */
export type BreakerSend = (signal: AbortSignal | undefined) => Promise<UpstreamResponse>;

/** The failures a breaker counts, besides 5xx responses: the provider's connection or timing failed. */
const COUNTED = new Set(['upstream_unreachable', 'upstream_timeout', 'upstream_protocol_error']);

/**
 * A 5xx response, thrown inside the breaker's action only so that opossum counts it as a failure; `call()`
 * unwraps it back into the response. It never leaves the breakers.
 */
export class FailedResponse extends Error {
  readonly response: UpstreamResponse;
  constructor(response: UpstreamResponse) {
    super(`provider answered ${response.status}`);
    this.name = 'FailedResponse';
    this.response = response;
  }
}

/** Whether an error from an upstream call is the provider's fault (counted by the breaker). */
export function isCountedFailure(err: unknown): boolean {
  return err instanceof FailedResponse || (err instanceof GatewayError && COUNTED.has(err.code));
}

/** Drains (small) or drops (large) a response body that will not be relayed, keeping the connection when cheap. */
export function discardBody(res: UpstreamResponse): void {
  const body = res.body as Readable & { dump?: (o: { limit: number }) => Promise<unknown> };
  if (typeof body.dump === 'function') body.dump({ limit: 64 * 1024 }).catch(() => undefined);
  else body.destroy();
}

/**
 * Settles when a relayed body ends: resolves when it completed, or was closed by the gateway (guardrail stop,
 * client gone); rejects with the mapped GatewayError when the provider failed mid-body (socket closed, stalled
 * past `bodyMs`), so that failure counts against the breaker too.
 */
export function bodyOutcome(
  body: Readable,
  providerId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    finished(body, (err) => {
      if (!err || signal?.aborted || (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE')
        resolve();
      else reject(toGatewayError(err, providerId, signal));
    });
  });
}

/** A rejection from a breaker as an Attempt (a counted failure, or open); anything else is rethrown. */
export function failedAttempt(err: unknown, retryAfterMs: () => number): Attempt {
  if (err instanceof FailedResponse) return { ok: false, reason: 'response', response: err.response };
  if (err instanceof GatewayError && COUNTED.has(err.code)) return { ok: false, reason: 'error', error: err };
  if (err instanceof Error && CircuitBreaker.isOurError(err)) {
    if ((err as { code?: string }).code === 'EOPENBREAKER')
      return { ok: false, reason: 'open', retryAfterMs: retryAfterMs() };
    throw new GatewayError('not_ready', 'the gateway is shutting down', { cause: err }); // ESHUTDOWN
  }
  throw err;
}

/**
 * One upstream call as the breaker's action sees it: `timeoutMs` (when set) aborts it and counts as
 * `upstream_timeout`; a 5xx response is thrown as a FailedResponse so that it counts.
 */
export async function attempt(
  send: BreakerSend,
  providerId: string,
  ms: number | undefined,
  signal: AbortSignal | undefined,
): Promise<UpstreamResponse> {
  let res: UpstreamResponse;
  if (ms === undefined) res = await send(signal);
  else {
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, ms);
    const timeout = (cause?: unknown) =>
      new GatewayError(
        'upstream_timeout',
        `provider ${providerId} did not answer within the breaker's ${ms} ms call timeout`,
        { cause },
      );
    try {
      res = await send(signal ? AbortSignal.any([signal, ac.signal]) : ac.signal);
    } catch (err) {
      // Our abort surfaces from forward() as a client abort; it is a timeout unless the client did leave.
      throw timedOut && !signal?.aborted ? timeout(err) : err;
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) {
      discardBody(res);
      throw timeout();
    }
  }
  if (res.status >= 500) throw new FailedResponse(res);
  return res;
}
