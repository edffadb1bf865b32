/**
 * The PostgreSQL control-plane store against a real server (the contract tests it shares with the file and
 * memory stores are in store.test.ts). Here: what several replicas need (two instances = two pools, like two
 * processes), the append-only events table, migrations, the change feed and its reconnects, and outages of a
 * private cluster that the tests stop and start.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runDb } from '../../src/cli/db.ts';
import { LATEST_SCHEMA_VERSION, migrate, schemaStatus } from '../../src/control/pg-migrations.ts';
import { openPgStore, type PgStore, StoreSchemaTooNewError } from '../../src/control/pg-store.ts';
import {
  DuplicateEventError,
  StoreConflictError,
  StoreCorruptError,
  StoreUnavailableError,
} from '../../src/control/store.ts';
import { createSchema, type PrivatePostgres, privatePostgres } from '../helpers/postgres.ts';

const stores: PgStore[] = [];
const drops: Array<() => Promise<void>> = [];
const clients: pg.Client[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  for (const d of drops.splice(0)) await d();
});

/** A fresh schema; `open()` opens another instance on it (another pool: another replica). */
function schema(): {
  url: string;
  schema: string;
  open(opts?: { applicationName?: string }): Promise<PgStore>;
} {
  const s = createSchema();
  drops.push(s.drop);
  return {
    url: s.url,
    schema: s.schema,
    async open(opts = {}) {
      const store = await openPgStore({ url: s.url, schema: s.schema, ...opts });
      stores.push(store);
      return store;
    },
  };
}

