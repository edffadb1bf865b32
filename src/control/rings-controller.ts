import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { canonicalJson } from '../policy/canonical.ts';
import { type CompiledBundle, compileBundle } from '../policy/compile.ts';
import { parseBundle } from '../policy/load.ts';
import { type DrillEvidence, evaluateGates, type GateResult, gatesPass } from '../rings/gates.ts';
import { RingRuntime, type RingSnapshot, type RingRuntime as Runtime } from '../rings/runtime.ts';
import { type RingState, ringStateSchema, type Slice } from '../rings/state.ts';
import {
  type Actor,
  initialState,
  kill,
  promote,
  restore,
  rollback,
  setCanary,
  startShadow,
} from '../rings/transitions.ts';
import { checkTriggers, type FiredTrigger } from '../rings/triggers.ts';
import { fleetView, type StatsSummary, summarize } from './fleet-stats.ts';
import { type RingSample, RingStats } from './ring-stats.ts';
import { type ControlStore, StoreConflictError, StoreCorruptError } from './store.ts';

/** A promotion the gates refuse; carries the gate table (409 on the admin API). */
export class GateBlockedError extends Error {
  readonly gates: readonly GateResult[];
  constructor(message: string, gates: readonly GateResult[]) {
    super(message);
    this.name = 'GateBlockedError';
    this.gates = gates;
  }
}

/** A rollback as recorded: by hand or by a trigger, with the figures and the time it took to restore. */
export interface RollbackRecord {
  readonly at: string;
  readonly by: string;
  readonly reason: string;
  readonly trigger: FiredTrigger | undefined;
  readonly from: {
    readonly production: string;
    readonly candidate: string | undefined;
    readonly stage: string | undefined;
  };
  readonly to: { readonly production: string };
  readonly changeId: string;
  /** From the moment the trigger was detected (or the request arrived) to the swapped state. */
  readonly timeToRestoreMs: number;
}

type Thresholds = Config['rings'];

function epochOf(s: RingState): string {
  return s.candidate
    ? `${s.candidate.bundleId}:${s.candidate.stage}:${s.candidate.stageSince}`
    : `production:${s.production.bundleId}`;
}

/**
 * The ring control plane of one replica: the bundle registry, the ring state (persisted through the store with
 * compare-and-set), the statistics of the current stage, gates, automatic rollback. It swaps the runtime's
 * snapshot once per change; the data plane never waits for it.
 */
/** Where control-plane changes are recorded: the hash-chained audit trail (`audit.ts`). */
export interface AuditSink {
  append(kind: string, actor: string, data: Record<string, unknown>, changeId?: string): Promise<unknown>;
}

/** What the metrics follow: every applied change (with the new snapshot), promotions and rollbacks. */
export type RingEvent =
  | { readonly kind: 'changed' }
  | { readonly kind: 'journal'; readonly journal: string }
  | { readonly kind: 'store'; readonly up: boolean }
  | { readonly kind: 'propagated'; readonly seconds: number }
  | { readonly kind: 'fleet'; readonly replicas: number }
  | { readonly kind: 'promotion'; readonly to: 'shadow' | 'canary' | 'production' }
  | { readonly kind: 'rollback'; readonly trigger: string };

export class RingsController {
  readonly runtime: Runtime;
  readonly #store: ControlStore;
  readonly #logger: Logger;
  readonly #t: Thresholds;
  readonly #providers: readonly string[];
  readonly #bundles = new Map<string, CompiledBundle>();
  readonly #acks = new Map<string, { by: string; reason: string; at: string }>();
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #listeners: Array<(e: RingEvent) => void> = [];
  #audit: AuditSink | undefined;
  /** This replica's id (fleet statistics are published under it). */
  #replica = 'local';
  /** The latest statistics summaries the other replicas published for the current stage. */
  readonly #fleet = new Map<string, StatsSummary>();
  #syncTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Whether the control-plane store answers (fail static: the data plane keeps its last state either way). */
  store: { up: boolean; since: string; error: string | undefined } = {
    up: true,
    since: new Date().toISOString(),
    error: undefined,
  };
  lastRollback: RollbackRecord | undefined;
  /** The last kill-switch drill: rollback-readiness evidence for the promotion gates. */
  lastDrill: DrillEvidence | undefined;

