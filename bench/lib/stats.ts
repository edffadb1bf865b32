import type { Percentiles } from './paced.ts';
import type { LatencyStats, Stat } from './results.ts';

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Median (mean of the middle two for an even count), min and max of per-round values. */
export function stat(values: readonly number[]): Stat {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: round3(median), min: round3(s[0]!), max: round3(s.at(-1)!) };
}

/** p50/p90/p99 stats over rounds of percentiles. */
export function latencyStats(rounds: readonly Percentiles[]): LatencyStats {
  return {
    p50: stat(rounds.map((r) => r.p50)),
    p90: stat(rounds.map((r) => r.p90)),
    p99: stat(rounds.map((r) => r.p99)),
  };
}

/** Per round, `mode − base` for each percentile (both lists in round order), as stats. */
export function addedStats(mode: readonly Percentiles[], base: readonly Percentiles[]): LatencyStats {
  const d = (k: 'p50' | 'p90' | 'p99') => mode.map((m, i) => m[k] - (base[i]?.[k] ?? Number.NaN));
  return { p50: stat(d('p50')), p90: stat(d('p90')), p99: stat(d('p99')) };
}
