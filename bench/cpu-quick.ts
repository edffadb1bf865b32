/**
 * Quick CPU-per-request comparison of a few modes (no latency, no soak): for each payload, every mode in turn,
 * `--rounds` saturated runs of `--duration` s; prints the median user and system CPU µs per request from
 * /proc/PID/stat. Much shorter than the full bench, for checking one change: `node bench/cpu-quick.ts
 * --modes reference,passthrough --payload 2k-json`. `--ringfence-dir DIR` measures another checkout instead of
 * this one; `--compare DIR` (repeatable) measures each ringfence mode of other checkouts too, in the same
 * interleaved rounds (`passthrough@DIR`): the way to see one change's effect on a busy machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killAllNow } from './lib/children.ts';
import { saturate } from './lib/load.ts';
import { HEADERS, PATH } from './lib/measure.ts';
import { clockTicks } from './lib/procfs.ts';
import { startCompared, startMock } from './lib/servers.ts';
import { PAYLOADS } from './payloads.ts';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'reference,passthrough' },
    payload: { type: 'string', default: '2k-json' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    'ringfence-dir': { type: 'string' },
    compare: { type: 'string', multiple: true, default: [] },
  },
});
const ticks = clockTicks();
function cpu(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), sys: Number(f[12]) };
}
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-cpu-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const payloads = values.payload.split(',').map((id) => {
  const p = PAYLOADS.find((x) => x.id === id);
  if (!p) throw new Error(`unknown payload ${id}`);
  return p;
});
const mock = await startMock();
const targets = await startCompared(values.modes, mock, tmp, {
  compare: values.compare,
  ...(values['ringfence-dir'] ? { ringfenceDir: values['ringfence-dir'] } : {}),
});
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const p of payloads) {
  const acc = new Map<string, { user: number[]; sys: number[]; rps: number[] }>();
  for (const t of targets) {
    // warm-up
    await saturate({
      url: `${t.url}${PATH}`,
      headers: HEADERS,
      payloads: [p],
      connections: 64,
      durationS: 1,
    });
    acc.set(t.label, { user: [], sys: [], rps: [] });
  }
  for (let r = 0; r < rounds; r++)
    for (const t of targets) {
      const a = cpu(t.pid);
      const res = await saturate({
        url: `${t.url}${PATH}`,
        headers: HEADERS,
        payloads: [p],
        connections: 64,
        durationS,
      });
      const b = cpu(t.pid);
      const n = res.completed || 1;
      const x = acc.get(t.label)!;
      x.user.push(((b.user - a.user) / ticks / n) * 1e6);
      x.sys.push(((b.sys - a.sys) / ticks / n) * 1e6);
      x.rps.push(res.rps);
      if (res.errors || res.non2xx) console.log(`  ${t.label}: ${res.errors} errors ${res.non2xx} non-2xx`);
    }
  console.log(
    `${p.label}: median of ${rounds} (user + sys µs/req, req/s), min, [each round], median of the per-round ratios to ${targets[0]!.label}`,
  );
  const base = acc.get(targets[0]!.label)!;
  for (const [name, x] of acc) {
    const ratios = x.user.map((v, i) => (v + x.sys[i]!) / (base.user[i]! + base.sys[i]!));
    const u = med(x.user);
    const s = med(x.sys);
    console.log(
      `  ${name.padEnd(24)} ${(u + s).toFixed(0).padStart(5)} = ${u.toFixed(0)} + ${s.toFixed(0)}  ${med(x.rps).toFixed(0)} req/s  min ${Math.min(...x.user.map((v, i) => v + x.sys[i]!)).toFixed(0)}  [${x.user.map((v, i) => (v + x.sys[i]!).toFixed(0)).join(' ')}]  ${med(ratios).toFixed(2)}×`,
    );
  }
}
for (const t of targets) await t.child?.stop(5000);
await mock.stop(5000);
