import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../core/decision.ts';
import type { ApiFamily } from '../core/errors.ts';
import type { AppIdentity, PolicyInput } from '../core/policy-input.ts';
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

/** What happened to one request, reported once when its response has ended (the decision log builds on it). */
export interface RequestRecord {
  readonly input: PolicyInput;
  readonly decision: Decision;
  readonly output: OutputReport | undefined;
  readonly status: number;
  readonly outcome: string;
}

/** Receives a RequestRecord per governed request. Must not block: it runs after the response. */
export type RequestObserver = (record: RequestRecord) => void;
