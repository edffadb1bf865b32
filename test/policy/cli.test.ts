import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'ringfence.js');
/** Node 24 runs the TypeScript sources; under npm/npx that is this process's node, else the pinned one. */
const NODE =
  Number(process.versions.node.split('.')[0]) >= 24
    ? process.execPath
    : join(ROOT, 'node_modules', 'node', 'bin', 'node');
const PRODUCTION = 'policy-bundles/production/bundle.yaml';
const CANDIDATE = 'policy-bundles/candidate/bundle.yaml';

/** Runs the real `ringfence` CLI in a child process and collects its output. */
function ringfence(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'rf-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ringfence bundle validate', () => {
  it('accepts the shipped bundles against the shipped config, printing id, name and version', async () => {
    for (const [file, version] of [
      [PRODUCTION, '2026.11.1'],
      [CANDIDATE, '2026.11.2'],
    ] as const) {
      const r = await ringfence('bundle', 'validate', file, '--config', 'config/default.yaml');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`✓ ${file} is valid`);
      expect(r.stdout).toMatch(/name: +corp\n/);
      expect(r.stdout).toContain(`version: ${version}`);
      expect(r.stdout).toMatch(/id: +sha256:[0-9a-f]{64}\n/);
    }
  });

  it('lists every problem with its path and exits 1', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(
      file,
      `apiVersion: ringfence/v1
kind: PolicyBundle
metadata: { name: bad, version: "1" }
classes: [a]
classification:
  default: a
  rules:
    - { id: r, when: { expr: 'request.tokens + "x" > 1' }, class: b }
guardrails:
  input:
    - { id: g, detector: regex, patterns: ['('], action: block }
    - { id: g, detector: pii, action: flag }
`,
    );
    const r = await ringfence('bundle', 'validate', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`✗ ${file} is invalid (4 problems):`);
    expect(r.stderr).toContain('  - classification.rules[0].class: unknown class "b" (declared: a)');
    expect(r.stderr).toContain(
      '  - guardrails.input[1].id: duplicate rule id "g" (first at guardrails.input[0])',
    );
    expect(r.stderr).toContain('  - guardrails.input[0]: regex detector: pattern #0 /(/ does not compile');
    expect(r.stderr).toContain('  - classification.rules[0].when.expr: no such overload: int + string');
  });

  it('with --config, names a provider the config does not have', async () => {
    const config = join(tmp, 'config.yaml');
    writeFileSync(
      config,
      `providers:
  mock: { kind: mock, models: [mock-gpt] }
applications:
  - { id: a, keys: [{ id: k, sha256: "${'a'.repeat(64)}" }] }
`,
    );
    const r = await ringfence('bundle', 'validate', PRODUCTION, '--config', config);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('routing[0].route.provider: unknown provider "private" (configured: mock)');
  });

  it('exits 1 for a missing file and 2 for bad usage', async () => {
    const missing = await ringfence('bundle', 'validate', join(tmp, 'nope.yaml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read file: ENOENT');
    expect((await ringfence('bundle', 'validate')).code).toBe(2);
    expect((await ringfence('bundle', 'frobnicate')).code).toBe(2);
    expect((await ringfence('bundle', 'validate', PRODUCTION, '--bogus')).code).toBe(2);
  });
});

describe('ringfence bundle test', () => {
  it.each([
    [PRODUCTION, 'policy-bundles/production/cases'],
    [CANDIDATE, 'policy-bundles/candidate/cases'],
  ])('passes the shipped golden set of %s', async (bundle, cases) => {
    const r = await ringfence('bundle', 'test', bundle, '--cases', cases);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\n\d+ passed, 0 failed\n$/);
    expect(r.stdout).not.toContain('✗');
  });

  it('exits 1 and names the mismatch when a case fails', async () => {
    const cases = mkdtempSync(join(tmp, 'cases-'));
    writeFileSync(
      join(cases, 'cases.yaml'),
      `- name: plain question is allowed
  request:
    app: { id: eng-copilot, tags: [internal] }
    api: openai.chat
    body: { model: mock-gpt, messages: [{ role: user, content: "hello" }] }
  expect: { action: allow, class: internal-general }
- name: a card number is wrongly expected to pass for external apps
  request:
    app: { id: support-bot, tags: [external] }
    api: anthropic.messages
    body: { model: mock-claude, max_tokens: 10, messages: [{ role: user, content: "card 4111 1111 1111 1111" }] }
  expect: { action: allow }
`,
    );
    const r = await ringfence('bundle', 'test', PRODUCTION, '--cases', cases);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✓ plain question is allowed\n');
    expect(r.stdout).toContain(
      '✗ a card number is wrongly expected to pass for external apps\n    expected action allow, got deny\n',
    );
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });

  it('exits 1 when the case files are invalid, naming file and path', async () => {
    const cases = mkdtempSync(join(tmp, 'bad-cases-'));
    writeFileSync(
      join(cases, 'x.yaml'),
      'name: x\nrequest: { app: { id: a }, api: openai.chat, body: {} }\nexpect: { verdict: {} }\n',
    );
    const r = await ringfence('bundle', 'test', PRODUCTION, '--cases', cases);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('x.yaml: expect: unknown field(s) verdict');
  });

  it('needs --cases', async () => {
    expect((await ringfence('bundle', 'test', PRODUCTION)).code).toBe(2);
  });
});

describe('ringfence bundle diff', () => {
  it('prints the changes and exits 0', async () => {
    const r = await ringfence('bundle', 'diff', PRODUCTION, CANDIDATE);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('corp 2026.11.1 → corp 2026.11.2');
    expect(r.stdout).toContain('~ metadata.version: 2026.11.1 → 2026.11.2');
    expect(r.stdout).toContain('+ route batch-mini added');
    expect(r.stdout).toContain('~ guardrail pii-block-external: kinds adds pii.phone (stricter)');
    expect(r.stdout).toContain('+ guardrail role-spoofing added');
    expect(r.stdout).toContain('7 changes, 0 loosening the policy');
    expect(r.stdout).not.toContain('[LOOSENED]');
  });

  it('marks loosening in the reverse direction', async () => {
    const r = await ringfence('bundle', 'diff', CANDIDATE, PRODUCTION);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('- guardrail role-spoofing removed: input no longer checked for regex');
    expect(r.stdout).toContain('[LOOSENED]');
    expect(r.stdout).toContain('7 changes, 3 loosening the policy');
  });

  it('--json prints the diff as data', async () => {
    const r = await ringfence('bundle', 'diff', PRODUCTION, CANDIDATE, '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.loosened).toBe(false);
    expect(d.from.version).toBe('2026.11.1');
    expect(d.changes).toHaveLength(7);
    expect(d.changes[0]).toEqual({
      section: 'metadata',
      op: 'changed',
      id: 'version',
      field: 'version',
      before: '2026.11.1',
      after: '2026.11.2',
      explanation: 'metadata.version: 2026.11.1 → 2026.11.2',
      loosened: false,
    });
  });

  it('needs two files', async () => {
    expect((await ringfence('bundle', 'diff', PRODUCTION)).code).toBe(2);
  });
});

it('the usage text lists the bundle commands', async () => {
  const r = await ringfence('help');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('bundle validate FILE [--config CONFIG]');
  expect(r.stdout).toContain('bundle test FILE --cases DIR');
  expect(r.stdout).toContain('bundle diff A B [--json]');
});
