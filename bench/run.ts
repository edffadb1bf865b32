import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkBudgets, parseBudget } from './budget.ts';
import { killAllNow, liveCount, REPO_DIR } from './lib/children.ts';
import { machineInfo } from './lib/machine.ts';
import { measure } from './lib/measure.ts';
import { clockTicks, cpuTicks, hostBusyTicks } from './lib/procfs.ts';
import { profileMode } from './lib/profile-run.ts';
import { renderMarkdown } from './lib/report.ts';
import type { BenchResults, BenchSettings, ModeResult } from './lib/results.ts';
import { MEM_PROBE_ARGS, startMock, startTarget, type Target } from './lib/servers.ts';
import { STREAM_CHUNKS } from './mock-provider.ts';
import { MODES } from './modes.ts';
import { PAYLOADS } from './payloads.ts';

const USAGE = `usage: npm run bench -- [options]

  (no option)        full run: writes bench/results/latest.json and bench/RESULTS.md; exit 1 on any error or budget overrun
  --smoke            one short round per mode, tiny soak; writes bench/results/smoke.json; fails only on errors
  --profile MODE     CPU-profile MODE's server under load and print its top 15 self-time frames
  --payload IDS      with --profile: load with these payloads only (2k-json,2k-sse,32k-json,32k-sse; default all)
  --soak N           soak requests per ringfence mode (full: 100000, smoke: 400; 0 skips the soak)
  --rounds N         interleaved rounds (full: 3)
  --duration S       seconds per saturated run (full: 3), or of the profile load (10)
  --fixed-duration S seconds per fixed-rate run (full: 5)
  --rate R           fixed rate, requests per second (200)
  --ringfence-dir D  measure the ringfence checkout in D (its bin/ringfence.js) instead of this working tree
`;

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    profile: { type: 'string' },
    soak: { type: 'string' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    'fixed-duration': { type: 'string' },
    rate: { type: 'string' },
    'ringfence-dir': { type: 'string' },
    payload: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const smoke = values.smoke;
const ringfenceDir = values['ringfence-dir'] ? resolve(values['ringfence-dir']) : undefined;
const numeric = (v: string | undefined, fallback: number, name: string): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got "${v}"`);
  return n;
};
const settings: BenchSettings = {
  rounds: Math.max(1, Math.round(numeric(values.rounds, smoke ? 1 : 3, 'rounds'))),
  warmupS: smoke ? 0.2 : 2,
  saturatedS: numeric(values.duration, smoke ? 0.5 : 3, 'duration'),
  saturatedConnections: 64,
  fixedRate: numeric(values.rate, 200, 'rate'),
  fixedS: numeric(values['fixed-duration'], smoke ? 0.5 : 5, 'fixed-duration'),
  fixedConnections: 4,
  fixedSlices: smoke ? 1 : 5,
  soakRequests: Math.round(numeric(values.soak, smoke ? 400 : 100_000, 'soak')),
  streamChunks: STREAM_CHUNKS,
  clockTicks: clockTicks(),
};

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const started = Date.now();
const tmpDir = mkdtempSync(join(tmpdir(), 'ringfence-bench-'));

// Whatever happens, no server outlives the bench: kill on exit, stop on a signal, and a hard time limit.
process.on('exit', () => {
  killAllNow();
  rmSync(tmpDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    log(`${sig}: stopping ${liveCount()} server(s)`);
    process.exit(130);
  });
const limitS = values.profile ? 180 : smoke ? 420 : 1800;
setTimeout(() => {
  log(`time limit of ${limitS} s reached: killing every server`);
  process.exit(3);
}, limitS * 1000).unref();

/** Cores the rest of the machine keeps busy, sampled over `ms`. */
async function otherCores(ms: number): Promise<number> {
  const h0 = hostBusyTicks();
  const o0 = cpuTicks(process.pid);
  await new Promise((r) => setTimeout(r, ms));
  return (hostBusyTicks() - h0 - (cpuTicks(process.pid) - o0)) / settings.clockTicks / (ms / 1000);
}

async function runProfile(name: string): Promise<number> {
  const mode = MODES.find((m) => m.name === name);
  if (!mode) {
    log(`--profile: no mode "${name}"; modes: ${MODES.map((m) => m.name).join(', ')}`);
    return 2;
  }
  if (!mode.available) {
    log(`--profile ${name}: not available: ${mode.reason}`);
    return 2;
  }
  const ids = values.payload?.split(',') ?? PAYLOADS.map((p) => p.id);
  const payloads = PAYLOADS.filter((p) => ids.includes(p.id));
  if (payloads.length !== ids.length) {
    log(`--payload: unknown id in "${values.payload}"; payloads: ${PAYLOADS.map((p) => p.id).join(', ')}`);
    return 2;
  }
  const p = await profileMode(mode, tmpDir, {
    durationS: numeric(values.duration, 10, 'duration'),
    connections: 64,
    payloads,
    log,
    ringfenceDir,
  });
  process.stdout.write(
    `\n## CPU profile: ${name} (${payloads.map((x) => x.label).join(', ')})\n\n${p.markdown}\n\nfull profile: ${p.profileFile}\n`,
  );
  if (p.errors > 0) log(`${p.errors} errors or non-2xx answers during the profile load`);
  if (p.exit.code !== 0) log(`${name} exited with ${p.exit.signal ?? `code ${p.exit.code}`} on SIGTERM`);
  return p.errors > 0 || p.exit.code !== 0 ? 1 : 0;
}

