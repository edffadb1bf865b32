import { RingStats } from '../control/ring-stats.ts';
import type { CompiledBundle } from '../policy/compile.ts';
import type { RingState } from './state.ts';
import { initialState } from './transitions.ts';

/** Everything a request needs from the rings, as one immutable value: read once, decided under it entirely. */
export interface RingSnapshot {
  readonly state: RingState;
  readonly production: CompiledBundle;
  readonly candidate: CompiledBundle | undefined;
  /** The statistics of the candidate's current stage (where the request's outcome is recorded). */
  readonly stats: RingStats;
}

/** The runtime holder. Its only mutation is swapping one reference; a request that read the old one keeps it. */
export class RingRuntime {
  #snap: RingSnapshot;
  constructor(initial: RingSnapshot) {
    this.#snap = initial;
  }
  snapshot(): RingSnapshot {
    return this.#snap;
  }
  swap(next: RingSnapshot): void {
    this.#snap = next;
  }
}

/** A runtime with one production bundle and no candidate (an app built without a control plane, in tests). */
export function productionOnly(production: CompiledBundle): RingRuntime {
  const state = initialState(production.id, { by: 'static', at: new Date() });
  return new RingRuntime({
    state,
    production,
    candidate: undefined,
    stats: new RingStats(`production:${production.id}`, Date.now()),
  });
}
