import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastHistogram } from '../../src/observability/fast-metrics.ts';
import { LabelCache } from '../../src/observability/label-cache.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
/** Label values as they come: ordinary, needing escapes in the exposition, empty. */
const LABELS: ReadonlyArray<[string, string]> = [
  ['production', 'openai'],
  ['canary', 'anthropic'],
  ['shadow', 'a "quoted"\\ value\nwith a newline'],
  ['production', ''],
];
/** Values on, between, under and over the bounds, a zero, and ones prom-client refuses. */
const VALUES = [0, 0.0005, 0.001, 0.005, 0.01, 0.0999, 0.1, 0.7, 1, 3, 250];

/** The same metrics, one pair built by prom-client, the other by fast-metrics, in two registries. */
function pair() {
  const prom = new Registry();
  const fast = new Registry();
  const promCounter = new Counter({
    name: 'x_total',
    help: 'x help',
    labelNames: ['ring', 'api'],
    registers: [prom],
  });
  const promHist = new Histogram({
    name: 'x_seconds',
    help: 'x seconds',
    labelNames: ['ring', 'api'],
    buckets: BUCKETS,
    registers: [prom],
  });
  const fastCounter = new FastCounter(fast, 'x_total', 'x help', ['ring', 'api']);
  const fastHist = new FastHistogram(fast, 'x_seconds', 'x seconds', ['ring', 'api'], BUCKETS);
  return { prom, fast, promCounter, promHist, fastCounter, fastHist };
}

describe('fast-metrics', () => {
  it('prints the same exposition text and JSON as prom-client for the same updates', async () => {
    const m = pair();
    const counters = new LabelCache(m.fastCounter);
    const hists = new LabelCache(m.fastHist);
    let i = 0;
    for (const [ring, api] of LABELS) {
      for (const v of VALUES) {
        const n = i++ % 3; // 0, 1, 2: inc(0) creates the series at 0
        m.promCounter.labels(ring, api).inc(n);
        counters.get2(ring, api).inc(n);
        m.promHist.labels(ring, api).observe(v);
        hists.get2(ring, api).observe(v);
      }
    }
    const text = await m.fast.metrics();
    expect(text).toBe(await m.prom.metrics());
    expect(JSON.stringify(await m.fast.getMetricsAsJSON())).toBe(
      JSON.stringify(await m.prom.getMetricsAsJSON()),
    );
    // Not vacuous: the escapes, the +Inf bucket of a value over every bound, the sums.
    expect(text).toContain('x_seconds_bucket{le="+Inf",ring="production",api="openai"} 11');
    expect(text).toContain('x_seconds_bucket{le="1",ring="production",api="openai"} 9');
    expect(text).toContain('api="a \\"quoted\\"\\\\ value\\nwith a newline"');
    expect(text).toMatch(/x_seconds_sum\{ring="canary",api="anthropic"\} 254\.9/);
  });

  it('a series is one object per label set, counted from its first use; reset() drops them all', async () => {
    const reg = new Registry();
    const c = new FastCounter(reg, 'y_total', 'y', ['a']);
    expect(c.labels('1')).toBe(c.labels('1'));
    expect(c.labels('1')).not.toBe(c.labels('2'));
    c.labels('1').inc();
    c.labels('1').inc(2.5);
    expect(await reg.metrics()).toContain('y_total{a="1"} 3.5\ny_total{a="2"} 0');
    c.reset();
    expect(await reg.metrics()).toBe('# HELP y_total y\n# TYPE y_total counter\n');
    expect(() => c.labels('1', '2')).toThrow(/2 label values for labels a/);
  });

  it('ignores what prom-client would refuse: negative or non-finite counts, non-finite observations', async () => {
    const reg = new Registry();
    const c = new FastCounter(reg, 'z_total', 'z', []).labels();
    const h = new FastHistogram(reg, 'z_seconds', 'z', [], [1]).labels();
    c.inc(-1);
    c.inc(Number.NaN);
    c.inc(Number.POSITIVE_INFINITY);
    c.inc(4);
    h.observe(Number.NaN);
    h.observe(Number.POSITIVE_INFINITY);
    h.observe(0.5);
    const text = await reg.metrics();
    expect(text).toContain('z_total 4');
    expect(text).toContain('z_seconds_count 1');
    expect(text).toContain('z_seconds_sum 0.5');
  });

  it('refuses a second metric of the same name in one registry, as prom-client does', () => {
    const reg = new Registry();
    new FastCounter(reg, 'dup_total', 'd', []);
    expect(() => new Counter({ name: 'dup_total', help: 'd', registers: [reg] })).toThrow(
      /already been registered/,
    );
  });
});
