import type { FallbackConfig, FallbackStep } from '../config/schema.ts';
import { type ApiFamily, GatewayError } from '../core/errors.ts';
import { type Breakers, discardBody } from './breakers.ts';
import { ClientClosedError } from './errors.ts';
import type { UpstreamResponse } from './forward.ts';
import type { Upstreams, UpstreamTarget } from './targets.ts';

/**
 * Sends the request to one target with `model` written into the body. `signal` combines the client's and the
 * breaker's call timeout: pass it to `forward()` as is.
 */
export type DispatchSend = (
  target: UpstreamTarget,
  model: string,
  signal: AbortSignal | undefined,
) => Promise<UpstreamResponse>;

/** What `dispatch` needs: the primary target (family, provider, model) and how to reach any target. */
export interface DispatchOptions {
  readonly family: ApiFamily;
  readonly providerId: string;
  readonly model: string;
  readonly send: DispatchSend;
  readonly upstreams: Upstreams;
  readonly breakers: Breakers;
  /** `config.fallbacks`. */
  readonly fallbacks: readonly FallbackConfig[];
  /** The client's request signal: once aborted, nothing more is tried. */
  readonly signal?: AbortSignal | undefined;
  /** A manual kill switch: a killed target is skipped as if its breaker were open. */
  readonly killed?: ((providerId: string, model: string) => boolean) | undefined;
}

/**
 * Who answers. `upstream`: a provider's response to relay as is (any status; `fallbackFrom` is the primary
 * `provider/model` when another target served). `degraded`: the configured canned message. `fail`: a 503
 * `upstream_circuit_open`. `from` is the primary `provider/model`.
 */
export type DispatchResult =
  | {
      readonly kind: 'upstream';
      readonly response: UpstreamResponse;
      readonly target: UpstreamTarget;
      readonly model: string;
      readonly fallbackFrom?: string;
    }
  | { readonly kind: 'degraded'; readonly message: string; readonly from: string }
  | { readonly kind: 'fail'; readonly retryAfterSeconds: number; readonly from: string };

/** The fallback chain of a target: the entry for `provider/model`, else the one for `provider`, else none. */
export function fallbackChain(
  fallbacks: readonly FallbackConfig[],
  providerId: string,
  model: string,
): readonly FallbackStep[] {
  const exact = `${providerId}/${model}`;
  let whole: readonly FallbackStep[] = [];
  for (const f of fallbacks) {
    if (f.target === exact) return f.then;
    if (f.target === providerId) whole = f.then;
  }
  return whole;
}

type Failure =
  | { readonly kind: 'response'; readonly response: UpstreamResponse; readonly index: number }
  | { readonly kind: 'error'; readonly error: GatewayError };

/**
 * Sends a request to its primary target through that target's breaker and, when the breaker is open or the call
 * fails in a way the breaker counts (connection error, timeout, 5xx) before any byte was relayed, down the
 * target's fallback chain, each step through its own breaker. 4xx responses are answers, relayed as is. Only the
 * primary's chain is walked (a fallback's own chain is not), so chains cannot loop.
 *
 * When the chain has no terminal step and runs out: the last real failure surfaces (a 5xx response is relayed,
 * a connection error or timeout is thrown as its GatewayError), so a lone failure looks as it did without
 * breakers; only when every target was open is the answer `fail` (503 with `retry-after`). A client abort
 * (ClientClosedError) and errors that are not the provider's fault are thrown at once, never fallen back from.
 */
export async function dispatch(o: DispatchOptions): Promise<DispatchResult> {
  const { family, providerId, model, upstreams, breakers, signal } = o;
  const primary = upstreams.byProvider(family, providerId);
  if (!primary)
    throw new GatewayError('model_not_routed', `provider ${providerId} does not serve the ${family} API`);
  const from = `${providerId}/${model}`;
  const fromKey = breakers.keyOf(primary, model);
  const chain = fallbackChain(o.fallbacks, providerId, model);
  const tries = [{ target: primary, model }];
  for (const step of chain) {
    if (step.kind !== 'target') continue;
    // A provider that does not speak this request's API (a mock primary serves both) is skipped.
    const target = upstreams.byProvider(family, step.provider);
    if (target) tries.push({ target, model: step.model ?? model });
  }
  const last = chain.at(-1);
  const terminal = last && last.kind !== 'target' ? last : undefined;

  let failed: Failure | undefined;
  const forget = () => {
    if (failed?.kind === 'response') discardBody(failed.response);
    failed = undefined;
  };
  try {
    for (const [index, t] of tries.entries()) {
      if (signal?.aborted) throw new ClientClosedError();
      if (o.killed?.(t.target.providerId, t.model)) continue;
      const a = await breakers.call(t.target, t.model, (sig) => o.send(t.target, t.model, sig), signal);
      if (a.ok) {
        forget();
        if (index === 0) return { kind: 'upstream', response: a.response, target: t.target, model: t.model };
        breakers.fallbackServed({ from: fromKey, kind: 'target', to: breakers.keyOf(t.target, t.model) });
        return {
          kind: 'upstream',
          response: a.response,
          target: t.target,
          model: t.model,
          fallbackFrom: from,
        };
      }
      if (a.reason === 'open') continue;
      forget();
      failed =
        a.reason === 'response'
          ? { kind: 'response', response: a.response, index }
          : { kind: 'error', error: a.error };
    }
  } catch (err) {
    forget();
    throw err;
  }

  if (terminal?.kind === 'degraded') {
    forget();
    breakers.fallbackServed({ from: fromKey, kind: 'degraded', to: undefined });
    return { kind: 'degraded', message: terminal.message, from };
  }
  if (terminal === undefined && failed) {
    if (failed.kind === 'error') throw failed.error;
    const t = tries[failed.index]!;
    const response = failed.response;
    return failed.index === 0
      ? { kind: 'upstream', response, target: t.target, model: t.model }
      : { kind: 'upstream', response, target: t.target, model: t.model, fallbackFrom: from };
  }
  forget();
  // Retry when the soonest of the tried breakers lets a probe through; 1 s when none is open.
  let ms = Number.POSITIVE_INFINITY;
  for (const t of tries) ms = Math.min(ms, breakers.retryAfterMs(breakers.keyOf(t.target, t.model)) ?? ms);
  const retryAfterSeconds =
    terminal?.retryAfterSeconds ?? Math.max(1, Math.ceil(ms === Infinity ? 0 : ms / 1000));
  breakers.fallbackServed({ from: fromKey, kind: 'fail', to: undefined });
  return { kind: 'fail', retryAfterSeconds, from };
}