/** A plain client on `url` with the store's own role (trust auth: the same user). */
async function sql(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

interface Feed {
  readonly changes: string[];
  readonly statuses: Array<{ up: boolean; error?: Error }>;
  unsubscribe(): void;
  /** Resolves once `pred` holds for a recorded change (checks the past too). */
  until(pred: (c: string) => boolean, what: string, ms?: number): Promise<number>;
  untilStatus(up: boolean, ms?: number): Promise<void>;
}

function feed(store: PgStore): Feed {
  const changes: string[] = [];
  const statuses: Array<{ up: boolean; error?: Error }> = [];
  const times: number[] = [];
  const unsubscribe = store.subscribe({
    onChange: (kind, detail) => {
      changes.push(`${kind}:${detail}`);
      times.push(performance.now());
    },
    onStatus: (up, error) => {
      statuses.push(error === undefined ? { up } : { up, error });
    },
  });
  const poll = async (ok: () => boolean, what: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; changes ${JSON.stringify(changes)}, statuses ${statuses.map((s) => s.up)}`,
        );
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  return {
    changes,
    statuses,
    unsubscribe,
    async until(pred, what, ms = 5000) {
      await poll(() => changes.some(pred), what, ms);
      return times[changes.findIndex(pred)]!;
    },
    async untilStatus(up, ms = 10_000) {
      await poll(() => statuses.at(-1)?.up === up, `status ${up ? 'up' : 'down'}`, ms);
    },
  };
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('two instances on one schema (two replicas)', () => {
  it('let exactly one of concurrent saves against the same expected version win; losers name the current version', async () => {
    const db = schema();
    const a = await db.open();
    const b = await db.open();
    await a.saveState({ version: 1, by: 'seed' }, undefined);
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).saveState({ version: round + 1, by: `writer ${i}` }, round),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(StoreConflictError);
          expect(r.reason).toMatchObject({ expected: round, actual: round + 1 });
          expect((r.reason as Error).message).toMatch(new RegExp(`stored version is ${round + 1}`));
        }
      expect(await (round % 2 ? a : b).loadState()).toEqual({ version: round + 1, by: `writer ${won[0]}` });
    }
    // The first state too: two instances both expecting nothing stored.
    const fresh = schema();
    const [c, d] = [await fresh.open(), await fresh.open()];
    const first = await Promise.allSettled([
      c.saveState({ version: 1 }, undefined),
      d.saveState({ version: 1 }, undefined),
    ]);
    expect(first.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(first.find((r) => r.status === 'rejected')).toMatchObject({
      reason: { expected: undefined, actual: 1 },
    });
  });

  it('refuse a duplicate uniqueKey across instances', async () => {
    const db = schema();
    const a = await db.open();
    const b = await db.open();
    await a.appendEvent('approvals', { used: 'a' }, { uniqueKey: 'approval:1' });
    await expect(
      b.appendEvent('approvals', { used: 'b' }, { uniqueKey: 'approval:1' }),
    ).rejects.toBeInstanceOf(DuplicateEventError);
    const race = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? a : b).appendEvent('approvals', { used: i }, { uniqueKey: 'approval:2' }),
      ),
    );
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await a.readEvents('approvals')).events).toHaveLength(2);
  });

  it('appendChained 2 × 50 concurrently: 100 events, each built on the one before (no fork)', async () => {
    const db = schema();
    const a = await db.open();
    const b = await db.open();
    type Link = { n: number; prev: string; hash: string; by: string };
    const link = (by: string) => (last: unknown) => {
      const l = last as Link | undefined;
      const body = { n: (l?.n ?? 0) + 1, prev: l?.hash ?? 'genesis', by };
      return { ...body, hash: sha(JSON.stringify(body)) };
    };
    const t0 = performance.now();
    await Promise.all([
      ...Array.from({ length: 50 }, () => a.appendChained('audit', link('a'))),
      ...Array.from({ length: 50 }, () => b.appendChained('audit', link('b'))),
    ]);
    const ms = performance.now() - t0;
    const events = (await b.readEvents('audit')).events as Link[];
    expect(events).toHaveLength(100);
    events.forEach((e, i) => {
      expect(e.n).toBe(i + 1);
      expect(e.prev).toBe(i === 0 ? 'genesis' : events[i - 1]!.hash);
      expect(e.hash).toBe(sha(JSON.stringify({ n: e.n, prev: e.prev, by: e.by })));
    });
    expect(new Set(events.map((e) => e.by))).toEqual(new Set(['a', 'b']));
    console.log(`[pg-store] 100 concurrent chained appends from two instances: ${ms.toFixed(0)} ms`);
  });
});

describe('bounded waits', () => {
  it('a journal lock held elsewhere ends in StoreUnavailableError after the statement timeout', async () => {
    const db = schema();
    const s = await openPgStore({ url: db.url, schema: db.schema, statementTimeoutMs: 300 });
    stores.push(s);
    const c = await sql(db.url);
    await c.query('BEGIN');
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('ringfence:' || $1 || ':audit'))`, [db.schema]);
    const t0 = performance.now();
    const err = await s.appendChained('audit', () => ({ n: 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/statement timeout/);
    expect(performance.now() - t0).toBeLessThan(2000);
    await c.query('ROLLBACK');
    expect(await s.appendChained('audit', () => ({ n: 1 }))).toEqual({ n: 1 });
  });
});

describe('the events table', () => {
  it('is append-only: UPDATE, DELETE and TRUNCATE are refused with a clear error', async () => {
    const db = schema();
    const s = await db.open();
    await s.appendEvent('audit', { n: 1 });
    const c = await sql(db.url);
    const events = `${pg.escapeIdentifier(db.schema)}.events`;
    await expect(c.query(`UPDATE ${events} SET doc = '{"n":2}'`)).rejects.toThrow(
      /UPDATE on rf_test_\w+\.events refused: the events table is append-only/,
    );
    await expect(c.query(`DELETE FROM ${events}`)).rejects.toThrow(/DELETE on .* append-only/);
    await expect(c.query(`TRUNCATE ${events}`)).rejects.toThrow(/TRUNCATE on .* append-only/);
    expect((await s.readEvents('audit')).events).toEqual([{ n: 1 }]);
  });

  it('keeps documents exactly as written (text, not jsonb: NUL characters, key order, big numbers)', async () => {
    const db = schema();
    const s = await db.open();
    const ev = { z: 'nul \u0000 and é ✓', a: [1e21, 5e-324, -0.5, 2 ** 53 - 1], m: { b: null, a: true } };
    await s.appendEvent('odd', ev);
    await s.saveState({ version: 1, ev }, undefined);
    expect((await s.readEvents('odd')).events).toEqual([ev]);
    expect(await s.loadState()).toEqual({ version: 1, ev });
    const c = await sql(db.url);
    const row = await c.query(`SELECT doc FROM ${pg.escapeIdentifier(db.schema)}.events`);
    // Canonical JSON, as the file store's journal line (keys sorted).
    expect(row.rows[0].doc).toBe(JSON.stringify({ a: ev.a, m: { a: true, b: null }, z: ev.z }));
  });
});

