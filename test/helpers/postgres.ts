/**
 * PostgreSQL for tests. `createSchema()`: a random schema on the machine's shared server (127.0.0.1:5432,
 * database `test`; RINGFENCE_TEST_DATABASE_URL overrides), dropped by `drop()`. `privatePostgres()`: a throwaway
 * cluster of its own (initdb in a temp dir, a free loopback port) that a test may stop and start, for outages.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** The shared server the tests use. */
export const SHARED_DATABASE_URL =
  process.env.RINGFENCE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema of its own on the shared server: `drop()` removes it with everything in it. */
export function createSchema(): { url: string; schema: string; drop(): Promise<void> } {
  const schema = `rf_test_${randomBytes(6).toString('hex')}`;
  return {
    url: SHARED_DATABASE_URL,
    schema,
    async drop() {
      const c = new pg.Client({ connectionString: SHARED_DATABASE_URL, connectionTimeoutMillis: 5000 });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A throwaway PostgreSQL cluster; `url` reaches its `postgres` database as the `postgres` superuser. */
export interface PrivatePostgres {
  readonly url: string;
  readonly port: number;
  /** How long initdb + the first start took, in ms. */
  readonly startupMs: number;
  /** Stops the server (fast shutdown: connections are cut, as in an outage). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** SIGSTOPs the server and its backends: connections stay open and accept bytes, nothing answers. */
  freeze(): Promise<void>;
  /** SIGCONTs what `freeze` stopped. */
  thaw(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

const live = new Set<{ pgCtl: string; data: string; asPostgres: boolean }>();
let exitHook = false;

/**
 * initdb into a temp dir (owned by `postgres` when we are root: the server refuses to run as root), then
 * starts it on a free port, listening on 127.0.0.1 and on a socket in the temp dir only.
 */
export async function privatePostgres(): Promise<PrivatePostgres> {
  const t0 = Date.now();
  const bin = postgresBin();
  const initdb = join(bin, 'initdb');
  const pgCtl = join(bin, 'pg_ctl');
  const asPostgres = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'ringfence-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (asPostgres) {
    const { uid, gid } = postgresUser();
    await chown(dir, uid, gid);
  }
  const run = (cmd: string, args: string[], timeoutMs = 60_000) =>
    exec(asPostgres ? 'runuser' : cmd, asPostgres ? ['-u', 'postgres', '--', cmd, ...args] : args, timeoutMs);
  await run(initdb, [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '--no-instructions',
    '-E',
    'UTF8',
  ]);
  const port = await freePort();
  const serverOpts = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    // A test server: nothing needs to survive a crash, so skip the syncs; keep it small.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c shared_buffers=16MB',
    '-c max_connections=40',
  ].join(' ');
  const start = async () => {
    try {
      await run(pgCtl, ['-D', data, '-l', log, '-o', serverOpts, '-w', '-t', '30', 'start']);
    } catch (e) {
      const tail = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`${(e as Error).message}\nserver log:\n${tail.slice(-2000)}`);
    }
  };
  const stop = async () => {
    await run(pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  const entry = { pgCtl, data, asPostgres };
  live.add(entry);
  if (!exitHook) {
    exitHook = true;
    // A test run that dies leaves no server behind (best effort: 'exit' handlers must be synchronous).
    process.on('exit', () => {
      for (const e of live) {
        const args = ['-D', e.data, '-m', 'immediate', 'stop'];
        spawnSync(
          e.asPostgres ? 'runuser' : e.pgCtl,
          e.asPostgres ? ['-u', 'postgres', '--', e.pgCtl, ...args] : args,
          {
            stdio: 'ignore',
            timeout: 10_000,
          },
        );
      }
    });
  }
  try {
    await start();
  } catch (e) {
    live.delete(entry);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const startupMs = Date.now() - t0;
  let destroyed = false;
  let frozen: number[] = [];
  /** The postmaster (first line of postmaster.pid) and every process it forked. */
  const serverPids = async (): Promise<number[]> => {
    const main = Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const children = spawnSync('pgrep', ['-P', String(main)], { encoding: 'utf8' }).stdout;
    return [main, ...children.split('\n').filter(Boolean).map(Number)];
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    startupMs,
    stop,
    start,
    async freeze() {
      frozen = await serverPids();
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    },
    async thaw() {
      for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
      await stop().catch(() => undefined);
      live.delete(entry);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The directory holding initdb and pg_ctl: $PG_BIN, the newest /usr/lib/postgresql/<v>/bin, or pg_config's. */
function postgresBin(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian))
    for (const v of readdirSync(debian).sort((a, b) => Number(b) - Number(a)))
      candidates.push(join(debian, v, 'bin'));
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  const found = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (found === undefined)
    throw new Error(
      `privatePostgres: initdb not found (looked in ${candidates.join(', ') || 'PG_BIN, /usr/lib/postgresql/*/bin, pg_config --bindir'}); ` +
        'install the PostgreSQL server (Debian: apt-get install postgresql) or set PG_BIN to its bin directory',
    );
  return found;
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0)
    throw new Error('privatePostgres: running as root needs a `postgres` user to run the server as');
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function exec(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', cwd: tmpdir() }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`));
      else resolve(stdout);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}
