/**
 * Decision log and metrics end to end (issue #8): a gateway in this process with the example production bundle,
 * the example candidate in shadow then canary, a mock provider on loopback, the official OpenAI SDK. Every
 * request leaves exactly one DecisionEventV1 line in the log file; content appears only where the bundle's
 * logging policy allows it, redacted; no key ever appears; `/metrics` carries the catalogue with the right labels.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionEventV1 } from '../../src/observability/decision-event.ts';
import { ROOT } from '../helpers/processes.ts';
import { APP_KEY, PROVIDER_KEY, type Stack, startStack } from '../helpers/stack.ts';

const WEB_KEY = 'rf-test-web-key-0123456789';
const BUNDLES = join(ROOT, 'policy-bundles');

const config = (mockUrl: string) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  mock:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    # mock-claude is not listed: it is served as the default provider's unlisted model (metric label "*").
    models: [mock-gpt, mock-gpt-mini]
    pricing:
      mock-gpt: { inputPerMTok: 2.5, outputPerMTok: 10 }
      "*": { inputPerMTok: 1, outputPerMTok: 1 }
  private:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [private-llm]
defaults: { openai: mock }
applications:
  - { id: jobs, tags: [internal], keys: [{ id: jobs-key, env: TEST_APP_KEY }] }
  - { id: web, tags: [external], keys: [{ id: web-key, env: TEST_WEB_KEY }] }
policy:
  bundle: ${join(BUNDLES, 'production', 'bundle.yaml')}
rings:
  gates:
    shadowToCanary: { minSamples: 0, minDurationS: 0, maxCandidatePolicyErrorRate: 1, maxCandidateEvalP95Us: 1000000000 }
  triggers: { checkIntervalMs: 3600000 }
log:
  level: warn
  decisions: { destination: decisions.log, maxContentChars: 200 }
`;

let stack: Stack;
let jobs: OpenAI;
let web: OpenAI;
let logFile: string;

function events(): DecisionEventV1[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DecisionEventV1);
}

/** The event of one request, once the log has it (it is written after the response, asynchronously). */
async function eventOf(requestId: string | null): Promise<DecisionEventV1> {
  expect(requestId).toBeTruthy();
  for (let i = 0; i < 200; i++) {
    const found = events().filter((e) => e.requestId === requestId);
    if (found.length) {
      expect(found).toHaveLength(1);
      return found[0]!;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no decision event for ${requestId}`);
}

async function chat(client: OpenAI, content: string, extra: Record<string, unknown> = {}) {
  const { data, response } = await client.chat.completions
    .create({ model: 'mock-gpt', messages: [{ role: 'user', content }], ...extra })
    .withResponse();
  return { data, requestId: response.headers.get('x-request-id') };
}

async function metricsText(): Promise<string> {
  return (await fetch(`${stack.gw.adminUrl}/metrics`)).text();
}

/** The value of one series (labels in any order), or undefined. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

beforeAll(async () => {
  stack = await startStack({ config, env: { TEST_WEB_KEY: WEB_KEY } });
  logFile = join(dirname(stack.configFile), 'decisions.log');
  jobs = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
  web = new OpenAI({ apiKey: WEB_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
});
afterAll(() => stack?.close());

const actor = () => ({ by: 'decision-log-test', at: new Date() });

describe('decision log', () => {
  it('one v1 event per request with ring, bundle, class, route, tokens, cost and the latency breakdown', async () => {
    const { data, requestId } = await chat(jobs, 'Summarise our travel policy, please.');
    const ev = await eventOf(requestId);
    const productionId = stack.gw.rings.runtime.snapshot().production.id;
    expect(ev).toMatchObject({
      v: 1,
      type: 'decision',
      app: { id: 'jobs', keyId: 'jobs-key' },
      api: 'openai.chat',
      stream: false,
      model: 'mock-gpt',
      ring: 'production',
      bundles: { enforcing: productionId, shadow: null },
      enforcing: {
        bundleId: productionId,
        class: 'internal-general',
        action: 'allow',
        route: { provider: null, model: 'mock-gpt' },
        deny: null,
      },
      shadow: null,
      target: { provider: 'mock', model: 'mock-gpt' },
      status: 200,
      error: null,
    });
    expect(Date.parse(ev.ts)).toBeGreaterThan(Date.now() - 60_000);
    expect(ev.changeId).toBe(stack.gw.rings.runtime.snapshot().state.changeId);
    const usage = data.usage!;
    expect(ev.tokens).toEqual({
      input: usage.prompt_tokens,
      output: usage.completion_tokens,
      estimated: false,
    });
    expect(ev.costUsd).toBeCloseTo((usage.prompt_tokens * 2.5 + usage.completion_tokens * 10) / 1e6, 9);
    const l = ev.latencyMs;
    for (const k of [
      'auth',
      'parse',
      'enforcingEval',
      'upstreamTtfb',
      'upstreamTotal',
      'overhead',
      'total',
    ] as const)
      expect(l[k], k).toBeGreaterThanOrEqual(0);
    expect(l.shadowEval).toBeNull();
    // The example bundle's output-secrets guardrail scanned the answer: its time is measured.
    expect(l.outputGuardrails).toBeGreaterThanOrEqual(0);
    expect(l.outputGuardrails).toBeLessThanOrEqual(l.total);
    expect(l.total).toBeGreaterThanOrEqual(l.upstreamTotal!);
    expect(l.upstreamTotal).toBeGreaterThanOrEqual(l.upstreamTtfb!);
    expect(l.overhead).toBeCloseTo(l.total - l.upstreamTotal!, 2);
  });

  it('content only where the class allows it, PII and secrets redacted, cut at maxContentChars', async () => {
    // internal-general: `default: redacted` in the example bundle.
    const email = 'jane.doe@example.com';
    const a = await eventOf((await chat(jobs, `Draft a reply to ${email} about the offsite.`)).requestId);
    expect(a.content?.mode).toBe('redacted');
    expect(a.content?.prompt[0]).toEqual({
      role: 'user',
      text: 'Draft a reply to [REDACTED:pii.email] about the offsite.',
    });
    // The mock echoes the prompt: the response is logged, redacted the same way.
    expect(a.content?.response).toContain('[REDACTED:pii.email]');
    expect(a.content?.truncated).toBe(false);
    // internal-sensitive (an SSN routes there): `none` — no content at all, and routed to the private model.
    const b = await eventOf((await chat(jobs, 'Payroll fix for SSN 123-45-6789 please')).requestId);
    expect(b.enforcing?.class).toBe('internal-sensitive');
    expect(b.target).toEqual({ provider: 'private', model: 'private-llm' });
    expect(b).not.toHaveProperty('content');
    // Long prompts are cut.
    const c = await eventOf((await chat(jobs, `${'lorem ipsum '.repeat(40)}`)).requestId);
    expect(c.content?.prompt[0]?.text).toHaveLength(200);
    expect(c.content?.truncated).toBe(true);
    const raw = readFileSync(logFile, 'utf8');
    expect(raw).not.toContain(email);
    expect(raw).not.toContain('123-45-6789');
  });

  it('a denial is logged with its rule; the secret in the prompt is not', async () => {
    const secret = 'AKIAIOSFODNN7EXAMPLE';
    const err = await jobs.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: `use key ${secret} to deploy` }] })
      .withResponse()
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const ev = await eventOf(
      (err as InstanceType<typeof OpenAI.APIError>).headers?.get('x-request-id') ?? null,
    );
    expect(ev).toMatchObject({
      status: 403,
      outcome: 'denied',
      error: 'policy_denied',
      target: null,
      tokens: null,
      costUsd: null,
      enforcing: { action: 'deny', deny: { rule: 'secrets-block' } },
    });
    expect(ev.enforcing?.input).toContainEqual(
      expect.objectContaining({ guardrail: 'secrets-block', verdict: 'block', spans: 1 }),
    );
    expect(ev.latencyMs.upstreamTtfb).toBeNull();
    expect(readFileSync(logFile, 'utf8')).not.toContain(secret);
  });

  it('streams: output guardrail verdicts, usage tokens and tools are logged', async () => {
    const stream = await web.chat.completions
      .create({
        model: 'mock-gpt-mini',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'Mail me at bob@example.org when it ships' }],
        tools: [{ type: 'function', function: { name: 'get_order', parameters: { type: 'object' } } }],
      })
      .withResponse();
    let text = '';
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).not.toContain('bob@example.org');
    const ev = await eventOf(stream.response.headers.get('x-request-id'));
    expect(ev).toMatchObject({
      stream: true,
      ring: 'production',
      enforcing: { class: 'external', action: 'redact' },
      tokens: { estimated: false },
    });
    expect(ev.enforcing?.input).toContainEqual(
      expect.objectContaining({ stage: 'input', guardrail: 'pii-redact-external', verdict: 'redact' }),
    );
    expect(ev.tools).toContainEqual({ tool: 'get_order', scope: 'request', outcome: 'allow', rule: null });
    expect(ev.tokens!.input).toBeGreaterThan(0);
    // Measured (a number, not null) even when the answer is a tool call with no text to scan.
    expect(ev.latencyMs.outputGuardrails).toBeGreaterThanOrEqual(0);
    expect(ev.costUsd).toBeGreaterThan(0);
  });

  it('shadow then canary: both bundles decisions, the ring, the divergence and the metrics by ring', async () => {
    const rings = stack.gw.rings;
    const text = readFileSync(join(BUNDLES, 'candidate', 'bundle.yaml'), 'utf8');
    const cand = await rings.registerBundle(text, 'candidate/bundle.yaml');
    await rings.shadow(cand.id, actor());
    const productionId = rings.runtime.snapshot().production.id;

    const s = await eventOf((await chat(web, 'Where is my order?', { model: 'mock-gpt-mini' })).requestId);
    expect(s).toMatchObject({
      ring: 'production',
      bundles: { enforcing: productionId, shadow: cand.id },
      enforcing: { bundleId: productionId },
      shadow: { bundleId: cand.id },
      shadowError: false,
    });
    expect(s.latencyMs.shadowEval).toBeGreaterThanOrEqual(0);

    await rings.canary({ apps: ['jobs'], classes: [], percent: 100 }, actor());
    const c = await eventOf((await chat(jobs, 'Summarise our travel policy, please.')).requestId);
    expect(c).toMatchObject({
      ring: 'canary',
      bundles: { enforcing: cand.id, shadow: productionId },
      enforcing: { bundleId: cand.id },
      shadow: { bundleId: productionId },
    });
    expect(c.changeId).toBe(rings.runtime.snapshot().state.changeId);
    expect(c.latencyMs.shadowEval).toBeGreaterThanOrEqual(0);

    const m = await metricsText();
    expect(series(m, 'ringfence_requests_total', { ring: 'canary', app: 'jobs', status: '2xx' })).toBe(1);
    expect(series(m, 'ringfence_evaluations_total', { ring: 'shadow', class: 'external' })).toBe(1);
    expect(series(m, 'ringfence_evaluations_total', { ring: 'canary' })).toBe(1);
    expect(series(m, 'ringfence_promotions_total', { to: 'shadow' })).toBe(1);
    expect(series(m, 'ringfence_promotions_total', { to: 'canary' })).toBe(1);
    expect(series(m, 'ringfence_candidate_stage')).toBe(2);
    expect(series(m, 'ringfence_canary_slice_percent')).toBe(100);
    expect(
      series(m, 'ringfence_bundle_info', { ring: 'candidate', bundle_id: cand.id, name: cand.name }),
    ).toBe(1);
    expect(series(m, 'ringfence_bundle_info', { ring: 'production', bundle_id: productionId })).toBe(1);
    expect(series(m, 'ringfence_policy_evaluation_seconds_count', { ring: 'shadow' })).toBe(1);
    expect(series(m, 'ringfence_policy_evaluation_seconds_count', { ring: 'canary' })).toBe(1);
    expect(series(m, 'ringfence_gateway_overhead_seconds_count', { ring: 'canary' })).toBe(1);

    await rings.rollback(actor(), 'decision-log test: back to production');
    const after = await metricsText();
    expect(series(after, 'ringfence_rollbacks_total', { trigger: 'manual' })).toBe(1);
    expect(series(after, 'ringfence_candidate_stage')).toBe(0);
    expect(series(after, 'ringfence_bundle_info', { ring: 'candidate' })).toBeUndefined();
  });

  it('a candidate whose evaluation throws: counted in shadow, denied with policy_error in canary, logged', async () => {
    const rings = stack.gw.rings;
    // Reading a metadata key that is absent is an error in CEL: this rule throws on every request without it.
    const text = readFileSync(join(BUNDLES, 'production', 'bundle.yaml'), 'utf8')
      .replace('version: 2026.11.1', 'version: 2026.11.1-broken')
      .replace(
        '  rules:\n',
        '  rules:\n    - id: tier-gold\n      when: { expr: \'request.metadata["tier"] == "gold"\' }\n      class: batch\n',
      );
    const broken = await rings.registerBundle(text, 'broken.yaml');
    await rings.shadow(broken.id, actor());
    const s = await eventOf((await chat(web, 'hello', { model: 'mock-gpt-mini' })).requestId);
    expect(s).toMatchObject({ ring: 'production', status: 200, shadowError: true, shadow: null });

    await rings.canary({ apps: ['jobs'], classes: [], percent: 100 }, actor());
    const err = await jobs.chat.completions
      .create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello' }] })
      .withResponse()
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const c = await eventOf(
      (err as InstanceType<typeof OpenAI.APIError>).headers?.get('x-request-id') ?? null,
    );
    expect(c).toMatchObject({
      ring: 'canary',
      status: 403,
      error: 'policy_error',
      enforcing: null,
      bundles: { enforcing: broken.id },
      shadow: { class: 'internal-general' },
    });
    const m = await metricsText();
    expect(series(m, 'ringfence_policy_errors_total', { ring: 'shadow' })).toBe(1);
    expect(series(m, 'ringfence_policy_errors_total', { ring: 'canary' })).toBe(1);
    expect(series(m, 'ringfence_request_errors_total', { ring: 'canary', code: 'policy_error' })).toBe(1);
    expect(
      series(m, 'ringfence_requests_total', { ring: 'canary', class: 'unclassified', action: 'none' }),
    ).toBe(1);
    // The ring statistics saw it too: the canary's policy error counts against the gates.
    await rings.rollback(actor(), 'broken candidate');
  });

  it('tokens and cost by class and model; unknown models share one label; one log event per request', async () => {
    await jobs.chat.completions.create({ model: 'mock-claude', messages: [{ role: 'user', content: 'hi' }] });
    const m = await metricsText();
    expect(
      series(m, 'ringfence_tokens_total', {
        class: 'internal-general',
        provider: 'mock',
        model: 'mock-gpt',
        direction: 'input',
      }),
    ).toBeGreaterThan(0);
    expect(
      series(m, 'ringfence_tokens_total', { provider: 'mock', model: '*', direction: 'output' }),
    ).toBeGreaterThan(0);
    expect(m).not.toContain('mock-claude');
    expect(
      series(m, 'ringfence_cost_usd_total', { class: 'internal-general', model: 'mock-gpt' }),
    ).toBeGreaterThan(0);
    expect(
      series(m, 'ringfence_upstream_seconds_count', { provider: 'mock', phase: 'ttfb' }),
    ).toBeGreaterThan(0);
    const requests = [...m.matchAll(/^ringfence_requests_total\{[^}]*\} (\d+)$/gm)].reduce(
      (n, x) => n + Number(x[1]),
      0,
    );
    // Lines reach the file asynchronously: wait for the last (bounded).
    for (let i = 0; i < 100 && events().length < requests; i++) await new Promise((r) => setTimeout(r, 20));
    expect(events()).toHaveLength(requests);
    expect(series(await metricsText(), 'ringfence_decision_log_events_total')).toBe(requests);
    expect(series(m, 'ringfence_decision_log_dropped_total')).toBe(0);
  });

  it('requests refused before any policy ran are counted by code, not logged as decisions', async () => {
    const bad = new OpenAI({ apiKey: 'rf-wrong-key', baseURL: stack.openaiBase, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const before = events().length;
    await expect(
      bad.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const r = await fetch(`${stack.openaiBase}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(r.status).toBe(400);
    const m = await metricsText();
    expect(series(m, 'ringfence_rejected_requests_total', { code: 'unauthenticated' })).toBe(2);
    expect(series(m, 'ringfence_rejected_requests_total', { code: 'invalid_json' })).toBe(1);
    await new Promise((res) => setTimeout(res, 50));
    expect(events()).toHaveLength(before);
  });

  it('no key ever reaches a log: gateway keys, the provider key', () => {
    const all = readFileSync(logFile, 'utf8') + stack.logs.text;
    for (const k of [APP_KEY, WEB_KEY, PROVIDER_KEY]) expect(all).not.toContain(k);
    expect(all).not.toMatch(/sk-provider-secret/);
  });
});
