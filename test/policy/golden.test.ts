import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileBundle } from '../../src/policy/compile.ts';
import { evaluate } from '../../src/policy/evaluate.ts';
import { CaseFileError, caseInput, formatResults, loadCases, runCases } from '../../src/policy/golden.ts';
import { loadBundleFile } from '../../src/policy/load.ts';

const BUNDLES = join(import.meta.dirname, '..', '..', 'policy-bundles');
const compiled = (name: string) => compileBundle(loadBundleFile(join(BUNDLES, name, 'bundle.yaml')));

describe.each(['production', 'candidate'])('the %s example bundle', (name) => {
  const cb = compiled(name);
  const cases = loadCases(join(BUNDLES, name, 'cases'));

  it('passes its golden set', () => {
    const failed = runCases(cb, cases).filter((r) => !r.passed);
    // The message lists every mismatch, as `ringfence bundle test` prints them.
    expect(failed.length, formatResults(failed)).toBe(0);
  });

  it('has at least 30 cases, each with a unique name', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('covers every rule of the bundle', () => {
    const b = cb.loaded.bundle;
    const hit = new Set<string>();
    for (const c of cases) {
      for (const r of c.expect.matchedRules ?? []) hit.add(r);
      if (c.expect.deny) hit.add(c.expect.deny);
      for (const [id, v] of Object.entries({ ...c.expect.verdicts, ...c.expect.output }))
        if (v !== 'pass' && v !== 'skip') hit.add(id);
      for (const id of c.expect.budgets ?? []) hit.add(id);
      // An allowlist is exercised by any case of its class: allowed or refused, the model was checked.
      if (c.expect.class && c.expect.route) hit.add(`models.${c.expect.class}`);
    }
    const rules = [
      ...b.classification.rules.map((r) => r.id),
      ...b.routing.map((r) => r.id),
      ...b.guardrails.input.map((g) => g.id),
      ...b.guardrails.output.map((g) => g.id),
      ...b.tools.map((t) => t.id),
      ...b.budgets.map((t) => t.id),
      ...Object.keys(b.models).map((c) => `models.${c}`),
    ];
    const missing = rules.filter((r) => !hit.has(r));
    expect(missing).toEqual([]);
  });
});

describe('the candidate golden set shows the candidate differs from production', () => {
  const production = compiled('production');
  const candidate = compiled('candidate');
  const differing = loadCases(join(BUNDLES, 'candidate', 'cases')).filter((c) =>
    c.name.startsWith('differs from production'),
  );

  it('has cases for each intended difference', () => {
    expect(differing.length).toBeGreaterThanOrEqual(8);
  });

  it.each(differing.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const a = evaluate(production, caseInput(c));
    const b = evaluate(candidate, caseInput(c));
    const outcome = (d: typeof a) => ({
      action: d.action,
      deny: d.deny?.rule,
      model: d.route.model,
      redacted: d.verdicts.filter((v) => v.verdict === 'redact').flatMap((v) => v.kinds),
    });
    expect(outcome(b)).not.toEqual(outcome(a));
  });
});