  private constructor(
    store: ControlStore,
    logger: Logger,
    t: Thresholds,
    providers: readonly string[],
    runtime: Runtime,
  ) {
    this.#store = store;
    this.#logger = logger;
    this.#t = t;
    this.#providers = providers;
    this.runtime = runtime;
  }

  /**
   * Opens the control plane: resumes the stored ring state exactly, or starts one from `bootstrap` (the config's
   * production bundle) when the store is empty. A stored state that cannot be trusted stops the start.
   */
  static async open(opts: {
    store: ControlStore;
    logger: Logger;
    thresholds: Thresholds;
    providers: readonly string[];
    bootstrap: CompiledBundle;
    /** The hash-chained audit trail every control-plane change is appended to. */
    audit?: AuditSink;
    /** This replica's id, for fleet-wide gate statistics. */
    replica?: string;
  }): Promise<RingsController> {
    const { store, logger, bootstrap } = opts;
    const placeholder = new RingRuntime(undefined as unknown as RingSnapshot);
    const c = new RingsController(store, logger, opts.thresholds, opts.providers, placeholder);
    c.#audit = opts.audit;
    if (opts.replica) c.#replica = opts.replica;
    c.#bundles.set(bootstrap.id, bootstrap);
    const raw = await store.loadState<RingState>();
    let state: RingState;
    if (raw === undefined) {
      await store.putBundle(bootstrap.id, canonicalJson(bootstrap.loaded.bundle));
      state = initialState(bootstrap.id, { by: 'bootstrap', at: new Date() });
      await store.saveState(state, undefined);
      await c.#audited(
        'ring.entered',
        'bootstrap',
        { ring: 'production', bundleId: bootstrap.id, at: state.production.at },
        state.changeId,
      );
    } else {
      const parsed = ringStateSchema.safeParse(raw);
      if (!parsed.success)
        throw new StoreCorruptError(
          'state',
          `stored ring state is not valid: ${parsed.error.issues[0]?.message}`,
        );
      state = parsed.data;
      if (state.production.bundleId !== bootstrap.id)
        logger.warn(
          { stored: state.production.bundleId, config: bootstrap.id },
          'the stored production bundle differs from the config policy.bundle; the stored ring state wins',
        );
    }
    for (const ev of (await store.readEvents('divergence-acks')).events as Array<{
      epoch: string;
      group: string;
      by: string;
      reason: string;
      at: string;
    }>)
      c.#acks.set(`${ev.epoch}|${ev.group}`, { by: ev.by, reason: ev.reason, at: ev.at });
    const rollbacks = (await store.readEvents('rollbacks')).events as RollbackRecord[];
    c.lastRollback = rollbacks.at(-1);
    const drill = (await store.readEvents('drills')).events.at(-1) as
      | { passed: boolean; at: string }
      | undefined;
    if (drill) c.lastDrill = { ok: drill.passed, at: drill.at };
    placeholder.swap(await c.#snapshotOf(state, undefined));
    return c;
  }

  /** Compiles (once) and returns a registered bundle, loading it from the store if needed. */
  async #bundle(id: string): Promise<CompiledBundle> {
    const have = this.#bundles.get(id);
    if (have) return have;
    const text = await this.#store.getBundle(id);
    if (text === undefined)
      throw new StoreCorruptError('bundles', `bundle ${id} is referenced by the ring state but not stored`);
    const loaded = parseBundle(text, id, { providers: this.#providers });
    if (loaded.id !== id)
      throw new StoreCorruptError('bundles', `bundle ${id} re-validates to a different id ${loaded.id}`);
    const cb = compileBundle(loaded);
    this.#bundles.set(id, cb);
    return cb;
  }

  async #snapshotOf(state: RingState, prev: RingSnapshot | undefined): Promise<RingSnapshot> {
    const production = await this.#bundle(state.production.bundleId);
    const candidate = state.candidate ? await this.#bundle(state.candidate.bundleId) : undefined;
    const epoch = epochOf(state);
    const stats =
      prev && prev.stats.epoch === epoch
        ? prev.stats
        : new RingStats(epoch, state.candidate ? Date.parse(state.candidate.stageSince) : Date.now());
    for (const [k, ack] of this.#acks)
      if (k.startsWith(`${epoch}|`)) this.#pendingAck(stats, k.slice(epoch.length + 1), ack);
    return Object.freeze({ state, production, candidate, stats });
  }

  #pendingAck(stats: RingStats, group: string, ack: { by: string; reason: string; at: string }): void {
    const g = stats.groups.get(group);
    if (g) g.ack = ack;
  }

