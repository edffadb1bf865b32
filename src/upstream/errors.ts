import { GatewayError } from '../core/errors.ts';

/** The client went away; nothing is to be answered. */
export class ClientClosedError extends Error {
  constructor() {
    super('client closed the request');
    this.name = 'ClientClosedError';
  }
}

const TIMEOUT = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** Maps a foreign error from an upstream call to a GatewayError with a stable code (or ClientClosedError). */
export function toGatewayError(err: unknown, providerId: string, signal?: AbortSignal): Error {
  if (err instanceof GatewayError || err instanceof ClientClosedError) return err;
  if (signal?.aborted) return new ClientClosedError();
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  if (TIMEOUT.has(code))
    return new GatewayError('upstream_timeout', `provider ${providerId} did not answer in time (${code})`, {
      cause: err,
    });
  if (UNREACHABLE.has(code))
    return new GatewayError('upstream_unreachable', `provider ${providerId} is unreachable (${code})`, {
      cause: err,
    });
  if (code.startsWith('UND_ERR') || code.startsWith('HPE_'))
    return new GatewayError(
      'upstream_protocol_error',
      `provider ${providerId} sent an invalid response (${code})`,
      {
        cause: err,
      },
    );
  return new GatewayError('internal_error', 'internal error while calling the provider', { cause: err });
}
