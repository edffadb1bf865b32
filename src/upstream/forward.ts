import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { toGatewayError } from './errors.ts';
import type { UpstreamTarget } from './targets.ts';

/** Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), framing the gateway redoes, client credentials. */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'authorization',
  'x-api-key',
  'api-key',
  'accept-encoding',
]);

/** Response headers never relayed to the client (hop-by-hop). */
export const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** What the provider answered: status, relayable headers, and the body as it arrives. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable;
}

/** Builds the upstream request headers from the client's: hop-by-hop and credentials out, provider key in. */
export function upstreamHeaders(
  client: IncomingHttpHeaders,
  target: UpstreamTarget,
  requestId: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = client.connection;
  for (const name in client) {
    if (DROP_REQUEST.has(name)) continue;
    const v = client[name];
    if (v !== undefined) out[name] = v;
  }
  if (connectionTokens) for (const t of connectionTokens.split(',')) delete out[t.trim().toLowerCase()];
  for (const name in target.staticHeaders) out[name] = target.staticHeaders[name]!;
  if (target.auth) out[target.auth[0]] = target.auth[1];
  // Identity encoding: the gateway reads responses (usage, output guardrails), so it asks for them uncompressed.
  out['accept-encoding'] = 'identity';
  out['x-request-id'] = requestId;
  return out;
}

/**
 * Filters provider response headers down to those the client should see. The gateway's request id owns
 * `x-request-id`; the provider's own id (OpenAI sends one there) is kept as `x-upstream-request-id`.
 */
export function relayHeaders(
  h: Record<string, string | string[] | undefined>,
  requestId: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const conn = h.connection;
  const extra = typeof conn === 'string' ? conn.split(',').map((t) => t.trim().toLowerCase()) : [];
  for (const name in h) {
    const v = h[name];
    if (v === undefined || DROP_RESPONSE.has(name) || extra.includes(name)) continue;
    out[name] = v;
  }
  const theirs = out['x-request-id'];
  if (theirs !== undefined && theirs !== requestId) out['x-upstream-request-id'] = theirs;
  out['x-request-id'] = requestId;
  return out;
}

/** The path on the provider for a gateway path such as `/v1/chat/completions`. */
export function upstreamPath(target: UpstreamTarget, path: string): string {
  const rest = target.family === 'openai' ? path.slice(3) : path;
  return `${target.basePath}${rest}${target.search}`;
}

/**
 * Sends one request to the provider over its keep-alive pool and resolves when the response headers arrive.
 * The body is not buffered: the caller streams it. Aborting `signal` (the client left) aborts the upstream call.
 */
export async function forward(
  target: UpstreamTarget,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string | string[]>,
  body: Buffer | undefined,
  signal: AbortSignal | undefined,
  requestId: string,
): Promise<UpstreamResponse> {
  try {
    const res = await target.pool.request({
      method,
      path: upstreamPath(target, path),
      headers,
      body,
      signal,
      headersTimeout: target.timeouts.headersMs,
      bodyTimeout: target.timeouts.bodyMs,
    });
    return { status: res.statusCode, headers: relayHeaders(res.headers, requestId), body: res.body };
  } catch (err) {
    throw toGatewayError(err, target.providerId, signal);
  }
}
