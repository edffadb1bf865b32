import type { IncomingHttpHeaders } from 'node:http';
import type { Context, Handler } from 'hono';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import type { Enforcer } from '../core/decision.ts';
import { GatewayError } from '../core/errors.ts';
import type { ApiKind, AppIdentity, PolicyInput } from '../core/policy-input.ts';
import { anthropicPolicyInput } from '../providers/anthropic/request.ts';
import { openaiPolicyInput } from '../providers/openai/request.ts';
import { toGatewayError } from '../upstream/errors.ts';
import { forward, upstreamHeaders } from '../upstream/forward.ts';
import type { Upstreams } from '../upstream/targets.ts';
import { parseJsonObject, readRawBody } from './body.ts';
import type { DataEnv } from './context.ts';
import { pullStream, readAll, sseErrorFrame } from './stream.ts';

/** What a proxied route needs, built once at start. */
export interface ProxyDeps {
  readonly loaded: LoadedConfig;
  readonly upstreams: Upstreams;
  readonly enforcer: Enforcer;
  readonly logger: Logger;
}

type Adapter = (
  api: ApiKind,
  body: Record<string, unknown>,
  app: AppIdentity,
  requestId: string,
) => PolicyInput;

function clientHeaders(c: Context<DataEnv>): IncomingHttpHeaders {
  return c.env?.incoming?.headers ?? Object.fromEntries(c.req.raw.headers);
}

/**
 * The data-plane handler for one provider API endpoint: read and parse the body, normalise it to a PolicyInput,
 * enforce, pick the upstream, forward the original bytes, and relay the answer (SSE streamed as it arrives).
 */
export function proxyRoute(api: ApiKind, deps: ProxyDeps): Handler<DataEnv> {
  const family = api.startsWith('anthropic') ? 'anthropic' : 'openai';
  const adapter: Adapter = family === 'anthropic' ? anthropicPolicyInput : openaiPolicyInput;
  const limit = deps.loaded.config.limits.maxBodyBytes;

  return async function proxy(c) {
    const raw = await readRawBody(c, limit);
    const body = parseJsonObject(raw);
    if (typeof body.model !== 'string' || body.model === '')
      throw new GatewayError('invalid_request', '`model` is required and must be a non-empty string');
    const requestId = c.get('requestId');
    const input = adapter(api, body, c.get('app'), requestId);

    const decision = deps.enforcer.decide(input);
    if (decision.action === 'deny')
      throw new GatewayError('policy_denied', `${decision.message} (rule ${decision.rule})`);

    const target = deps.upstreams.pick(family, input.model);
    if (!target)
      throw new GatewayError('model_not_routed', `no provider is configured for model "${input.model}"`);
    const signal = c.req.raw.signal;
    const up = await forward(
      target,
      'POST',
      c.req.path,
      upstreamHeaders(clientHeaders(c), target, requestId),
      raw,
      signal,
      requestId,
    );

    const type = up.headers['content-type'];
    const isStream = typeof type === 'string' && type.startsWith('text/event-stream');
    if (isStream) {
      const onError = (err: unknown, partial: boolean) => {
        const gerr = toGatewayError(err, target.providerId, signal);
        if (!(gerr instanceof GatewayError)) return undefined; // the client left: nobody to tell
        deps.logger.warn(
          { requestId, provider: target.providerId, code: gerr.code },
          'upstream stream failed midway',
        );
        return sseErrorFrame(family, gerr, requestId, partial);
      };
      return c.body(pullStream(up.body, onError), up.status as 200, up.headers);
    }
    let payload: Buffer;
    try {
      payload = await readAll(up.body);
    } catch (err) {
      throw toGatewayError(err, target.providerId, signal);
    }
    return c.body(payload as Uint8Array<ArrayBuffer>, up.status as 200, up.headers);
  };
}
