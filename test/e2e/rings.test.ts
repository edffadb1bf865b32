/**
 * Release rings end to end (issue #6), with real processes and traffic: a gateway started as `ringfence serve`,
 * the rollout driven by the `ringfence` CLI over the admin API, requests sent with the OpenAI SDK to two mock
 * providers (A: production's route, B: the candidate's route for external traffic).
 *
 * push → shadow → (gates refuse) → divergence, ack → canary by app → restart keeps the state → canary by class →
 * canary by percent (sticky) → promote (refused until data suffices) → manual rollback → shadow again → canary →
 * B starts failing → automatic rollback on the canary error rate.
 *
 * The steps share one gateway and run in order; a failed step fails the ones after it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import { killAll, listening, type Proc, ROOT, spawnRingfence as spawnProcess } from '../helpers/processes.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'rings');
const PRODUCTION_FILE = join(FIXTURES, 'production.yaml');
const CANDIDATE_FILE = join(FIXTURES, 'candidate.yaml');
/** Node 24 runs the TypeScript sources; under npm/npx that is this process's node, else the pinned one. */

type App = 'web' | 'jobs' | 'other';
const APP_KEYS: Record<App, string> = {
  web: 'rf-rings-web-key-0123456789',
  jobs: 'rf-rings-jobs-key-0123456789',
  other: 'rf-rings-other-key-0123456789',
};
const OPERATOR_TOKEN = 'rf-admin-operator-token-0123456789';
const VIEWER_TOKEN = 'rf-admin-viewer-token-0123456789';
const APPROVER_TOKEN = 'rf-admin-approver-token-0123456789';
const ENV = {
  RF_WEB_KEY: APP_KEYS.web,
  RF_JOBS_KEY: APP_KEYS.jobs,
  RF_OTHER_KEY: APP_KEYS.other,
  RF_OPERATOR_TOKEN: OPERATOR_TOKEN,
  RF_VIEWER_TOKEN: VIEWER_TOKEN,
  RF_APPROVER_TOKEN: APPROVER_TOKEN,
};

