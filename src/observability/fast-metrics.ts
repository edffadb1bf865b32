import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request series, kept in plain numbers and turned into samples only when the
 * registry is read (a scrape). prom-client 15 hashes the label set inside every `inc()` / `observe()`, a bound
 * child or not (most of a request's metric cost in the bench profile); here a series is an object the request
 * path reaches through a LabelCache and updates with an addition.
 *
 * They register in a prom-client Registry as metrics (`registerMetric`: `name`, `get()`, `reset()`), and `get()`
 * returns what prom-client's own Counter and Histogram return, so the exposition (text and JSON) is byte for byte
 * the same (test/observability/fast-metrics.test.ts compares them). Label values are not validated per update:
 * every label here comes from config, bundles or a fixed set, and the label count from the fixed-arity getters.
 */

/** One counter series. */
export class CounterSeries {
  value = 0;
  readonly labels: Readonly<Record<string, string>>;
  constructor(labels: Readonly<Record<string, string>>) {
    this.labels = labels;
  }
  /** Adds `n` (default 1); a negative or non-finite amount is ignored (a counter only goes up). */
  inc(n = 1): void {
    if (n >= 0 && n !== Number.POSITIVE_INFINITY) this.value += n;
  }
}

/** One histogram series: per-bucket counts (not cumulative until read), sum and count. */
export class HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly #bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }
  /** Records one value; a non-finite one is ignored. */
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        (this.counts[i] as number)++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName?: string;
  readonly exemplar?: null;
}

/** What prom-client's Registry reads from a metric. */
interface MetricData {
  readonly help: string;
  readonly name: string;
  readonly type: 'counter' | 'histogram';
  readonly values: Sample[];
  readonly aggregator: 'sum';
}

abstract class FastMetric<S extends { readonly labels: Readonly<Record<string, string>> }> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, S>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: Record<string, string>): S;

  /** The series of these label values (in `labelNames` order), created on first use. Not for a hot path: cache it. */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name}: ${values.length} label values for labels ${this.labelNames.join(', ')}`);
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] as string;
      });
      s = this.create(labels);
      this.series.set(key, s);
    }
    return s;
  }

  /** Drops every series (prom-client's `reset()`). */
  reset(): void {
    this.series.clear();
  }

  abstract get(): Promise<MetricData>;
}

/** A counter whose series are CounterSeries. */
export class FastCounter extends FastMetric<CounterSeries> {
  protected create(labels: Record<string, string>): CounterSeries {
    return new CounterSeries(labels);
  }

  async get(): Promise<MetricData> {
    const values: Sample[] = [];
    for (const s of this.series.values()) values.push({ value: s.value, labels: s.labels });
    return { help: this.help, name: this.name, type: 'counter', values, aggregator: this.aggregator };
  }
}

/** A histogram whose series are HistogramSeries, with prom-client's `le` buckets plus `+Inf`, `_sum`, `_count`. */
export class FastHistogram extends FastMetric<HistogramSeries> {
  readonly #bounds: readonly number[];

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: number[],
  ) {
    super(registry, name, help, labelNames);
    this.#bounds = [...buckets].sort((a, b) => a - b);
  }

  protected create(labels: Record<string, string>): HistogramSeries {
    return new HistogramSeries(labels, this.#bounds);
  }

  /** prom-client's JSON shape: each sample's labels with the series' labels spread in after `le`. */
  async get(): Promise<MetricData> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return { ...data, values };
  }

  /** What the Registry prints: `le` in `labels`, the series' labels in `sharedLabels` (printed after it). */
  async getForPromString(): Promise<MetricData> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({
          labels: { le: this.#bounds[i] as number },
          sharedLabels: s.labels,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: s.labels,
          value: s.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: this.aggregator };
  }
}
