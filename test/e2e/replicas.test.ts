/**
 * Several replicas on one PostgreSQL control plane (issue #10), with real processes and real traffic: two
 * `ringfence serve` processes share a throwaway PostgreSQL cluster (so it can be stopped and started), two mock
 * providers (A: production's route, B: the candidate's route for external traffic).
 *
 * A change made through one replica is enforced by the other within a second (measured); an approval is used
 * once fleet-wide; two concurrent promotions have one winner; PostgreSQL stopped mid-traffic costs no
 * data-plane request, writes fail clearly, both replicas converge once it is back; the audit chain verifies;
 * the audit table refuses an UPDATE.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import { privatePostgres } from '../helpers/postgres.ts';
import { killAll, listening, type Proc, spawnRingfence } from '../helpers/processes.ts';
import { writeConfig } from '../helpers/stack.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');
const WEB_KEY = 'rf-replica-web-key-0123456789';
const JOBS_KEY = 'rf-replica-jobs-key-0123456789';
const OPERATOR = 'rf-replica-operator-0123456789';
const APPROVER = 'rf-replica-approver-0123456789';

interface Replica {
  readonly proc: Proc;
  readonly dataUrl: string;
  readonly adminUrl: string;
  readonly client: OpenAI;
  /** An internal app: never in the canary slice, so production's side of every comparison. */
  readonly jobs: OpenAI;
}

let db: Awaited<ReturnType<typeof privatePostgres>>;
let mockA: MockProvider;
let mockB: MockProvider;
let r1: Replica;
let r2: Replica;
const figures: Record<string, number> = {};

async function replica(configFile: string, name: string): Promise<Replica> {
  const proc = spawnRingfence(['serve', '--config', configFile], {
    env: {
      RF_WEB_KEY: WEB_KEY,
      RF_JOBS_KEY: JOBS_KEY,
      RF_OPERATOR: OPERATOR,
      RF_APPROVER: APPROVER,
      DATABASE_URL: db.url,
      RINGFENCE_REPLICA_ID: name,
    },
  });
  const { dataUrl, adminUrl } = await listening(proc);
  return {
    proc,
    dataUrl,
    adminUrl,
    client: new OpenAI({ apiKey: WEB_KEY, baseURL: `${dataUrl}/v1`, maxRetries: 0 }),
    jobs: new OpenAI({ apiKey: JOBS_KEY, baseURL: `${dataUrl}/v1`, maxRetries: 0 }),
  };
}

