import type { IncomingHttpHeaders } from 'node:http';
import type { Context, Handler } from 'hono';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import type { Counters } from '../control/counters.ts';
import { GatewayError } from '../core/errors.ts';
import type { ApiKind, AppIdentity, PolicyInput } from '../core/policy-input.ts';
import type { PolicySource } from '../policy/source.ts';
import { anthropicPolicyInput } from '../providers/anthropic/request.ts';
import { openaiPolicyInput } from '../providers/openai/request.ts';
import { toGatewayError } from '../upstream/errors.ts';
import { forward, upstreamHeaders } from '../upstream/forward.ts';
import type { Upstreams } from '../upstream/targets.ts';
import { parseJsonObject, readRawBody } from './body.ts';
import type { DataEnv, RequestObserver } from './context.ts';
import { chargeBudgets, checkBudgets, decide, rewriteRequest } from './enforce.ts';
import { relay } from './output/relay.ts';
import { sseErrorFrame } from './stream.ts';

/** What a proxied route needs, built once at start. */
export interface ProxyDeps {
  readonly loaded: LoadedConfig;
  readonly upstreams: Upstreams;
  readonly policy: PolicySource;
  readonly counters: Counters;
  readonly logger: Logger;
  readonly observe: RequestObserver | undefined;
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

/** Estimated tokens of a request when the provider reports no usage (characters / 4). */
function estimate(input: PolicyInput): number {
  let n = 0;
  for (const m of input.messages) n += m.text.length;
  return Math.ceil(n / 4);
}

/**
 * The data-plane handler for one provider API endpoint: read and parse the body, normalise it to a PolicyInput,
 * decide under the bundle in force, rewrite (redact, reroute), forward, and relay the answer through the
 * output guardrails (SSE streamed as it arrives).
 */
export function proxyRoute(api: ApiKind, deps: ProxyDeps): Handler<DataEnv> {
  const family = api.startsWith('anthropic') ? 'anthropic' : 'openai';
  const adapter: Adapter = family === 'anthropic' ? anthropicPolicyInput : openaiPolicyInput;
  const limit = deps.loaded.config.limits.maxBodyBytes;
  const { logger, counters, observe } = deps;

  return async function proxy(c) {
    const raw = await readRawBody(c, limit);
    const body = parseJsonObject(raw);
    if (typeof body.model !== 'string' || body.model === '')
      throw new GatewayError('invalid_request', '`model` is required and must be a non-empty string');
    const requestId = c.get('requestId');
    const input = adapter(api, body, c.get('app'), requestId);

    // One read of the bundle: the whole request is decided under it.
    const cb = deps.policy.current();
    const decision = decide(cb, input, logger);
    if (decision.deny) {
      observe?.({ input, decision, output: undefined, status: 403, outcome: 'denied' });
      throw new GatewayError('policy_denied', `${decision.deny.message} (rule ${decision.deny.rule})`);
    }
    checkBudgets(decision, counters, Date.now());

    const target = decision.route.provider
      ? deps.upstreams.byProvider(family, decision.route.provider)
      : deps.upstreams.pick(family, decision.route.model);
    if (!target)
      throw decision.route.provider
        ? new GatewayError(
            'policy_error',
            `route ${decision.route.rule} names provider ${decision.route.provider}, which does not serve the ${family} API`,
          )
        : new GatewayError(
            'model_not_routed',
            `no provider is configured for model "${decision.route.model}"`,
          );

    const payload = rewriteRequest(cb, input, decision, body, raw);
    const signal = c.req.raw.signal;
    const up = await forward(
      target,
      'POST',
      c.req.path,
      upstreamHeaders(clientHeaders(c), target, requestId),
      payload,
      signal,
      requestId,
    );

    const type = up.headers['content-type'];
    const isStream = typeof type === 'string' && type.startsWith('text/event-stream');
    let relayed: Awaited<ReturnType<typeof relay>>;
    try {
      relayed = await relay(up, isStream, {
        api,
        cb,
        decision,
        onDone: (output, outcome) => {
          const tokens = output.usage
            ? output.usage.input + output.usage.output
            : up.status < 300
              ? estimate(input)
              : 0;
          chargeBudgets(decision, counters, tokens, Date.now());
          observe?.({ input, decision, output, status: up.status, outcome });
        },
        onError: (err, partial) => {
          const gerr = toGatewayError(err, target.providerId, signal);
          if (!(gerr instanceof GatewayError)) return undefined; // the client left: nobody to tell
          logger.warn(
            { requestId, provider: target.providerId, code: gerr.code },
            'upstream stream failed midway',
          );
          return sseErrorFrame(family, gerr, requestId, partial);
        },
      });
    } catch (err) {
      throw toGatewayError(err, target.providerId, signal);
    }
    return c.body(relayed.body, up.status as 200, relayed.headers);
  };
}