function configYaml(a: string, b: string, stateDir: string): string {
  return `
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a:
    kind: mock
    baseUrl: ${a}
    models: [mock-gpt]
    timeouts: { connectMs: 2000, headersMs: 5000, bodyMs: 5000 }
  b:
    kind: mock
    baseUrl: ${b}
    models: [mock-gpt-b]
    timeouts: { connectMs: 2000, headersMs: 5000, bodyMs: 5000 }
defaults: { openai: a }
applications:
  - { id: web, tags: [external], keys: [{ id: web-key, env: RF_WEB_KEY }] }
  - { id: jobs, tags: [internal], keys: [{ id: jobs-key, env: RF_JOBS_KEY }] }
  - { id: other, keys: [{ id: other-key, env: RF_OTHER_KEY }] }
limits:
  # Nothing is in flight when the test stops the gateway, but connections the client opened and never used are
  # not "idle" to Node and wait out the whole grace (see the report on drain): keep it short.
  shutdownGraceMs: 1000
policy:
  bundle: ${PRODUCTION_FILE}
admin:
  tokens:
    - { id: operator, env: RF_OPERATOR_TOKEN, roles: [operator] }
    - { id: viewer, env: RF_VIEWER_TOKEN, roles: [viewer] }
    - { id: approver, env: RF_APPROVER_TOKEN, roles: [approver] }
rings:
  stateDir: ${stateDir}
  gates:
    shadowToCanary:
      minSamples: 20
      minDurationS: 0
      ackMinGroupCount: 1
      # Evaluation time on a loaded CI machine is noise here; the figure is still measured and shown.
      maxCandidateEvalP95Us: 1000000
    canaryToProduction:
      minSamples: 10
      minDurationS: 0
      maxErrorRateDelta: 0.01
      maxTriggerRateDelta: 0.05
      # A and B are the same mock in the test process: their latency differences are noise.
      maxLatencyP50DeltaMs: 5000
      maxLatencyP95DeltaMs: 5000
  triggers:
    windowS: 3
    minSamples: 5
    checkIntervalMs: 200
    errorRateFactor: 2
    minErrorRate: 0.2
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

function spawnRingfence(args: string[], killAfterMs?: number): Proc {
  // The compile cache (shared by every process of this file, in its temp dir) spares each of the ~20 CLI runs
  // most of Node's TypeScript start-up cost.
  return spawnProcess(args, {
    env: { NODE_COMPILE_CACHE: join(dir, 'node-cache'), ...ENV },
    ...(killAfterMs === undefined ? {} : { killAfterMs }),
  });
}

interface Gateway {
  readonly proc: Proc;
  readonly dataUrl: string;
  readonly adminUrl: string;
  readonly clients: Record<App, OpenAI>;
}

async function startGateway(configFile: string): Promise<Gateway> {
  const proc = spawnRingfence(['serve', '--config', configFile, '--port', '0', '--admin-port', '0']);
  const { dataUrl, adminUrl } = await listening(proc);
  const client = (app: App) => new OpenAI({ apiKey: APP_KEYS[app], baseURL: `${dataUrl}/v1`, maxRetries: 0 });
  return {
    proc,
    dataUrl,
    adminUrl,
    clients: { web: client('web'), jobs: client('jobs'), other: client('other') },
  };
}

/** SIGTERM, and the exit code (bounded: SIGKILL after 10 s). */
async function stopGateway(g: Gateway): Promise<number | string> {
  g.proc.child.kill('SIGTERM');
  const timer = setTimeout(() => g.proc.child.kill('SIGKILL'), 10_000);
  const code = await g.proc.exited;
  clearTimeout(timer);
  return code;
}

interface CliResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `ringfence ARGS --admin URL [--token T]` to its end (SIGKILL after 20 s). */
async function cli(args: string[], token: string | null = OPERATOR_TOKEN): Promise<CliResult> {
  const p = spawnRingfence(
    [...args, '--admin', gw.adminUrl, ...(token === null ? [] : ['--token', token])],
    20_000,
  );
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/**
 * A high-risk command (canary, promote): the operator's CLI call requests it, the approver's CLI call (a different
 * identity) approves it. Returns the approval's output; fails if the request was not accepted.
 */
async function twoKeys(args: string[]): Promise<CliResult> {
  const asked = await cli(args);
  expectExit(asked, 0);
  const id = /approval (apr_[0-9a-f-]+)/.exec(asked.stdout)?.[1];
  if (!id) throw new Error(`no approval id in: ${asked.stdout}`);
  return cli(['approvals', 'approve', id], APPROVER_TOKEN);
}

/** The CLI's exit code with its output, for a readable failure message. */
interface DivergenceLine {
  readonly count: number;
  readonly key: string;
  readonly kinds: Record<string, number>;
  readonly samples: string[];
  readonly acked: boolean;
}

/** The groups of `rollout divergence` (text): `COUNT  PROD → CAND  {KINDS}  e.g. ID, ID[  [ack by …]]`. */
function parseDivergence(stdout: string): DivergenceLine[] {
  const out: DivergenceLine[] = [];
  for (const line of stdout.split('\n').slice(1)) {
    if (!line.trim()) continue;
    const m = /^\s*(\d+) {2}(.+? → .+?) {2}(\{.*?\}) {2}e\.g\. (.*?)( {2}\[ack by .*\])?$/.exec(line);
    if (!m) throw new Error(`unexpected divergence line: ${JSON.stringify(line)}`);
    out.push({
      count: Number(m[1]),
      key: m[2]!,
      kinds: JSON.parse(m[3]!) as Record<string, number>,
      samples: m[4]!.split(', ').filter(Boolean),
      acked: m[5] !== undefined,
    });
  }
  return out;
}

const shown = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

function expectExit(r: CliResult, code: number): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${shown(r)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The admin API, directly (status polling, where the CLI's output would only be parsed back)

interface Status {
  version: number;
  changeId: string;
  production: { id: string; name: string; version: string };
  candidate: null | {
    id: string;
    stage: 'shadow' | 'canary';
    slice?: { apps: string[]; classes: string[]; percent: number };
  };
  previous: Array<{ id: string }>;
  stats: {
    production: { requests: number; errors: number };
    canary: { requests: number; errors: number };
    candidateEvaluations: number;
    divergent: number;
  };
  gates: null | { transition: string; gates: Array<{ name: string; verdict: string }> };
  lastRollback: null | {
    at: string;
    by: string;
    reason: string;
    timeToRestoreMs: number;
    trigger?: { trigger: string; figures: Record<string, number>; message: string };
    to: { production: string };
  };
}

async function adminGet<T>(path: string, token: string | undefined = OPERATOR_TOKEN): Promise<T> {
  const res = await fetch(`${gw.adminUrl}/admin/v1${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Polls the status until `ok` holds (bounded), and returns the status that satisfied it. */
async function statusWhen(ok: (s: Status) => boolean, what: string, timeoutMs = 5000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await adminGet<Status>('/rollout');
    if (ok(s)) return s;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(s, null, 2)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the gateway has recorded the requests sent so far in the current stage's statistics. */
const recorded = (n: number) =>
  statusWhen((s) => s.stats.production.requests + s.stats.canary.requests >= n, `${n} recorded requests`);

// ---------------------------------------------------------------------------------------------------------------
// Traffic

interface Sent {
  readonly app: App;
  readonly user: string | undefined;
  readonly requestId: string;
  readonly status: number;
  /** The model that answered: mock-gpt is provider A, mock-gpt-b provider B. */
  readonly model: string | undefined;
  readonly text: string | undefined;
  /** The error message, when the request failed. */
  readonly error?: string;
}

let seq = 0;

async function chat(app: App, opts: { user?: string; text?: string; stream?: boolean } = {}): Promise<Sent> {
  const requestId = `${app}-${++seq}-${randomUUID().slice(0, 8)}`;
  const content = opts.text ?? `hello from ${app} #${seq}`;
  const body = {
    model: 'mock-gpt',
    messages: [{ role: 'user' as const, content }],
    ...(opts.user ? { user: opts.user } : {}),
  };
  const reqOpts = { headers: { 'x-request-id': requestId } };
  const client = gw.clients[app];
  try {
    if (opts.stream) {
      const stream = await client.chat.completions.create({ ...body, stream: true }, reqOpts);
      let text = '';
      let model: string | undefined;
      for await (const chunk of stream) {
        model = chunk.model;
        text += chunk.choices[0]?.delta.content ?? '';
      }
      return { app, user: opts.user, requestId, status: 200, model, text };
    }
    const res = await client.chat.completions.create(body, reqOpts);
    return {
      app,
      user: opts.user,
      requestId,
      status: 200,
      model: res.model,
      text: res.choices[0]?.message.content ?? undefined,
    };
  } catch (err) {
    if (err instanceof OpenAI.APIError)
      return {
        app,
        user: opts.user,
        requestId,
        status: err.status ?? 0,
        model: undefined,
        text: undefined,
        error: err.message,
      };
    throw err;
  }
}

/** Runs the calls with at most `width` in flight, results in call order. */
async function pool<T>(calls: ReadonlyArray<() => Promise<T>>, width = 8): Promise<T[]> {
  const out: T[] = new Array(calls.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, calls.length) }, async () => {
      while (next < calls.length) {
        const i = next++;
        out[i] = await calls[i]!();
      }
    }),
  );
  return out;
}

