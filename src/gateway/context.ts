import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiFamily } from '../core/errors.ts';
import type { AppIdentity } from '../core/policy-input.ts';

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
