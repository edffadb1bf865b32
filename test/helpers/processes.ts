import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** The repository root, and the `ringfence` bin the tests spawn. */
export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'ringfence.js');
/** Node 24 runs the TypeScript sources; under npm/npx that is this process's node, else the pinned one. */
export const NODE =
  Number(process.versions.node.split('.')[0]) >= 24
    ? process.execPath
    : join(ROOT, 'node_modules', 'node', 'bin', 'node');

/** A spawned `ringfence` process with its output collected. */
export interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

const running = new Set<ChildProcess>();

/**
 * Spawns `ringfence ARGS` in a clean environment (PATH plus `env`: nothing from the test runner leaks in), with
 * an optional SIGKILL after `killAfterMs`.
 */
export function spawnRingfence(
  args: string[],
  opts: { env?: Record<string, string>; killAfterMs?: number } = {},
): Proc {
  const child = spawn(NODE, [BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const timer =
    opts.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        running.delete(child);
        if (timer) clearTimeout(timer);
        resolve(code ?? signal ?? -1);
      }),
    ),
  };
  child.stdout?.on('data', (d: Buffer) => {
    proc.stdout += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    proc.stderr += d.toString('utf8');
  });
  return proc;
}

/** Kills every process spawned by this file that is still running (afterAll). */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** Waits for the `ringfence listening` log line and returns its URLs; kills the process if it never comes. */
export async function listening(p: Proc, timeoutMs = 20_000): Promise<{ dataUrl: string; adminUrl: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Whole lines only: the last one may still be half-written.
    for (const line of p.stdout.split('\n').slice(0, -1)) {
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line) as { msg?: string; dataUrl?: string; adminUrl?: string };
      if (rec.msg === 'ringfence listening' && rec.dataUrl && rec.adminUrl)
        return { dataUrl: rec.dataUrl, adminUrl: rec.adminUrl };
    }
    if (p.child.exitCode !== null || Date.now() > deadline) {
      p.child.kill('SIGKILL');
      throw new Error(`gateway did not start (exit ${p.child.exitCode}):\n${p.stdout}\n${p.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
