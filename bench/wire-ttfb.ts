/**
 * Where the first byte of a streamed answer goes: sends sequential requests over one raw keep-alive TCP connection
 * to each mode and records, per request, when the first byte of the answer arrives (headers), when the first byte
 * of the body arrives, and how many socket reads the head and the first event took. Medians over `--n` requests.
 * `node bench/wire-ttfb.ts --modes direct,reference,passthrough --payload 2k-sse`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killAllNow } from './lib/children.ts';
import { HEADERS, PATH } from './lib/measure.ts';
import { startCompared, startMock } from './lib/servers.ts';
import { PAYLOADS } from './payloads.ts';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'direct,reference,passthrough' },
    payload: { type: 'string', default: '2k-sse' },
    n: { type: 'string', default: '400' },
    compare: { type: 'string', multiple: true, default: [] },
    split: { type: 'boolean', default: false },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'ringfence-wire-'));
process.on('exit', () => {
  killAllNow();
  rmSync(tmp, { recursive: true, force: true });
});
const payload = PAYLOADS.find((p) => p.id === values.payload);
if (!payload) throw new Error(`unknown payload ${values.payload}`);
const mock = await startMock();
const targets = await startCompared(values.modes, mock, tmp, { compare: values.compare });

interface Sample {
  head: number;
  body: number;
  end: number;
  readsToBody: number;
}

/** One request on an open socket: resolves when the chunked body's last chunk (or content-length) is in. */
async function measureOne(url: string, n: number): Promise<Sample[]> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  socket.setNoDelay(true);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const head = Object.entries({ ...HEADERS, host: u.host, 'content-length': String(payload!.body.length) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const reqHead = Buffer.from(`POST ${PATH} HTTP/1.1\r\n${head}\r\n`);
  const req = Buffer.concat([reqHead, payload!.body]);
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const s = await new Promise<Sample>((done) => {
      const t0 = performance.now();
      let buf = '';
      let headAt = 0;
      let bodyAt = 0;
      let reads = 0;
      let bodyStart = -1;
      const onData = (c: Buffer) => {
        reads++;
        const now = performance.now();
        if (!headAt) headAt = now;
        buf += c.toString('latin1');
        if (bodyStart < 0) {
          const e = buf.indexOf('\r\n\r\n');
          if (e >= 0) bodyStart = e + 4;
        }
        if (bodyStart >= 0 && !bodyAt && buf.length > bodyStart) bodyAt = now;
        const len = /content-length: (\d+)/i.exec(buf.slice(0, bodyStart));
        const complete =
          bodyStart >= 0 && (len ? buf.length - bodyStart >= Number(len[1]) : buf.endsWith('\r\n0\r\n\r\n'));
        if (complete) {
          socket.off('data', onData);
          done({
            head: headAt - t0,
            body: bodyAt - t0,
            end: now - t0,
            readsToBody: bodyAt === now && reads === 1 ? 1 : reads,
          });
        }
      };
      socket.on('data', onData);
      if (values.split) {
        // Head and body in two writes (two segments), as some clients send them.
        socket.write(reqHead);
        setImmediate(() => socket.write(payload!.body));
      } else socket.write(req);
    });
    if (i >= 20) out.push(s); // the first few warm the JIT
    await new Promise((r) => setTimeout(r, 2));
  }
  socket.destroy();
  return out;
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${payload.label}: ${values.n} sequential requests per mode over one connection, medians in ms`);
for (const t of targets) {
  const s = await measureOne(t.url, Number(values.n));
  const sameRead = s.filter((x) => x.head === x.body).length;
  console.log(
    `  ${t.label.padEnd(24)} first byte ${med(s.map((x) => x.head)).toFixed(3)}  first body byte ${med(s.map((x) => x.body)).toFixed(3)}  end ${med(s.map((x) => x.end)).toFixed(3)}  head and body in one read: ${((100 * sameRead) / s.length).toFixed(0)}%`,
  );
}
for (const t of targets) await t.child?.stop(5000);
await mock.stop(5000);
