/**
 * The control-plane store on PostgreSQL, for several gateway replicas sharing one control plane. The same rules as
 * the file store (compare-and-set state, content-addressed bundles, validated append-only journals), made safe
 * across processes by the database: each write is one transaction; journals are serialised per journal by a
 * transaction-scoped advisory lock (so `appendChained` never forks a hash chain and `seq` order is commit order);
 * every committed change is announced with NOTIFY on `ringfence_changes`, which `subscribe` LISTENs to.
 *
 * Every call is bounded: connecting (or waiting for a pooled connection) 2 s, a statement 5 s. When the database
 * cannot be reached the call rejects with StoreUnavailableError; nothing hangs.
 */
import { Client, type ClientConfig, escapeIdentifier, type Notification, Pool, type PoolClient } from 'pg';
import type { Logger } from 'pino';
import {
  assertSchemaName,
  isUnavailable,
  type PgTimeouts,
  pgConfig,
  runMigrations,
  storeError,
} from './pg-migrations.ts';
import {
  type AppendOptions,
  assertBundle,
  assertJournalName,
  assertSharedName,
  assertUniqueKey,
  bundleHex,
  type ControlStore,
  checkExpected,
  DuplicateEventError,
  eventToStore,
  isVersion,
  type SharedDoc,
  type StoreChangeListener,
  StoreConflictError,
  StoreCorruptError,
  StoreUnavailableError,
  sha256Id,
  stateToStore,
  type Versioned,
} from './store.ts';

export { migrate, StoreSchemaTooNewError } from './pg-migrations.ts';
export { StoreUnavailableError } from './store.ts';

/** The NOTIFY channel. One per database: the payload names the schema, listeners ignore other schemas. */
export const CHANGE_CHANNEL = 'ringfence_changes';

