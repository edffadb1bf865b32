import type { BudgetCheck } from '../core/decision.ts';

/** What the counter store needs of a budget that applies to a request (a `BudgetCheck` of the decision). */
export type BudgetWindow = Pick<BudgetCheck, 'id' | 'key' | 'maxTokens' | 'windowMs' | 'mode'>;

/** Tokens an admitted request holds in one budget's window until it settles. */
export interface Hold {
  readonly budget: BudgetWindow;
  /** The window reserved in (its start, ms since the epoch): the settlement corrects this window, whenever it comes. */
  readonly start: number;
  readonly tokens: number;
}

/**
 * What an admitted request holds in the counters. Settle it once, when the response has ended (or failed).
 * `holds` is empty when nothing was counted: no budget applied, or the store could not answer and every budget
 * that applied fails open.
 */
export interface Reservation {
  readonly holds: readonly Hold[];
}

/** The answer of a reservation: admitted (with what it holds), or refused by the budget that has no room. */
export type ReserveResult =
  | { readonly ok: true; readonly reservation: Reservation }
  /** The budget's window has no room for the request; it resets `retryAfterMs` from now. */
  | {
      readonly ok: false;
      readonly reason: 'spent';
      readonly budget: BudgetWindow;
      readonly retryAfterMs: number;
    }
  /** The store could not answer in time, and this budget fails closed. */
  | { readonly ok: false; readonly reason: 'unavailable'; readonly budget: BudgetWindow };

/**
 * Fixed-window token counters with reservations. A request is admitted only if, in every budget window that
 * applies, the tokens already counted plus what it reserves fit in the budget; it then holds its reservation in
 * all of them (all or nothing). After the response, `settle` replaces the reservation with the tokens the request
 * really used (0 releases it).
 *
 * `reserve` answers synchronously when the store is local (the in-memory one: no promise, no microtask on the hot
 * path) and with a promise when it is remote (Redis, bounded by its timeout). `settle` never waits.
 */
export interface Counters {
  reserve(
    budgets: readonly BudgetWindow[],
    tokens: number,
    now: number,
  ): ReserveResult | Promise<ReserveResult>;
  settle(reservation: Reservation, tokens: number): void;
  /** Releases the store's resources (connections); pending settlements are sent first where possible. */
  close(): Promise<void>;
}

/** The start of the fixed window containing `now` (windows align to multiples of their length since the epoch). */
export function windowStart(windowMs: number, now: number): number {
  return now - (now % windowMs);
}

/**
 * The tokens a request reserves in one budget: its expected size, at least 1 (so a window counted up to its
 * limit admits nothing more) and at most the whole budget (a request larger than the budget on its own is
 * admitted only into an empty window; `maxRequestTokens` is the way to refuse such requests outright).
 */
export function holdFor(budget: BudgetWindow, tokens: number): number {
  return Math.min(budget.maxTokens, Math.max(1, Math.ceil(tokens)));
}

/** Admitted, holding nothing: the answer when no budget applies. */
export const NOTHING_HELD: ReserveResult & { ok: true } = Object.freeze({
  ok: true,
  reservation: Object.freeze({ holds: Object.freeze([]) as readonly Hold[] }),
});

/**
 * In-memory counters for one replica (the default). Expired windows are dropped as they are touched, and swept
 * when large. Fully synchronous.
 */
export class MemoryCounters implements Counters {
  readonly #m = new Map<string, { start: number; used: number }>();

  reserve(budgets: readonly BudgetWindow[], tokens: number, now: number): ReserveResult {
    if (budgets.length === 0) return NOTHING_HELD;
    for (const b of budgets) {
      const start = windowStart(b.windowMs, now);
      if (this.#used(b.key, start) + holdFor(b, tokens) > b.maxTokens)
        return { ok: false, reason: 'spent', budget: b, retryAfterMs: start + b.windowMs - now };
    }
    const holds: Hold[] = [];
    for (const b of budgets) {
      const start = windowStart(b.windowMs, now);
      const held = holdFor(b, tokens);
      this.#add(b.key, start, held, now);
      holds.push({ budget: b, start, tokens: held });
    }
    return { ok: true, reservation: { holds } };
  }

  settle(reservation: Reservation, tokens: number): void {
    for (const h of reservation.holds) {
      const e = this.#m.get(h.budget.key);
      // A window that has ended since is not corrected: it is never matched again.
      if (e && e.start === h.start) e.used += tokens - h.tokens;
    }
  }

  async close(): Promise<void> {}

  /** Tokens counted for `key` (reservations in flight included) in the window that contains `now`. */
  used(key: string, windowMs: number, now: number): number {
    return this.#used(key, windowStart(windowMs, now));
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

  #used(key: string, start: number): number {
    const e = this.#m.get(key);
    return e && e.start === start ? e.used : 0;
  }

  #add(key: string, start: number, tokens: number, now: number): void {
    const e = this.#m.get(key);
    if (e && e.start === start) e.used += tokens;
    else {
      this.#m.set(key, { start, used: tokens });
      if (this.#m.size > 100_000) this.#sweep(now);
    }
  }

  #sweep(now: number): void {
    for (const [k, e] of this.#m) if (now - e.start > 86_400_000) this.#m.delete(k);
  }
}
