import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadedConfig } from './config/load.ts';
import type { Counters } from './control/counters.ts';
import { GatewayError } from './core/errors.ts';
import { authenticate } from './gateway/auth.ts';
import type { DataEnv, Lifecycle, RequestObserver } from './gateway/context.ts';
import { listModels } from './gateway/models.ts';
import { proxyRoute } from './gateway/proxy.ts';
import { requestId } from './gateway/request-id.ts';
import { errorResponse, fail } from './gateway/respond.ts';
import type { RingSnapshot } from './rings/runtime.ts';
import type { Breakers } from './upstream/breakers.ts';
import { ClientClosedError } from './upstream/errors.ts';
import type { Upstreams } from './upstream/targets.ts';

/** Everything the gateway needs, built by the composition root (or a test). */
export interface GatewayDeps {
  readonly loaded: LoadedConfig;
  readonly upstreams: Upstreams;
  readonly rings: { snapshot(): RingSnapshot };
  readonly counters: Counters;
  readonly breakers: Breakers;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
  /** Receives one record per governed request after its response ends. */
  readonly observe?: RequestObserver;
  /** Told of each API request refused before it had a policy input (auth, body, route), by error code. */
  readonly onRejected?: (code: string) => void;
  /** Prometheus registry served at GET /metrics on the admin listener. */
  readonly metrics?: Registry;
  /** The admin API, mounted under /admin/v1 on the admin listener only. */
  // biome-ignore lint/suspicious/noExplicitAny: the admin app has its own environment type
  readonly adminApi?: Hono<any>;
  /** The operator console (`src/console/`), mounted under /console on the admin listener only. */
  // biome-ignore lint/suspicious/noExplicitAny: the console app has its own environment type
  readonly console?: Hono<any>;
}

/** The routes of the data plane: path, method, and the API each belongs to. */
const API_ROUTES = [
  ['/v1/chat/completions', 'openai.chat'],
  ['/v1/responses', 'openai.responses'],
  ['/v1/embeddings', 'openai.embeddings'],
  ['/v1/messages', 'anthropic.messages'],
  ['/v1/messages/count_tokens', 'anthropic.count_tokens'],
] as const;

function health(app: Hono<DataEnv>, lifecycle: Lifecycle): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const controlPlane = lifecycle.controlPlane?.();
    return lifecycle.ready && !lifecycle.draining
      ? c.json({ status: 'ready', ...(controlPlane ? { controlPlane } : {}) })
      : c.json({ status: lifecycle.draining ? 'draining' : 'starting' }, 503);
  });
}

/** Builds the data-plane and admin Hono apps. Never listens: `main.ts` does, tests call `app.request()`. */
export function createGateway(deps: GatewayDeps): { data: Hono<DataEnv>; admin: Hono<DataEnv> } {
  const { loaded, upstreams, rings, counters, breakers, logger, lifecycle, observe } = deps;
  const data = new Hono<DataEnv>();
  data.use(requestId());
  const onRejected = deps.onRejected;
  if (onRejected)
    data.use('/v1/*', async function rejected(c, next) {
      await next();
      if (!c.get('governed') && c.res.status >= 400) onRejected(c.get('errorCode') ?? String(c.res.status));
    });
  health(data, lifecycle);
  data.use('/v1/*', async function draining(c, next) {
    if (lifecycle.draining) return fail(c, 'not_ready', 'gateway is shutting down', { connection: 'close' });
    await next();
  });

  const auth = authenticate(loaded.appKeys);
  const proxyDeps = { loaded, upstreams, rings, counters, breakers, logger, observe };
  for (const [path, api] of API_ROUTES) {
    data.post(path, auth, proxyRoute(api, proxyDeps));
    data.all(path, (c) =>
      fail(c, 'method_not_allowed', `${c.req.method} is not allowed on ${path}`, { allow: 'POST' }),
    );
  }
  data.get('/v1/models', auth, listModels(upstreams));
  data.all('/v1/models', (c) =>
    fail(c, 'method_not_allowed', `${c.req.method} is not allowed on /v1/models`, { allow: 'GET' }),
  );
  data.notFound((c) => fail(c, 'route_not_found', `no route ${c.req.method} ${c.req.path}`));
  data.onError((err, c) => {
    if (err instanceof GatewayError) {
      if (err.status >= 500)
        logger.warn(
          { requestId: c.get('requestId'), code: err.code, cause: String(err.cause ?? '') },
          err.message,
        );
      return errorResponse(c, err);
    }
    if (err instanceof ClientClosedError) return c.body(null, 499 as 200);
    logger.error({ requestId: c.get('requestId'), err }, 'unhandled error');
    return errorResponse(c, new GatewayError('internal_error', 'internal error'));
  });

  const admin = new Hono<DataEnv>();
  admin.use(requestId());
  health(admin, lifecycle);
  const registry = deps.metrics;
  if (registry)
    admin.get('/metrics', async (c) =>
      c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }),
    );
  if (deps.adminApi) admin.route('/admin/v1', deps.adminApi);
  if (deps.console) admin.route('/console', deps.console);
  admin.notFound((c) => fail(c, 'route_not_found', `no route ${c.req.method} ${c.req.path}`));
  return { data, admin };
}
