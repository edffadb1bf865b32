/**
 * The Grafana dashboard and the Prometheus rules against a real Prometheus (issue 8): a gateway in this process
 * with the example production bundle and a candidate in canary, real SDK traffic (production and canary, PII and
 * secrets, a denial, upstream errors, a data leak blocked on the way out, policy errors), an automatic and a
 * manual rollback; Prometheus (the Debian binary) scrapes the admin /metrics every second with the shipped
 * prometheus.yml and alerts.yaml.
 *
 * Then: every rule loads and evaluates without error; every metric an alert reads has series; the alerts the
 * traffic provoked are active; every query of every dashboard panel returns data; the dashboard renders with
 * data in every panel (grafana/render.ts, the code behind `node grafana/render.ts`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadDashboard, renderDashboard, runQuery, stepFor, substitute } from '../../grafana/render.ts';
import { esc } from '../../grafana/render-charts.ts';
import type { RequestRecord } from '../../src/gateway/context.ts';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';
import {
  ALERTS_FILE,
  api,
  instant,
  type RunningPrometheus,
  startPrometheus,
  until,
} from './prometheus-process.ts';
import { chat, message, PROMPTS, userFor } from './traffic.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const WEB_KEY = 'rf-observability-web-key-0123456789';
const ADMIN_TOKEN = 'rf-observability-admin-token-0123456789';
const SLICE = 50;

/** Two providers on the one mock server (`private` serves regulated traffic, with a hair-trigger breaker); priced. */
const config = (mockUrl: string) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  mock:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt, mock-gpt-mini, mock-claude]
    pricing:
      mock-gpt: { inputPerMTok: 5, outputPerMTok: 15 }
      "*": { inputPerMTok: 0.5, outputPerMTok: 1.5 }
  private:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [private-llm]
    pricing: { "*": { inputPerMTok: 2, outputPerMTok: 2 } }
    breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 600000 }
defaults: { openai: mock, anthropic: mock }
applications:
  - { id: web, tags: [external], keys: [{ id: web-key, env: RF_WEB_KEY }] }
  - { id: tools, tags: [internal], keys: [{ id: tools-key, env: TEST_APP_KEY }] }
policy:
  bundle: ${join(ROOT, 'policy-bundles', 'production', 'bundle.yaml')}
admin:
  tokens:
    - { id: sre, env: RF_ADMIN_TOKEN, roles: [operator, sre, viewer] }
log: { level: warn }
rings:
  gates:
    shadowToCanary:
      { minSamples: 1, minDurationS: 0, maxCandidatePolicyErrorRate: 1, ackMinGroupCount: 1000000, maxCandidateEvalP95Us: 10000000 }
  # Only the leak trigger may act (it ignores minSamples): the error-rate and spike triggers stay out of the way.
  triggers: { minSamples: 1000000, checkIntervalMs: 100 }
