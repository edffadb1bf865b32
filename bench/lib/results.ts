import type { BudgetReport } from '../budget.ts';
import type { MachineInfo } from './machine.ts';
import type { NoiseFigures } from './noise.ts';

/** A figure over the rounds: the median, and the smallest and largest round. */
export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** p50/p90/p99 over the rounds, in milliseconds. */
export interface LatencyStats {
  readonly p50: Stat;
  readonly p90: Stat;
  readonly p99: Stat;
}

/** Everything measured for one mode and one payload. */
export interface PayloadFigures {
  /** Saturated: completed 2xx answers per second at 64 connections. */
  readonly rps: Stat;
  /** Saturated: user+system CPU of the server process per completed request, in µs. */
  readonly cpuPerRequestUs: Stat;
  /** Fixed rate: time to the last body byte. */
  readonly latencyMs: LatencyStats;
  /** Fixed rate: this mode's latency percentile minus direct's, per round. Absent for direct itself. */
  readonly addedLatencyMs?: LatencyStats;
  /** Streams only, fixed rate: time to the first body chunk. */
  readonly ttfbMs?: LatencyStats;
  /** Streams only: this mode's TTFB percentile minus direct's, per round. */
  readonly addedTtfbMs?: LatencyStats;
  /** Socket errors, timeouts and wrong-length bodies over every run of this payload (warm-up included). */
  readonly errors: number;
  readonly non2xx: number;
}

/** Resident memory of the server process, in MB. */
export interface MemoryFigures {
  /** Right after start, idle. */
  readonly startMB: number;
  /** After the warm-up and every round. */
  readonly afterRoundsMB: number;
  /** After the soak (absent when no soak ran). */
  readonly afterSoakMB?: number;
  /** After the soak's first half: by then the heap has grown to its working size under the soak's load. */
  readonly midSoakMB?: number;
  readonly soakRequests?: number;
  /**
   * RSS growth over the soak's second half (afterSoakMB − midSoakMB). The first half is left out: it is where V8
   * grows the heap to its working size (RSS that rises 200 MB there and then stays flat is sizing, not a leak).
   */
  readonly soakGrowthMB?: number;
  /** V8 heap used right after a full GC, after the rounds and after the soak (ringfence modes, mem-probe). */
  readonly liveHeapAfterRoundsMB?: number;
  readonly liveHeapAfterSoakMB?: number;
  /** liveHeapAfterSoakMB − liveHeapAfterRoundsMB: what the soak left alive, the leak check itself. */
  readonly liveHeapGrowthSoakMB?: number;
  readonly soakErrors?: number;
  readonly soakNon2xx?: number;
}

/** One row of the mode table and what was measured for it. */
export interface ModeResult {
  readonly name: string;
  readonly description: string;
  readonly available: boolean;
  /** Why the mode is not available. */
  readonly reason?: string;
  /** By payload id; empty when not available. */
  readonly payloads: Readonly<Record<string, PayloadFigures>>;
  readonly memory?: MemoryFigures;
  /** How the server process exited on SIGTERM at the end. */
  readonly exit?: { readonly code: number | null; readonly signal: string | null };
}

/** A payload as described in the results. */
export interface PayloadInfo {
  readonly id: string;
  readonly label: string;
  readonly stream: boolean;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/** How the run was configured. */
export interface BenchSettings {
  readonly rounds: number;
  readonly warmupS: number;
  readonly saturatedS: number;
  readonly saturatedConnections: number;
  readonly fixedRate: number;
  readonly fixedS: number;
  /** Each mode's fixedS per round is run as this many slices, every mode in turn per slice (pooled). */
  readonly fixedSlices: number;
  readonly fixedConnections: number;
  readonly soakRequests: number;
  readonly streamChunks: number;
  readonly clockTicks: number;
}

/** The whole result file (bench/results/latest.json). */
export interface BenchResults {
  readonly kind: 'full' | 'smoke';
  readonly machine: MachineInfo;
  readonly settings: BenchSettings;
  readonly payloads: readonly PayloadInfo[];
  readonly modes: readonly ModeResult[];
  readonly budget?: BudgetReport;
  /** How busy the rest of the machine was: the timings are trustworthy when it stays near 0. */
  readonly noise: NoiseFigures;
  readonly wallS: number;
}
