import { setTimeout as sleep } from 'node:timers/promises';
import { cpuTicks, hostBusyTicks } from './procfs.ts';

/** How much the rest of the machine disturbed the measurement. */
export interface NoiseFigures {
  /** Average cores used by processes other than the bench and its servers, over the whole measurement. */
  readonly backgroundCores: number;
  /** Measured runs during which other processes used more than `NOISY_CORES` on average. */
  readonly noisyRuns: number;
  readonly runs: number;
  /** Seconds spent waiting for the machine to go quiet before runs. */
  readonly settleWaitS: number;
}

/** Background load above which a run counts as noisy (cores). */
export const NOISY_CORES = 0.3;

/**
 * Measures the CPU the rest of the machine uses (host busy ticks from /proc/stat minus the bench's own processes),
 * and waits, bounded, for it to go quiet before a run: on a shared machine a test suite starting elsewhere would
 * otherwise land in the middle of one mode's run and not the next one's.
 */
export class NoiseMeter {
  readonly #pids: readonly number[];
  readonly #hz: number;
  readonly #settleCapMs: number;
  #waitedMs = 0;
  #runs = 0;
  #noisy = 0;

  constructor(pids: readonly number[], clockTicks: number, settleCapMs: number) {
    this.#pids = [...new Set(pids)];
    this.#hz = clockTicks;
    this.#settleCapMs = settleCapMs;
  }

  #ours(): number {
    let n = 0;
    for (const pid of this.#pids) n += cpuTicks(pid);
    return n;
  }

  /** Starts a window; the returned function gives the other processes' average cores since. */
  window(): () => number {
    const h0 = hostBusyTicks();
    const o0 = this.#ours();
    const t0 = performance.now();
    return () => {
      const s = (performance.now() - t0) / 1000;
      const ticks = hostBusyTicks() - h0 - (this.#ours() - o0);
      return s > 0 ? Math.max(0, ticks / this.#hz / s) : 0;
    };
  }

  /** Waits until a 100 ms sample is quiet, at most `maxMs` per call and `settleCapMs` over the whole run. */
  async settle(maxMs: number): Promise<void> {
    const start = performance.now();
    while (this.#waitedMs + (performance.now() - start) < this.#settleCapMs) {
      const w = this.window();
      await sleep(100);
      if (w() < NOISY_CORES || performance.now() - start >= maxMs) break;
    }
    this.#waitedMs += performance.now() - start;
  }

  /** Records one measured run's background load. */
  record(cores: number): void {
    this.#runs++;
    if (cores > NOISY_CORES) this.#noisy++;
  }

  /** The figures, given the whole measurement's window. */
  figures(whole: number): NoiseFigures {
    return {
      backgroundCores: Math.round(whole * 100) / 100,
      noisyRuns: this.#noisy,
      runs: this.#runs,
      settleWaitS: Math.round(this.#waitedMs / 100) / 10,
    };
  }
}
