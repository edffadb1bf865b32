/** A metric with labels: prom-client's Counter, Gauge and Histogram all fit. */
interface Labelled<C> {
  labels(...values: string[]): C;
}

/** One level of the cache: a label value to the next level, or to the child at the last label. */
type Level = Map<string, unknown>;

/** Label sets cached per metric before new ones go uncached (labels stay bounded; this only caps a bug's cost). */
export const LABEL_CACHE_MAX = 10_000;

/**
 * The children of one labelled metric, by label values, so a hot path does not rebuild prom-client's label object
 * and bound child on every update. A prom-client child is bound to its metric, not to a series, but a metric that
 * is `reset()` or has series `remove()`d is still best left uncached. Past `max` label sets, new ones are not
 * cached: updates still reach the metric through `labels()`.
 *
 * Fixed-arity getters (use the one matching the metric's label count) walk one Map per label: no key string or
 * rest-parameter array is built per call, and label values that come from config or bundles keep their string hash.
 */
export class LabelCache<C> {
  readonly #metric: Labelled<C>;
  readonly #max: number;
  readonly #root: Level = new Map();
  #size = 0;

  constructor(metric: Labelled<C>, max = LABEL_CACHE_MAX) {
    this.#metric = metric;
    this.#max = max;
  }

  /** Label sets cached. */
  get size(): number {
    return this.#size;
  }

  get1(v1: string): C {
    const hit = this.#root.get(v1);
    return hit !== undefined ? (hit as C) : this.#keep(this.#metric.labels(v1), [v1]);
  }

  get2(v1: string, v2: string): C {
    const hit = (this.#root.get(v1) as Level | undefined)?.get(v2);
    return hit !== undefined ? (hit as C) : this.#keep(this.#metric.labels(v1, v2), [v1, v2]);
  }

  get3(v1: string, v2: string, v3: string): C {
    const hit = ((this.#root.get(v1) as Level | undefined)?.get(v2) as Level | undefined)?.get(v3);
    return hit !== undefined ? (hit as C) : this.#keep(this.#metric.labels(v1, v2, v3), [v1, v2, v3]);
  }

  get4(v1: string, v2: string, v3: string, v4: string): C {
    const l2 = this.#root.get(v1) as Level | undefined;
    const hit = ((l2?.get(v2) as Level | undefined)?.get(v3) as Level | undefined)?.get(v4);
    return hit !== undefined ? (hit as C) : this.#keep(this.#metric.labels(v1, v2, v3, v4), [v1, v2, v3, v4]);
  }

  get5(v1: string, v2: string, v3: string, v4: string, v5: string): C {
    const l3 = (this.#root.get(v1) as Level | undefined)?.get(v2) as Level | undefined;
    const hit = ((l3?.get(v3) as Level | undefined)?.get(v4) as Level | undefined)?.get(v5);
    return hit !== undefined
      ? (hit as C)
      : this.#keep(this.#metric.labels(v1, v2, v3, v4, v5), [v1, v2, v3, v4, v5]);
  }

  /** On a miss: caches the child under its label values while under the bound, and returns it. */
  #keep(child: C, values: readonly string[]): C {
    if (this.#size >= this.#max) return child;
    let level = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const value = values[i] as string;
      let next = level.get(value) as Level | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    level.set(values[last] as string, child);
    this.#size++;
    return child;
  }
}
