import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadBundleFile } from '../../src/policy/load.ts';
import { killAll, ROOT, spawnRingfence } from '../helpers/processes.ts';

/** `ringfence gate evaluate` and `ringfence override report` as a pipeline runs them: real processes, real files. */

const CANDIDATE = 'policy-bundles/candidate/bundle.yaml';
const PRODUCTION = 'policy-bundles/production/bundle.yaml';
const CASES = 'policy-bundles/candidate/cases';
const FIX = 'test/fixtures/gate';
const NOW = '2026-11-05T00:00:00Z';

const candidateId = loadBundleFile(join(ROOT, CANDIDATE)).id;
const productionId = loadBundleFile(join(ROOT, PRODUCTION)).id;
const template = parseYaml(readFileSync(join(ROOT, FIX, 'override-error-rate.yaml'), 'utf8')) as Record<
  string,
  unknown
>;

const tmp = mkdtempSync(join(tmpdir(), 'rf-gate-'));
let n = 0;
/** A fresh --overrides directory holding the fixture override bound to the shipped bundles, each patch applied. */
function overridesDir(...patches: Record<string, unknown>[]): string {
  const dir = join(tmp, `ovr-${++n}`);
  mkdirSync(dir);
  patches.forEach((p, i) => {
    const o: Record<string, unknown> = {
      ...template,
      candidateBundleId: candidateId,
      controlBundleId: productionId,
      ...p,
    };
    const name = `${String(i).padStart(2, '0')}-${String(o.id)}`;
    if (i % 2) writeFileSync(join(dir, `${name}.json`), JSON.stringify(o, null, 2));
    else writeFileSync(join(dir, `${name}.yaml`), toYaml(o));
  });
  return dir;
}

async function run(args: string[], env: Record<string, string> = {}) {
  const p = spawnRingfence(args, { env, killAfterMs: 25_000 });
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}
const evaluate = (...args: string[]) => run(['gate', 'evaluate', '--now', NOW, ...args]);
const base = ['--candidate', CANDIDATE, '--production', PRODUCTION, '--cases', CASES];

