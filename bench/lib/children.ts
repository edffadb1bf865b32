import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root (bench/lib/../..). */
export const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url));
const PARENT_WATCH = pathToFileURL(fileURLToPath(new URL('../parent-watch.ts', import.meta.url))).href;

/** A server process the bench started. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** The last few KB of what it wrote to stdout and stderr. */
  output(): string;
  /** How it ended, once it has. */
  exit(): { code: number | null; signal: string | null } | undefined;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with how it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: string | null }>;
}

/** How to tell that a started server is ready. */
export type Readiness =
  | { kind: 'line' } // it prints `READY <url>` on stdout
  | { kind: 'http'; url: string; probe: string }; // GET `probe` answers 200; `url` is where it serves

const live = new Set<ChildProcess>();

/** Kills every server still running, at once (for `exit` handlers: synchronous, no grace). */
export function killAllNow(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Servers still running. */
export function liveCount(): number {
  return live.size;
}

/** A free TCP port on loopback (bound then released: a tiny race the bench accepts). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const TAIL = 8192;

/**
 * Starts `node [nodeArgs] script args` with the bench's own Node (the pinned 24), as a separate process on loopback,
 * and waits (at most `timeoutMs`) until it is ready. Its stdin is a pipe it watches: it exits if the bench dies.
 */
export async function spawnServer(opts: {
  name: string;
  script: string;
  args: readonly string[];
  nodeArgs?: readonly string[];
  env?: Record<string, string>;
  ready: Readiness;
  timeoutMs?: number;
  /** A command the server runs under, such as valgrind with its options (the process keeps its pid). */
  wrapper?: readonly string[];
}): Promise<Child> {
  const argv = [
    process.execPath,
    '--import',
    PARENT_WATCH,
    ...(opts.nodeArgs ?? []),
    opts.script,
    ...opts.args,
  ];
  const cmd = [...(opts.wrapper ?? []), ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: REPO_DIR,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);
  let tail = '';
  let exited: { code: number | null; signal: string | null } | undefined;
  const keep = (b: Buffer) => {
    tail = (tail + b.toString('utf8')).slice(-TAIL);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exitP = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve(exited);
    });
  });
  child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let url: string | undefined;
  while (Date.now() < deadline && !exited && url === undefined) {
    if (opts.ready.kind === 'line') {
      const m = /^READY (\S+)$/m.exec(tail);
      if (m) url = m[1];
    } else {
      try {
        const r = await fetch(opts.ready.probe, { signal: AbortSignal.timeout(1000) });
        await r.body?.cancel();
        if (r.status === 200) url = opts.ready.url;
      } catch {
        // not listening yet
      }
    }
    if (url === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async (graceMs = 10_000) => {
    if (exited) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const how = await exitP;
    clearTimeout(timer);
    return how;
  };
  if (url === undefined) {
    await stop(1000);
    throw new Error(`${opts.name} did not become ready (${exited ? 'it exited' : 'timeout'}):\n${tail}`);
  }
  return {
    name: opts.name,
    pid: child.pid!,
    url,
    output: () => tail,
    exit: () => exited,
    stop,
  };
}
