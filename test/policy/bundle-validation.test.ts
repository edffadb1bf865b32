import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileBundle } from '../../src/policy/compile.ts';
import { BundleError, parseBundle } from '../../src/policy/load.ts';
import { validateBundleText } from '../../src/policy/validate.ts';

/** A small valid bundle; each test breaks one thing in it. */
const BASE = `apiVersion: ringfence/v1
kind: PolicyBundle
metadata: { name: t, version: "1" }
classes: [external, internal]
classification:
  default: internal
  rules:
    - { id: ext, when: { app.tags: [external] }, class: external }
    - { id: sens, when: { input.detects: [pii.email] }, class: internal }
routing:
  - { id: r1, when: { class: [external] }, route: { provider: mock, model: m } }
guardrails:
  input:
    - { id: g0, detector: secrets, action: block }
    - { id: g1, detector: pii, action: redact }
    - { id: g2, detector: keywords, keywords: [x], action: flag }
    - { id: g3, detector: regex, patterns: ['a+'], action: block }
`;

function edit(...pairs: Array<[string, string]>): string {
  let text = BASE;
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`test bug: ${from} not in the base bundle`);
    text = text.replace(from, to);
  }
  return text;
}

function issuesOf(text: string, providers?: string[]): string[] {
  const v = validateBundleText(text, 'test.yaml', providers ? { providers } : {});
  return v.ok ? [] : v.issues;
}

describe('bundle validation names the path of each problem', () => {
  it('accepts the base bundle', () => {
    expect(issuesOf(BASE)).toEqual([]);
  });

  it('an unknown field, at the root and inside a list entry', () => {
    const text = edit(
      ['kind: PolicyBundle', 'kind: PolicyBundle\nextra: 1'],
      ['action: block }', 'action: block, colour: red }'],
    );
    expect(issuesOf(text)).toEqual([
      'guardrails.input[0]: unknown field(s) colour',
      '(root): unknown field(s) extra',
    ]);
  });

  it('a bad enum value', () => {
    expect(issuesOf(edit(['keywords: [x], action: flag', 'keywords: [x], action: warn']))).toEqual([
      'guardrails.input[2].action: Invalid option: expected one of "block"|"redact"|"flag"',
    ]);
  });

  it('a duplicate rule id, across sections too', () => {
    expect(issuesOf(edit(['{ id: g3,', '{ id: g1,'], ['{ id: r1,', '{ id: ext,']))).toEqual([
      'routing[0].id: duplicate rule id "ext" (first at classification.rules[0])',
      'guardrails.input[3].id: duplicate rule id "g1" (first at guardrails.input[1])',
    ]);
  });

  it('an unknown class reference', () => {
    const text = edit(
      ['class: external }\n', 'class: extrnal }\n'],
      ['when: { class: [external] }', 'when: { class: [externals] }'],
    );
    expect(issuesOf(text)).toEqual([
      'classification.rules[0].class: unknown class "extrnal" (declared: external, internal)',
      'routing[0].when.class[0]: unknown class "externals" (declared: external, internal)',
    ]);
  });

  it('an unknown provider, with the configured ones as context', () => {
    expect(issuesOf(BASE, ['openai', 'private'])).toEqual([
      'routing[0].route.provider: unknown provider "mock" (configured: openai, private)',
    ]);
    expect(issuesOf(BASE, ['mock'])).toEqual([]);
  });

  it('an unknown detector kind in input.detects (keyword.<id> of a keywords guardrail is known)', () => {
    const text = edit([
      'input.detects: [pii.email]',
      'input.detects: [pii.emial, keyword.g2, regex.g3, regex.nope]',
    ]);
    expect(issuesOf(text)).toEqual([
      'classification.rules[1].when["input.detects"][0]: unknown detector kind "pii.emial"',
      'classification.rules[1].when["input.detects"][3]: unknown detector kind "regex.nope"',
    ]);
  });

  it('a CEL type error, unknown field and non-bool result in expr', () => {
    expect(
      issuesOf(edit(['when: { app.tags: [external] }', `when: { expr: 'request.tokens + "x" > 1' }`])),
    ).toEqual(['classification.rules[0].when.expr: no such overload: int + string']);
    expect(
      issuesOf(edit(['when: { app.tags: [external] }', `when: { expr: 'request.tokenz > 1' }`])),
    ).toEqual(['classification.rules[0].when.expr: No such key: tokenz']);
    expect(issuesOf(edit(['when: { class: [external] }', `when: { expr: 'request.tokens' }`]))).toEqual([
      'routing[0].when.expr: expression must be bool, is int',
    ]);
  });

  it('a regex that does not compile', () => {
    const [issue, ...rest] = issuesOf(edit(["patterns: ['a+']", "patterns: ['a+', '(unclosed']"]));
    expect(rest).toEqual([]);
    expect(issue).toMatch(
      /^guardrails\.input\[3\]: regex detector: pattern #1 \/\(unclosed\/ does not compile/,
    );
  });

  it('lists every problem at once: references and compilation together', () => {
    const text = edit(
      ["patterns: ['a+']", "patterns: ['(']"],
      ['{ id: g3,', '{ id: g1,'],
      ['when: { app.tags: [external] }', `when: { expr: 'request.tokens + "x"' }`],
    );
    const issues = issuesOf(text);
    expect(issues).toHaveLength(3);
    expect(issues[0]).toContain('guardrails.input[3].id: duplicate rule id "g1"');
    expect(issues[1]).toContain('guardrails.input[3]: regex detector: pattern #0');
    expect(issues[2]).toContain('classification.rules[0].when.expr: no such overload');
  });

  it('duplicate YAML keys', () => {
    expect(issuesOf(`${BASE}  input: []\n`)[0]).toMatch(/^YAML: Map keys must be unique/);
  });

  it('parseBundle and compileBundle report the same paths', () => {
    expect(() =>
      parseBundle(edit(['keywords: [x], action: flag', 'keywords: [x], action: warn']), 't.yaml'),
    ).toThrow(/guardrails\.input\[2\]\.action: Invalid option/);
    const loaded = parseBundle(
      edit(['when: { app.tags: [external] }', `when: { expr: 'request.tokens + "x" > 1' }`]),
      't.yaml',
    );
    let err: unknown;
    try {
      compileBundle(loaded);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BundleError);
    expect((err as BundleError).issues).toEqual([
      'classification.rules[0].when.expr: no such overload: int + string',
    ]);
  });
});

