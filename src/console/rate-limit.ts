/**
 * Failed console logins per client address: after `max` failures within `windowMs`, further attempts from that
 * address are refused (429) until the oldest failure leaves the window. A success clears the address's record.
 */
export class LoginLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();

  constructor(opts: { max?: number; windowMs?: number; now?: () => number } = {}) {
    this.#max = opts.max ?? 5;
    this.#windowMs = opts.windowMs ?? 15 * 60_000;
    this.#now = opts.now ?? Date.now;
  }

  #recent(ip: string, now: number): number[] {
    const list = (this.#failures.get(ip) ?? []).filter((t) => now - t < this.#windowMs);
    if (list.length) this.#failures.set(ip, list);
    else this.#failures.delete(ip);
    return list;
  }

  /** Seconds until `ip` may try again, or 0 when it may now. */
  retryAfter(ip: string): number {
    const now = this.#now();
    const list = this.#recent(ip, now);
    if (list.length < this.#max) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.#windowMs - now) / 1000));
  }

  /** Records a failure; returns how many failures `ip` has in the window now. */
  fail(ip: string): number {
    const now = this.#now();
    const list = this.#recent(ip, now);
    list.push(now);
    this.#failures.set(ip, list);
    // Bounded: an address flood cannot grow the map without end (the oldest entries go first).
    if (this.#failures.size > 10_000) {
      const first = this.#failures.keys().next().value;
      if (first !== undefined) this.#failures.delete(first);
    }
    return list.length;
  }

  succeed(ip: string): void {
    this.#failures.delete(ip);
  }
}
