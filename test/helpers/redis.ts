/**
 * Redis for tests. `SHARED_REDIS_URL`: the machine's server (127.0.0.1:6379; RINGFENCE_TEST_REDIS_URL overrides),
 * used under a random key prefix that `dropPrefix` removes (SCAN + DEL). `privateRedis()`: a throwaway
 * `redis-server` of its own (a free loopback port, nothing kept on disk) that a test may kill, restart, pause and
 * freeze, for outages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const SHARED_REDIS_URL = process.env.RINGFENCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own for one test file: `rftest:<random>:`. */
export function testPrefix(): string {
  return `rftest:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` (SCAN + DEL). */
export async function dropPrefix(url: string, prefix: string): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await r.connect();
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

/** A loopback port nobody listens on (right now). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Sends one inline command over a fresh connection and returns the first reply line (or throws). */
export function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer to ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    let buf = '';
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        clearTimeout(timer);
        sock.end();
        resolve(buf.slice(0, i));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Starts the server (again) on the same port and waits until it answers. */
  start(): Promise<void>;
  /** Kills the server (SIGKILL: connections are cut, as in a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** SIGSTOPs the server: connections stay open and accept bytes, nothing answers. */
  freeze(): void;
  /** SIGCONTs what `freeze` stopped. */
  thaw(): void;
  readonly running: boolean;
}

const live = new Set<ChildProcess>();
let exitHook = false;

/** A throwaway `redis-server` on a free loopback port: no persistence, its own temp dir. Kill it in afterAll. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ringfence-redis-'));
  let child: ChildProcess | undefined;
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const api: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      const c = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' },
      );
      child = c;
      live.add(c);
      c.once('exit', () => live.delete(c));
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          if ((await rawCommand(port, 'PING', 500)) === '+PONG') return;
        } catch {
          // not up yet
        }
        if (c.exitCode !== null || Date.now() > deadline) {
          c.kill('SIGKILL');
          throw new Error(`redis-server did not start on port ${port}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT');
      c.kill('SIGKILL');
      await exited;
    },
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
  };
  await api.start();
  return api;
}
