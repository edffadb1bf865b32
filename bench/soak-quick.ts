/**
 * Memory over a soak, in segments, to tell a leak from a heap that settles: starts the bench mock and one mode's
 * server (with bench/lib/mem-probe.ts preloaded and --expose-gc), sends `--segments` × `--segment` requests
 * (every payload in turn, 64 connections, as the bench's soak), and after each segment prints RSS, the V8 heap
 * and the live heap after a full GC. `node bench/soak-quick.ts --mode prod+shadow --segment 25000 --segments 8`
 * (`--node-arg=--max-semi-space-size=16` to try a V8 flag, `--ringfence-dir DIR` for another checkout).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllNow } from './lib/children.ts';
import { saturate } from './lib/load.ts';
import { HEADERS, PATH } from './lib/measure.ts';
import { rssBytes } from './lib/procfs.ts';
import { startMock, startTarget } from './lib/servers.ts';
import { MODES } from './modes.ts';
import { PAYLOADS } from './payloads.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'prod+shadow' },
    segment: { type: 'string', default: '25000' },
    segments: { type: 'string', default: '4' },
    'ringfence-dir': { type: 'string' },
    /** Extra Node flags for the server, e.g. --node-arg=--max-semi-space-size=16 (repeatable). */
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-soak-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const mode = MODES.find((m) => m.name === values.mode);
if (!mode?.available || mode.server.kind !== 'ringfence')
  throw new Error(`not a ringfence mode: ${values.mode}`);
const probe = pathToFileURL(fileURLToPath(new URL('./lib/mem-probe.ts', import.meta.url))).href;
const mock = await startMock();
const nodeArgs = ['--expose-gc', '--import', probe];
nodeArgs.push(...values['node-arg']);
const dir = values['ringfence-dir'] ? resolve(values['ringfence-dir']) : undefined;
const target = await startTarget(mode, mock, tmp, { nodeArgs, ...(dir ? { ringfenceDir: dir } : {}) });
const child = target.child!;
let seen = '';
async function probeNow(label: string): Promise<void> {
  const rss = Math.round((rssBytes(target.pid) / 1048576) * 10) / 10;
  process.kill(target.pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const last = child
      .output()
      .split('\n')
      .findLast((l) => l.startsWith('MEMPROBE '));
    if (last && last !== seen) {
      seen = last;
      const m = JSON.parse(last.slice(9));
      console.log(
        `${label.padEnd(16)} RSS ${String(rss).padStart(6)} MB | heap used ${m.heapUsed} of ${m.heapTotal} MB | live after GC ${m.liveHeapAfterGc} MB (heap ${m.heapTotalAfterGc}, RSS ${m.rssAfterGc}) | external ${m.external} MB | spaces ${JSON.stringify(m.spaceSizes)}`,
      );
      return;
    }
  }
  console.log(`${label}: no probe answer`);
}
await probeNow('start');
const per = Number(values.segment);
for (let i = 1; i <= Number(values.segments); i++) {
  const r = await saturate({
    url: `${target.url}${PATH}`,
    headers: HEADERS,
    payloads: PAYLOADS,
    connections: 64,
    amount: per,
  });
  await sleep(200);
  if (r.errors || r.non2xx) console.log(`  segment ${i}: ${r.errors} errors, ${r.non2xx} non-2xx`);
  await probeNow(`${i * per} requests`);
}
await child.stop(5000);
await mock.stop(5000);
