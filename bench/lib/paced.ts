import { setTimeout as sleep } from 'node:timers/promises';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import type { Payload } from '../payloads.ts';

/** Percentiles of one histogram, in milliseconds. */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

/** What a fixed-rate run measured. Latency is to the last body byte; TTFB to the first body chunk. */
export interface PacedResult {
  readonly sent: number;
  readonly errors: number;
  readonly non2xx: number;
  /** 2xx answers whose body was not the expected length. */
  readonly mismatches: number;
  readonly latency: Percentiles;
  readonly ttfb: Percentiles;
}

/** Options for a fixed-rate run. */
export interface PacedOptions {
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly payload: Payload;
  /** Requests per second, started on a fixed schedule (open loop: a slow answer does not delay the next start). */
  readonly rate: number;
  readonly durationS: number;
  readonly connections: number;
  readonly timeoutMs?: number;
  /** Record into these (pooled over several runs) instead of fresh ones; the result's percentiles are theirs. */
  readonly into?: Histograms;
}

/** Latency and TTFB histograms (µs), to pool several fixed-rate runs of one mode. */
export interface Histograms {
  readonly latency: hdr.Histogram;
  readonly ttfb: hdr.Histogram;
}

/** Empty latency and TTFB histograms. */
export function histograms(): Histograms {
  return { latency: histogram(), ttfb: histogram() };
}

function histogram(): hdr.Histogram {
  // Microseconds, 3 significant digits, up to 60 s.
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/** p50/p90/p99/max of a histogram (µs) in milliseconds. */
export function percentiles(h: hdr.Histogram): Percentiles {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    count: h.totalCount,
  };
}

/**
 * Sends `rate × durationS` requests on a fixed schedule over a small undici pool and records, per answer, the time to
 * the first body chunk and to the end of the body in HDR histograms (µs resolution). Connections are opened before
 * the clock starts. Bounded: at most rate × durationS requests, and it gives up waiting `timeoutMs` after the last.
 */
export async function paced(opts: PacedOptions): Promise<PacedResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pool = new Pool(opts.origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const latency = opts.into?.latency ?? histogram();
  const ttfb = opts.into?.ttfb ?? histogram();
  let errors = 0;
  let non2xx = 0;
  let mismatches = 0;

  const one = async (record: boolean): Promise<void> => {
    const t0 = performance.now();
    try {
      const res = await pool.request({
        method: 'POST',
        path: opts.path,
        headers: opts.headers,
        body: opts.payload.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      let first = 0;
      let bytes = 0;
      for await (const chunk of res.body) {
        if (bytes === 0) first = performance.now();
        bytes += (chunk as Buffer).length;
      }
      const end = performance.now();
      if (!record) return;
      if (res.statusCode < 200 || res.statusCode > 299) non2xx++;
      else if (bytes !== opts.payload.responseBytes) mismatches++;
      else {
        latency.recordValue(Math.max(1, Math.round((end - t0) * 1000)));
        ttfb.recordValue(Math.max(1, Math.round((first - t0) * 1000)));
      }
    } catch {
      if (record) errors++;
    }
  };

  // Open the connections (unmeasured), so no sample pays for a TCP handshake.
  await Promise.all(Array.from({ length: opts.connections }, () => one(false)));

  const total = Math.max(1, Math.round(opts.rate * opts.durationS));
  const interval = 1000 / opts.rate;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const hardStop = start + opts.durationS * 1000 + timeoutMs;
  let sent = 0;
  for (; sent < total && performance.now() < hardStop; sent++) {
    const wait = start + sent * interval - performance.now();
    if (wait >= 1) await sleep(wait);
    const p: Promise<void> = one(true).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.race([Promise.allSettled([...inflight]), sleep(timeoutMs)]);
  errors += inflight.size; // still unanswered after the timeout
  await pool.destroy();
  return { sent, errors, non2xx, mismatches, latency: percentiles(latency), ttfb: percentiles(ttfb) };
}
