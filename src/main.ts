import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { type Logger, pino } from 'pino';
import { createGateway } from './app.ts';
import { type ConfigOverrides, type LoadedConfig, loadConfig } from './config/load.ts';
import { ConsoleTelemetry, consoleApp } from './console/index.ts';
import { adminApi } from './control/admin-api.ts';
import { AuditLog } from './control/audit.ts';
import { type Counters, MemoryCounters } from './control/counters.ts';
import { persistCounters } from './control/counters-persist.ts';
import { openFileStore } from './control/file-store.ts';
import { Governance } from './control/governance.ts';
import { memoryStore } from './control/memory-store.ts';
import type { GateOverride } from './control/override-schema.ts';
import { openPgStore } from './control/pg-store.ts';
import { RedisCounters } from './control/redis-counters.ts';
import { sampleOf } from './control/ring-sample.ts';
import { RingsController } from './control/rings-controller.ts';
import type { DataEnv, Lifecycle, RequestObserver } from './gateway/context.ts';
import { Pricing } from './observability/cost.ts';
import { DecisionLog, drained, openSink, type Sink } from './observability/decision-log.ts';
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
  readonly governance: Governance;
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
  const dl = config.log.decisions;
  // Process log and decision log share one async stdout destination (one buffer: lines never interleave).
  const stdout = opts.logger ? undefined : openSink('stdout', dl.bufferBytes);
  const logger = opts.logger ?? createLogger(config.log.level, stdout);
  const decisionSink: Sink | undefined = !dl.enabled
    ? undefined
    : dl.destination === 'stdout'
      ? (stdout ?? ((logger as unknown as Record<symbol, Sink>)[pino.symbols.streamSym] as Sink))
      : openSink(
          dl.destination === 'stderr' || isAbsolute(dl.destination)
            ? dl.destination
            : resolve(dirname(loaded.file), dl.destination),
          dl.bufferBytes,
        );
  const ownsDecisionSink = decisionSink !== undefined && dl.destination !== 'stdout';
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
  const replica = config.store.replicaId ?? opts.env.RINGFENCE_REPLICA_ID ?? `${hostname()}-${process.pid}`;
  // The control plane: PostgreSQL shared by every replica, else files in the state dir (one replica), else memory.
  const store =
    config.store.kind === 'postgres'
      ? await openPgStore({
          url: config.store.url!,
          schema: config.store.schema,
          logger,
          applicationName: `ringfence-${replica}`,
        })
      : stateDir
        ? await openFileStore(stateDir)
        : memoryStore();
  // Budget counters: in Redis, shared by every replica; else in memory (this replica), saved to the state dir.
  const redisCounters =
    config.counters.kind === 'redis'
      ? new RedisCounters({
          url: config.counters.url!,
          keyPrefix: config.counters.keyPrefix,
          timeoutMs: config.counters.timeoutMs,
          logger,
        })
      : undefined;
  const counters: Counters = redisCounters ?? new MemoryCounters();
  const counterStore =
    counters instanceof MemoryCounters && stateDir
      ? await openFileStore(join(stateDir, 'counters'))
      : undefined;
  const savedCounters =
    counterStore && counters instanceof MemoryCounters
      ? await persistCounters(counters, counterStore, logger)
      : undefined;
  if (redisCounters && !(await redisCounters.ready(2000)))
    logger.warn('budget counter store (Redis) not reachable yet: budgets follow their mode until it is');
  // The audit trail is verified before anything is appended to it: a tampered trail stops the start.
  const audit = await AuditLog.open(store, {
    ...(opts.env.RINGFENCE_AUDIT_SIGNING_KEY ? { signingKey: opts.env.RINGFENCE_AUDIT_SIGNING_KEY } : {}),
    logger,
  });
  const rings = await RingsController.open({
    store,
    logger,
    audit,
    replica,
    thresholds: config.rings,
    providers: Object.keys(config.providers),
    bootstrap: loadProductionBundle(loaded),
  });
  rings.start({ syncIntervalMs: config.store.syncIntervalMs });
  lifecycle.controlPlane = () => ({
    store: config.store.kind === 'postgres' ? 'postgres' : stateDir ? 'file' : 'memory',
    replica,
    replicas: rings.replicas,
    stateVersion: rings.runtime.snapshot().state.version,
    ...rings.store,
  });
  const pricing = new Pricing(config.providers);
  const metrics = new Metrics(pricing);
  const consoleTelemetry = new ConsoleTelemetry(pricing);
  if (redisCounters)
    redisCounters.onFailure = (f) =>
      f.op === 'reserve'
        ? metrics.budgetStoreFailures.labels(f.mode).inc()
        : metrics.budgetSettleFailures.inc();
  metrics.follow(breakers);
  // Every breaker a configured target can have, closed, so dashboards show them before their first transition.
  for (const [id, p] of Object.entries(config.providers))
    for (const target of [...p.models.map((m) => `${id}/${m}`), `${id}/*`])
      metrics.breakerState.labels(target).set(0);
  metrics.ring(rings.runtime.snapshot());
  metrics.bundles(rings.placements());
  rings.subscribe((e) => {
    if (e.kind === 'changed') {
      metrics.ring(rings.runtime.snapshot());
      metrics.bundles(rings.placements());
    } else metrics.ringEvent(e);
  });
  const governance = await Governance.open({
    rings,
    store,
    audit,
    logger,
    approvalTtlMs: config.governance.approvalTtlS * 1000,
    nonOverridableGates: config.governance.nonOverridableGates,
  });
  const overridesChanged = (active: readonly GateOverride[]) => {
    metrics.overridesActive.set(active.length);
    metrics.overrideExpiry.reset();
    for (const o of active)
      for (const g of o.gates)
        if (o.expiry.expiresAt)
          metrics.overrideExpiry.labels(g.name).set(Date.parse(o.expiry.expiresAt) / 1000);
  };
  governance.onOverrides = overridesChanged;
  overridesChanged(governance.active());
  governance.start(config.governance.expiryCheckIntervalMs);
  const decisions = decisionSink
    ? new DecisionLog({
        sink: decisionSink,
        pricing,
        maxContentChars: dl.maxContentChars,
        counts: { written: () => metrics.logEvents.inc(), dropped: () => metrics.logDropped.inc() },
      })
    : undefined;
  const observe: RequestObserver = (record, snap) => {
    rings.record(snap, sampleOf(record));
    metrics.observe(record, snap);
    consoleTelemetry.observe(record, snap);
    decisions?.write(record);
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
    onRejected: (code) => metrics.rejected.labels(code).inc(),
    metrics: metrics.registry,
    adminApi: adminApi({
      rings,
      governance,
      audit: { log: audit, store, stateDir },
      tokens: loaded.adminTokens,
      logger,
      probe: createProbe({
        config,
        upstreams,
        breakers,
        killed: () => rings.runtime.snapshot().state.killed?.targets ?? [],
      }),
    }),
    console: consoleApp({
      rings,
      governance,
      audit,
      store,
      tokens: loaded.adminTokens,
      logger,
      telemetry: consoleTelemetry,
      apps: config.applications.map((a) => a.id),
      targets: Object.entries(config.providers).flatMap(([id, p]) => [
        ...p.models.map((m) => `${id}/${m}`),
        id,
      ]),
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
    governance,
    shutdown(graceMs = config.limits.shutdownGraceMs) {
      stopping ??= (async () => {
        lifecycle.draining = true;
        logger.info({ graceMs }, 'shutting down: draining in-flight requests');
        await Promise.all([
          drain(dataServer, graceMs, dataSockets),
          drain(adminServer, Math.min(graceMs, 1000)),
        ]);
        await governance.stop();
        await rings.stop();
        await savedCounters?.stop();
        await counterStore?.close();
        await counters.close();
        breakers.close();
        await upstreams.close();
        await store.close();
        await mock?.close();
        await decisions?.close(ownsDecisionSink);
        logger.info('stopped');
        logger.flush();
        if (stdout) await drained(stdout, 2000);
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