  /** Serialises control-plane changes in this process; the store's compare-and-set guards across processes. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #apply(change: (s: RingState) => RingState): Promise<RingState> {
    const cur = this.runtime.snapshot();
    const next = change(cur.state);
    const snap = await this.#snapshotOf(next, cur);
    try {
      await this.#store.saveState(next, cur.state.version);
    } catch (err) {
      // Another replica changed the state first: catch up, so the next attempt starts from what is stored.
      if (err instanceof StoreConflictError) await this.#refresh().catch(() => {});
      throw err;
    }
    this.runtime.swap(snap);
    this.#emit({ kind: 'changed' });
    this.#logger.info(
      {
        version: next.version,
        changeId: next.changeId,
        production: next.production.bundleId,
        candidate: next.candidate,
      },
      'ring state changed',
    );
    return next;
  }

  /** Validates, compiles and stores a bundle (content-addressed, immutable). Registering the same bundle twice is a no-op. */
  registerBundle(
    text: string,
    source: string,
    by = 'system',
  ): Promise<{ id: string; name: string; version: string; created: boolean }> {
    return this.#serial(async () => {
      const loaded = parseBundle(text, source, { providers: this.#providers });
      const created = !this.#bundles.has(loaded.id) && (await this.#store.getBundle(loaded.id)) === undefined;
      const cb = this.#bundles.get(loaded.id) ?? compileBundle(loaded);
      await this.#store.putBundle(cb.id, canonicalJson(loaded.bundle));
      this.#bundles.set(cb.id, cb);
      if (created)
        await this.#audited('bundle.registered', by, {
          bundleId: cb.id,
          name: cb.name,
          version: cb.version,
          source,
        });
      return { id: cb.id, name: cb.name, version: cb.version, created };
    });
  }

  /** Registered bundles: id, name, version. */
  async listBundles(): Promise<Array<{ id: string; name: string; version: string }>> {
    const ids = await this.#store.listBundles();
    const out = [];
    for (const id of ids) {
      const cb = await this.#bundle(id);
      out.push({ id, name: cb.name, version: cb.version });
    }
    return out;
  }

  /** A registered bundle by id (compiled). */
  getBundle(id: string): Promise<CompiledBundle> {
    return this.#bundle(id);
  }

  /** Subscribes to ring events (called synchronously after each change is applied). Returns an unsubscribe. */
  subscribe(fn: (e: RingEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== fn);
    };
  }

  #emit(e: RingEvent): void {
    for (const l of this.#listeners)
      try {
        l(e);
      } catch (err) {
        this.#logger.error({ err }, 'ring event listener failed');
      }
  }

  /**
   * Appends to the audit trail. The change it records is already applied: a failed append is logged at error
   * level (the trail then misses it, and `ringfence audit verify` still proves the rest), never undone.
   */
  async #audited(
    kind: string,
    actor: string,
    data: Record<string, unknown>,
    changeId?: string,
  ): Promise<void> {
    if (!this.#audit) return;
    try {
      await this.#audit.append(kind, actor, data, changeId);
    } catch (err) {
      this.#logger.error(
        { err, kind, actor },
        'audit trail append failed: the change is applied but not audited',
      );
    }
  }

  /** The bundles in each ring (production, candidate, and the most recent rollback target), with name and version. */
  placements(): Array<{
    ring: 'production' | 'candidate' | 'previous';
    id: string;
    name: string;
    version: string;
  }> {
    const snap = this.runtime.snapshot();
    const out: ReturnType<RingsController['placements']> = [];
    const add = (ring: 'production' | 'candidate' | 'previous', id: string) => {
      const cb = this.#bundles.get(id);
      out.push({ ring, id, name: cb?.name ?? 'unknown', version: cb?.version ?? 'unknown' });
    };
    add('production', snap.state.production.bundleId);
    if (snap.state.candidate) add('candidate', snap.state.candidate.bundleId);
    const prev = snap.state.previous[0];
    if (prev) add('previous', prev.bundleId);
    return out;
  }

  shadow(bundleId: string, actor: Actor): Promise<RingState> {
    return this.#serial(async () => {
      await this.#bundle(bundleId);
      const next = await this.#apply((s) => startShadow(s, bundleId, actor));
      this.#emit({ kind: 'promotion', to: 'shadow' });
      await this.#audited(
        'ring.entered',
        actor.by,
        { ring: 'shadow', bundleId, at: next.candidate?.stageSince },
        next.changeId,
      );
      return next;
    });
  }

  /** Enters canary from shadow (gated), or changes a running canary's slice. */
  canary(slice: Slice, actor: Actor, covered?: (gate: string) => boolean): Promise<RingState> {
    return this.#serial(async () => {
      const snap = this.runtime.snapshot();
      if (snap.state.candidate?.stage === 'shadow') {
        const table = this.gates(actor.at.getTime());
        if (table && !gatesPass(table.gates, covered))
          throw new GateBlockedError('shadow → canary gates do not pass', table.gates);
      }
      const entering = snap.state.candidate?.stage === 'shadow';
      const next = await this.#apply((s) => setCanary(s, slice, actor));
      if (entering) this.#emit({ kind: 'promotion', to: 'canary' });
      await this.#audited(
        'ring.entered',
        actor.by,
        {
          ring: 'canary',
          bundleId: next.candidate?.bundleId,
          slice: next.candidate?.slice,
          at: next.candidate?.stageSince,
          resliced: !entering,
        },
        next.changeId,
      );
      return next;
    });
  }

  promote(actor: Actor, covered?: (gate: string) => boolean): Promise<RingState> {
    return this.#serial(async () => {
      const table = this.gates(actor.at.getTime());
      if (table?.transition === 'canary_to_production' && !gatesPass(table.gates, covered))
        throw new GateBlockedError('canary → production gates do not pass', table.gates);
      const next = await this.#apply((s) => promote(s, actor));
      this.#emit({ kind: 'promotion', to: 'production' });
      await this.#audited(
        'ring.entered',
        actor.by,
        { ring: 'production', bundleId: next.production.bundleId, at: next.production.at },
        next.changeId,
      );
      return next;
    });
  }

  /** Rolls back one step (drop the candidate, else revert production). Recorded with its reason and timing. */
  rollback(actor: Actor, reason: string, trigger?: FiredTrigger): Promise<RollbackRecord> {
    return this.#serial(() => this.#rollback(actor, reason, trigger));
  }

  /** One rollback step; runs inside the serial chain. */
  async #rollback(actor: Actor, reason: string, trigger: FiredTrigger | undefined): Promise<RollbackRecord> {
    const started = actor.at.getTime();
    const before = this.runtime.snapshot().state;
    const after = await this.#apply((s) => rollback(s, actor));
    const rec: RollbackRecord = {
      at: new Date().toISOString(),
      by: actor.by,
      reason,
      trigger,
      from: {
        production: before.production.bundleId,
        candidate: before.candidate?.bundleId,
        stage: before.candidate?.stage,
      },
      to: { production: after.production.bundleId },
      changeId: after.changeId,
      timeToRestoreMs: Date.now() - started,
    };
    // Known before the event is written: the status never shows the new state with the previous rollback.
    this.lastRollback = rec;
    this.#emit({ kind: 'rollback', trigger: trigger?.trigger ?? 'manual' });
    await this.#store.appendEvent('rollbacks', rec);
    await this.#audited(
      'rollback',
      actor.by,
      {
        trigger: trigger?.trigger ?? 'manual',
        reason,
        figures: trigger?.figures ?? null,
        from: rec.from,
        to: rec.to,
        timeToRestoreMs: rec.timeToRestoreMs,
      },
      rec.changeId,
    );
    this.#logger.warn({ rollback: rec }, 'rolled back');
    return rec;
  }

  /** Flips a kill switch (a target, or the candidate): persisted with the ring state, audited with who and why. */
  kill(what: { target: string } | { candidate: true }, actor: Actor, reason: string): Promise<RingState> {
    return this.#serial(async () => {
      const next = await this.#apply((s) => kill(s, what, actor, reason));
      await this.#store.appendEvent('kill-switches', {
        action: 'kill',
        ...what,
        by: actor.by,
        at: actor.at.toISOString(),
        reason,
        changeId: next.changeId,
      });
      await this.#audited('kill', actor.by, { ...what, reason }, next.changeId);
      return next;
    });
  }

  /** Lifts a kill switch; audited. */
  restore(what: { target: string } | { candidate: true }, actor: Actor, reason: string): Promise<RingState> {
    return this.#serial(async () => {
      const next = await this.#apply((s) => restore(s, what));
      await this.#store.appendEvent('kill-switches', {
        action: 'restore',
        ...what,
        by: actor.by,
        at: actor.at.toISOString(),
        reason,
        changeId: next.changeId,
      });
      await this.#audited('restore', actor.by, { ...what, reason }, next.changeId);
      return next;
    });
  }

  /** Records the result of a kill-switch drill (the rollback-readiness evidence). */
  async recordDrill(result: { passed: boolean; at: string }): Promise<void> {
    await this.#store.appendEvent('drills', result);
    this.lastDrill = { ok: result.passed, at: result.at };
    await this.#audited(
      'drill',
      (result as { by?: string }).by ?? 'drill',
      { ...result },
      this.runtime.snapshot().state.changeId,
    );
  }

  /** Every drill recorded, oldest first. */
  async drills(): Promise<unknown[]> {
    return (await this.#store.readEvents('drills')).events;
  }

  /** The gate table of the candidate's next transition, measured now. */
  gates(now = Date.now()): ReturnType<typeof evaluateGates> {
    const snap = this.runtime.snapshot();
    const others = [...this.#fleet.values()].filter((o) => o.epoch === snap.stats.epoch);
    const stats = others.length ? fleetView(snap.stats, this.#replica, others, now) : snap.stats;
    return evaluateGates(snap.state, stats, this.#t.gates, now, this.lastDrill);
  }

  /** Acknowledges a divergence group of the current stage with an explanation. */
  ack(group: string, actor: Actor, reason: string): Promise<void> {
    return this.#serial(async () => {
      const snap = this.runtime.snapshot();
      const g = snap.stats.groups.get(group);
      const elsewhere = [...this.#fleet.values()].some(
        (o) => o.epoch === snap.stats.epoch && o.groups.some((x) => x.key === group),
      );
      if (!g && !elsewhere) throw new Error(`no divergence group "${group}" in the current stage`);
      const ack = { by: actor.by, reason, at: actor.at.toISOString() };
      await this.#store.appendEvent('divergence-acks', { epoch: snap.stats.epoch, group, ...ack });
      this.#acks.set(`${snap.stats.epoch}|${group}`, ack);
      if (g) g.ack = ack;
      else this.#pendingAck(snap.stats, group, ack);
      await this.#audited(
        'divergence.ack',
        actor.by,
        { epoch: snap.stats.epoch, group, reason },
        snap.state.changeId,
      );
    });
  }

  /** Records one request's outcome in the statistics of the stage it was decided under. */
  record(snap: RingSnapshot, sample: RingSample): void {
    snap.stats.record(sample);
    const g =
      sample.divergence &&
      snap.stats.groups.get(`${sample.divergence.prodRule} → ${sample.divergence.candRule}`);
    if (g && !g.ack) {
      const ack = this.#acks.get(`${snap.stats.epoch}|${g.key}`);
      if (ack) g.ack = ack;
    }
  }

  /** Checks the rollback triggers once (the loop calls this every `checkIntervalMs`). */
  async checkTriggers(now = Date.now()): Promise<RollbackRecord | undefined> {
    const snap = this.runtime.snapshot();
    if (snap.state.candidate?.stage !== 'canary') return undefined;
    const fired = checkTriggers(snap.stats, this.#t.triggers, now);
    if (!fired) return undefined;
    // Only the canary that fired is rolled back: by the time this runs in the chain, an earlier check's rollback
    // (or an operator's change) may have replaced it, and rolling back again would revert production instead.
    return this.#serial(async () =>
      this.runtime.snapshot().state.version === snap.state.version
        ? this.#rollback({ by: 'auto-rollback', at: new Date(now) }, fired.message, fired)
        : undefined,
    );
  }

  /** Starts the trigger loop (unref'd: it never keeps the process alive). */
  start(opts: { syncIntervalMs?: number } = {}): void {
    this.#timer ??= setInterval(() => {
      this.checkTriggers().catch((err: unknown) =>
        this.#logger.error({ err }, 'rollback trigger check failed'),
      );
    }, this.#t.triggers.checkIntervalMs);
    this.#timer.unref();
    const store = this.#store;
    // Replicas: follow the store's change feed, and poll its version too (a missed notification heals).
    this.#unsubscribe ??= store.subscribe?.({
      onChange: (kind, detail) => {
        if (kind === 'state') this.refresh().catch(() => {});
        else this.#emit({ kind: 'journal', journal: detail });
      },
      onStatus: (up, error) => this.#storeStatus(up, error),
    });
    // A store shared by replicas (it has a change feed): publish and read fleet statistics, poll the version.
    if (store.subscribe)
      this.#syncTimer ??= setInterval(() => {
        this.sync().catch(() => {});
      }, opts.syncIntervalMs ?? 2000);
    this.#syncTimer?.unref();
  }

  #storeStatus(up: boolean, error?: unknown): void {
    if (up === this.store.up) return;
    this.store = {
      up,
      since: new Date().toISOString(),
      error: up ? undefined : String((error as Error)?.message ?? error),
    };
    if (up) this.#logger.info('control-plane store reachable again: catching up');
    else
      this.#logger.error(
        { err: error },
        'control-plane store unreachable: serving with the last known ring state; control-plane writes are refused',
      );
    this.#emit({ kind: 'store', up });
    if (up) this.refresh().catch(() => {});
  }

  /** One sync round: catch up with the stored state, publish this replica's statistics, read the others'. */
  async sync(now = Date.now()): Promise<void> {
    const store = this.#store;
    try {
      await this.refresh();
      const stats = this.runtime.snapshot().stats;
      if (store.putShared && store.listShared) {
        const ns = `stats:${stats.epoch}`;
        await store.putShared(ns, this.#replica, summarize(stats, this.#replica, now));
        for (const { key, doc } of await store.listShared(ns))
          if (key !== this.#replica) this.#fleet.set(key, doc as StatsSummary);
        for (const [k, v] of this.#fleet) if (v.epoch !== stats.epoch) this.#fleet.delete(k);
        this.#emit({ kind: 'fleet', replicas: this.replicas });
      }
      this.#storeStatus(true);
    } catch (err) {
      this.#storeStatus(false, err);
    }
  }

  /** Replicas in the fleet view of the current stage (this one included). */
  get replicas(): number {
    const epoch = this.runtime.snapshot().stats.epoch;
    return 1 + [...this.#fleet.values()].filter((o) => o.epoch === epoch).length;
  }

  /** Catches up with a ring state another replica stored: one swap, as for a local change. */
  refresh(): Promise<boolean> {
    return this.#serial(() => this.#refresh());
  }

  async #refresh(): Promise<boolean> {
    const store = this.#store;
    const cur = this.runtime.snapshot();
    const version = await store.stateVersion();
    if (version !== undefined && version <= cur.state.version) return false;
    const raw = await this.#store.loadState<RingState>();
    if (raw === undefined) return false;
    const parsed = ringStateSchema.safeParse(raw);
    if (!parsed.success)
      throw new StoreCorruptError(
        'state',
        `stored ring state is not valid: ${parsed.error.issues[0]?.message}`,
      );
    if (parsed.data.version <= cur.state.version) return false;
    for (const ev of (await this.#store.readEvents('divergence-acks')).events as Array<{
      epoch: string;
      group: string;
      by: string;
      reason: string;
      at: string;
    }>)
      this.#acks.set(`${ev.epoch}|${ev.group}`, { by: ev.by, reason: ev.reason, at: ev.at });
    const next = await this.#snapshotOf(parsed.data, cur);
    this.runtime.swap(next);
    const rollbacks = (await this.#store.readEvents('rollbacks')).events as RollbackRecord[];
    this.lastRollback = rollbacks.at(-1);
    this.#emit({ kind: 'changed' });
    const lagMs = parsed.data.changedAt ? Date.now() - Date.parse(parsed.data.changedAt) : undefined;
    if (lagMs !== undefined) this.#emit({ kind: 'propagated', seconds: Math.max(0, lagMs) / 1000 });
    this.#logger.info(
      { version: parsed.data.version, changeId: parsed.data.changeId, from: cur.state.version, lagMs },
      'ring state changed by another replica: swapped',
    );
    return true;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#syncTimer) clearInterval(this.#syncTimer);
    this.#unsubscribe?.();
    this.#timer = undefined;
    this.#syncTimer = undefined;
    await this.#chain;
  }
}