async function admin(r: Replica, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${r.adminUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: test reads arbitrary JSON
  return { status: res.status, json: (await res.json()) as any };
}

/** Which provider served one chat request through `r` (the mocks answer with their own model name). */
async function servedBy(r: Replica): Promise<'A' | 'B'> {
  const c = await r.client.chat.completions.create({
    model: 'mock-gpt',
    messages: [{ role: 'user', content: 'hi' }],
  });
  return c.model === 'mock-gpt-b' ? 'B' : 'A';
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

beforeAll(async () => {
  db = await privatePostgres();
  mockA = await startMockProvider({});
  mockB = await startMockProvider({});
  const configFile = writeConfig(`
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a: { kind: mock, baseUrl: ${mockA.url}, models: [mock-gpt] }
  b: { kind: mock, baseUrl: ${mockB.url}, models: [mock-gpt-b] }
defaults: { openai: a }
applications:
  - { id: web, tags: [external], keys: [{ id: web-key, env: RF_WEB_KEY }] }
  - { id: jobs, tags: [internal], keys: [{ id: jobs-key, env: RF_JOBS_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
store:
  kind: postgres
  url: \${DATABASE_URL}
  syncIntervalMs: 500
admin:
  tokens:
    - { id: olivia, env: RF_OPERATOR, roles: [operator, viewer] }
    - { id: alex, env: RF_APPROVER, roles: [approver, viewer] }
rings:
  gates:
    shadowToCanary: { minSamples: 4, minDurationS: 0, maxCandidateEvalP95Us: 1000000000, ackMinGroupCount: 1000000 }
    canaryToProduction: { minSamples: 4, minDurationS: 0, maxLatencyP50DeltaMs: 1000, maxLatencyP95DeltaMs: 1000 }
  triggers: { checkIntervalMs: 3600000 }
limits: { shutdownGraceMs: 1000 }
log: { level: info, decisions: { enabled: false } }
`);
  r1 = await replica(configFile, 'r1');
  r2 = await replica(configFile, 'r2');
}, 60_000);

afterAll(async () => {
  killAll();
  await mockA?.close();
  await mockB?.close();
  await db?.destroy();
  console.log(`replica figures: ${JSON.stringify(figures)}`);
});

describe('two replicas, one PostgreSQL control plane', () => {
  let candidateId: string;

  it('a change through one replica is enforced by the other within a second', async () => {
    const text = readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8');
    const reg = await fetch(`${r1.adminUrl}/admin/v1/bundles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'text/yaml' },
      body: text,
    });
    candidateId = ((await reg.json()) as { id: string }).id;
    const t0 = Date.now();
    expect((await admin(r1, OPERATOR, 'POST', '/rollout/shadow', { bundleId: candidateId })).status).toBe(
      200,
    );
    await until('r2 in shadow', async () =>
      (await admin(r2, OPERATOR, 'GET', '/rollout')).json.candidate?.stage === 'shadow' ? true : undefined,
    );
    figures.shadowSeenByR2Ms = Date.now() - t0;
    expect(figures.shadowSeenByR2Ms).toBeLessThan(1000);

    // Shadow traffic on both replicas: the gates count the fleet's samples.
    for (let i = 0; i < 2; i++) {
      expect(await servedBy(r1)).toBe('A');
      expect(await servedBy(r2)).toBe('A');
    }
    const gates = await until('fleet-wide samples', async () => {
      const g = (await admin(r1, OPERATOR, 'GET', '/rollout/gates')).json;
      return g.replicas === 2 &&
        g.gates.find((x: { name: string }) => x.name === 'min_samples')?.observed === 4
        ? g
        : undefined;
    });
    expect(gates.gates.find((x: { name: string }) => x.name === 'min_samples').sampleSize).toBe(4);

    // Canary asked on r1, approved on r2 (the approval lives in PostgreSQL), enforced on both.
    const ask = await admin(r1, OPERATOR, 'POST', '/rollout/canary', { apps: ['web'] });
    expect(ask.status).toBe(202);
    const t1 = Date.now();
    const ok = await admin(r2, APPROVER, 'POST', `/approvals/${ask.json.approval.id}/approve`, {});
    expect(ok.status).toBe(200);
    await until('r1 routes the canary to B', async () => ((await servedBy(r1)) === 'B' ? true : undefined));
    figures.canaryEnforcedByR1Ms = Date.now() - t1;
    expect(figures.canaryEnforcedByR1Ms).toBeLessThan(1000);
    expect(await servedBy(r2)).toBe('B');

    // Used once, fleet-wide.
    const replay = await admin(r1, APPROVER, 'POST', `/approvals/${ask.json.approval.id}/approve`, {});
    expect(replay.status).toBe(409);
    expect(replay.json.error.code).toBe('not_pending');
  });

  it('two concurrent promotions: exactly one wins', async () => {
    const ask = (r: Replica) =>
      r.jobs.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] });
    for (let i = 0; i < 3; i++) await Promise.all([servedBy(r1), servedBy(r2), ask(r1), ask(r2)]);
    let last: unknown;
    const asks = await until(
      'promotion gates pass',
      async () => {
        const [a, b] = await Promise.all([
          admin(r1, OPERATOR, 'POST', '/rollout/promote', {}),
          admin(r2, OPERATOR, 'POST', '/rollout/promote', {}),
        ]);
        last = [a.json, b.json];
        return a.status === 202 && b.status === 202 ? [a, b] : undefined;
      },
      20_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(last)}`);
    });
    const [x, y] = await Promise.all([
      admin(r1, APPROVER, 'POST', `/approvals/${asks[0]!.json.approval.id}/approve`, {}),
      admin(r2, APPROVER, 'POST', `/approvals/${asks[1]!.json.approval.id}/approve`, {}),
    ]);
    // One wins; the other lost the race, whichever way its replica learnt it: the state moved since its request
    // (stale), its compare-and-set lost (conflict), or it caught up mid-way and found no candidate left.
    expect([x.status, y.status].sort(), JSON.stringify([x.json, y.json])).toEqual([200, 409]);
    const loser = x.status === 409 ? x : y;
    expect(['stale', 'conflict', 'no_candidate']).toContain(loser.json.error.code);
    await until('both replicas have the candidate in production', async () => {
      const [s1, s2] = await Promise.all([
        admin(r1, OPERATOR, 'GET', '/rollout'),
        admin(r2, OPERATOR, 'GET', '/rollout'),
      ]);
      return s1.json.production.id === candidateId && s2.json.production.id === candidateId
        ? true
        : undefined;
    });
  });

  it('PostgreSQL stopped mid-traffic: no failed request, writes refused clearly, both converge after', async () => {
    let failed = 0;
    let served = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        await Promise.all(
          [r1, r2].map((r) =>
            servedBy(r).then(
              () => served++,
              () => failed++,
            ),
          ),
        );
      }
    })();
    await new Promise((res) => setTimeout(res, 300));
    await db.stop();
    await until(
      'r1 reports its store down',
      async () => {
        const rz = (await (await fetch(`${r1.dataUrl}/readyz`)).json()) as { controlPlane?: { up: boolean } };
        return rz.controlPlane?.up === false ? true : undefined;
      },
      8000,
    );
    const write = await admin(r1, OPERATOR, 'POST', '/rollout/rollback', { reason: 'during the outage' });
    expect(write.status).toBe(503);
    expect(write.json.error.code).toBe('store_unavailable');
    const metrics = await (await fetch(`${r2.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ringfence_control_store_up 0$/m);
    await new Promise((res) => setTimeout(res, 1000));
    await db.start();
    await until(
      'r1 reports its store up',
      async () => {
        const rz = (await (await fetch(`${r1.dataUrl}/readyz`)).json()) as { controlPlane?: { up: boolean } };
        return rz.controlPlane?.up === true ? true : undefined;
      },
      10_000,
    );
    stop = true;
    await load;
    figures.servedDuringOutage = served;
    expect(failed).toBe(0);
    expect(served).toBeGreaterThan(20);

    // After the outage, a change through r1 reaches r2 again.
    const rb = await admin(r1, OPERATOR, 'POST', '/rollout/rollback', { reason: 'after the outage' });
    expect(rb.status).toBe(200);
    const t = Date.now();
    await until('r2 rolled back', async () =>
      (await admin(r2, OPERATOR, 'GET', '/rollout')).json.production.id !== candidateId ? true : undefined,
    );
    figures.rollbackSeenByR2AfterOutageMs = Date.now() - t;
    expect(await servedBy(r2)).toBe('A');
  });

  it('the audit chain verifies after all of it; the audit table refuses an UPDATE', async () => {
    const p = spawnRingfence(['audit', 'verify', '--admin', r2.adminUrl, '--token', OPERATOR]);
    expect(await p.exited).toBe(0);
    expect(p.stdout).toMatch(/audit trail intact: \d+ records/);
    const a = (await admin(r1, OPERATOR, 'GET', '/audit')).json;
    const kinds = a.records.map((r: { kind: string }) => r.kind);
    expect(kinds).toContain('promotion.decided');
    expect(kinds.filter((k: string) => k === 'rollback')).toHaveLength(1);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await expect(
        client.query(`UPDATE ringfence.events SET doc = '{}'::jsonb WHERE journal = 'audit'`),
      ).rejects.toThrow();
      await expect(client.query(`DELETE FROM ringfence.events WHERE journal = 'audit'`)).rejects.toThrow();
    } finally {
      await client.end();
    }
  });
});
