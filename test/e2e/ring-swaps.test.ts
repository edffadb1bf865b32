/**
 * Atomic ring swaps (issue #6): 1,000 transitions while requests run. Every request is decided under the one
 * snapshot it read, so every record names a (enforcing, shadow) pair that existed as one state version, and no
 * request fails because of a swap. Also: racing rollback-trigger checks roll a canary back once, never twice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RingSample } from '../../src/control/ring-stats.ts';
import type { RequestRecord } from '../../src/gateway/context.ts';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');

/** One mock behind two provider ids (the candidate routes external traffic to `b`); small gates. */
const config = (mockUrl: string) => `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt]
    connections: 256
  b:
    kind: mock
    baseUrl: ${mockUrl}
    apiKeyEnv: TEST_PROVIDER_KEY
    models: [mock-gpt-b]
    connections: 256
defaults: { openai: a }
applications:
  - { id: test-app, tags: [external], keys: [{ id: test-key, env: TEST_APP_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
log: { level: warn }
rings:
  gates:
    shadowToCanary: { minSamples: 5, minDurationS: 0, maxCandidateEvalP95Us: 1000000 }
    canaryToProduction: { minSamples: 5, minDurationS: 0 }
  # The loop stays out of the way: the test calls checkTriggers itself.
  triggers: { minSamples: 5, windowS: 60, checkIntervalMs: 3600000 }
`;

let stack: Stack;
let client: OpenAI;
const records: RequestRecord[] = [];

beforeAll(async () => {
  stack = await startStack({ config, observe: (r) => records.push(r) });
  client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
});
afterAll(() => stack?.close());

const actor = () => ({ by: 'swap-test', at: new Date() });

