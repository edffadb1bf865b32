/**
 * The PostgreSQL schema of the control-plane store, as versioned migrations, and how to connect: the timeouts
 * and the error mapping that `pg-store.ts` and `ringfence db` share.
 *
 * Migrations run in one transaction holding an advisory lock (per schema), so replicas starting together migrate
 * once and none sees a half-migrated schema. `<schema>.schema_version` records each applied version. A database
 * migrated by a newer binary (a version this one does not know) is refused: StoreSchemaTooNewError.
 */
import { Client, type ClientBase, type ClientConfig, DatabaseError, escapeIdentifier } from 'pg';
import { StoreUnavailableError } from './store.ts';

/** One step of the schema. `sql` runs with `search_path` set to the store's schema: names stay unqualified. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * Every migration, in order. Append only: a released migration is never edited (databases already ran it).
 *
 * Documents are `text` holding canonical JSON, not `jsonb`: jsonb reorders keys, cannot hold `\u0000`, and
 * would make what loads differ from what was saved (the audit trail exports its journal byte for byte).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'bundles, ring state, append-only events, shared documents',
    sql: `
CREATE TABLE bundles (
  id text PRIMARY KEY CHECK (id ~ '^sha256:[0-9a-f]{64}$'),
  canonical text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ring_state (
  id int PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL CHECK (version >= 0),
  doc text NOT NULL,
  checksum text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE events (
  seq bigserial PRIMARY KEY,
  journal text NOT NULL CHECK (journal ~ '^[a-z0-9-]+$'),
  unique_key text,
  doc text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (journal, unique_key)
);
CREATE INDEX events_journal_seq ON events (journal, seq);
CREATE TABLE shared (
  namespace text NOT NULL,
  key text NOT NULL,
  doc text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, key)
);
-- Journals (the audit trail among them) are append-only for the gateway. A superuser can still disable the
-- trigger: tamper-evidence is the audit hash chain's job; this stops mistakes and a compromised gateway role.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ringfence: % on %.events refused: the events table is append-only', TG_OP, TG_TABLE_SCHEMA
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'control-plane journals are never updated, deleted or truncated';
END
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
`,
  },
];

/** The schema version this binary writes. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** The database was migrated by a newer ringfence: this binary would misread it, so it refuses to open. */
export class StoreSchemaTooNewError extends Error {
  readonly schema: string;
  readonly current: number;
  readonly supported: number;
  constructor(schema: string, current: number, supported: number) {
    super(
      `control-plane store: schema "${schema}" is at version ${current}, newer than this ringfence supports ` +
        `(${supported}): upgrade ringfence (never downgrade a migrated database)`,
    );
    this.name = 'StoreSchemaTooNewError';
    this.schema = schema;
    this.current = current;
    this.supported = supported;
  }
}

/** How every connection to the store is made. */
export interface PgTimeouts {
  /** `application_name` of the connections (shown in pg_stat_activity), e.g. `ringfence-<replica>`. Default `ringfence`. */
  readonly applicationName?: string;
  /** Connecting, or waiting for a pooled connection, in ms. Default 2000. */
  readonly connectTimeoutMs?: number;
  /** One statement, server side, in ms (the client gives up 1 s later if the server does not answer). Default 5000. */
  readonly statementTimeoutMs?: number;
}

/** The node-postgres config of a store connection: bounded connect, statement and idle-in-transaction times. */
export function pgConfig(url: string, t: PgTimeouts = {}): ClientConfig {
  const statement = t.statementTimeoutMs ?? 5000;
  return {
    connectionString: url,
    connectionTimeoutMillis: t.connectTimeoutMs ?? 2000,
    statement_timeout: statement,
    // Client side: a server that vanished (no RST) never enforces its statement_timeout.
    query_timeout: statement + 1000,
    // A transaction left open (a stuck replica) must not hold an advisory lock for ever.
    idle_in_transaction_session_timeout: statement * 2,
    keepAlive: true,
    application_name: t.applicationName ?? 'ringfence',
  };
}

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOENT', // a Unix socket path that is gone
]);
/** admin/crash shutdown, cannot connect now (starting or stopping), too many connections, statement timeout. */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);
const CLIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|not queryable/i;

/** True when `e` says the database could not be reached or did not answer (not a refusal of the statement). */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof StoreUnavailableError) return true;
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (e instanceof DatabaseError)
    return typeof code === 'string' && (code.startsWith('08') || SERVER_CODES.has(code));
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true;
  return CLIENT_MESSAGES.test(e.message);
}

