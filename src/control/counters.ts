/** Fixed-window counters: how many tokens a budget key has used in the current window. */
export interface Counters {
  /** Tokens used by `key` in the window that contains `now`. */
  used(key: string, windowMs: number, now: number): number;
  /** Adds tokens to `key` in the window that contains `now`. */
  add(key: string, windowMs: number, tokens: number, now: number): void;
}

/** The start of the fixed window containing `now` (windows align to multiples of their length since the epoch). */
export function windowStart(windowMs: number, now: number): number {
  return now - (now % windowMs);
}

/** In-memory counters for one replica. Expired windows are dropped as they are touched, and swept when large. */
export class MemoryCounters implements Counters {
  readonly #m = new Map<string, { start: number; used: number }>();

  used(key: string, windowMs: number, now: number): number {
    const e = this.#m.get(key);
    return e && e.start === windowStart(windowMs, now) ? e.used : 0;
  }

  add(key: string, windowMs: number, tokens: number, now: number): void {
    const start = windowStart(windowMs, now);
    const e = this.#m.get(key);
    if (e && e.start === start) e.used += tokens;
    else {
      this.#m.set(key, { start, used: tokens });
      if (this.#m.size > 100_000) this.#sweep(now);
    }
  }

  /** The live windows, for saving (budgets are state that survives a restart). */
  entries(): Array<[string, { start: number; used: number }]> {
    return [...this.#m].map(([k, e]) => [k, { ...e }]);
  }

  /** Restores saved windows; a window that has ended since is simply never matched again. */
  restore(entries: ReadonlyArray<readonly [string, { start: number; used: number }]>): void {
    for (const [k, e] of entries)
      if (Number.isFinite(e.start) && Number.isFinite(e.used)) this.#m.set(k, { ...e });
  }

  #sweep(now: number): void {
    for (const [k, e] of this.#m) if (now - e.start > 86_400_000) this.#m.delete(k);
  }
}
