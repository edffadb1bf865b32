import type { IncomingHttpHeaders } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Handler } from 'hono';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import type { Counters, Reservation } from '../control/counters.ts';
import type { Decision, GuardrailVerdict } from '../core/decision.ts';
import { GatewayError } from '../core/errors.ts';
import type { ApiKind, AppIdentity, PolicyInput } from '../core/policy-input.ts';
import type { CompiledBundle } from '../policy/compile.ts';
import { diffDecisions } from '../policy/divergence.ts';
import { evaluate } from '../policy/evaluate.ts';
import { ScanCache } from '../policy/scan-cache.ts';
import { anthropicPolicyInput } from '../providers/anthropic/request.ts';
import { openaiPolicyInput } from '../providers/openai/request.ts';
import type { RingSnapshot } from '../rings/runtime.ts';
import { inSlice } from '../rings/select.ts';
import type { Ring } from '../rings/state.ts';
import type { Breakers } from '../upstream/breakers.ts';
import { circuitOpenError, degradedReply } from '../upstream/degraded.ts';
import { dispatch } from '../upstream/dispatch.ts';
import { ClientClosedError, toGatewayError } from '../upstream/errors.ts';
import { forward, upstreamHeaders } from '../upstream/forward.ts';
import type { Upstreams } from '../upstream/targets.ts';
import { parseJsonObject, readRawBody } from './body.ts';
import type { DataEnv, RequestObserver, RequestRecord, TokenCount } from './context.ts';
import { decide, reserveBudgets, rewriteRequest } from './enforce.ts';
import { type OutputReport, observeOutput } from './output/guard.ts';
import { relay } from './output/relay.ts';
import { pipeToNode, pullStream, sseErrorFrame, writeWhole } from './stream.ts';