describe('runCases and formatResults', () => {
  const cb = compiled('production');
  const dir = mkdtempSync(join(tmpdir(), 'rf-golden-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);

  it('reports a wrong expectation with the figure named', () => {
    write(
      'wrong.yaml',
      `- name: a secret is wrongly expected to be redacted
  request:
    app: { id: eng-copilot, tags: [internal] }
    api: openai.chat
    body:
      model: mock-gpt
      messages: [{ role: user, content: "key AKIAIOSFODNN7EXAMPLE" }]
  expect:
    class: external
    action: redact
    deny: watchlist
    matchedRules: [secrets-block, watchlist]
    verdicts: { secrets-block: redact, no-such-guardrail: pass, injection-external: pass }
    route: { provider: private, model: private-llm }
    budgets: [app-tokens, batch-pool]
    logging: none
- name: this one is right
  request:
    app: { id: eng-copilot, tags: [internal] }
    api: openai.chat
    body: { model: mock-gpt, messages: [{ role: user, content: "hello" }] }
  expect: { action: allow }
`,
    );
    const results = runCases(cb, loadCases(dir));
    expect(results.map((r) => r.passed)).toEqual([false, true]);
    expect(results[0]!.mismatches).toEqual([
      'expected class external, got internal-general',
      'expected action redact, got deny',
      'expected route model private-llm, got mock-gpt',
      'expected route provider private, got (none)',
      'expected deny by watchlist, got secrets-block',
      'expected matchedRules [secrets-block, watchlist], got [secrets-block]',
      'expected input guardrail secrets-block redact, got block',
      'expected input guardrail no-such-guardrail pass, but the bundle has no input guardrail no-such-guardrail',
      'expected input guardrail injection-external pass, got skip',
      'expected budgets [app-tokens, batch-pool], got [app-tokens]',
      'expected logging none, got redacted',
    ]);
    const text = formatResults(results);
    expect(text).toContain(
      '✗ a secret is wrongly expected to be redacted\n    expected class external, got internal-general\n',
    );
    expect(text).toContain('✓ this one is right\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });

  it('reports tool and output mismatches', () => {
    rmSync(join(dir, 'wrong.yaml'));
    write(
      'tools.yaml',
      `name: tools and output
request:
  app: { id: support-bot, tags: [external] }
  api: openai.chat
  body:
    model: mock-gpt-mini
    messages: [{ role: user, content: "hi" }]
    tools: [{ type: function, function: { name: delete_account } }]
response: "mail me at a.b@example.com"
expect:
  tools: { delete_account: allow, not_offered: deny }
  output: { output-pii-external: pass, output-secrets: pass }
`,
    );
    const [r] = runCases(cb, loadCases(dir));
    expect(r!.mismatches).toEqual([
      'expected tool delete_account allow, got deny (by external-no-mutation)',
      'expected tool not_offered deny, but the request does not offer not_offered',
      'expected output guardrail output-pii-external pass, got redact',
    ]);
    rmSync(join(dir, 'tools.yaml'));
  });

  it('turns an exception during evaluation into a failed case', () => {
    const throwing = {
      ...cb,
      classRules: [
        {
          id: 'boom',
          cls: 'x',
          confidence: 1,
          test: () => {
            throw new Error('no such key: workload');
          },
        },
      ],
    };
    const [c] = loadCases(join(BUNDLES, 'production', 'cases'));
    const [r] = runCases(throwing, [c!]);
    expect(r).toMatchObject({ passed: false, mismatches: ['evaluation threw: no such key: workload'] });
  });
});

describe('loadCases', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rf-cases-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file and the path of every problem', () => {
    writeFileSync(
      join(dir, 'a.yaml'),
      `- name: one
  request: { app: { id: x }, api: openai.chat, body: {} }
  expect: { action: permit }
- name: two
  request: { app: { id: x }, api: openai.chats, body: {} }
  expect: { class: c, colour: red }
`,
    );
    writeFileSync(
      join(dir, 'b.yaml'),
      `name: one\nrequest: { app: { id: x }, api: openai.chat, body: {} }\nexpect: {}\n`,
    );
    writeFileSync(join(dir, 'c.yml'), 'name: [unclosed\n');
    const valid = (name: string) =>
      `- name: ${name}\n  request: { app: { id: x }, api: openai.chat, body: {} }\n  expect: { class: c }\n`;
    writeFileSync(join(dir, 'd.yaml'), valid('dup'));
    writeFileSync(join(dir, 'e.yaml'), valid('other') + valid('dup'));
    writeFileSync(join(dir, 'notes.txt'), 'not a case');
    let err: unknown;
    try {
      loadCases(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CaseFileError);
    const issues = (err as CaseFileError).issues;
    expect(issues[0]).toMatch(/^a\.yaml: \[0\]\.expect\.action: /);
    expect(issues[1]).toMatch(/^a\.yaml: \[1\]\.request\.api: /);
    expect(issues[2]).toBe('a.yaml: [1].expect: unknown field(s) colour');
    expect(issues[3]).toBe('b.yaml: expect: expect needs at least one expectation');
    expect(issues[4]).toMatch(/^c\.yml: YAML: /);
    expect(issues[5]).toBe('e.yaml: [1].name: duplicate case name "dup" (first in d.yaml [0])');
    expect(issues).toHaveLength(6);
  });

  it('refuses a directory without cases', () => {
    const empty = mkdtempSync(join(tmpdir(), 'rf-empty-'));
    expect(() => loadCases(empty)).toThrow(/no case files/);
    expect(() => loadCases(join(empty, 'missing'))).toThrow(/cannot read directory: ENOENT/);
    rmSync(empty, { recursive: true });
  });
});