/** Options of `openPgStore`. */
export interface PgStoreOptions extends PgTimeouts {
  /** `postgres://user:password@host:port/database` (any libpq-style URL node-postgres accepts). */
  readonly url: string;
  /** The schema holding the tables (created and migrated at open). Default `ringfence`. */
  readonly schema?: string;
  readonly logger?: Logger;
  /** Connections in the pool. Default 5. */
  readonly poolSize?: number;
  /** How often the change feed checks its connection (a half-open connection delivers nothing), in ms. Default 5000. */
  readonly feedPingMs?: number;
  /** Reconnect backoff of the change feed: first delay and cap, in ms. Default 100 → 2000. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

/**
 * Opens the store: connects, runs pending migrations (refusing a schema newer than this binary with
 * StoreSchemaTooNewError), and returns it. StoreUnavailableError when the database cannot be reached.
 */
export async function openPgStore(opts: PgStoreOptions): Promise<PgStore> {
  const schema = opts.schema ?? 'ringfence';
  assertSchemaName(schema);
  const config = pgConfig(opts.url, opts);
  const pool = new Pool({ ...config, max: opts.poolSize ?? 5, idleTimeoutMillis: 30_000 });
  // An idle pooled connection that dies (server restart) is reported here; the pool replaces it on demand.
  pool.on('error', (err) => opts.logger?.warn({ err }, 'control-plane store: an idle connection failed'));
  const store = new PgStore(pool, config, schema, opts);
  try {
    await store.migrate();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return store;
}

interface Payload {
  readonly schema: string;
  readonly kind: 'state' | 'events';
  readonly version?: number;
  readonly journal?: string;
}

/** The PostgreSQL control-plane store (see `openPgStore`). */
export class PgStore implements ControlStore {
  readonly schema: string;
  readonly #pool: Pool;
  readonly #config: ClientConfig;
  readonly #opts: PgStoreOptions;
  readonly #t: { state: string; bundles: string; events: string; shared: string };
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #feeds = new Set<ChangeFeed>();
  #closed = false;
  #ended: Promise<void> | undefined;

  /** Use `openPgStore`. */
  constructor(pool: Pool, config: ClientConfig, schema: string, opts: PgStoreOptions) {
    this.#pool = pool;
    this.#config = config;
    this.schema = schema;
    this.#opts = opts;
    const s = escapeIdentifier(schema);
    this.#t = {
      state: `${s}.ring_state`,
      bundles: `${s}.bundles`,
      events: `${s}.events`,
      shared: `${s}.shared`,
    };
  }

  /** Runs pending migrations (done by `openPgStore`). */
  migrate(): Promise<void> {
    return this.#run(async (c) => {
      const r = await runMigrations(c, this.schema);
      if (r.applied.length > 0) this.#opts.logger?.info(r, 'control-plane store: schema migrated');
    });
  }

  async loadState<T extends Versioned>(): Promise<T | undefined> {
    return this.#run(async (c) => (await this.#readState(c)) as T | undefined);
  }

  async saveState<T extends Versioned>(next: T, expectedVersion: number | undefined): Promise<void> {
    this.#assertOpen();
    const json = stateToStore(next, expectedVersion);
    await this.#tx(async (c) => {
      // Locks the row (when there is one): concurrent savers queue here, then see the winner's version.
      // The stored document is verified first, as the file store does: a bad one is never overwritten.
      checkExpected(expectedVersion, (await this.#readState(c, true))?.version);
      const r =
        expectedVersion === undefined
          ? await c.query(
              `INSERT INTO ${this.#t.state} (id, version, doc, checksum) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING`,
              [next.version, json, sha256Id(json)],
            )
          : await c.query(
              `UPDATE ${this.#t.state} SET version = $1, doc = $2, checksum = $3, updated_at = now() WHERE id = 1 AND version = $4`,
              [next.version, json, sha256Id(json), expectedVersion],
            );
      // Another transaction inserted the first state between our read and our insert.
      if (r.rowCount !== 1) throw new StoreConflictError(expectedVersion, await this.#version(c));
      await this.#notify(c, { kind: 'state', version: next.version });
    });
  }

  async stateVersion(): Promise<number | undefined> {
    return this.#run((c) => this.#version(c));
  }

  async putBundle(id: string, canonical: string): Promise<void> {
    this.#assertOpen();
    assertBundle(id, canonical);
    await this.#run(async (c) => {
      const r = await c.query(
        `INSERT INTO ${this.#t.bundles} (id, canonical) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
        [id, canonical],
      );
      // Present already: it must still hash to its id (a bad row throws and is never overwritten).
      if (r.rowCount === 0) await this.#readBundle(c, id);
    });
  }

  async getBundle(id: string): Promise<string | undefined> {
    this.#assertOpen();
    if (bundleHex(id) === undefined) return undefined;
    return this.#run((c) => this.#readBundle(c, id));
  }

  async listBundles(): Promise<string[]> {
    return this.#run(async (c) => {
      const r = await c.query<{ id: string }>(`SELECT id FROM ${this.#t.bundles} ORDER BY id COLLATE "C"`);
      return r.rows.map((row) => row.id);
    });
  }

  async appendEvent(journal: string, event: object, opts?: AppendOptions): Promise<void> {
    this.#assertOpen();
    assertJournalName(journal);
    const line = eventToStore(event);
    const key = opts?.uniqueKey;
    if (key !== undefined) assertUniqueKey(key);
    await this.#tx(async (c) => {
      await this.#lockJournal(c, journal);
      try {
        await c.query(`INSERT INTO ${this.#t.events} (journal, unique_key, doc) VALUES ($1, $2, $3)`, [
          journal,
          key ?? null,
          line,
        ]);
      } catch (e) {
        if (key !== undefined && (e as { code?: string }).code === '23505')
          throw new DuplicateEventError(journal, key);
        throw e;
      }
      await this.#notify(c, { kind: 'events', journal });
    });
  }

  async appendChained<T extends object>(journal: string, build: (last: unknown) => T): Promise<T> {
    this.#assertOpen();
    assertJournalName(journal);
    return this.#tx(async (c) => {
      // Held until commit: every append to this journal, in any replica, waits here.
      await this.#lockJournal(c, journal);
      const r = await c.query<{ seq: string; doc: string }>(
        `SELECT seq, doc FROM ${this.#t.events} WHERE journal = $1 ORDER BY seq DESC LIMIT 1`,
        [journal],
      );
      const row = r.rows[0];
      let last: unknown;
      if (row !== undefined) {
        try {
          last = JSON.parse(row.doc);
        } catch {
          throw new StoreCorruptError(
            this.#where(journal),
            `the last event (seq ${row.seq}) is not valid JSON`,
          );
        }
      }
      const next = build(last);
      await c.query(`INSERT INTO ${this.#t.events} (journal, doc) VALUES ($1, $2)`, [
        journal,
        eventToStore(next),
      ]);
      await this.#notify(c, { kind: 'events', journal });
      return next;
    });
  }

  async readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }> {
    this.#assertOpen();
    assertJournalName(journal);
    const rows = await this.#run(
      async (c) =>
        (
          await c.query<{ seq: string; doc: string }>(
            `SELECT seq, doc FROM ${this.#t.events} WHERE journal = $1 ORDER BY seq`,
            [journal],
          )
        ).rows,
    );
    const events = rows.map((row, i) => {
      let ev: unknown;
      try {
        ev = JSON.parse(row.doc);
      } catch {
        // Worded as the file store words it (the audit trail reads the line number from it).
        throw new StoreCorruptError(
          this.#where(journal),
          `line ${i + 1} of ${rows.length} is not valid JSON (seq ${row.seq})`,
        );
      }
      if (typeof ev !== 'object' || ev === null)
        throw new StoreCorruptError(
          this.#where(journal),
          `line ${i + 1} is not a JSON object (seq ${row.seq})`,
        );
      return ev;
    });
    // A transaction commits whole: there is never a torn event.
    return { events, torn: false };
  }

  async putShared(namespace: string, key: string, doc: object): Promise<void> {
    this.#assertOpen();
    assertSharedName('namespace', namespace);
    assertSharedName('key', key);
    const json = eventToStore(doc, 'doc');
    await this.#run((c) =>
      c.query(
        `INSERT INTO ${this.#t.shared} (namespace, key, doc) VALUES ($1, $2, $3)
         ON CONFLICT (namespace, key) DO UPDATE SET doc = excluded.doc, updated_at = now()`,
        [namespace, key, json],
      ),
    );
  }

  async listShared(namespace: string): Promise<SharedDoc[]> {
    this.#assertOpen();
    assertSharedName('namespace', namespace);
    const rows = await this.#run(
      async (c) =>
        (
          await c.query<{ key: string; doc: string; updated_at: Date }>(
            `SELECT key, doc, updated_at FROM ${this.#t.shared} WHERE namespace = $1 ORDER BY key COLLATE "C"`,
            [namespace],
          )
        ).rows,
    );
    return rows.map((row) => {
      let doc: unknown;
      try {
        doc = JSON.parse(row.doc);
      } catch {
        throw new StoreCorruptError(`${this.schema}.shared (${namespace}/${row.key})`, 'not valid JSON');
      }
      return { key: row.key, doc, updatedAt: row.updated_at.toISOString() };
    });
  }

  /**
   * Follows every change committed to this schema, by any replica, through LISTEN on a dedicated connection.
   * When that connection drops: `onStatus(false, err)`, reconnection with capped backoff, then `onStatus(true)`
   * and `onChange('state', 'reconnected')` (notifications sent meanwhile are lost: re-read). The first connect
   * reports `onStatus(true)` and `onChange('state', 'subscribed')`.
   */
  subscribe(listener: StoreChangeListener): () => void {
    this.#assertOpen();
    const feed = new ChangeFeed(this.#config, this.schema, listener, this.#opts, () =>
      this.#feeds.delete(feed),
    );
    this.#feeds.add(feed);
    feed.start();
    return () => void feed.stop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#ended ??= (async () => {
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
      await Promise.all([...this.#feeds].map((f) => f.stop()));
      await this.#pool.end();
    })();
    await this.#ended;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('control-plane store is closed');
  }

  /** Runs `fn` on a pooled connection; a connection that failed is discarded, not returned to the pool. */
  #run<R>(fn: (c: PoolClient) => Promise<R>): Promise<R> {
    this.#assertOpen();
    const p = (async () => {
      let c: PoolClient;
      try {
        c = await this.#pool.connect();
      } catch (e) {
        throw storeError(e);
      }
      // Checked-out clients have no error listener: an unhandled 'error' (the server going away between two
      // statements of a transaction) would crash the process.
      let broken: Error | undefined;
      const onError = (e: Error) => {
        broken = e;
      };
      c.on('error', onError);
      try {
        return await fn(c);
      } catch (e) {
        if (isUnavailable(e)) broken ??= e as Error;
        throw storeError(e);
      } finally {
        c.off('error', onError);
        c.release(broken ?? false);
      }
    })();
    this.#inflight.add(p);
    void p.then(
      () => this.#inflight.delete(p),
      () => this.#inflight.delete(p),
    );
    return p;
  }

  /** `fn` inside BEGIN … COMMIT; any error rolls back (or, when the connection failed, the server does). */
  #tx<R>(fn: (c: PoolClient) => Promise<R>): Promise<R> {
    return this.#run(async (c) => {
      await c.query('BEGIN');
      try {
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (e) {
        if (!isUnavailable(e)) await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  #lockJournal(c: PoolClient, journal: string): Promise<unknown> {
    return c.query(`SELECT pg_advisory_xact_lock(hashtext('ringfence:' || $1 || ':' || $2))`, [
      this.schema,
      journal,
    ]);
  }

  /** Sent at commit, to every listener of the database; the payload names the schema. */
  #notify(c: PoolClient, p: Omit<Payload, 'schema'>): Promise<unknown> {
    return c.query('SELECT pg_notify($1, $2)', [
      CHANGE_CHANNEL,
      JSON.stringify({ schema: this.schema, ...p }),
    ]);
  }

  async #version(c: PoolClient): Promise<number | undefined> {
    const r = await c.query<{ version: string }>(`SELECT version FROM ${this.#t.state} WHERE id = 1`);
    return r.rows[0] === undefined ? undefined : Number(r.rows[0].version);
  }

  /** The stored state, verified: checksum, JSON object, its version that of the row. */
  async #readState(c: PoolClient, forUpdate = false): Promise<Versioned | undefined> {
    const r = await c.query<{ version: string; doc: string; checksum: string }>(
      `SELECT version, doc, checksum FROM ${this.#t.state} WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`,
    );
    const row = r.rows[0];
    if (row === undefined) return undefined;
    const bad = (why: string) => new StoreCorruptError(`${this.schema}.ring_state`, why);
    const sum = sha256Id(row.doc);
    if (sum !== row.checksum)
      throw bad(`checksum mismatch: recorded ${JSON.stringify(row.checksum)}, the state hashes to ${sum}`);
    let doc: unknown;
    try {
      doc = JSON.parse(row.doc);
    } catch {
      throw bad('not valid JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object');
    const version = (doc as { version?: unknown }).version;
    if (!isVersion(version) || version !== Number(row.version))
      throw bad(`the document's version ${String(version)} is not the row's ${row.version}`);
    return doc as Versioned;
  }

  async #readBundle(c: PoolClient, id: string): Promise<string | undefined> {
    const r = await c.query<{ canonical: string }>(`SELECT canonical FROM ${this.#t.bundles} WHERE id = $1`, [
      id,
    ]);
    const text = r.rows[0]?.canonical;
    if (text === undefined) return undefined;
    const actual = sha256Id(text);
    if (actual !== id)
      throw new StoreCorruptError(
        `${this.schema}.bundles (${id})`,
        `content hashes to ${actual}, not to its id`,
      );
    return text;
  }

  #where(journal: string): string {
    return `${this.schema}.events (journal ${journal})`;
  }
}

