import { parseArgs } from 'node:util';
// Types only: node-postgres is loaded when a db command runs, not by every other command.
import type { MigrationResult, SchemaStatus } from '../control/pg-migrations.ts';
import { StoreUnavailableError } from '../control/store.ts';

/** Usage lines of the db commands. */
export const DB_USAGE = `  db migrate [--url URL] [--schema S]              create or upgrade the PostgreSQL control-plane schema
  db status [--url URL] [--schema S] [--json]       its version and pending migrations: exit 0 current, 1 not
    (the URL may also come from DATABASE_URL; the schema defaults to ringfence)
`;

/** A usage problem: reported with the usage text, exit 2. */
class UsageError extends Error {}

/** `ringfence db migrate|status`. Exit 0 done / up to date, 1 failed / not up to date, 2 usage. */
export async function runDb(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    const [sub, ...extra] = positionals;
    if ((sub !== 'migrate' && sub !== 'status') || extra.length > 0)
      throw new UsageError(sub ? `unknown db command "${[sub, ...extra].join(' ')}"` : 'db needs a command');
    const url = values.url ?? env.DATABASE_URL;
    if (!url) throw new UsageError(`db ${sub} needs --url URL (or DATABASE_URL)`);
    const schema = values.schema ?? 'ringfence';
    const { migrate, schemaStatus } = await import('../control/pg-migrations.ts');
    if (sub === 'migrate') {
      report(await migrate(url, schema), where(url), values.json === true);
      return 0;
    }
    const status = await schemaStatus(url, schema);
    describe(status, where(url), values.json === true);
    return status.current === status.latest ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ringfence: ${err.message}\nusage:\n${DB_USAGE}`);
      return 2;
    }
    if (
      err instanceof StoreUnavailableError ||
      (err instanceof Error && err.name === 'StoreSchemaTooNewError')
    ) {
      process.stderr.write(`ringfence: ${err.message}\n`);
      return 1;
    }
    if (err instanceof Error && /^invalid schema name/.test(err.message)) {
      process.stderr.write(`ringfence: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        schema: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message);
    throw err;
  }
}

/** `host:port/database` of a URL, never its credentials. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the database';
  }
}

function out(s: string): void {
  process.stdout.write(`${s}\n`);
}

function report(r: MigrationResult, at: string, json: boolean): void {
  if (json) out(JSON.stringify(r));
  else if (r.applied.length === 0)
    out(`schema ${r.schema} on ${at}: already at version ${r.to}, nothing to do`);
  else
    out(
      `schema ${r.schema} on ${at}: migrated from version ${r.from} to ${r.to} (applied ${r.applied.join(', ')})`,
    );
}

function describe(s: SchemaStatus, at: string, json: boolean): void {
  if (json) {
    out(JSON.stringify(s, null, 2));
    return;
  }
  const head = `schema ${s.schema} on ${at}: version ${s.current} (this ringfence: ${s.latest})`;
  if (s.current > s.latest) out(`${head}: NEWER than this binary supports; upgrade ringfence`);
  else if (s.current === s.latest) out(`${head}: up to date`);
  else {
    out(`${head}: ${s.pending.length} pending (run \`ringfence db migrate\`)`);
    for (const m of s.pending) out(`  ${m.version}  ${m.description}`);
  }
  for (const m of s.applied) out(`  applied ${m.version} at ${m.appliedAt}: ${m.description}`);
}
