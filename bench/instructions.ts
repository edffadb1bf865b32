/**
 * Instructions per request of each mode's server, counted by valgrind (callgrind), for comparing one change on a
 * machine whose CPU speed wanders: `node bench/instructions.ts --modes reference,passthrough,prod+shadow
 * --compare ../other-checkout --payload 2k-json --requests 2000`. Each server runs under callgrind with
 * instrumentation off; after a warm-up (JIT tiers settled), instrumentation is switched on for `--requests`
 * requests (`--connections` at a time) and the user-space instructions (Ir) are read back. Kernel time (the
 * socket writes) is not counted: every mode makes the same syscalls per request (bench/syscalls.ts shows them).
 * Repeatable to about 5 % between runs where timings move 2-3x (V8's optimising compiler still runs now and then
 * after the warm-up, and garbage collections fall where they fall); slow: servers run ~30x slower under valgrind.
 * `--keep DIR` keeps the callgrind files for callgrind_annotate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { killAllNow } from './lib/children.ts';
import { HEADERS, PATH } from './lib/measure.ts';
import { startMock, startTarget } from './lib/servers.ts';
import { MODES } from './modes.ts';
import { PAYLOADS } from './payloads.ts';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'reference,passthrough' },
    payload: { type: 'string', default: '2k-json' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '5000' },
    keep: { type: 'string' },
    connections: { type: 'string', default: '8' },
    compare: { type: 'string', multiple: true, default: [] },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-ir-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const n = Number(values.requests);
const payloads = values.payload.split(',').map((id) => {
  const p = PAYLOADS.find((x) => x.id === id);
  if (!p) throw new Error(`unknown payload ${id}`);
  return p;
});
const mock = await startMock();

const load = (url: string, body: string | Buffer, amount: number) =>
  autocannon({
    url: `${url}${PATH}`,
    method: 'POST',
    headers: HEADERS,
    body,
    connections: Number(values.connections),
    amount,
    timeout: 60,
  });

/** Total Ir of the last dump in `dir`. */
function irOf(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    const m = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    if (m) total += Number(m[1]);
  }
  return total;
}

const runs: Array<{ label: string; dir?: string; mode: (typeof MODES)[number] }> = [];
for (const name of values.modes.split(',')) {
  const mode = MODES.find((x) => x.name === name);
  if (!mode?.available) throw new Error(`unknown or unavailable mode ${name}`);
  runs.push({ label: name, mode });
  if (mode.server.kind === 'ringfence')
    for (const d of values.compare)
      runs.push({ label: `${name}@${resolve(d).split('/').at(-1)}`, dir: resolve(d), mode });
}

for (const p of payloads) {
  console.log(
    `${p.label}: instructions per request (k = thousands), ${n} requests after ${values.warmup} warm-up`,
  );
  let base: number | undefined;
  for (const r of runs) {
    const out = mkdtempSync(join(tmp, 'cg-'));
    const t = await startTarget(r.mode, mock, tmp, {
      ...(r.dir ? { ringfenceDir: r.dir } : {}),
      wrapper: [
        'valgrind',
        '--tool=callgrind',
        '--instr-atstart=no',
        '--trace-children=no',
        `--callgrind-out-file=${join(out, 'cg.%p')}`,
      ],
      timeoutMs: 180_000,
    });
    await load(t.url, p.body, Number(values.warmup));
    execFileSync('callgrind_control', ['-i', 'on', String(t.pid)], { stdio: 'ignore' });
    const res = await load(t.url, p.body, n);
    execFileSync('callgrind_control', ['-d', String(t.pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-i', 'off', String(t.pid)], { stdio: 'ignore' });
    // --keep DIR: the callgrind files, for `callgrind_annotate --inclusive=no DIR/<mode>/cg.*.1`.
    if (values.keep)
      execFileSync('cp', ['-r', out, join(values.keep, r.label.replace(/[^a-z0-9@]+/gi, '_'))]);
    const ir = irOf(out) / n;
    base ??= ir;
    const bad = res.errors + res.non2xx;
    console.log(
      `  ${r.label.padEnd(28)} ${(ir / 1000).toFixed(0).padStart(7)} k Ir/req  ${(ir / base).toFixed(2)}×${bad ? `  (${bad} errors or non-2xx)` : ''}`,
    );
    await t.child?.stop(20_000);
  }
}
await mock.stop(5000);