describe('corruption', () => {
  it('reports a hand-edited state or bundle and never overwrites it', async () => {
    const db = schema();
    const s = await db.open();
    await s.saveState({ version: 1, note: 'good' }, undefined);
    const c = await sql(db.url);
    const q = pg.escapeIdentifier(db.schema);
    await c.query(`UPDATE ${q}.ring_state SET doc = '{"note":"evil","version":1}'`);
    await expect(s.loadState()).rejects.toThrow(/checksum mismatch/);
    await expect(s.saveState({ version: 2 }, 1)).rejects.toBeInstanceOf(StoreCorruptError);
    expect((await c.query(`SELECT doc FROM ${q}.ring_state`)).rows[0].doc).toBe(
      '{"note":"evil","version":1}',
    );

    const canonical = '{"a":1}';
    const id = `sha256:${sha(canonical)}`;
    await s.putBundle(id, canonical);
    await c.query(`UPDATE ${q}.bundles SET canonical = '{"a":2}'`);
    await expect(s.getBundle(id)).rejects.toBeInstanceOf(StoreCorruptError);
    await expect(s.putBundle(id, canonical)).rejects.toBeInstanceOf(StoreCorruptError);
  });
});

describe('migrations', () => {
  it('run once, even when instances start together, and are idempotent', async () => {
    const db = schema();
    const runs = await Promise.all([1, 2, 3].map(() => migrate(db.url, db.schema)));
    expect(runs.map((r) => r.applied).sort()).toEqual([[], [], [1]]);
    expect(runs.every((r) => r.to === LATEST_SCHEMA_VERSION)).toBe(true);
    expect(await migrate(db.url, db.schema)).toMatchObject({ from: 1, to: 1, applied: [] });
    const both = await Promise.all([db.open(), db.open()]);
    await both[0].saveState({ version: 1 }, undefined);
    expect(await both[1].stateVersion()).toBe(1);
    const status = await schemaStatus(db.url, db.schema);
    expect(status).toMatchObject({ schema: db.schema, current: 1, latest: 1, pending: [] });
    expect(status.applied.map((m) => m.version)).toEqual([1]);
  });

  it('refuse a schema newer than this binary, naming both versions', async () => {
    const db = schema();
    await migrate(db.url, db.schema);
    const c = await sql(db.url);
    await c.query(
      `INSERT INTO ${pg.escapeIdentifier(db.schema)}.schema_version (version, description) VALUES (99, 'from the future')`,
    );
    const err = await db.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreSchemaTooNewError);
    expect(err).toMatchObject({ current: 99, supported: LATEST_SCHEMA_VERSION });
    expect((err as Error).message).toMatch(/version 99, newer than this ringfence supports \(1\)/);
    await expect(migrate(db.url, db.schema)).rejects.toBeInstanceOf(StoreSchemaTooNewError);
    expect(await schemaStatus(db.url, db.schema)).toMatchObject({ current: 99, latest: 1 });
  });

  it('ringfence db migrate / status (URL from --url or DATABASE_URL)', async () => {
    const db = schema();
    const out: string[] = [];
    const err: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
    try {
      const env = { DATABASE_URL: db.url };
      expect(await runDb(['status', '--schema', db.schema], env)).toBe(1);
      expect(await runDb(['migrate', '--url', db.url, '--schema', db.schema], {})).toBe(0);
      expect(await runDb(['migrate', '--schema', db.schema], env)).toBe(0);
      expect(await runDb(['status', '--schema', db.schema, '--json'], env)).toBe(0);
      expect(await runDb(['status'], {})).toBe(2);
      expect(await runDb(['status', '--url', 'postgres://postgres@127.0.0.1:1/x'], {})).toBe(1);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const text = out.join('');
    expect(text).toMatch(
      new RegExp(`schema ${db.schema} on 127.0.0.1:5432/test: version 0 \\(this ringfence: 1\\): 1 pending`),
    );
    expect(text).toMatch(/migrated from version 0 to 1 \(applied 1\)/);
    expect(text).toMatch(/already at version 1, nothing to do/);
    expect(text).toMatch(/"current": 1/);
    expect(err.join('')).toMatch(/needs --url URL \(or DATABASE_URL\)/);
    expect(err.join('')).toMatch(/control-plane store unreachable: connect ECONNREFUSED/);
  });
});

