import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../src/gateway/context.ts';
import { Pricing } from '../../src/observability/cost.ts';
import { LabelCache } from '../../src/observability/label-cache.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import type { RingSnapshot } from '../../src/rings/runtime.ts';

/** The sample lines of one metric in the exposition text, without HELP/TYPE. */
const samples = (text: string, name: string) =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('LabelCache', () => {
  it('returns one child per label set, whose updates reach the registry', async () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 'c_total',
      help: 'c',
      labelNames: ['a', 'b'],
      registers: [registry],
    });
    const hist = new Histogram({
      name: 'h',
      help: 'h',
      labelNames: ['a'],
      buckets: [1],
      registers: [registry],
    });
    const counters = new LabelCache(counter);
    const hists = new LabelCache(hist);

    expect(counters.get2('x', 'y')).toBe(counters.get2('x', 'y'));
    expect(counters.get2('x', 'z')).not.toBe(counters.get2('x', 'y'));
    // Values that a joined key could confuse stay apart.
    expect(counters.get2('xy', 'z')).not.toBe(counters.get2('x', 'yz'));
    for (let i = 0; i < 3; i++) counters.get2('x', 'y').inc();
    counters.get2('x', 'z').inc(5);
    hists.get1('p').observe(0.5);
    hists.get1('p').observe(2);
    hists.get1('q').observe(0.5);
    expect(counters.size).toBe(4);
    expect(hists.size).toBe(2);

    const text = await registry.metrics();
    expect(samples(text, 'c_total')).toEqual(['c_total{a="x",b="y"} 3', 'c_total{a="x",b="z"} 5']);
    expect(text).toContain('h_count{a="p"} 2');
    expect(text).toContain('h_bucket{le="1",a="p"} 1');
    expect(text).toContain('h_count{a="q"} 1');
  });

  it('past its bound caches no new label set, and their updates still reach the registry', async () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 'c_total',
      help: 'c',
      labelNames: ['a', 'b', 'c'],
      registers: [registry],
    });
    const cache = new LabelCache(counter, 2);
    for (const v of ['1', '2', '3', '4']) for (let i = 0; i < Number(v); i++) cache.get3('r', 's', v).inc();
    expect(cache.size).toBe(2);
    expect(cache.get3('r', 's', '1')).toBe(cache.get3('r', 's', '1'));
    expect(cache.get3('r', 's', '3')).not.toBe(cache.get3('r', 's', '3')); // uncached: a fresh child each time
    expect(samples(await registry.metrics(), 'c_total')).toEqual([
      'c_total{a="r",b="s",c="1"} 1',
      'c_total{a="r",b="s",c="2"} 2',
      'c_total{a="r",b="s",c="3"} 3',
      'c_total{a="r",b="s",c="4"} 4',
    ]);
  });
});

describe('Metrics.observe with cached children', () => {
  const verdict = (guardrail: string, v: 'pass' | 'flag', stage: 'input' | 'output' = 'input') =>
    ({ stage, guardrail, detector: 'd', verdict: v, spans: 1, kinds: [] }) as const;
  const record = (app: string, cls: string, errorCode?: string): RequestRecord =>
    ({
      input: { app: { appId: app }, api: 'chat' },
      ring: 'production',
      shadowBundleId: undefined,
      decision: {
        class: cls,
        action: 'allow',
        verdicts: [verdict('pii', 'flag'), verdict('secrets', 'pass')],
      },
      output: { verdicts: [verdict('toxicity', 'flag', 'output')] },
      divergence: undefined,
      status: errorCode ? 502 : 200,
      errorCode,
      target: { provider: 'p', model: 'm' },
      tokens: { input: 10, output: 20 },
      timings: { evalUs: 30, upstreamHeadersMs: 100, upstreamTotalMs: 300, totalMs: 310 },
    }) as unknown as RequestRecord;
  const snap = { state: { version: 1 } } as unknown as RingSnapshot;

  it('counts every request under its own label set', async () => {
    const m = new Metrics(
      new Pricing({
        p: { models: ['m'], pricing: { '*': { inputPerMTok: 1, outputPerMTok: 1 } } },
      } as unknown as ConstructorParameters<typeof Pricing>[0]),
    );
    for (let i = 0; i < 3; i++) m.observe(record('app-a', 'general'), snap);
    m.observe(record('app-b', 'code', 'upstream_error'), snap);
    m.observe(record('app-b', 'code', 'upstream_error'), snap);

    const text = await m.registry.metrics();
    expect(samples(text, 'ringfence_requests_total')).toEqual([
      'ringfence_requests_total{ring="production",app="app-a",class="general",action="allow",status="2xx"} 3',
      'ringfence_requests_total{ring="production",app="app-b",class="code",action="allow",status="5xx"} 2',
    ]);
    expect(samples(text, 'ringfence_request_errors_total')).toEqual([
      'ringfence_request_errors_total{ring="production",code="upstream_error"} 2',
    ]);
    expect(samples(text, 'ringfence_guardrail_triggers_total')).toEqual([
      'ringfence_guardrail_triggers_total{ring="production",stage="input",guardrail="pii",verdict="flag"} 5',
      'ringfence_guardrail_triggers_total{ring="production",stage="output",guardrail="toxicity",verdict="flag"} 5',
    ]);
    expect(samples(text, 'ringfence_tokens_total')).toEqual([
      'ringfence_tokens_total{class="general",provider="p",model="m",direction="input"} 30',
      'ringfence_tokens_total{class="general",provider="p",model="m",direction="output"} 60',
      'ringfence_tokens_total{class="code",provider="p",model="m",direction="input"} 20',
      'ringfence_tokens_total{class="code",provider="p",model="m",direction="output"} 40',
    ]);
    expect(text).toContain('ringfence_request_duration_seconds_count{ring="production",api="chat"} 5');
    expect(text).toContain('ringfence_upstream_seconds_count{provider="p",phase="total"} 5');
  });
});
