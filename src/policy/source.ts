import type { CompiledBundle } from './compile.ts';

/**
 * Where the data plane gets the bundle to enforce. A request reads it once and is decided entirely under it;
 * replacing it is one reference swap (the release-rings runtime builds on this).
 */
export interface PolicySource {
  current(): CompiledBundle;
}

/** A source holding one bundle, swappable atomically. */
export class BundleHolder implements PolicySource {
  #current: CompiledBundle;
  constructor(initial: CompiledBundle) {
    this.#current = initial;
  }
  current(): CompiledBundle {
    return this.#current;
  }
  /** Replaces the bundle in force; requests already started keep the one they read. */
  swap(next: CompiledBundle): CompiledBundle {
    const prev = this.#current;
    this.#current = next;
    return prev;
  }
}
