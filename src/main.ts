import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { createGateway } from './app.ts';
import { type ConfigOverrides, type LoadedConfig, loadConfig } from './config/load.ts';
import { adminApi } from './control/admin-api.ts';
import { MemoryCounters } from './control/counters.ts';
import { persistCounters } from './control/counters-persist.ts';
import { openFileStore } from './control/file-store.ts';
import { memoryStore } from './control/memory-store.ts';
import { sampleOf } from './control/ring-sample.ts';
import { RingsController } from './control/rings-controller.ts';
import type { DataEnv, Lifecycle, RequestObserver } from './gateway/context.ts';
import { createLogger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { allowAllBundle } from './policy/builtin.ts';
import { type CompiledBundle, compileBundle } from './policy/compile.ts';
import { loadBundleFile } from './policy/load.ts';
import { type MockProvider, startMockProvider } from './providers/mock/server.ts';
import { createBreakers } from './upstream/breakers.ts';
import { createProbe } from './upstream/probe.ts';
import { createUpstreams, type Upstreams } from './upstream/targets.ts';

/** Options for starting a gateway in this process. */
export interface StartOptions {
  configFile: string;
  env: Readonly<Record<string, string | undefined>>;
  overrides?: ConfigOverrides;
  logger?: Logger;
  /** Receives one record per governed request (tests; the decision log). */
  observe?: RequestObserver;
}

/** A gateway listening on its data and admin ports. */
export interface RunningGateway {
  readonly dataUrl: string;
  readonly adminUrl: string;
  readonly loaded: LoadedConfig;
  readonly lifecycle: Lifecycle;
  readonly logger: Logger;
  readonly upstreams: Upstreams;
  readonly rings: RingsController;
  /** Stops accepting, lets in-flight requests finish up to `graceMs`, then closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

function listen(app: Hono<DataEnv>, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }, () =>
      resolve(server as Server),
    ) as Server;
    server.once('error', reject);
  });
}

function urlOf(server: Server): string {
  const a = server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

const inFlight = new WeakMap<Socket, number>();

/** Tracks requests per socket, so a drain can close sockets that carry none (opened, never or no longer used). */
function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req, res) => {
    const s = req.socket;
    inFlight.set(s, (inFlight.get(s) ?? 0) + 1);
    res.once('close', () => inFlight.set(s, (inFlight.get(s) ?? 1) - 1));
  });
  return sockets;
}

/** Closes a server gracefully: no new connections, idle ones closed as they free up, all closed at the deadline. */
function drain(server: Server, graceMs: number, sockets?: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    const idle = () => {
      server.closeIdleConnections();
      // Node does not count a connection that never carried a request as idle: close those too.
      if (sockets) for (const s of sockets) if (!inFlight.get(s)) s.destroySoon();
    };
    const tick = setInterval(idle, 50);
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(tick);
      clearTimeout(deadline);
      resolve();
    });
    idle();
  });
}

/** The production bundle named by the config (relative to the config file), or the built-in allow-all. */
function loadProductionBundle(loaded: LoadedConfig): CompiledBundle {
  const file = loaded.config.policy?.bundle;
  if (!file) return allowAllBundle();
  const path = isAbsolute(file) ? file : resolve(dirname(loaded.file), file);
  return compileBundle(loadBundleFile(path, { providers: Object.keys(loaded.config.providers) }));
}

/** Composition root: loads the config, builds every dependency, and listens. */
export async function startGateway(opts: StartOptions): Promise<RunningGateway> {
  const loaded = loadConfig(opts.configFile, opts.env, opts.overrides);
  const { config } = loaded;
  const logger = opts.logger ?? createLogger(config.log.level);
  const needsMock = Object.values(config.providers).some((p) => p.kind === 'mock' && !p.baseUrl);
  const mock: MockProvider | undefined = needsMock ? await startMockProvider({ record: 0 }) : undefined;
  const upstreams = createUpstreams(loaded, mock?.url);
  const breakers = createBreakers(config.providers);
  const lifecycle: Lifecycle = { ready: false, draining: false };
  const stateDir = config.rings.stateDir
    ? isAbsolute(config.rings.stateDir)
      ? config.rings.stateDir
      : resolve(dirname(loaded.file), config.rings.stateDir)
    : undefined;
  const store = stateDir ? await openFileStore(stateDir) : memoryStore();
  const counters = new MemoryCounters();
  const counterStore = stateDir ? await openFileStore(join(stateDir, 'counters')) : undefined;
  const savedCounters = counterStore ? await persistCounters(counters, counterStore, logger) : undefined;
  const rings = await RingsController.open({
    store,
    logger,
    thresholds: config.rings,
    providers: Object.keys(config.providers),
    bootstrap: loadProductionBundle(loaded),
  });
  rings.start();
  const metrics = new Metrics();
  metrics.follow(breakers);
  metrics.ring(rings.runtime.snapshot());
  const observe: RequestObserver = (record, snap) => {
    rings.record(snap, sampleOf(record));
    metrics.observe(record, snap);
    opts.observe?.(record, snap);
  };
  const { data, admin } = createGateway({
    loaded,
    upstreams,
    rings: rings.runtime,
    counters,
    breakers,
    logger,
    lifecycle,
    observe,
    metrics: metrics.registry,
    adminApi: adminApi({
      rings,
      tokens: loaded.adminTokens,
      logger,
      probe: createProbe({
        config,
        upstreams,
        breakers,
        killed: () => rings.runtime.snapshot().state.killed?.targets ?? [],
      }),
    }),
  });
  const dataServer = await listen(data, config.listeners.data.host, config.listeners.data.port);
  const dataSockets = trackSockets(dataServer);
  const adminServer = await listen(admin, config.listeners.admin.host, config.listeners.admin.port);
  // Streams can be long: keep the socket timeouts from cutting them; the provider timeouts bound them instead.
  dataServer.requestTimeout = 0;
  dataServer.keepAliveTimeout = 65_000;
  lifecycle.ready = true;
  const dataUrl = urlOf(dataServer);
  const adminUrl = urlOf(adminServer);
  const cb = rings.runtime.snapshot().production;
  logger.info(
    {
      dataUrl,
      adminUrl,
      mock: mock?.url,
      config: loaded.file,
      bundle: { id: cb.id, name: cb.name, version: cb.version },
    },
    'ringfence listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    dataUrl,
    adminUrl,
    loaded,
    lifecycle,
    logger,
    upstreams,
    rings,
    shutdown(graceMs = config.limits.shutdownGraceMs) {
      stopping ??= (async () => {
        lifecycle.draining = true;
        logger.info({ graceMs }, 'shutting down: draining in-flight requests');
        await Promise.all([
          drain(dataServer, graceMs, dataSockets),
          drain(adminServer, Math.min(graceMs, 1000)),
        ]);
        await rings.stop();
        await savedCounters?.stop();
        await counterStore?.close();
        breakers.close();
        await upstreams.close();
        await store.close();
        await mock?.close();
        logger.info('stopped');
        logger.flush();
      })();
      return stopping;
    },
  };
}

/** `ringfence serve`: starts the gateway and wires SIGTERM/SIGINT to a graceful shutdown (exit 0). */
export async function runServe(configFile: string, overrides: ConfigOverrides): Promise<void> {
  const gw = await startGateway({ configFile, env: process.env, overrides });
  let signals = 0;
  const stop = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      gw.logger.warn({ sig }, 'second signal: exiting now');
      process.exit(1);
    }
    gw.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        gw.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