describe('the bundle id', () => {
  const PRODUCTION = join(import.meta.dirname, '..', '..', 'policy-bundles', 'production', 'bundle.yaml');
  const id = (text: string) => parseBundle(text, 'x.yaml').id;

  it('is sha256 of the canonical JSON', () => {
    expect(id(BASE)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('is stable across key order, comments, whitespace, quoting and flow/block style', () => {
    const reordered = `# the same bundle, written differently
kind: PolicyBundle
apiVersion: "ringfence/v1"
classes:
  - external
  - internal
metadata:
  version: '1'
  name: t       # trailing comment
guardrails:
  input:
    - id: g0
      action: block
      detector: secrets
    - { detector: pii, id: g1, action: redact }
    - { action: flag, keywords: [ x ], id: g2, detector: keywords }
    - { id: g3, detector: regex, patterns: ["a+"], action: block }

routing:
  - route: { model: m, provider: mock }
    when: { class: [external] }
    id: r1
classification:
  rules:
    - { class: external, id: ext, when: { app.tags: [external] } }
    - { id: sens, when: { input.detects: [pii.email] }, class: internal }
  default: internal
`;
    expect(id(reordered)).toBe(id(BASE));
  });

  it('is the same whether defaults are written out or left implicit', () => {
    const explicit = `${BASE}  output: []\n  holdBackChars: 256\ntools: []\nbudgets: []\nmodels: {}\nlogging: { content: {} }\n`;
    expect(id(explicit)).toBe(id(BASE));
  });

  it('changes when a rule changes', () => {
    expect(id(edit(['keywords: [x], action: flag', 'keywords: [x], action: block']))).not.toBe(id(BASE));
    expect(id(edit(["patterns: ['a+']", "patterns: ['a*']"]))).not.toBe(id(BASE));
    expect(id(edit(['class: external }\n', 'class: internal }\n']))).not.toBe(id(BASE));
    // Order is meaningful (first match wins), so reordering rules is a change.
    const swapped = BASE.replace(
      /( {4}- \{ id: ext.*\n)( {4}- \{ id: sens.*\n)/,
      (_m, a: string, b: string) => b + a,
    );
    expect(swapped).not.toBe(BASE);
    expect(id(swapped)).not.toBe(id(BASE));
  });

  it('of the shipped production bundle ignores its comments', () => {
    const text = readFileSync(PRODUCTION, 'utf8');
    const stripped = text
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    expect(stripped).not.toBe(text);
    expect(id(stripped)).toBe(id(text));
  });
});
