import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision, GuardrailVerdict } from '../core/decision.ts';
import type { ApiFamily } from '../core/errors.ts';
import type { AppIdentity, PolicyInput } from '../core/policy-input.ts';
import type { DivergenceKind } from '../policy/divergence.ts';
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
  };
}

/** Liveness and readiness, flipped by the composition root. */
export interface Lifecycle {
  ready: boolean;
  draining: boolean;
}

/** What happened to one request, reported once when its response has ended (decision log, ring statistics). */
export interface RequestRecord {
  readonly input: PolicyInput;
  readonly ring: Ring;
  /** The ring state the request was decided under. */
  readonly stateVersion: number;
  readonly changeId: string;
  readonly enforcingBundleId: string;
  readonly shadowBundleId: string | undefined;
  /** The enforcing decision. */
  readonly decision: Decision;
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
  readonly timings: {
    readonly startedAt: number;
    readonly evalUs: number;
    readonly candidateEvalUs: number | undefined;
    readonly upstreamHeadersMs: number | undefined;
    readonly totalMs: number;
  };
}

/** Receives a RequestRecord per governed request, with the ring snapshot it was decided under. Runs after the response: must not block. */
export type RequestObserver = (record: RequestRecord, snap: RingSnapshot) => void;