`;

/**
 * The example candidate (policy-bundles/candidate/bundle.yaml) with two defects a rollout must catch: it drops
 * the input secrets guardrail (a key reaches the model, which echoes it: the output guardrail blocks the leak),
 * and a classification rule reads metadata.tier unguarded (CEL throws without it: policy_error).
 */
function defectiveCandidate(): string {
  const text = readFileSync(join(ROOT, 'policy-bundles', 'candidate', 'bundle.yaml'), 'utf8');
  const secrets = /\n {4}- id: secrets-block\n(?: {6}.*\n)+/;
  const rules = '\n  rules:\n';
  if (!secrets.test(text) || !text.includes(rules))
    throw new Error('the example candidate changed shape: update defectiveCandidate()');
  return text
    .replace(secrets, '\n')
    .replace(
      rules,
      `${rules}    - id: gold-tier\n      when: { expr: 'request.metadata["tier"] == "gold"' }\n      class: internal-sensitive\n`,
    );
}

let stack: Stack;
let prom: RunningPrometheus;
let web: OpenAI;
let tools: OpenAI;
let claude: Anthropic;
const records: RequestRecord[] = [];
const started = Math.floor(Date.now() / 1000);

const rings = () => stack.gw.rings;
const actor = () => ({ by: 'observability-e2e', at: new Date() });

async function admin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${stack.gw.adminUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

beforeAll(async () => {
  stack = await startStack({
    config,
    env: { RF_WEB_KEY: WEB_KEY, RF_ADMIN_TOKEN: ADMIN_TOKEN },
    observe: (r) => records.push(r),
  });
  prom = await startPrometheus(new URL(stack.gw.adminUrl).host);
  web = new OpenAI({ apiKey: WEB_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  tools = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  claude = new Anthropic({ apiKey: APP_KEY, baseURL: stack.anthropicBase, maxRetries: 0 });
});
afterAll(async () => {
  await prom?.stop();
  await stack?.close();
});

/** Ordinary traffic of both apps on one side of the slice; returns the statuses by prompt kind. */
async function mixedTraffic(inCanary: boolean, round: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  const note = (k: string, s: number) => {
    out[k] = [...(out[k] ?? []), s];
  };
  const t = (i: number) => userFor('tools', inCanary, SLICE, round * 10 + i);
  const w = (i: number) => userFor('web', inCanary, SLICE, round * 10 + i);
  await Promise.all([
    ...[0, 1, 2, 3].map(async (i) =>
      note('plain', await chat(tools, PROMPTS.plain, { user: t(i), model: 'mock-gpt' })),
    ),
    chat(tools, PROMPTS.plain, { user: t(4), stream: true }).then((s) => note('stream', s)),
    ...[0, 1].map(async (i) => note('email', await chat(web, PROMPTS.email, { user: w(i) }))),
    chat(web, PROMPTS.phone, { user: w(2) }).then((s) => note('phone', s)),
    chat(web, PROMPTS.card, { user: w(3) }).then((s) => note('card', s)),
    chat(tools, PROMPTS.ssn, { user: t(5), model: 'mock-gpt' }).then((s) => note('ssn', s)),
    chat(tools, PROMPTS.watchlist, { user: t(6) }).then((s) => note('watchlist', s)),
    chat(tools, PROMPTS.plain, {
      user: t(7),
      metadata: { tier: 'standard', workload: 'batch' },
      model: 'mock-gpt',
    }).then((s) => note('batch', s)),
    message(claude, PROMPTS.plain, t(8)).then((s) => note('anthropic', s)),
  ]);
  return out;
}

/** What the rollout scenario saw, for the first test to check. */
interface Scenario {
  prod: Record<string, number[]>;
  canary: Record<string, number[]>;
  canaryNoTier: number;
  failing: number[];
  afterBreaker: number;
  autoRollback: string | undefined;
}
let scenario: Scenario;

/**
 * The rollout: shadow → canary (50 %) → upstream failures open a breaker → a leaked key blocked on the way out,
 * and the gateway rolls back (leak_block) → shadow → manual rollback (admin API) → shadow → canary again, with
 * traffic over several scrapes. Resolves once Prometheus has scraped the final ring state.
 */
async function runRollout(): Promise<Scenario> {
  await until('Prometheus to scrape the gateway', 15_000, async () => {
    const up = await instant(prom.url, 'up{job="ringfence"}');
    return up[0]?.value[1] === '1' ? true : undefined;
  });
  // Shadow: the candidate observes everything (a request without a tier makes its evaluation throw).
  const { id: candidate } = (await admin('POST', '/bundles', defectiveCandidate())) as { id: string };
  await rings().shadow(candidate, actor());
  await mixedTraffic(false, 0);
  await chat(tools, PROMPTS.plain, { user: 'no-tier', metadata: null });
  // Canary on half the traffic (through the controller: over the admin API, widening a canary is an approval
  // workflow of its own).
  await rings().canary({ apps: [], classes: [], percent: SLICE }, actor());
  const prod = await mixedTraffic(false, 1);
  const canary = await mixedTraffic(true, 1);
  const canaryNoTier = await chat(tools, PROMPTS.plain, {
    user: userFor('tools', true, SLICE, 90),
    metadata: null,
  });
  // The private model fails (500 from the provider) until its breaker opens. The breaker's window also holds the
  // earlier successful calls: enough failures to pass 50 %.
  const failing = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) =>
      chat(tools, PROMPTS.ssn, {
        user: userFor('tools', false, SLICE, 80 + i),
        model: 'mock-gpt',
        headers: { 'x-mock-status': '500' },
      }),
    ),
  );
  const afterBreaker = await chat(tools, PROMPTS.ssn, {
    user: userFor('tools', false, SLICE, 89),
    model: 'mock-gpt',
  });
  // The leak: the candidate lets a key through, the output guardrail blocks the echo, the gateway's leak_block
  // trigger rolls the canary back.
  await chat(tools, PROMPTS.secret, { user: userFor('tools', true, SLICE, 70) });
  const rolledBack = await until('the automatic rollback', 10_000, async () => {
    const s = await admin('GET', '/rollout');
    return s.candidate === null ? s : undefined;
  });
  // A manual rollback of a shadow, then the candidate back in canary for the final traffic.
  await rings().shadow(candidate, actor());
  await admin('POST', '/rollout/rollback', { reason: 'observability e2e: manual rollback' });
  await rings().shadow(candidate, actor());
  await mixedTraffic(false, 2);
  await rings().canary({ apps: [], classes: [], percent: SLICE }, actor());
  // Traffic over several scrapes: a rate needs a counter to grow between two of them.
  for (let round = 3; round < 9; round++) {
    await Promise.all([mixedTraffic(false, round), mixedTraffic(true, round)]);
    await new Promise((r) => setTimeout(r, 700));
  }
  const final = (await admin('GET', '/rollout')) as { version: number };
  await until('Prometheus to scrape the final ring state', 10_000, async () => {
    const v = await instant(prom.url, 'ringfence_ring_state_version');
    return v[0]?.value[1] === String(final.version) ? true : undefined;
  });
  return {
    prod,
    canary,
    canaryNoTier,
    failing,
    afterBreaker,
    autoRollback: (rolledBack.lastRollback as { trigger?: { trigger: string } } | null)?.trigger?.trigger,
  };
}

interface RuleFile {
  groups: Array<{
    name: string;
    rules: Array<{ alert?: string; record?: string; expr: string }>;
  }>;
}
const rules = parse(readFileSync(ALERTS_FILE, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules.filter((r) => r.alert));

describe('the dashboard and the alert rules against a real Prometheus', () => {
  beforeAll(async () => {
    scenario = await runRollout();
  }, 60_000);

  it('the rollout ran as designed: both rings served, the example bundles decided, two rollbacks', () => {
    // The example bundles at work: production redacts a phone number, the candidate blocks it; both deny a card.
    expect(scenario.prod.phone).toEqual([200]);
    expect(scenario.canary.phone).toEqual([403]);
    expect([scenario.prod.card, scenario.canary.card]).toEqual([[403], [403]]);
    expect([scenario.prod.plain, scenario.canary.plain]).toEqual([
      [200, 200, 200, 200],
      [200, 200, 200, 200],
    ]);
    // The candidate's unguarded metadata read denies a canary request without a tier (policy_error).
    expect(scenario.canaryNoTier).toBe(403);
    // 500s from the provider, then 503 upstream_circuit_open without a call.
    expect(scenario.failing.every((s) => s >= 500)).toBe(true);
    expect(scenario.afterBreaker).toBe(503);
    expect(scenario.autoRollback).toBe('leak_block');
    const rings = new Set(records.map((r) => r.ring));
    expect([...rings].sort()).toEqual(['canary', 'production']);
  });

  it('Prometheus loads every rule of alerts.yaml and evaluates it without error', async () => {
    const declared = rules.groups.flatMap((g) => g.rules.map((r) => r.alert ?? r.record!));
    const loaded = await until('every rule to be evaluated', 10_000, async () => {
      const data = await api<{
        groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }>;
      }>(prom.url, '/api/v1/rules');
      const all = data.groups.flatMap((g) => g.rules);
      return all.every((r) => r.health !== 'unknown') ? all : undefined;
    });
    expect(loaded.map((r) => r.name).sort()).toEqual([...declared].sort());
    expect(loaded.filter((r) => r.health !== 'ok')).toEqual([]);
  });

  it('every metric an alert reads has series (no override is granted: its expiry metric is absent)', async () => {
    const recordingRules = new Map(
      rules.groups.flatMap((g) => g.rules.filter((r) => r.record).map((r) => [r.record!, r.expr])),
    );
    /** Metric names in an expression, through the recording rules it uses (which are series too). */
    const metricsOf = (expr: string, seen = new Set<string>()): Set<string> => {
      for (const [name] of expr.matchAll(/\bringfence(?:_[a-z0-9_]+|:[a-z0-9_:]+)/g)) {
        if (seen.has(name)) continue;
        seen.add(name);
        if (recordingRules.has(name)) metricsOf(recordingRules.get(name)!, seen);
      }
      return seen;
    };
    // ringfence_override_expiry_timestamp_seconds has one series per active gate override; this run grants
    // none, so it must be absent (RingfenceOverrideExpiringSoon is covered by the promtool unit tests).
    const exempt = 'ringfence_override_expiry_timestamp_seconds';
    const missing: string[] = [];
    const exempted: string[] = [];
    for (const a of alerts)
      for (const name of metricsOf(a.expr)) {
        // Histograms are named with their _bucket/_count suffix in the expressions, as stored.
        const n = await instant(prom.url, `count({__name__="${name}"})`);
        if (name === exempt) {
          exempted.push(a.alert!);
          expect(n, `${exempt} has series although no override was granted`).toEqual([]);
        } else if (!n.length) missing.push(`${a.alert}: ${name}`);
      }
    expect(missing).toEqual([]);
    expect(exempted).toEqual(['RingfenceOverrideExpiringSoon']);
    // The latency SLA alert reads the le="60" bucket: the histogram must have a bound at the SLA.
    expect(await instant(prom.url, 'count(ringfence_request_duration_seconds_bucket{le="60"})')).toHaveLength(
      1,
    );
  });

  it('the alerts the rollout provoked are active; a manual rollback and a healthy production page no one', async () => {
    const key = (l: Record<string, string>) =>
      [
        l.alertname,
        ...['ring', 'trigger', 'guardrail', 'target'].filter((k) => l[k]).map((k) => `${k}=${l[k]}`),
      ].join(' ');
    const want = {
      'RingfenceCanaryLeakBlock guardrail=output-secrets': 'firing',
      'RingfencePolicyErrors ring=canary': 'firing',
      'RingfenceShadowPolicyErrors ring=shadow': 'firing',
      'RingfenceCanaryRolledBack trigger=leak_block': 'firing',
      // `for: 1m`: still pending this early.
      'RingfenceBreakerOpen target=private/private-llm': 'pending',
    };
    const active = await until('the provoked alerts', 15_000, async () => {
      const data = await api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>(
        prom.url,
        '/api/v1/alerts',
      );
      const got = Object.fromEntries(data.alerts.map((a) => [key(a.labels), a.state]));
      return Object.entries(want).every(([k, v]) => got[k] === v) ? got : undefined;
    });
    expect(active).toEqual(want);
  });

  it('every query of every dashboard panel returns data, instant and over the time range', async () => {
    const dashboard = loadDashboard();
    const rangeS = Math.floor(Date.now() / 1000) - started + 5;
    const vars = { rangeS, stepS: stepFor(rangeS), rateInterval: '1m' };
    // Recording rules fill in over a few evaluations: retried for up to 10 s, then the queries still empty fail.
    let empty: string[] = [];
    const check = async (q: string, label: string, r: { instant: boolean; start: number; end: number }) => {
      try {
        if (!(await runQuery(prom.url, q, { ...r, stepS: vars.stepS })).length)
          empty.push(`${label}: no series`);
      } catch (err) {
        empty.push(`${label}: ${(err as Error).message}`);
      }
    };
    let queries = 0;
    await until('every panel query to return data', 10_000, async () => {
      const now = Math.floor(Date.now() / 1000);
      const r = { start: now - rangeS, end: now };
      empty = [];
      queries = 0;
      for (const p of dashboard.panels)
        for (const t of p.targets ?? []) {
          const q = substitute(t.expr, vars);
          queries++;
          await check(q, `${p.title} / ${t.refId} (instant)`, { ...r, instant: true });
          if (!t.instant) await check(q, `${p.title} / ${t.refId} (range)`, { ...r, instant: false });
        }
      return empty.length ? undefined : true;
    }).catch(() => undefined);
    expect(empty).toEqual([]);
    expect(queries).toBeGreaterThanOrEqual(30);
    // The ring-change annotation query is valid PromQL (it throws on an error answer).
    const annotations = (
      dashboard as unknown as { annotations: { list: Array<{ expr?: string }> } }
    ).annotations.list.filter((a) => a.expr);
    expect(annotations).toHaveLength(1);
    for (const a of annotations) await instant(prom.url, a.expr!);
  });

  it('the rendered dashboard has values in every panel and tells what happened', async () => {
    const dashboard = loadDashboard();
    const rangeS = Math.floor(Date.now() / 1000) - started + 5;
    const { html, results } = await renderDashboard({ prometheus: prom.url, dashboard, rangeS });
    const out = join(stack.configFile, '..', 'dashboard.html');
    writeFileSync(out, html);
    const blank = results
      .filter((r) => r.errors.length || !r.series.some((s) => s.points.some(([, v]) => Number.isFinite(v))))
      .map((r) => `${r.panel.title}: ${r.errors.join('; ') || 'no values'}`);
    expect(blank, `see ${out}`).toEqual([]);
    expect(results).toHaveLength(dashboard.panels.filter((p) => p.type !== 'row').length);
    for (const p of dashboard.panels) expect(html).toContain(`>${esc(p.title)}</h`);
    // The figures an SRE reads first: a canary runs on half the traffic, one automatic and one manual rollback.
    const last = (title: string, label?: [string, string]) => {
      const series = results.find((r) => r.panel.title === title)?.series ?? [];
      const s = label ? series.find((x) => x.labels[label[0]] === label[1]) : series[0];
      return s?.points.at(-1)?.[1];
    };
    expect(last('Candidate stage')).toBe(2);
    expect(last('Canary slice')).toBe(SLICE);
    expect(Math.round(last('Rollbacks in the time range', ['trigger', 'leak_block']) ?? 0)).toBe(1);
    expect(Math.round(last('Rollbacks in the time range', ['trigger', 'manual']) ?? 0)).toBe(1);
    expect(last('Kill switches on', ['kind', 'candidate'])).toBe(0);
    // The one leak, although its counter series only appeared with it (no increase() to see).
    expect(last('Leaks stopped in the time range', ['ring', 'canary'])).toBe(1);
  });
});