afterAll(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('ringfence gate evaluate', () => {
  it('exit 0 ALLOW: valid, cases pass, nothing loosened, every measured gate passes; the table names the gates', async () => {
    const r = await evaluate(...base, '--stats', `${FIX}/stats-pass.json`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gate\s+observed\s+threshold\s+verdict\s+samples\s+outcome\s+override$/m);
    for (const g of [
      'bundle_valid',
      'golden_cases',
      'guardrail_loosening',
      'min_samples',
      'error_rate_delta',
      'latency_p95_delta_ms',
    ])
      expect(r.stdout).toMatch(new RegExp(`^${g}\\s+\\S`, 'm'));
    expect(r.stdout).toMatch(/^golden_cases\s+(\d+)\/\1 passed\s+all pass\s+PASS/m);
    expect(r.stdout).toMatch(/^error_rate_delta\s+0\.0011\s+<= 0\.01\s+PASS\s+1800\s+ALLOW/m);
    expect(r.stdout).toMatch(/verdict: ALLOW \(exit 0\)\n$/);
  });

  it('exit 1 BLOCK: a golden case fails (production bundle against the candidate cases)', async () => {
    const r = await evaluate('--candidate', PRODUCTION, '--cases', CASES);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^golden_cases\s+\d+\/\d+ passed\s+all pass\s+FAIL\s+\d+\s+BLOCK\s+non-overridable/m,
    );
    expect(r.stdout).toMatch(/verdict: BLOCK \(exit 1\): golden_cases/);
  });

  it('exit 1 BLOCK: the candidate does not validate', async () => {
    const r = await evaluate('--candidate', `${FIX}/invalid.yaml`, '--cases', CASES);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^bundle_valid\s+1 problem\s+validates and compiles\s+FAIL/m);
    expect(r.stdout).toMatch(/guardrails\.input\[0\]\.action/);
  });

  it('exit 1 BLOCK: a non-overridable gate fails, even with a valid override naming it', async () => {
    const dir = overridesDir({
      transition: 'shadow_to_canary',
      gates: [
        {
          name: 'candidate_policy_error_rate',
          observed: 0.0019,
          threshold: '<= 0',
          verdict: 'fail',
          confidenceNote: 'ten throws out of 5200, all one CEL rule on a missing metadata key',
        },
      ],
    });
    const r = await evaluate(...base, '--stats', `${FIX}/stats-policy-error.json`, '--overrides', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^candidate_policy_error_rate\s+0\.0019\s+<= 0\s+FAIL\s+5200\s+BLOCK\s+non-overridable/m,
    );
    expect(r.stdout).toMatch(
      /candidate_policy_error_rate: non-overridable: ovr_2026-11-04-error-rate names it/,
    );
    expect(r.stdout).toMatch(/gate candidate_policy_error_rate is non-overridable: no override can pass it/);
  });

  it('exit 2 REQUIRE_OVERRIDE on failed gates; exit 0 once a valid override covers them', async () => {
    const bare = await evaluate(...base, '--stats', `${FIX}/stats-fail.json`);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toMatch(
      /^error_rate_delta\s+0\.0342\s+<= 0\.01\s+FAIL\s+740\s+REQUIRE_OVERRIDE\s+—/m,
    );
    expect(bare.stdout).toMatch(/^min_samples\s+740\s+>= 1000\s+INSUFFICIENT_DATA\s+740\s+REQUIRE_OVERRIDE/m);
    expect(bare.stdout).toMatch(/verdict: REQUIRE_OVERRIDE \(exit 2\): min_samples, error_rate_delta/);

    const covered = await evaluate(
      ...base,
      '--stats',
      `${FIX}/stats-fail.json`,
      '--overrides',
      overridesDir({}),
    );
    expect(covered.code).toBe(0);
    expect(covered.stdout).toMatch(
      /^error_rate_delta\s+0\.0342\s+<= 0\.01\s+FAIL\s+740\s+ALLOW\s+ovr_2026-11-04-error-rate/m,
    );
    expect(covered.stdout).toMatch(
      /✓ ovr_2026-11-04-error-rate \(00-ovr_2026-11-04-error-rate\.yaml\) covers/,
    );
  });

  it('exit 2 when every override is invalid, each listed as ignored with its reason', async () => {
    const dir = overridesDir(
      { id: 'ovr_wrong-sha', candidateBundleId: `sha256:${'0'.repeat(64)}` },
      { id: 'ovr_expired', expiry: { expiresAt: '2026-11-04T12:00:00Z' } },
      { id: 'ovr_one-key', requestedBy: 'Bob@Example.com', approvedBy: 'bob@example.com ' },
      { id: 'ovr_backdated', approvedAt: '2026-11-04T08:00:00Z' },
      {
        id: 'ovr_other-gate',
        gates: [{ ...(template.gates as object[])[0]!, name: 'latency_p50_delta_ms' }],
      },
    );
    writeFileSync(join(dir, 'zz-broken.yaml'), 'apiVersion: ringfence/v1\nkind: GateOverride\nid: nope\n');
    const r = await evaluate(...base, '--stats', `${FIX}/stats-fail.json`, '--overrides', dir);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toMatch(/✓/);
    const section = r.stdout.slice(r.stdout.indexOf('overrides:'));
    expect(section).toMatch(
      /✗ ovr_wrong-sha .* ignored:\n\s+- candidateBundleId sha256:0000000000\S* is not the candidate/,
    );
    expect(section).toMatch(/✗ ovr_expired .* ignored:\n\s+- expired at 2026-11-04T12:00:00Z/);
    expect(section).toMatch(/✗ ovr_one-key .* ignored:\n\s+- requested and approved by the same identity/);
    expect(section).toMatch(
      /✗ ovr_backdated .* ignored:\n\s+- approvedAt 2026-11-04T08:00:00Z is not after requestedAt/,
    );
    expect(section).toMatch(
      /✗ ovr_other-gate .* ignored:\n\s+- names none of the gates that need an override/,
    );
    expect(section).toMatch(
      /✗ \(invalid\) \(zz-broken\.yaml\) ignored:\n\s+- not a valid GateOverride: id: expected ovr_<id>/,
    );
  });

  it('exit 2 on loosening vs production (budgets raised, fail-open); exit 0 with an override of guardrail_loosening', async () => {
    const loose = ['--candidate', `${FIX}/loosened.yaml`, '--production', PRODUCTION, '--cases', CASES];
    const r = await evaluate(...loose, '--stats', `${FIX}/stats-pass.json`);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^guardrail_loosening\s+2\s+= 0 loosened\s+FAIL\s+\d+\s+REQUIRE_OVERRIDE/m);
    expect(r.stdout).toMatch(
      /loosened vs production:\n\s+- budget external-end-user: maxTokens 20000 → 50000/,
    );

    const looseId = loadBundleFile(join(ROOT, FIX, 'loosened.yaml')).id;
    const dir = overridesDir({
      id: 'ovr_loosening',
      candidateBundleId: looseId,
      gates: [
        {
          name: 'guardrail_loosening',
          observed: 2,
          threshold: '= 0 loosened',
          verdict: 'fail',
          confidenceNote: 'two budget changes reviewed line by line',
        },
      ],
    });
    const ok = await evaluate(...loose, '--stats', `${FIX}/stats-pass.json`, '--overrides', dir, '--json');
    expect(ok.code).toBe(0);
    const body = JSON.parse(ok.stdout) as {
      verdict: string;
      exitCode: number;
      candidate: { id: string };
      rows: { gate: string; coveredBy: string | null; outcome: string }[];
      loosened: unknown[];
    };
    expect(body).toMatchObject({ verdict: 'ALLOW', exitCode: 0, candidate: { id: looseId } });
    expect(body.rows.find((x) => x.gate === 'guardrail_loosening')).toMatchObject({
      coveredBy: 'ovr_loosening',
      outcome: 'ALLOW',
    });
    expect(body.loosened).toHaveLength(2);
  });

  it('exit 1 when the stats were measured for another candidate', async () => {
    const r = await evaluate('--candidate', CANDIDATE, '--stats', `${FIX}/rollout-other-candidate.json`);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^gate_table_candidate\s+sha256:cdcdcdcdcdcd…\s+= sha256:\S+\s+FAIL/m);
  });

  it('exit 3 on usage and input errors', async () => {
    const cases: [string[], RegExp][] = [
      [['gate', 'evaluate'], /needs --candidate FILE/],
      [['gate', 'evaluate', '--candidate', CANDIDATE, '--stats', `${FIX}/nope.json`], /cannot read: ENOENT/],
      [['gate', 'evaluate', '--candidate', CANDIDATE, '--stats', `${FIX}/invalid.yaml`], /not JSON/],
      [['gate', 'evaluate', '--candidate', CANDIDATE, '--stats', `${FIX}/../gate`], /cannot read: EISDIR/],
      [['gate', 'evaluate', '--candidate', CANDIDATE, '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, err] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(3);
      expect(r.stderr).toMatch(err);
    }
  });
});

