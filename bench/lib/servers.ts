import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH_PROVIDER_KEY, MODES, type Mode, ringfenceConfig } from '../modes.ts';
import { type Child, freePort, REPO_DIR, spawnServer } from './children.ts';

/** A server the load goes to, and the process whose CPU and memory are measured. */
export interface Target {
  readonly mode: Mode;
  readonly url: string;
  readonly pid: number;
  /** The process this mode started (undefined for `direct`, whose process is the mock). */
  readonly child: Child | undefined;
}

/** Starts the bench mock as its own process. */
export function startMock(nodeArgs: readonly string[] = []): Promise<Child> {
  return spawnServer({
    name: 'bench mock',
    script: 'bench/mock-provider.ts',
    args: [],
    nodeArgs,
    ready: { kind: 'line' },
  });
}

/** How to start a mode's server. */
export interface StartOptions {
  /** Node flags for the server process, such as --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  /** A ringfence checkout to run instead of this one (its bin/ringfence.js). */
  readonly ringfenceDir?: string;
  /** A command the server runs under (bench/instructions.ts: valgrind). */
  readonly wrapper?: readonly string[];
  /** How long the server may take to be ready (ms). */
  readonly timeoutMs?: number;
}

/** Starts the server of an available mode in front of the mock. */
export async function startTarget(
  mode: Mode,
  mock: Child,
  tmpDir: string,
  { nodeArgs = [], ringfenceDir = REPO_DIR, wrapper, timeoutMs }: StartOptions = {},
): Promise<Target> {
  const s = mode.server;
  if (s.kind === 'mock') return { mode, url: mock.url, pid: mock.pid, child: undefined };
  if (s.kind === 'reference') {
    const child = await spawnServer({
      name: mode.name,
      script: 'bench/reference-proxy.ts',
      args: ['--upstream', mock.url],
      nodeArgs,
      ...(wrapper ? { wrapper } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
      ready: { kind: 'line' },
    });
    return { mode, url: child.url, pid: child.pid, child };
  }
  const file = join(tmpDir, `${mode.name.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
  const ctx = { repoDir: REPO_DIR, mockUrl: mock.url };
  writeFileSync(file, ringfenceConfig(ctx, s.config?.(ctx)));
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = await spawnServer({
    name: mode.name,
    script: join(ringfenceDir, 'bin', 'ringfence.js'),
    args: ['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort)],
    nodeArgs,
    ...(wrapper ? { wrapper } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
    env: { BENCH_PROVIDER_KEY },
    ready: { kind: 'http', url: `http://127.0.0.1:${port}`, probe: `http://127.0.0.1:${adminPort}/readyz` },
  });
  await s.setup?.(`http://127.0.0.1:${adminPort}`, ctx, `http://127.0.0.1:${port}`);
  return { mode, url: child.url, pid: child.pid, child };
}

/** Node flags that preload bench/lib/mem-probe.ts (SIGUSR2: a full GC, then one MEMPROBE line on stderr). */
export const MEM_PROBE_ARGS: readonly string[] = [
  '--expose-gc',
  '--import',
  pathToFileURL(fileURLToPath(new URL('./mem-probe.ts', import.meta.url))).href,
];

/**
 * The live heap of a server started with {@link MEM_PROBE_ARGS}: V8 heap used right after a full GC, in MB.
 * Undefined when it does not answer within 5 s.
 */
export async function liveHeapMB(child: Child): Promise<number | undefined> {
  const last = () =>
    child
      .output()
      .split('\n')
      .findLast((l) => l.startsWith('MEMPROBE '));
  const before = last();
  process.kill(child.pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const line = last();
    if (line && line !== before)
      return (JSON.parse(line.slice(9)) as { liveHeapAfterGc: number }).liveHeapAfterGc;
  }
  return undefined;
}

/** A started server and the label its figures are printed under. */
export type Labelled = Target & { readonly label: string };

/**
 * Starts the servers of the quick comparison tools: each mode named in `modes` (comma-separated), and for each
 * ringfence mode one more per `nodeArgs` variant (Node flags, space-separated: `prod+shadow --max-semi-space-size=8`)
 * and one more per `compare` checkout (`prod+shadow@other-dir`), all in front of the same mock.
 */
export async function startCompared(
  modes: string,
  mock: Child,
  tmpDir: string,
  opts: { compare?: readonly string[]; nodeArgs?: readonly string[]; ringfenceDir?: string } = {},
): Promise<Labelled[]> {
  const targets: Labelled[] = [];
  for (const name of modes.split(',')) {
    const m = MODES.find((x) => x.name === name);
    if (!m?.available) throw new Error(`unknown or unavailable mode ${name}`);
    const own = opts.ringfenceDir ? { ringfenceDir: resolve(opts.ringfenceDir) } : {};
    targets.push({ ...(await startTarget(m, mock, tmpDir, own)), label: m.name });
    if (m.server.kind !== 'ringfence') continue;
    for (const flags of opts.nodeArgs ?? []) {
      const o = await startTarget({ ...m, name: `${m.name} ${flags}` }, mock, tmpDir, {
        ...own,
        nodeArgs: flags.split(' '),
      });
      targets.push({ ...o, label: o.mode.name });
    }
    for (const other of opts.compare ?? []) {
      const d = resolve(other);
      const o = await startTarget({ ...m, name: `${m.name}@${d.split('/').at(-1)}` }, mock, tmpDir, {
        ringfenceDir: d,
      });
      targets.push({ ...o, label: o.mode.name });
    }
  }
  return targets;
}