describe('change feed', () => {
  it("delivers instance A's changes to B's subscriber (latency measured), for this schema only", async () => {
    const db = schema();
    const a = await db.open();
    const b = await db.open();
    const other = await schema().open();
    const f = feed(b);
    await f.until((c) => c === 'state:subscribed', 'the feed');
    expect(f.statuses).toEqual([{ up: true }]);
    const latencies: number[] = [];
    for (let v = 1; v <= 20; v++) {
      const t0 = performance.now();
      await a.saveState({ version: v }, v === 1 ? undefined : v - 1);
      latencies.push((await f.until((c) => c === `state:${v}`, `state ${v}`)) - t0);
    }
    await a.appendEvent('audit', { n: 1 });
    await a.appendChained('rollbacks', () => ({ n: 1 }));
    await other.saveState({ version: 777 }, undefined);
    await f.until((c) => c === 'events:rollbacks', 'events');
    expect(f.changes).toContain('events:audit');
    expect(f.changes).not.toContain('state:777');
    latencies.sort((x, y) => x - y);
    const p50 = latencies[10]!;
    const max = latencies.at(-1)!;
    console.log(
      `[pg-store] NOTIFY latency A save → B onChange (commit included), 20 saves: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );
    expect(max).toBeLessThan(1000);
    // Unsubscribed: nothing more.
    f.unsubscribe();
    const n = f.changes.length;
    await a.saveState({ version: 21 }, 20);
    await new Promise((r) => setTimeout(r, 100));
    expect(f.changes).toHaveLength(n);
  });

  it('reconnects after its connection is terminated: down → up, then a "reconnected" change', async () => {
    const db = schema();
    const a = await db.open();
    const app = `rf-feed-${db.schema}`;
    const b = await db.open({ applicationName: app });
    const f = feed(b);
    await f.until((c) => c === 'state:subscribed', 'the feed');
    const c = await sql(db.url);
    const t0 = performance.now();
    const killed = await c.query(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
      [`${app}:feed`],
    );
    expect(killed.rows).toEqual([{ ok: true }]);
    await f.until((ch) => ch === 'state:reconnected', 'the reconnect');
    console.log(`[pg-store] feed terminated → reconnected in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(f.statuses.map((s) => s.up)).toEqual([true, false, true]);
    expect(f.statuses[1]!.error).toBeInstanceOf(Error);
    await a.saveState({ version: 1 }, undefined);
    await f.until((ch) => ch === 'state:1', 'a change after the reconnect');
  });
});

describe('outages (a private PostgreSQL, stopped and started)', () => {
  let db: PrivatePostgres;
  beforeAll(async () => {
    db = await privatePostgres();
    console.log(`[pg-store] private PostgreSQL (initdb + start) ready in ${db.startupMs} ms`);
  }, 60_000);
  afterAll(async () => {
    await db?.destroy();
  });

  it('fails calls fast with StoreUnavailableError while down, never hangs; recovers, and so does the feed', async () => {
    const s = await openPgStore({ url: db.url, schema: 'ringfence' });
    stores.push(s);
    await s.saveState({ version: 1 }, undefined);
    const f = feed(s);
    await f.until((c) => c === 'state:subscribed', 'the feed');

    await db.stop();
    await f.untilStatus(false);
    expect(f.statuses.at(-1)!.error).toBeInstanceOf(StoreUnavailableError);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['loadState', () => s.loadState()],
      ['saveState', () => s.saveState({ version: 2 }, 1)],
      ['stateVersion', () => s.stateVersion()],
      ['appendEvent', () => s.appendEvent('audit', { n: 1 })],
      ['appendChained', () => s.appendChained('audit', () => ({ n: 1 }))],
      ['putShared', () => s.putShared('stats:1', 'r1', { n: 1 })],
      ['listBundles', () => s.listBundles()],
    ];
    for (const [name, call] of calls) {
      const t0 = performance.now();
      const err = await call().catch((e: unknown) => e);
      const ms = performance.now() - t0;
      expect(err, name).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message, name).toMatch(/^control-plane store unreachable: /);
      expect(ms, name).toBeLessThan(3000);
    }
    // A new instance (a replica starting during the outage) fails as fast.
    const t0 = performance.now();
    await expect(openPgStore({ url: db.url, schema: 'ringfence' })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(performance.now() - t0).toBeLessThan(3000);

    await db.start();
    await f.untilStatus(true);
    await f.until((c) => c === 'state:reconnected', 'the reconnect');
    expect(await s.loadState()).toEqual({ version: 1 });
    await s.saveState({ version: 2 }, 1);
    await f.until((c) => c === 'state:2', 'a change after the outage');
    expect(f.statuses.map((x) => x.up)).toEqual([true, false, true]);
  });

  it('bounds a frozen server (connections open, nothing answers): calls fail within the timeouts', async () => {
    const s = await openPgStore({
      url: db.url,
      schema: 'frozen',
      statementTimeoutMs: 500,
      connectTimeoutMs: 500,
      feedPingMs: 200,
    });
    stores.push(s);
    await s.saveState({ version: 1 }, undefined);
    const f = feed(s);
    await f.until((c) => c === 'state:subscribed', 'the feed');
    await db.freeze();
    try {
      // A pooled connection is open: the client-side query timeout (statement + 1 s) ends the wait.
      const t0 = performance.now();
      const errs = await Promise.all(
        [s.loadState(), s.appendEvent('audit', {})].map((p) => p.catch((e: unknown) => e)),
      );
      const ms = performance.now() - t0;
      for (const e of errs) expect(e).toBeInstanceOf(StoreUnavailableError);
      expect(ms).toBeLessThan(3000);
      console.log(
        `[pg-store] frozen server: calls failed after ${ms.toFixed(0)} ms (${(errs[0] as Error).message})`,
      );
      // The feed's ping notices the silence.
      await f.untilStatus(false, 5000);
    } finally {
      await db.thaw();
    }
    await f.untilStatus(true, 10_000);
    await f.until((c) => c === 'state:reconnected', 'the reconnect');
    expect(await s.loadState()).toEqual({ version: 1 });
  });

  it('bounds a server that accepts connections but never answers (connect timeout)', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((sock) => {
      sockets.add(sock);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const t0 = performance.now();
      const err = await openPgStore({
        url: `postgres://postgres@127.0.0.1:${port}/x`,
        connectTimeoutMs: 500,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/control-plane store unreachable: .*timeout/i);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('close() waits for calls in flight, then refuses; ends the feed', async () => {
    const s = await openPgStore({ url: db.url, schema: 'closing' });
    const f = feed(s);
    await f.until((c) => c === 'state:subscribed', 'the feed');
    const pending = Promise.all(Array.from({ length: 10 }, (_, i) => s.appendEvent('audit', { i })));
    await s.close();
    await pending;
    await expect(s.readEvents('audit')).rejects.toThrow(/closed/);
    expect(() => s.subscribe({ onChange() {} })).toThrow(/closed/);
    const other = await openPgStore({ url: db.url, schema: 'closing' });
    stores.push(other);
    expect((await other.readEvents('audit')).events).toHaveLength(10);
    const c = await sql(db.url);
    const listeners = await c.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE '%:feed'`,
    );
    expect(listeners.rows[0].n).toBe(0);
  });
});
