/**
 * Syscalls per request of a mode's server: `node bench/syscalls.ts --modes reference,passthrough --payload 2k-json
 * --requests 5000`. Attaches `strace -c -f` to each server for a fixed number of requests (64 connections) and
 * prints each syscall's count per request: the kernel share of the CPU per request, which the profile shows only
 * as `writev`. Needs strace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    requests: { type: 'string', default: '5000' },
    perf: { type: 'boolean', default: false },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-sys-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const n = Number(values.requests);
const payload = PAYLOADS.find((x) => x.id === values.payload);
if (!payload) throw new Error(`unknown payload ${values.payload}`);
const mock = await startMock();
for (const name of values.modes.split(',')) {
  const mode = MODES.find((x) => x.name === name);
  if (!mode?.available) throw new Error(`unknown or unavailable mode ${name}`);
  const t = await startTarget(mode, mock, tmp);
  const load = (amount: number) =>
    autocannon({
      url: `${t.url}${PATH}`,
      method: 'POST',
      headers: HEADERS,
      body: payload.body,
      connections: 64,
      amount,
    });
  await load(2000);
  const out = join(tmp, `${name}.strace`);
  const st = spawn(
    values.perf ? 'perf' : 'strace',
    values.perf
      ? [
          'stat',
          '-e',
          'task-clock,page-faults,context-switches,cpu-migrations',
          '-o',
          out,
          '-p',
          String(t.pid),
        ]
      : ['-c', '-f', '-o', out, '-p', String(t.pid)],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  await load(n);
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  console.log(`${name} (${payload.label}): syscalls per request`);
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (values.perf) {
      const m = /^\s*([\d,.]+)\s+(?:msec\s+)?([a-z-]+)/.exec(line);
      if (m) console.log(`  ${m[2]!.padEnd(16)} ${(Number(m[1]!.replace(/,/g, '')) / n).toFixed(3)}`);
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d/.test(f[0]!)) continue;
    const calls = Number(f[3]);
    const sys = f.at(-1)!;
    if (calls / n >= 0.05) console.log(`  ${sys.padEnd(16)} ${(calls / n).toFixed(2)}`);
  }
  await t.child?.stop(5000);
}
await mock.stop(5000);
