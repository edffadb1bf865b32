import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_APP_KEY } from '../modes.ts';
import type { Payload } from '../payloads.ts';
import { saturate } from './load.ts';
import { type NoiseFigures, NoiseMeter } from './noise.ts';
import { type Histograms, histograms, type Percentiles, paced, percentiles } from './paced.ts';
import { cpuTicks, rssBytes } from './procfs.ts';
import type { BenchSettings, MemoryFigures, ModeResult, PayloadFigures } from './results.ts';
import { liveHeapMB, type Target } from './servers.ts';
import { addedStats, latencyStats, stat } from './stats.ts';

/** The endpoint every mode serves. */
export const PATH = '/v1/chat/completions';
/** Request headers: ringfence authenticates the app key; the mock and the reference proxy ignore it. */
export const HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  authorization: `Bearer ${BENCH_APP_KEY}`,
};

interface Acc {
  rps: number[];
  cpu: number[];
  lat: Percentiles[];
  ttfb: Percentiles[];
  errors: number;
  non2xx: number;
}

const MB = 1024 * 1024;
const mb = (pid: number) => Math.round((rssBytes(pid) / MB) * 10) / 10;

/** The measured modes, and how busy the rest of the machine was meanwhile (a noise indicator). */
export interface Measured {
  readonly modes: ModeResult[];
  readonly noise: NoiseFigures;
}

/**
 * Runs the measurement on servers already started: warm-up (discarded), interleaved rounds of saturated and
 * fixed-rate runs (every mode in turn for each payload), then the soak. Returns one result per target.
 */