/** A stand-in admin API: the ring status, production's bundle, the override list, behind a bearer token. */
describe('over the admin API', () => {
  let server: Server;
  let url = '';
  const hits: string[] = [];
  beforeAll(async () => {
    const prod = loadBundleFile(join(ROOT, PRODUCTION));
    const stats = JSON.parse(readFileSync(join(ROOT, FIX, 'stats-fail.json'), 'utf8'));
    const overrides = [1, 5, 12].map((d, i) => ({
      ...template,
      id: `ovr_admin-${i}`,
      approvedAt: new Date(Date.parse('2026-11-20T12:00:00Z') - d * 86_400_000).toISOString(),
      requestedAt: new Date(Date.parse('2026-11-20T11:00:00Z') - d * 86_400_000).toISOString(),
    }));
    server = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== 'Bearer t0k3n')
        return send(401, { error: { code: 'unauthorized', message: 'a valid admin token is required' } });
      if (req.url === '/admin/v1/rollout')
        return send(200, {
          version: 7,
          production: { id: prod.id, name: 'corp', version: '2026.11.1' },
          candidate: { id: candidateId, name: 'corp', version: '2026.11.2', stage: 'canary' },
          gates: stats,
        });
      if (req.url === `/admin/v1/bundles/${encodeURIComponent(prod.id)}`)
        return send(200, { id: prod.id, name: 'corp', version: '2026.11.1', bundle: prod.bundle });
      if (req.url === '/admin/v1/overrides') return send(200, { overrides });
      return send(404, { error: { code: 'route_not_found', message: 'no route' } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('gate evaluate reads the live gate table and production bundle', async () => {
    const r = await evaluate('--candidate', CANDIDATE, '--cases', CASES, '--admin', url, '--token', 't0k3n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(2);
    expect(hits).toContain('GET /admin/v1/rollout');
    expect(hits.some((h) => h.startsWith('GET /admin/v1/bundles/sha256'))).toBe(true);
    expect(r.stdout).toMatch(/^guardrail_loosening\s+0\s+= 0 loosened\s+PASS/m);
    expect(r.stdout).toMatch(/^error_rate_delta\s+0\.0342\s+<= 0\.01\s+FAIL\s+740\s+REQUIRE_OVERRIDE/m);
    const bad = await evaluate('--candidate', CANDIDATE, '--admin', url, '--token', 'wrong');
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/a valid admin token is required/);
  });

  it('override report reads GET /admin/v1/overrides', async () => {
    const r = await run([
      'override',
      'report',
      '--admin',
      url,
      '--token',
      't0k3n',
      '--now',
      '2026-11-20T12:00:00Z',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^error_rate_delta\s+3\s+3\s/m);
    expect(r.stdout).toMatch(
      /⚠ error_rate_delta is effectively deprecated: overridden 3 times in the last 30 days/,
    );
    expect(r.stdout).toMatch(/⚠ min_samples is effectively deprecated/);
  });
});

describe('ringfence override report', () => {
  /** Overrides of error_rate_delta approved `days` before 2026-11-30, as journal lines. */
  const records = (days: number[], gate = 'error_rate_delta') =>
    days.map((d, i) => ({
      ...template,
      id: `ovr_${gate.replaceAll('_', '-')}-${i}`,
      gates: [{ ...(template.gates as object[])[0]!, name: gate }],
      requestedBy: `req${i}`,
      approvedAt: new Date(Date.parse('2026-11-30T00:00:00Z') - d * 86_400_000).toISOString(),
      requestedAt: new Date(Date.parse('2026-11-29T23:00:00Z') - d * 86_400_000).toISOString(),
    }));

  it('from a state dir journal: 3 in 30 days flagged, 2 not, older ones not counted', async () => {
    const state = join(tmp, 'state');
    mkdirSync(join(state, 'journals'), { recursive: true });
    const lines = [
      ...records([2, 9, 16]),
      ...records([3, 4], 'latency_p95_delta_ms'),
      ...records([20, 35, 40], 'min_samples'),
    ].map((o) => JSON.stringify(o));
    // A torn last line (a crash mid-append) is left out.
    writeFileSync(join(state, 'journals', 'overrides.jsonl'), `${lines.join('\n')}\n{"apiVersion":"ring`);
    const r = await run(['override', 'report', '--state-dir', state, '--now', '2026-11-30T00:00:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/last 30 days .*: 6\n/);
    expect(r.stdout).toMatch(
      /^error_rate_delta\s+3\s+3\s+2026-11-28T00:00:00Z\s+ovr_error-rate-delta-0\s+req0, req1, req2/m,
    );
    expect(r.stdout).toMatch(/^latency_p95_delta_ms\s+2\s+2\s/m);
    expect(r.stdout).toMatch(/^min_samples\s+1\s+1\s/m);
    expect(r.stdout).toMatch(/⚠ error_rate_delta is effectively deprecated/);
    expect(r.stdout).not.toMatch(/⚠ (latency_p95_delta_ms|min_samples)/);

    const json = await run([
      'override',
      'report',
      '--state-dir',
      state,
      '--now',
      '2026-11-30T00:00:00Z',
      '--days',
      '60',
      '--json',
    ]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as {
      gates: { gate: string; count: number }[];
      deprecated: { gate: string }[];
    };
    expect(body.gates.find((g) => g.gate === 'min_samples')!.count).toBe(3);
    expect(body.deprecated.map((d) => d.gate)).toEqual(['error_rate_delta']);
  });

  it('from a directory of override files; usage errors exit 2, unreadable sources 1', async () => {
    const dir = join(tmp, 'report-dir');
    mkdirSync(dir);
    records([1, 2, 3]).forEach((o, i) => {
      writeFileSync(join(dir, `o${i}.yaml`), toYaml(o));
    });
    const r = await run(['override', 'report', '--dir', dir, '--now', '2026-11-30T00:00:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/⚠ error_rate_delta is effectively deprecated/);
    expect((await run(['override', 'report'])).code).toBe(2);
    expect((await run(['override', 'report', '--dir', dir, '--state-dir', dir])).code).toBe(2);
    const missing = await run(['override', 'report', '--state-dir', join(tmp, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no such state directory/);
  });
});