/** What a proxied route needs, built once at start. */
export interface ProxyDeps {
  readonly loaded: LoadedConfig;
  readonly upstreams: Upstreams;
  readonly rings: { snapshot(): RingSnapshot };
  readonly counters: Counters;
  readonly breakers: Breakers;
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

const us = (from: number) => Math.round((performance.now() - from) * 1000);

/** The second bundle of a request: observed only (candidate in shadow, or production on canary traffic). */
interface Observed {
  readonly cb: CompiledBundle;
  decision: Decision | undefined;
  error: boolean;
  evalUs: number | undefined;
}

/**
 * The data-plane handler for one provider API endpoint: read and parse the body, normalise it to a PolicyInput,
 * decide under the ring snapshot in force (production, or the candidate for a canary slice), rewrite (redact,
 * reroute), forward, and relay the answer through the output guardrails. The other bundle, if any, is evaluated
 * while the upstream call is in flight and compared after the response; nothing waits for it.
 */
export function proxyRoute(api: ApiKind, deps: ProxyDeps): Handler<DataEnv> {
  const family = api.startsWith('anthropic') ? 'anthropic' : 'openai';
  const adapter: Adapter = family === 'anthropic' ? anthropicPolicyInput : openaiPolicyInput;
  const limit = deps.loaded.config.limits.maxBodyBytes;
  const { logger, counters, observe } = deps;

  return async function proxy(c) {
    const startedAt = Date.now();
    const t0 = c.get('arrivedAt') ?? performance.now();
    const tp = performance.now();
    const raw = await readRawBody(c, limit);
    const body = parseJsonObject(raw);
    if (typeof body.model !== 'string' || body.model === '')
      throw new GatewayError('invalid_request', '`model` is required and must be a non-empty string');
    const requestId = c.get('requestId');
    const input = adapter(api, body, c.get('app'), requestId);
    c.set('governed', true);
    // Detector results of this request, shared by the production and candidate evaluations (same spec, same text).
    const scans = new ScanCache(input);
    const parseUs = us(tp);

    // One read of the ring snapshot: the whole request is decided under it, whatever swaps meanwhile.
    const snap = deps.rings.snapshot();
    const cand = snap.state.candidate;
    let ring: Ring = 'production';
    let enforcing = snap.production;
    let decision: Decision | undefined;
    let evalUs = 0;
    let other: Observed | undefined;

    let upstreamHeadersMs: number | undefined;
    let upstreamTotalMs: number | undefined;
    let target: RequestRecord['target'];
    let tokens: TokenCount | undefined;
    // What the request holds in its budgets, settled once (with the tokens used; 0 releases it).
    let held: Reservation | undefined;
    const settle = (used: number) => {
      if (held) counters.settle(held, used);
      held = undefined;
    };
    const candidateEvalUs = () => (ring === 'canary' ? evalUs : other?.evalUs);
    const runShadow = () => {
      if (!other || other.decision || other.error) return;
      const ts = performance.now();
      try {
        other.decision = evaluate(other.cb, input, scans);
      } catch (err) {
        other.error = true;
        logger.warn(
          { requestId, bundleId: other.cb.id, err },
          'candidate policy error (shadow): request unaffected',
        );
      }
      other.evalUs = us(ts);
    };
    /**
     * Hands the request to the observer (ring statistics, metrics, decision log) once its answer is on its way:
     * called where the answer is decided (a whole body before it is written, an error before it is thrown), it
     * takes the end time then and does the rest in the next check phase, after the answer was written, so the
     * client never waits for the shadow's leftovers, the comparison, the log line or the metrics. (The shadow
     * itself runs during the upstream call, as DESIGN.md says; running it here instead made no difference
     * measurable by bench/ttfb-quick.ts even against the loopback mock, which answers within ~0.1 ms.)
     */
    const finish = (
      status: number,
      outcome: string,
      output: OutputReport | undefined,
      errorCode?: string,
    ) => {
      if (!observe) return;
      setImmediate(observed, status, outcome, output, errorCode, performance.now());
    };
    const observed = (
      status: number,
      outcome: string,
      output: OutputReport | undefined,
      errorCode: string | undefined,
      endedAt: number,
    ) => {
      if (!observe) return;
      // Off the request's own flow, a throw would be uncaught and end the process: log it, lose one record.
      try {
        runShadow();
        const shadowDecision = other?.decision;
        let shadowOutput: GuardrailVerdict[] | undefined;
        if (shadowDecision && output?.collected)
          shadowOutput = observeOutput(other!.cb, shadowDecision.class, output.collected, scans).verdicts;
        const [pd, cd, po, co] =
          ring === 'canary'
            ? [shadowDecision, decision, shadowOutput, output?.verdicts]
            : [decision, shadowDecision, output?.verdicts, shadowOutput];
        observe(
          {
            input,
            scans,
            ring,
            stateVersion: snap.state.version,
            changeId: snap.state.changeId,
            enforcingBundleId: enforcing.id,
            shadowBundleId: other?.cb.id,
            decision,
            shadow: shadowDecision,
            shadowError: other?.error ?? false,
            output,
            shadowOutput,
            divergence: pd && cd ? diffDecisions(pd, cd, po, co) : undefined,
            status,
            outcome,
            errorCode,
            target,
            tokens,
            timings: {
              startedAt,
              authUs: c.get('authUs') ?? 0,
              parseUs,
              evalUs,
              candidateEvalUs: candidateEvalUs(),
              observedEvalUs: other?.evalUs,
              upstreamHeadersMs,
              upstreamTotalMs,
              outputGuardUs: output?.guardUs,
              totalMs: endedAt - t0,
            },
          },
          snap,
        );
      } catch (err) {
        logger.error({ requestId, err }, 'request observer failed: statistics, metrics or log line lost');
      }
    };

    try {
      const te = performance.now();
      const prod = decide(snap.production, input, logger, scans);
      evalUs = us(te);
      decision = prod;
      if (cand && snap.candidate && !snap.state.killed?.candidate) {
        if (cand.stage === 'canary' && cand.slice && inSlice(cand.slice, input, prod.class)) {
          ring = 'canary';
          enforcing = snap.candidate;
          other = { cb: snap.production, decision: prod, error: false, evalUs };
          decision = undefined;
          const tc = performance.now();
          try {
            decision = decide(snap.candidate, input, logger, scans);
          } finally {
            evalUs = us(tc);
          }
        } else other = { cb: snap.candidate, decision: undefined, error: false, evalUs: undefined };
      }
      const d: Decision = decision;
      if (d.deny) throw new GatewayError('policy_denied', `${d.deny.message} (rule ${d.deny.rule})`);
      if (d.budgets.length) {
        // Reserves the prompt's estimate plus what the response may add. In memory: a plain value, no await.
        const r = reserveBudgets(
          d,
          counters,
          estimate(input) + (input.maxTokens ?? 0),
          Date.now(),
          input.maxTokens,
        );
        held = r instanceof Promise ? await r : r;
      }

      const t = d.route.provider
        ? deps.upstreams.byProvider(family, d.route.provider)
        : deps.upstreams.pick(family, d.route.model);
      if (!t)
        throw d.route.provider
          ? new GatewayError(
              'policy_error',
              `route ${d.route.rule} names provider ${d.route.provider}, which does not serve the ${family} API`,
            )
          : new GatewayError('model_not_routed', `no provider is configured for model "${d.route.model}"`);
      const payload = rewriteRequest(enforcing, input, d, body, raw);
      const signal = c.req.raw.signal;
      const tu = performance.now();
      const killed = snap.state.killed?.targets;
      const pending = dispatch({
        family,
        providerId: t.providerId,
        model: d.route.model,
        signal,
        upstreams: deps.upstreams,
        breakers: deps.breakers,
        fallbacks: deps.loaded.config.fallbacks,
        killed: killed?.length
          ? (p, m) => killed.some((k) => k.target === p || k.target === `${p}/${m}`)
          : undefined,
        send: (to, model, sig) =>
          forward(
            to,
            'POST',
            c.req.path,
            upstreamHeaders(clientHeaders(c), to, requestId),
            model === d.route.model ? payload : Buffer.from(JSON.stringify({ ...body, model })),
            sig,
            requestId,
          ),
      });
      // The shadow runs while the upstream call is in flight: after undici has taken the request, before its answer.
      if (other && !other.decision) setImmediate(runShadow);
      const r = await pending;
      upstreamHeadersMs = performance.now() - tu;
      if (r.kind === 'fail') throw circuitOpenError(r.from, r.retryAfterSeconds);
      if (r.kind === 'degraded') {
        const d = degradedReply(api, {
          message: r.message,
          model: input.model,
          stream: input.stream,
          from: r.from,
        });
        if (!d) throw circuitOpenError(r.from, 1);
        target = { provider: 'degraded', model: input.model };
        settle(0);
        finish(200, 'degraded', undefined);
        return c.body(d.body, 200, d.headers);
      }
      const up = r.response;
      const served = r.target;
      target = { provider: served.providerId, model: r.model };
      if (r.fallbackFrom) up.headers['x-ringfence-fallback-from'] = r.fallbackFrom;

      const type = up.headers['content-type'];
      const isStream = typeof type === 'string' && type.startsWith('text/event-stream');
      let relayed: Awaited<ReturnType<typeof relay>>;
      try {
        relayed = await relay(up, isStream, {
          api,
          cb: enforcing,
          decision: d,
          collect: other !== undefined || d.contentLogging !== 'none',
          onDone: (output, outcome) => {
            upstreamTotalMs = performance.now() - tu;
            tokens = output.usage
              ? { input: output.usage.input, output: output.usage.output, estimated: false }
              : up.status < 300
                ? { input: estimate(input), output: 0, estimated: true }
                : undefined;
            settle(tokens ? tokens.input + tokens.output : 0);
            finish(up.status, outcome, output);
          },
          onError: (err, partial) => {
            const gerr = toGatewayError(err, served.providerId, signal);
            if (!(gerr instanceof GatewayError)) return undefined; // the client left: nobody to tell
            logger.warn(
              { requestId, provider: served.providerId, code: gerr.code },
              'upstream stream failed midway',
            );
            return sseErrorFrame(family, gerr, requestId, partial);
          },
        });
      } catch (err) {
        throw toGatewayError(err, served.providerId, signal);
      }
      const outgoing = c.env?.outgoing;
      if (relayed.kind === 'whole') {
        if (!outgoing) return c.body(relayed.body, up.status as 200, relayed.headers);
        // Straight to the Node response: a web Response would copy the headers into a Headers object and back.
        writeWhole(outgoing, up.status, relayed.headers, relayed.body);
        return RESPONSE_ALREADY_SENT;
      }
      if (outgoing) {
        pipeToNode(relayed.source, outgoing, up.status, relayed.headers, relayed.hooks);
        return RESPONSE_ALREADY_SENT;
      }
      return c.body(pullStream(relayed.source, relayed.hooks), up.status as 200, relayed.headers);
    } catch (err) {
      settle(0);
      if (err instanceof GatewayError)
        finish(err.status, err.code === 'policy_denied' ? 'denied' : 'error', undefined, err.code);
      else if (err instanceof ClientClosedError) finish(499, 'client_closed', undefined, 'client_closed');
      else finish(500, 'error', undefined, 'internal_error');
      throw err;
    }
  };
}