export async function measure(
  targets: readonly Target[],
  mockPid: number | undefined,
  payloads: readonly Payload[],
  s: BenchSettings,
  log: (line: string) => void,
): Promise<Measured> {
  const pids = [process.pid, ...targets.map((t) => t.pid), ...(mockPid ? [mockPid] : [])];
  // Waiting for quiet: up to 5 s before a run, 90 s in all (2 s for a one-round run), so a busy machine still finishes.
  const noise = new NoiseMeter(pids, s.clockTicks, s.rounds > 1 ? 90_000 : 2_000);
  const whole = noise.window();
  const measured = async <T>(run: () => Promise<T>): Promise<T> => {
    await noise.settle(5000);
    const w = noise.window();
    const r = await run();
    noise.record(w());
    return r;
  };
  const acc = new Map<string, Acc>();
  const key = (t: Target, p: Payload) => `${t.mode.name}|${p.id}`;
  for (const t of targets)
    for (const p of payloads)
      acc.set(key(t, p), { rps: [], cpu: [], lat: [], ttfb: [], errors: 0, non2xx: 0 });
  const a = (t: Target, p: Payload) => acc.get(key(t, p))!;
  const startMB = new Map(targets.map((t) => [t.mode.name, mb(t.pid)]));

  const sat = async (t: Target, p: Payload, durationS: number) => {
    const c0 = cpuTicks(t.pid);
    const r = await saturate({
      url: `${t.url}${PATH}`,
      headers: HEADERS,
      payloads: [p],
      connections: s.saturatedConnections,
      durationS,
    });
    const cpuUs = ((cpuTicks(t.pid) - c0) / s.clockTicks) * 1e6;
    a(t, p).errors += r.errors;
    a(t, p).non2xx += r.non2xx;
    await sleep(100); // let the closed connections settle before the next run
    return { ...r, cpuPerRequestUs: r.completed > 0 ? cpuUs / r.completed : Number.NaN };
  };

  log(`warm-up: ${s.warmupS} s per mode and payload`);
  for (const p of payloads) for (const t of targets) await sat(t, p, s.warmupS);

  for (let round = 1; round <= s.rounds; round++) {
    for (const p of payloads)
      for (const t of targets) {
        const r = await measured(() => sat(t, p, s.saturatedS));
        a(t, p).rps.push(r.rps);
        a(t, p).cpu.push(r.cpuPerRequestUs);
        log(
          `round ${round}/${s.rounds} saturated  ${t.mode.name.padEnd(12)} ${p.label.padEnd(16)} ${r.rps.toFixed(0).padStart(6)} req/s ${r.cpuPerRequestUs.toFixed(0).padStart(5)} µs CPU/req${r.errors + r.non2xx ? `  ERRORS ${r.errors} non-2xx ${r.non2xx}` : ''}`,
        );
      }
    // Fixed rate: each mode's fixedS is run as `fixedSlices` slices, every mode in turn per slice (the order
    // rotated), into one histogram per mode. A slow stretch of the machine (this VM's speed moves within
    // seconds) then falls on every mode alike instead of on the one whose 5 s it was.
    for (const p of payloads) {
      const pooled = new Map<Target, Histograms>(targets.map((t) => [t, histograms()]));
      for (let slice = 0; slice < s.fixedSlices; slice++)
        for (let i = 0; i < targets.length; i++) {
          const t = targets[(i + slice) % targets.length]!;
          const r = await measured(() =>
            paced({
              origin: t.url,
              path: PATH,
              headers: HEADERS,
              payload: p,
              rate: s.fixedRate,
              durationS: s.fixedS / s.fixedSlices,
              connections: s.fixedConnections,
              into: pooled.get(t)!,
            }),
          );
          a(t, p).errors += r.errors + r.mismatches;
          a(t, p).non2xx += r.non2xx;
          if (r.errors + r.non2xx + r.mismatches)
            log(
              `round ${round}/${s.rounds} fixed-rate ${t.mode.name} ${p.label}: ERRORS ${r.errors + r.mismatches} non-2xx ${r.non2xx}`,
            );
        }
      for (const t of targets) {
        const h = pooled.get(t)!;
        const lat = percentiles(h.latency);
        const ttfb = percentiles(h.ttfb);
        a(t, p).lat.push(lat);
        a(t, p).ttfb.push(ttfb);
        log(
          `round ${round}/${s.rounds} fixed-rate ${t.mode.name.padEnd(12)} ${p.label.padEnd(16)} p50 ${lat.p50.toFixed(3)} p99 ${lat.p99.toFixed(3)} ms${p.stream ? `  TTFB p50 ${ttfb.p50.toFixed(3)} ms` : ''}`,
        );
      }
    }
  }

  const memory = new Map<string, MemoryFigures>();
  for (const t of targets) {
    const afterRoundsMB = mb(t.pid);
    const base = { startMB: startMB.get(t.mode.name)!, afterRoundsMB };
    if (s.soakRequests <= 0 || t.mode.server.kind !== 'ringfence') {
      memory.set(t.mode.name, base);
      continue;
    }
    log(`soak: ${t.mode.name}, ${s.soakRequests} requests`);
    const liveBefore = t.child ? await liveHeapMB(t.child) : undefined;
    // Two halves: the first lets the heap reach its working size under the soak's load, the second is measured.
    const half = (amount: number) =>
      saturate({
        url: `${t.url}${PATH}`,
        headers: HEADERS,
        payloads,
        connections: s.saturatedConnections,
        amount,
      });
    const first = await half(Math.ceil(s.soakRequests / 2));
    await sleep(200);
    const midSoakMB = mb(t.pid);
    const second = await half(Math.floor(s.soakRequests / 2));
    await sleep(200);
    const afterSoakMB = mb(t.pid);
    const liveAfter = t.child ? await liveHeapMB(t.child) : undefined;
    const errors = first.errors + second.errors;
    const non2xx = first.non2xx + second.non2xx;
    const round1 = (n: number) => Math.round(n * 10) / 10;
    memory.set(t.mode.name, {
      ...base,
      afterSoakMB,
      midSoakMB,
      soakRequests: first.completed + second.completed,
      soakGrowthMB: round1(afterSoakMB - midSoakMB),
      soakErrors: errors,
      soakNon2xx: non2xx,
      ...(liveBefore !== undefined && liveAfter !== undefined
        ? {
            liveHeapAfterRoundsMB: liveBefore,
            liveHeapAfterSoakMB: liveAfter,
            liveHeapGrowthSoakMB: round1(liveAfter - liveBefore),
          }
        : {}),
    });
    log(
      `soak: ${t.mode.name} RSS ${afterRoundsMB} → ${midSoakMB} → ${afterSoakMB} MB, live heap ${liveBefore ?? '?'} → ${liveAfter ?? '?'} MB, ${errors} errors, ${non2xx} non-2xx`,
    );
  }

  const noiseFigures = noise.figures(whole());

  const direct = targets.find((t) => t.mode.server.kind === 'mock');
  const modes = targets.map((t) => {
    const figures: Record<string, PayloadFigures> = {};
    for (const p of payloads) {
      const x = a(t, p);
      const d = direct && direct !== t ? a(direct, p) : undefined;
      figures[p.id] = {
        rps: stat(x.rps),
        cpuPerRequestUs: stat(x.cpu),
        latencyMs: latencyStats(x.lat),
        ...(d ? { addedLatencyMs: addedStats(x.lat, d.lat) } : {}),
        ...(p.stream ? { ttfbMs: latencyStats(x.ttfb) } : {}),
        ...(p.stream && d ? { addedTtfbMs: addedStats(x.ttfb, d.ttfb) } : {}),
        errors: x.errors,
        non2xx: x.non2xx,
      };
    }
    return {
      name: t.mode.name,
      description: t.mode.description,
      available: true,
      payloads: figures,
      memory: memory.get(t.mode.name)!,
    };
  });
  return { modes, noise: noiseFigures };
}