async function runBench(): Promise<number> {
  const available = MODES.filter((m) => m.available);
  log(
    `${smoke ? 'smoke' : 'full'} run: modes ${available.map((m) => m.name).join(', ')}; not available: ${MODES.filter(
      (m) => !m.available,
    )
      .map((m) => m.name)
      .join(', ')}`,
  );
  const busy = await otherCores(smoke ? 300 : 1000);
  if (busy > 0.2)
    log(`other processes are using ${busy.toFixed(2)} cores before the start: timings will be noisy`);
  // Described at the start: the servers run the code as it is now, whatever changes in the tree meanwhile.
  const machine = machineInfo(REPO_DIR, ringfenceDir ?? 'working tree');
  const mock = await startMock();
  const targets: Target[] = [];
  try {
    for (const mode of available)
      targets.push(
        await startTarget(mode, mock, tmpDir, {
          ...(ringfenceDir ? { ringfenceDir } : {}),
          // The soak's leak check asks ringfence servers for their live heap after a full GC.
          ...(mode.server.kind === 'ringfence' ? { nodeArgs: MEM_PROBE_ARGS } : {}),
        }),
      );
    const { modes: measured, noise } = await measure(targets, mock.pid, PAYLOADS, settings, log);

    const exits = new Map<string, { code: number | null; signal: string | null }>();
    for (const t of targets) if (t.child) exits.set(t.mode.name, await t.child.stop());
    exits.set(targets.find((t) => !t.child)?.mode.name ?? 'direct', await mock.stop());

    const modes: ModeResult[] = MODES.map((m) => {
      if (!m.available)
        return { name: m.name, description: m.description, available: false, reason: m.reason, payloads: {} };
      const r = measured.find((x) => x.name === m.name)!;
      const exit = exits.get(m.name);
      return exit ? { ...r, exit } : r;
    });
    const payloads = PAYLOADS.map((p) => ({
      id: p.id,
      label: p.label,
      stream: p.stream,
      requestBytes: p.body.length,
      responseBytes: p.responseBytes,
    }));
    const budget = parseBudget(JSON.parse(readFileSync(join(REPO_DIR, 'bench', 'budget.json'), 'utf8')));
    const report = checkBudgets({ payloads, modes }, budget);
    const results: BenchResults = {
      kind: smoke ? 'smoke' : 'full',
      machine,
      settings,
      payloads,
      modes,
      budget: report,
      noise,
      wallS: Math.round((Date.now() - started) / 1000),
    };

    const resultsDir = join(REPO_DIR, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const jsonFile = join(resultsDir, smoke ? 'smoke.json' : 'latest.json');
    writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
    const md = renderMarkdown(results);
    if (!smoke) writeFileSync(join(REPO_DIR, 'bench', 'RESULTS.md'), md);
    process.stdout.write(`\n${md}\n`);
    log(`wrote ${jsonFile}${smoke ? '' : ' and bench/RESULTS.md'} in ${results.wallS} s`);

    // Errors fail every run; timings (the budget) only the full one.
    const failures: string[] = [];
    for (const m of modes) {
      if (!m.available) continue;
      for (const p of payloads) {
        const f = m.payloads[p.id];
        if (f && f.errors + f.non2xx > 0)
          failures.push(`${m.name} ${p.label}: ${f.errors} errors, ${f.non2xx} non-2xx`);
      }
      if ((m.memory?.soakErrors ?? 0) + (m.memory?.soakNon2xx ?? 0) > 0)
        failures.push(`${m.name} soak: ${m.memory?.soakErrors} errors, ${m.memory?.soakNon2xx} non-2xx`);
      if (m.exit && m.exit.code !== 0)
        failures.push(`${m.name} server exited with ${m.exit.signal ?? `code ${m.exit.code}`} on SIGTERM`);
    }
    if (!smoke) failures.push(...report.violations);
    else if (report.violations.length)
      log(`smoke: ${report.violations.length} budget figure(s) over, not enforced`);
    for (const f of failures) process.stderr.write(`bench: FAIL ${f}\n`);
    if (!failures.length) log(smoke ? 'smoke passed: no errors' : 'all budgets met, no errors');
    return failures.length ? 1 : 0;
  } finally {
    for (const t of targets) await t.child?.stop(5000);
    await mock.stop(5000);
  }
}

let code: number;
try {
  code = values.profile !== undefined ? await runProfile(values.profile) : await runBench();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  code = 1;
}
process.exit(code);