/** `n` requests of each app given, interleaved, every other one streamed. */
function mix(counts: Partial<Record<App, number>>): Array<() => Promise<Sent>> {
  const calls: Array<() => Promise<Sent>> = [];
  const max = Math.max(...Object.values(counts));
  for (let i = 0; i < max; i++)
    for (const [app, n] of Object.entries(counts) as Array<[App, number]>)
      if (i < n) calls.push(() => chat(app, { stream: i % 2 === 1 }));
  return calls;
}

/** Request ids each mock received (the gateway forwards its `x-request-id`). */
const receivedIds = (m: MockProvider) => new Set(m.received.map((r) => String(r.headers['x-request-id'])));

/** Asserts where each request was served: `side(app)` says A or B; checks both the answer and the mocks. */
function expectServed(sent: readonly Sent[], side: (s: Sent) => 'A' | 'B'): void {
  const atA = receivedIds(mockA);
  const atB = receivedIds(mockB);
  for (const s of sent) {
    expect(s.status, `${s.requestId}: ${s.error}`).toBe(200);
    const want = side(s);
    expect({ id: s.requestId, model: s.model }).toEqual({
      id: s.requestId,
      model: want === 'A' ? 'mock-gpt' : 'mock-gpt-b',
    });
    expect({ id: s.requestId, atA: atA.has(s.requestId), atB: atB.has(s.requestId) }).toEqual({
      id: s.requestId,
      atA: want === 'A',
      atB: want === 'B',
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------

let mockA: MockProvider;
let mockB: MockProvider;
let dir: string;
let configFile: string;
let gw: Gateway;
let productionId: string;
let candidateId: string;
/** Requests recorded in the current stage (reset when a transition starts new statistics). */
let stageRequests = 0;

beforeAll(async () => {
  [mockA, mockB] = await Promise.all([
    startMockProvider({ record: 10_000 }),
    startMockProvider({ record: 10_000, models: ['mock-gpt-b'] }),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'ringfence-rings-'));
  configFile = join(dir, 'ringfence.yaml');
  writeFileSync(configFile, configYaml(mockA.url, mockB.url, join(dir, 'state')));
  gw = await startGateway(configFile);
});

// A failed step shows what the gateway logged last.
beforeEach(({ onTestFailed }) =>
  onTestFailed(() => {
    const tail = (t: string) => t.split('\n').slice(-15).join('\n');
    console.error(
      `gateway stdout (tail):\n${tail(gw?.proc.stdout ?? '')}\nstderr:\n${tail(gw?.proc.stderr ?? '')}`,
    );
  }),
);

afterAll(async () => {
  killAll();
  if (mockB) mockB.fault = undefined;
  await Promise.all([mockA?.close(), mockB?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Sends traffic and counts it in the current stage. */
async function send(calls: ReadonlyArray<() => Promise<Sent>>, width = 8): Promise<Sent[]> {
  const sent = await pool(calls, width);
  stageRequests += sent.length;
  return sent;
}

describe('release rings, end to end (real gateway process, CLI, SDK traffic)', () => {
  it('1. push the candidate and shadow it; a viewer cannot, no token is 401', async () => {
    const push = await cli(['bundle', 'push', CANDIDATE_FILE]);
    expectExit(push, 0);
    const m = /registered rings-e2e@2 (sha256:[a-f0-9]{64})/.exec(push.stdout);
    expect(m, shown(push)).not.toBeNull();
    candidateId = m![1]!;

    const shadow = await cli(['rollout', 'shadow', CANDIDATE_FILE]);
    expectExit(shadow, 0);
    expect(shadow.stdout).toContain(`shadow: ${candidateId}`);

    // The viewer reads the status (the candidate is in shadow) but may not change anything; nobody is anonymous.
    const [status, viewerShadow, anonymous] = await Promise.all([
      cli(['rollout', 'status'], VIEWER_TOKEN),
      cli(['rollout', 'shadow', candidateId], VIEWER_TOKEN),
      cli(['rollout', 'status'], null),
    ]);
    expectExit(viewerShadow, 1);
    expect(viewerShadow.stderr).toContain('forbidden');
    expect(viewerShadow.stderr).toContain('viewer lacks the role');
    expectExit(anonymous, 1);
    expect(anonymous.stderr).toContain('unauthenticated');
    expect((await fetch(`${gw.adminUrl}/admin/v1/rollout`)).status).toBe(401);
    const viewerPost = await fetch(`${gw.adminUrl}/admin/v1/rollout/rollback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${VIEWER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'a viewer tries' }),
    });
    expect(viewerPost.status).toBe(403);
    expectExit(status, 0);
    expect(status.stdout).toMatch(new RegExp(`candidate +rings-e2e@2 +${candidateId} +shadow`));
    expect(status.stdout).toMatch(/production +rings-e2e@1 +sha256:[a-f0-9]{64}/);
    expect(status.stdout).toContain('gates for shadow to canary');
    const s = await adminGet<Status>('/rollout', VIEWER_TOKEN);
    productionId = s.production.id;
    expect(s.candidate).toMatchObject({ id: candidateId, stage: 'shadow' });
    expect(productionId).not.toBe(candidateId);
    stageRequests = 0;
  });

  it('2. canary is gated: insufficient data, then unacknowledged divergence, then it passes', async () => {
    const early = await cli(['rollout', 'canary', '--apps', 'web']);
    expectExit(early, 1);
    expect(early.stderr).toContain('gates_failed');
    expect(early.stderr).toMatch(/min_samples +0 +>= 20 +INSUFFICIENT_DATA/);

    // Shadow traffic: production enforces everything, so all of it is served by A, as requested.
    const sent = await send([
      ...mix({ web: 12, jobs: 8 }),
      () => chat('jobs', { text: 'status of project bluebird please' }),
      () => chat('jobs', { text: 'Bluebird numbers for the quarter' }),
    ]);
    expectServed(sent, () => 'A');
    expect(mockB.received).toHaveLength(0);
    await recorded(stageRequests);

    const divergence = await cli(['rollout', 'divergence']);
    expectExit(divergence, 0);
    expect(divergence.stdout).toContain('14 divergent of 22 requests');
    const groups = parseDivergence(divergence.stdout);
    // A route that changes the target also makes the action `reroute` (production's is `allow`).
    expect(groups).toEqual([
      {
        count: 12,
        key: 'external-apps → external-to-b',
        kinds: { action: 12, route: 12 },
        samples: expect.any(Array),
        acked: false,
      },
      {
        count: 2,
        key: '(default) → bluebird-block',
        kinds: { action: 2, input_verdicts: 2 },
        samples: expect.any(Array),
        acked: false,
      },
    ]);
    // Sample request ids are ids of real requests of the group (the gateway keeps the client's x-request-id).
    const webIds = sent.filter((s) => s.app === 'web').map((s) => s.requestId);
    expect(groups[0]!.samples.length).toBeGreaterThan(0);
    for (const id of groups[0]!.samples) expect(webIds).toContain(id);
    expect(groups[1]!.samples.sort()).toEqual(
      sent
        .filter((s) => /bluebird/i.test(s.text ?? ''))
        .map((s) => s.requestId)
        .sort(),
    );

    const unacked = await cli(['rollout', 'canary', '--apps', 'web']);
    expectExit(unacked, 1);
    expect(unacked.stderr).toMatch(/unacknowledged_divergence_groups +2 += 0 +FAIL/);
    expect(unacked.stderr).toMatch(/min_samples +22 +>= 20 +PASS/);

    const acks = await Promise.all(
      groups.map((g) =>
        cli(['rollout', 'ack', g.key, '--reason', `intended: ${g.key} is the point of the candidate`]),
      ),
    );
    for (const a of acks) expectExit(a, 0);

    const canary = await twoKeys(['rollout', 'canary', '--apps', 'web']);
    expectExit(canary, 0);
    expect(canary.stdout).toContain('approved');
    expect(canary.stdout).toContain('(canary.enter), requested by operator, approved by approver');
    expect((await adminGet<Status>('/rollout')).candidate?.slice).toEqual({
      apps: ['web'],
      classes: [],
      percent: 100,
    });
    stageRequests = 0;
  });

  it('3. canary by app: web goes to B, jobs and other to A; a restart keeps the ring state', async () => {
    const before = await send(mix({ web: 6, jobs: 4, other: 2 }));
    expectServed(before, (s) => (s.app === 'web' ? 'B' : 'A'));
    const s1 = await recorded(stageRequests);
    expect(s1.stats.canary.requests).toBe(6);
    expect(s1.stats.production.requests).toBe(6);

    expect(await stopGateway(gw)).toBe(0);
    expect(gw.proc.stdout).toContain('"msg":"stopped"');
    gw = await startGateway(configFile);

    const st = await cli(['rollout', 'status', '--json']);
    expectExit(st, 0);
    const s2 = JSON.parse(st.stdout) as Status;
    expect(s2.version).toBe(s1.version);
    expect(s2.changeId).toBe(s1.changeId);
    expect(s2.production.id).toBe(productionId);
    expect(s2.candidate).toMatchObject({
      id: candidateId,
      stage: 'canary',
      slice: { apps: ['web'], classes: [], percent: 100 },
    });

    stageRequests = 0; // statistics live in memory: a restart starts them anew
    const after = await send(mix({ web: 4, jobs: 4, other: 2 }));
    expectServed(after, (s) => (s.app === 'web' ? 'B' : 'A'));
  });

  it('4–5. canary by class, then by sticky percent; promotion refused until the data suffices', async () => {
    const byClass = await twoKeys(['rollout', 'canary', '--classes', 'external']);
    expectExit(byClass, 0);
    expect((await adminGet<Status>('/rollout')).candidate?.slice?.classes).toEqual(['external']);
    const sent = await send(mix({ web: 4, jobs: 4, other: 2 }));
    expectServed(sent, (s) => (s.app === 'web' ? 'B' : 'A'));

    const byPercent = await twoKeys(['rollout', 'canary', '--percent', '50']);
    expectExit(byPercent, 0);
    expect((await adminGet<Status>('/rollout')).candidate?.slice).toEqual({
      apps: [],
      classes: [],
      percent: 50,
    });
    stageRequests = 0;

    // A slice change restarts the gates' window: nothing measured yet, so no promotion.
    const early = await cli(['rollout', 'promote']);
    expectExit(early, 1);
    expect(early.stderr).toContain('gates_failed');
    expect(early.stderr).toMatch(/min_samples +0 +>= 10 +INSUFFICIENT_DATA/);

    // 50 end users, each sending twice (one request streamed): the same user lands on the same side.
    // All of them on web: external is the class C routes to B, so "reached B" is "fell in the canary slice".
    const users = Array.from({ length: 50 }, (_, i) => ({ app: 'web' as App, user: `u${i}` }));
    const round = () =>
      users.map(
        (u, i) => () =>
          chat(u.app, { user: u.user, stream: i % 3 === 0, text: `I am ${u.user} of ${u.app}` }),
      );
    const first = await send(round());
    const second = await send(round());
    const atB = receivedIds(mockB);
    const side = (s: Sent) => (atB.has(s.requestId) ? 'B' : 'A');
    for (const [i, s] of first.entries()) {
      expect(s.status).toBe(200);
      expect(second[i]!.status).toBe(200);
      expect({ user: s.user, second: side(second[i]!) }).toEqual({ user: s.user, second: side(s) });
    }
    const canaried = first.filter((s) => side(s) === 'B').length;
    expect(canaried).toBeGreaterThanOrEqual(13);
    expect(canaried).toBeLessThanOrEqual(37);
    // The answer says the same as the mocks: B's model on the canary side.
    expectServed([...first, ...second], side);

    await recorded(stageRequests);
    const promote = await twoKeys(['rollout', 'promote']);
    expectExit(promote, 0);
    expect(promote.stdout).toContain('(promote), requested by operator, approved by approver');

    const st = await cli(['rollout', 'status']);
    expectExit(st, 0);
    expect(st.stdout).toMatch(new RegExp(`production +rings-e2e@2 +${candidateId}`));
    expect(st.stdout).toContain('candidate   none');
    const s = await adminGet<Status>('/rollout');
    expect(s.production.id).toBe(candidateId);
    expect(s.candidate).toBeNull();
    expect(s.previous[0]?.id).toBe(productionId);

    // Production now routes external traffic to B itself; there is no candidate to shadow.
    stageRequests = 0;
    const promoted = await send(mix({ web: 4, jobs: 4 }));
    expectServed(promoted, (x) => (x.app === 'web' ? 'B' : 'A'));
    const after = await recorded(stageRequests);
    expect(after.stats.candidateEvaluations).toBe(0);
    expect(after.stats.canary.requests).toBe(0);
  });

  it('6. manual rollback: production is P again, external traffic back on A, recorded with a time', async () => {
    const rb = await cli(['rollout', 'rollback', '--reason', 'manual rollback in the e2e scenario']);
    expectExit(rb, 0);
    expect(rb.stdout).toMatch(new RegExp(`rolled back: production is ${productionId} \\(\\d+ ms\\)`));
    const s = await adminGet<Status>('/rollout');
    expect(s.production.id).toBe(productionId);
    expect(s.candidate).toBeNull();
    expect(s.lastRollback).toMatchObject({
      by: 'operator',
      reason: 'manual rollback in the e2e scenario',
      to: { production: productionId },
    });
    expect(Date.parse(s.lastRollback!.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(s.lastRollback!.timeToRestoreMs).toBeGreaterThanOrEqual(0);
    expect(s.lastRollback!.timeToRestoreMs).toBeLessThan(1000);

    stageRequests = 0;
    const sent = await send(mix({ web: 4, jobs: 2 }));
    expectServed(sent, () => 'A');
  });

  it('7. automatic rollback: B fails for canary traffic, the error-rate trigger restores production', async () => {
    const shadow = await cli(['rollout', 'shadow', candidateId]);
    expectExit(shadow, 0);
    stageRequests = 0;
    // A new stage has new statistics: earlier acknowledgements do not carry over.
    const sent = await send(mix({ web: 12, jobs: 10 }));
    expectServed(sent, () => 'A');
    await recorded(stageRequests);
    const divergence = await cli(['rollout', 'divergence']);
    expectExit(divergence, 0);
    const groups = parseDivergence(divergence.stdout);
    expect(groups.map((g) => [g.key, g.count, g.acked])).toEqual([
      ['external-apps → external-to-b', 12, false],
    ]);
    const ack = await cli(['rollout', 'ack', groups[0]!.key, '--reason', 'intended reroute, second round']);
    expectExit(ack, 0);
    const canary = await twoKeys(['rollout', 'canary', '--apps', 'web']);
    expectExit(canary, 0);

    const healthy = await send(mix({ web: 2, jobs: 2 }));
    expectServed(healthy, (s) => (s.app === 'web' ? 'B' : 'A'));

    mockB.fault = { status: 500 };
    const faultAt = Date.now();
    try {
      const failed: Sent[] = [];
      const deadline = Date.now() + 10_000;
      let s = await adminGet<Status>('/rollout');
      while (s.candidate && Date.now() < deadline) {
        const batch = await pool([...mix({ web: 3, jobs: 1 })], 4);
        failed.push(...batch);
        s = await adminGet<Status>('/rollout');
      }
      expect(s.candidate, JSON.stringify(s, null, 2)).toBeNull();
      // The canary's requests failed (the provider's 500 passed through, or the breaker's 503); production's did not.
      const web = failed.filter((x) => x.app === 'web');
      expect(web.length).toBeGreaterThanOrEqual(5);
      expect(web.filter((x) => x.status >= 500).length).toBeGreaterThanOrEqual(5);
      for (const x of failed.filter((y) => y.app === 'jobs')) expect(x.status).toBe(200);

      expect(s.production.id).toBe(productionId);
      expect(s.lastRollback).toMatchObject({
        by: 'auto-rollback',
        trigger: { trigger: 'error_rate' },
        to: { production: productionId },
      });
      // Within a few seconds of the first failure (window 3 s, 5 samples, checked every 200 ms).
      expect(Date.parse(s.lastRollback!.at) - faultAt).toBeLessThan(5000);
      expect(s.lastRollback!.trigger!.message).toMatch(
        /^canary error rate \d+\.\d% > 2 × production's 0\.0% over 3s$/,
      );
      const f = s.lastRollback!.trigger!.figures;
      expect(f.canaryErrorRate).toBeGreaterThanOrEqual(0.2);
      expect(f.productionErrorRate).toBe(0);
      expect(f.canaryRequests).toBeGreaterThanOrEqual(5);
      expect(f.windowS).toBe(3);

      // Web is served by production (A) again, and succeeds, while B still fails.
      const back = await send(mix({ web: 4, jobs: 2 }));
      expectServed(back, () => 'A');
    } finally {
      mockB.fault = undefined;
    }
    expect(await stopGateway(gw)).toBe(0);
  });
});
