import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import type { Decision, GuardrailVerdict } from '../core/decision.ts';
import type { ApiFamily } from '../core/errors.ts';
import type { AppIdentity, PolicyInput } from '../core/policy-input.ts';
import type { DivergenceKind } from '../policy/divergence.ts';
import type { ScanCache } from '../policy/scan-cache.ts';
import type { RingSnapshot } from '../rings/runtime.ts';
import type { Ring } from '../rings/state.ts';
import type { OutputReport } from './output/guard.ts';

/** Hono environment of the data plane: Node bindings (absent under `app.request()`), per-request variables. */
export interface DataEnv {
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: {
    requestId: string;
    family: ApiFamily;
    app: AppIdentity;
    /** When the request arrived and how long the gateway-key check took (µs). */
    arrivedAt: number;
    authUs: number;
    /** Set once the request has a policy input: from then on it is recorded (decision log, metrics). */
    governed: boolean;
    /** The gateway error code answered, if any. */
    errorCode: string;
  };
}

/**
 * A request header (lower-case name). Under Node it reads the headers Node already parsed, never
 * `c.req.header()`, which builds a web `Headers` object from the raw headers on first use (~5 µs a request).
 * Repeated headers come joined by `, `, as `Headers.get()` gives them.
 */
export function header(c: Context<DataEnv>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (!incoming) return c.req.header(name);
  const v = incoming.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Liveness and readiness, flipped by the composition root. */
export interface Lifecycle {
  ready: boolean;
  draining: boolean;
  /** Readiness detail of the control plane (fail static: the gateway stays ready while its store is down). */
  controlPlane?: () => Record<string, unknown>;
}

/** Tokens a request consumed, from the provider's usage report or, when it sent none, estimated (characters / 4). */
export interface TokenCount {
  readonly input: number;
  readonly output: number;
  readonly estimated: boolean;
}

/** What happened to one request, reported once when its response has ended (decision log, ring statistics, metrics). */
export interface RequestRecord {
  readonly input: PolicyInput;
  /** The request's detector results, for the decision log's content redaction to reuse. */
  readonly scans?: ScanCache | undefined;
  readonly ring: Ring;
  /** The ring state the request was decided under. */
  readonly stateVersion: number;
  readonly changeId: string;
  readonly enforcingBundleId: string;
  readonly shadowBundleId: string | undefined;
  /** The enforcing decision; absent when the enforcing evaluation threw (the request was denied with `policy_error`). */
  readonly decision: Decision | undefined;
  /** The other bundle's decision (candidate in shadow; production on canary traffic), when one ran. */
  readonly shadow: Decision | undefined;
  /** The other bundle's evaluation threw (counted, never affecting the request). */
  readonly shadowError: boolean;
  readonly output: OutputReport | undefined;
  readonly shadowOutput: readonly GuardrailVerdict[] | undefined;
  readonly divergence: readonly DivergenceKind[] | undefined;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode: string | undefined;
  readonly target: { readonly provider: string; readonly model: string } | undefined;
  readonly tokens: TokenCount | undefined;
  readonly timings: {
    readonly startedAt: number;
    /** Gateway-key check. */
    readonly authUs: number;
    /** Body read, JSON parse and normalisation to the policy input. */
    readonly parseUs: number;
    /** The enforcing bundle's evaluation. */
    readonly evalUs: number;
    /** The candidate's evaluation (shadow, or enforcing on canary traffic). */
    readonly candidateEvalUs: number | undefined;
    /** The other bundle's evaluation (candidate in shadow; production on canary traffic), when it ran. */
    readonly observedEvalUs: number | undefined;
    /** From dispatch to the provider's response headers. */
    readonly upstreamHeadersMs: number | undefined;
    /** From dispatch to the end of the provider's response body. */
    readonly upstreamTotalMs: number | undefined;
    /** Time spent in the output guardrails while relaying. */
    readonly outputGuardUs: number | undefined;
    /** From the first byte of the request to the end of the response. */
    readonly totalMs: number;
  };
}

/** Receives a RequestRecord per governed request, with the ring snapshot it was decided under. Runs after the response: must not block. */
export type RequestObserver = (record: RequestRecord, snap: RingSnapshot) => void;
