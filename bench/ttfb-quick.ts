/**
 * Quick streaming TTFB / latency comparison (no CPU, no soak): for each payload, every mode in turn, `--rounds`
 * fixed-rate runs (`--rate` req/s for `--duration` s over 4 connections, as the full bench); prints the median
 * TTFB and latency p50/p90 per mode. `--compare DIR` adds other checkouts' ringfence modes to the same rounds.
 * `node bench/ttfb-quick.ts --modes direct,reference,passthrough --payload 2k-sse`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killAllNow } from './lib/children.ts';
import { HEADERS, PATH } from './lib/measure.ts';
import { paced } from './lib/paced.ts';
import { startCompared, startMock } from './lib/servers.ts';
import { PAYLOADS } from './payloads.ts';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'direct,reference,passthrough' },
    payload: { type: 'string', default: '2k-sse' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    compare: { type: 'string', multiple: true, default: [] },
    /** Also runs each ringfence mode with these Node flags (repeatable; one variant per flag set, space-separated). */
    'node-args': { type: 'string', multiple: true, default: [] },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-ttfb-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const mock = await startMock();
const targets = await startCompared(values.modes, mock, tmp, {
  compare: values.compare,
  nodeArgs: values['node-args'],
});
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const id of values.payload.split(',')) {
  const p = PAYLOADS.find((x) => x.id === id);
  if (!p) throw new Error(`unknown payload ${id}`);
  const acc = new Map<string, { ttfb50: number[]; ttfb90: number[]; lat50: number[]; lat99: number[] }>();
  for (const t of targets) acc.set(t.label, { ttfb50: [], ttfb90: [], lat50: [], lat99: [] });
  for (let r = 0; r < Number(values.rounds); r++)
    for (const t of targets) {
      const res = await paced({
        origin: t.url,
        path: PATH,
        headers: HEADERS,
        payload: p,
        rate: Number(values.rate),
        durationS: Number(values.duration),
        connections: 4,
      });
      const x = acc.get(t.label)!;
      x.ttfb50.push(res.ttfb.p50);
      x.ttfb90.push(res.ttfb.p90);
      x.lat50.push(res.latency.p50);
      x.lat99.push(res.latency.p99);
      if (res.errors || res.non2xx || res.mismatches)
        console.log(`  ${t.label}: ${res.errors} errors ${res.non2xx} non-2xx ${res.mismatches} mismatches`);
    }
  console.log(`${p.label}: median of ${values.rounds} rounds, ms`);
  for (const [name, x] of acc)
    console.log(
      `  ${name.padEnd(24)} TTFB p50 ${med(x.ttfb50).toFixed(3)}  p90 ${med(x.ttfb90).toFixed(3)}  latency p50 ${med(x.lat50).toFixed(3)}  p99 ${med(x.lat99).toFixed(3)}   [TTFB p50 ${x.ttfb50.map((v) => v.toFixed(3)).join(' ')}]`,
    );
}
for (const t of targets) await t.child?.stop(5000);
await mock.stop(5000);