/** `e` as a StoreUnavailableError when the database was unreachable; any other error unchanged. */
export function storeError(e: unknown): unknown {
  if (e instanceof StoreUnavailableError || !isUnavailable(e)) return e;
  const err = e as Error & { code?: string };
  const reason = err.message || err.code || String(e);
  return new StoreUnavailableError(
    err.code && !reason.includes(err.code) ? `${err.code} ${reason}` : reason,
    {
      cause: e,
    },
  );
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Throws unless `schema` is a plain lower-case identifier (it is also quoted wherever it is used). */
export function assertSchemaName(schema: string): void {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema) || schema.startsWith('pg_'))
    throw new Error(
      `invalid schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]* (at most 63, not pg_*)`,
    );
}

/** What a migration run did. */
export interface MigrationResult {
  readonly schema: string;
  readonly from: number;
  readonly to: number;
  readonly applied: number[];
}

/**
 * Brings `schema` up to the latest version on a connected client: one transaction under an advisory lock, so
 * concurrent callers wait, then find nothing left to do. Throws StoreSchemaTooNewError (changing nothing) when
 * the schema is ahead of `migrations`.
 */
export async function runMigrations(
  client: ClientBase,
  schema: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  assertSchemaName(schema);
  const s = escapeIdentifier(schema);
  const latest = migrations.at(-1)?.version ?? 0;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('ringfence-migrate:' || $1))`, [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_version (
         version int PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const from = await currentVersion(client, s);
    if (from > latest) throw new StoreSchemaTooNewError(schema, from, latest);
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= from) continue;
      await client.query(`SET LOCAL search_path TO ${s}`);
      await client.query(m.sql);
      await client.query(`INSERT INTO ${s}.schema_version (version, description) VALUES ($1, $2)`, [
        m.version,
        m.description,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return { schema, from, to: Math.max(from, latest), applied };
  } catch (e) {
    if (!isUnavailable(e)) await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

async function currentVersion(client: ClientBase, quotedSchema: string): Promise<number> {
  const r = await client.query<{ v: number | null }>(
    `SELECT max(version) AS v FROM ${quotedSchema}.schema_version`,
  );
  return r.rows[0]?.v ?? 0;
}

/** Connects, runs `fn` on a client, disconnects; unreachable databases surface as StoreUnavailableError. */
async function withClient<R>(url: string, fn: (c: Client) => Promise<R>, t?: PgTimeouts): Promise<R> {
  const client = new Client(pgConfig(url, t));
  let failed: unknown;
  client.on('error', (e) => {
    failed = e;
  });
  try {
    await client.connect();
    return await fn(client);
  } catch (e) {
    throw storeError(failed ?? e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `ringfence db migrate`: brings `schema` of the database at `url` to the latest version. */
export function migrate(url: string, schema = 'ringfence', t?: PgTimeouts): Promise<MigrationResult> {
  // Migrations may wait for another replica's run: give the statements more room than the store's calls.
  return withClient(url, (c) => runMigrations(c, schema), { statementTimeoutMs: 30_000, ...t });
}

/** Where a schema stands: its version, this binary's latest, and the migrations not yet applied. */
export interface SchemaStatus {
  readonly schema: string;
  readonly current: number;
  readonly latest: number;
  readonly pending: Array<{ version: number; description: string }>;
  readonly applied: Array<{ version: number; description: string; appliedAt: string }>;
}

/** `ringfence db status`: reads the schema's version without changing anything (0: never migrated). */
export function schemaStatus(url: string, schema = 'ringfence', t?: PgTimeouts): Promise<SchemaStatus> {
  assertSchemaName(schema);
  return withClient(
    url,
    async (c) => {
      const exists = await c.query(`SELECT to_regclass($1) AS t`, [
        `${escapeIdentifier(schema)}.schema_version`,
      ]);
      const applied =
        exists.rows[0]?.t == null
          ? []
          : (
              await c.query<{ version: number; description: string; applied_at: Date }>(
                `SELECT version, description, applied_at FROM ${escapeIdentifier(schema)}.schema_version ORDER BY version`,
              )
            ).rows.map((r) => ({
              version: r.version,
              description: r.description,
              appliedAt: r.applied_at.toISOString(),
            }));
      const current = applied.at(-1)?.version ?? 0;
      return {
        schema,
        current,
        latest: LATEST_SCHEMA_VERSION,
        pending: MIGRATIONS.filter((m) => m.version > current).map(({ version, description }) => ({
          version,
          description,
        })),
        applied,
      };
    },
    t,
  );
}
