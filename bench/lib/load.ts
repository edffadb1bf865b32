import autocannon from 'autocannon';
import type { Payload } from '../payloads.ts';

/** What a closed-loop (saturating) autocannon run measured. */
export interface SaturatedResult {
  /** Answers completed (any status). */
  readonly completed: number;
  readonly durationS: number;
  /** Completed 2xx answers per second. */
  readonly rps: number;
  /** Socket errors, timeouts, and 2xx bodies of the wrong length. */
  readonly errors: number;
  readonly non2xx: number;
}

/** Options for an autocannon run against one URL. */
export interface SaturateOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** One payload, or several cycled through on every connection (the soak). */
  readonly payloads: readonly Payload[];
  readonly connections: number;
  /** Seconds to run; ignored when `amount` is set. */
  readonly durationS?: number;
  /** Number of requests to send, then stop. */
  readonly amount?: number;
  readonly timeoutS?: number;
}

/** Runs autocannon (programmatic API) with `connections` concurrent keep-alive connections, no pipelining. */
export async function saturate(opts: SaturateOptions): Promise<SaturatedResult> {
  const lengths = new Set(opts.payloads.map((p) => p.responseBytes));
  const requests = opts.payloads.map((p) => ({
    method: 'POST' as const,
    headers: opts.headers,
    body: p.body.toString('utf8'),
  }));
  const result = await autocannon({
    url: opts.url,
    method: 'POST',
    headers: opts.headers,
    ...(requests.length === 1 ? { body: requests[0]!.body } : { requests }),
    connections: opts.connections,
    pipelining: 1,
    ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.durationS ?? 5 }),
    timeout: opts.timeoutS ?? 10,
    // The body arrives decoded (chunked framing removed); every mode relays the mock's bytes unchanged.
    verifyBody: (body) => body !== undefined && lengths.has(body.length),
  });
  const ok = result['2xx'];
  return {
    completed: result.requests.total,
    durationS: result.duration,
    rps: result.duration > 0 ? ok / result.duration : 0,
    errors: result.errors + result.timeouts + result.mismatches,
    non2xx: result.non2xx,
  };
}