/** One LISTEN connection, re-established with capped backoff until stopped. */
class ChangeFeed {
  readonly #config: ClientConfig;
  readonly #schema: string;
  readonly #listener: StoreChangeListener;
  readonly #logger: Logger | undefined;
  readonly #pingMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #onStopped: () => void;
  #client: Client | undefined;
  #delay: number;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #reported: boolean | undefined;
  #connectedOnce = false;
  #stopped = false;
  #connecting: Promise<void> | undefined;

  constructor(
    config: ClientConfig,
    schema: string,
    listener: StoreChangeListener,
    opts: PgStoreOptions,
    onStopped: () => void,
  ) {
    // Told apart from the pool's connections in pg_stat_activity.
    this.#config = {
      ...config,
      application_name: `${config.application_name ?? 'ringfence'}:feed`.slice(0, 63),
    };
    this.#schema = schema;
    this.#listener = listener;
    this.#logger = opts.logger;
    this.#pingMs = opts.feedPingMs ?? 5000;
    this.#minMs = opts.reconnectMinMs ?? 100;
    this.#maxMs = opts.reconnectMaxMs ?? 2000;
    this.#delay = this.#minMs;
    this.#onStopped = onStopped;
  }

  start(): void {
    this.#connecting = this.#connect();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#ping);
    await this.#connecting;
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
    this.#onStopped();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new Client(this.#config);
    let dead = false;
    const lost = (e: Error) => {
      if (dead) return;
      dead = true;
      this.#lost(client, e);
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('the LISTEN connection ended')));
    client.on('notification', (n) => this.#notified(n));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      lost(e as Error);
      return;
    }
    if (this.#stopped || dead) {
      if (!dead) await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#delay = this.#minMs;
    this.#status(true);
    const detail = this.#connectedOnce ? 'reconnected' : 'subscribed';
    this.#connectedOnce = true;
    this.#call(() => this.#listener.onChange('state', detail));
    clearInterval(this.#ping);
    let pinging = false;
    this.#ping = setInterval(() => {
      // A connection whose peer vanished without a reset delivers nothing and reports nothing: ask it (the
      // client-side query timeout ends a ping nobody answers).
      if (this.#client !== client || pinging) return;
      pinging = true;
      client.query('SELECT 1').then(
        () => {
          pinging = false;
        },
        (e: Error) => lost(e),
      );
    }, this.#pingMs);
    this.#ping.unref();
  }

  #lost(client: Client, e: Error): void {
    if (this.#client === client) this.#client = undefined;
    clearInterval(this.#ping);
    client.end().catch(() => undefined);
    if (this.#stopped) return;
    const err = storeError(e);
    this.#status(false, err instanceof Error ? err : new StoreUnavailableError(String(e)));
    this.#logger?.warn(
      { err: e, retryInMs: this.#delay },
      'control-plane store: change feed lost; reconnecting',
    );
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#connecting = this.#connect();
    }, this.#delay);
    this.#retry.unref();
    this.#delay = Math.min(this.#delay * 2, this.#maxMs);
  }

  #notified(n: Notification): void {
    if (n.channel !== CHANGE_CHANNEL || n.payload === undefined) return;
    let p: Payload;
    try {
      p = JSON.parse(n.payload) as Payload;
    } catch {
      return;
    }
    if (p.schema !== this.#schema) return;
    if (p.kind === 'state') this.#call(() => this.#listener.onChange('state', String(p.version)));
    else if (p.kind === 'events' && typeof p.journal === 'string')
      this.#call(() => this.#listener.onChange('events', p.journal!));
  }

  /** Reports a change of status (not repeats). */
  #status(up: boolean, error?: Error): void {
    if (this.#reported === up) return;
    this.#reported = up;
    this.#call(() => this.#listener.onStatus?.(up, error));
  }

  /** A throwing listener must not break the feed. */
  #call(fn: () => void): void {
    if (this.#stopped) return;
    try {
      fn();
    } catch (err) {
      this.#logger?.error({ err }, 'control-plane store: a change listener threw');
    }
  }
}