describe('ring swaps under load', () => {
  it('1,000 swaps while requests run: no request fails, every record names one consistent bundle pair', async () => {
    const rings = stack.gw.rings;
    const start = rings.runtime.snapshot().state;
    const productionId = start.production.bundleId;
    const { id: candidateId } = await rings.registerBundle(
      readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8'),
      'swap-test',
    );
    /** State version → the candidate in shadow under it (undefined: none) and its change id. */
    const versions = new Map<number, { candidate: string | undefined; changeId: string }>([
      [start.version, { candidate: start.candidate?.bundleId, changeId: start.changeId }],
    ]);
    expect(start.candidate).toBeUndefined();

    let swapping = true;
    const failures: string[] = [];
    let sent = 0;
    const one = async (i: number) => {
      sent++;
      const content = `swap request ${i}`;
      try {
        if (i % 2) {
          const stream = await client.chat.completions.create(
            { model: 'mock-gpt', stream: true, messages: [{ role: 'user', content }] },
            { headers: { 'x-mock-chunks': '6', 'x-mock-chunk-delay-ms': '3' } },
          );
          let text = '';
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
          if (text !== `Mock reply: ${content}`) failures.push(`${i}: stream text ${JSON.stringify(text)}`);
        } else {
          const res = await client.chat.completions.create(
            { model: 'mock-gpt', messages: [{ role: 'user', content }] },
            { headers: { 'x-mock-delay-ms': String(i % 7) } },
          );
          if (res.choices[0]?.message.content !== `Mock reply: ${content}`)
            failures.push(`${i}: text ${JSON.stringify(res.choices[0]?.message.content)}`);
        }
      } catch (err) {
        failures.push(`${i}: ${(err as Error).message}`);
      }
    };
    // Waves of 200 concurrent requests (half streamed) for as long as the swaps go on, at least one wave.
    const traffic = (async () => {
      let i = 0;
      do {
        await Promise.all(Array.from({ length: 200 }, () => one(i++)));
      } while (swapping && i < 20_000);
    })();

    const swaps = (async () => {
      try {
        for (let n = 0; n < 1000; n++) {
          if (n % 2 === 0) {
            const s = await rings.shadow(candidateId, actor());
            versions.set(s.version, { candidate: s.candidate?.bundleId, changeId: s.changeId });
          } else {
            const rec = await rings.rollback(actor(), 'swap test');
            const s = rings.runtime.snapshot().state; // the state the rollback made (changes are serial)
            expect(s.changeId).toBe(rec.changeId);
            versions.set(s.version, { candidate: s.candidate?.bundleId, changeId: s.changeId });
          }
          // Let requests through between swaps (a memory store answers in microtasks: without this, no request
          // would ever start between a shadow and the next rollback), so they start under many different states.
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        swapping = false;
      }
    })();
    await Promise.all([swaps, traffic]);

    expect(failures).toEqual([]);
    expect(versions.size).toBe(1001);
    expect(sent).toBeGreaterThanOrEqual(200);
    // Every request is recorded once its response has ended.
    for (let t = 0; records.length < sent && t < 200; t++) await new Promise((r) => setTimeout(r, 10));
    expect(records).toHaveLength(sent);

    const bad: string[] = [];
    for (const r of records) {
      const v = versions.get(r.stateVersion);
      const shadow = r.shadow?.bundleId;
      const ok =
        v !== undefined &&
        r.changeId === v.changeId &&
        r.status === 200 &&
        r.ring === 'production' &&
        r.enforcingBundleId === productionId &&
        r.decision?.bundleId === productionId &&
        r.shadowBundleId === v.candidate &&
        // The shadow decision, when one ran, is the candidate's of that same state.
        (v.candidate === undefined
          ? shadow === undefined && r.divergence === undefined
          : shadow === v.candidate);
      if (!ok)
        bad.push(
          `${r.input.requestId} v${r.stateVersion} enforcing ${r.enforcingBundleId} shadow ${r.shadowBundleId}/${shadow} expected ${JSON.stringify(v)}`,
        );
    }
    expect(bad.slice(0, 5)).toEqual([]);
    // The requests did overlap the swaps: they were decided under many states, with and without a shadow.
    const seen = new Set(records.map((r) => r.stateVersion));
    expect(seen.size).toBeGreaterThanOrEqual(50);
    expect(records.some((r) => r.shadowBundleId === candidateId)).toBe(true);
    expect(records.some((r) => r.shadowBundleId === undefined)).toBe(true);
    // The shadowed requests diverged (C reroutes external traffic), and it never touched them: all went to `a`.
    expect(records.filter((r) => r.shadowBundleId).every((r) => r.divergence?.includes('route'))).toBe(true);
    expect(records.every((r) => r.target?.provider === 'a')).toBe(true);
    expect(rings.runtime.snapshot().state.candidate).toBeUndefined();
  });

  it('racing trigger checks roll a failing canary back once: production is not reverted as well', async () => {
    const rings = stack.gw.rings;
    const p = rings.runtime.snapshot().state.production.bundleId;
    const { id: c } = await rings.registerBundle(
      readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8'),
      'swap-test',
    );
    let n = 0;
    const feed = (ring: RingSample['ring'], count: number, error = false) => {
      const snap = rings.runtime.snapshot();
      for (let i = 0; i < count; i++)
        rings.record(snap, {
          ring,
          at: Date.now(),
          requestId: `synthetic-${++n}`,
          error,
          triggered: false,
          leakBlock: false,
          latencyMs: 5,
          candidateEvalUs: 50,
          candidatePolicyError: false,
          divergence: undefined,
        });
    };
    const canary = async (bundleId: string) => {
      await rings.shadow(bundleId, actor());
      feed('production', 5);
      await rings.canary({ apps: [], classes: [], percent: 100 }, actor());
    };
    // C through the rings into production: P becomes the rollback target.
    await canary(c);
    feed('canary', 5);
    feed('production', 5);
    await rings.promote(actor());
    expect(rings.runtime.snapshot().state.previous[0]?.bundleId).toBe(p);

    // P back as a candidate, in canary, failing: the trigger holds, and two checks race.
    await canary(p);
    feed('canary', 5, true);
    const fired = await Promise.all([rings.checkTriggers(), rings.checkTriggers()]);
    expect(fired.filter(Boolean)).toHaveLength(1);
    expect(fired.find(Boolean)?.trigger?.trigger).toBe('error_rate');
    const s = rings.runtime.snapshot().state;
    expect(s.candidate).toBeUndefined();
    expect(s.production.bundleId).toBe(c);
    expect(s.previous[0]?.bundleId).toBe(p);
  });
});
