import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BundleChange, diffBundles, formatDiff } from '../../src/policy/diff.ts';
import { loadBundleFile } from '../../src/policy/load.ts';
import type { Bundle, Guardrail } from '../../src/policy/schema.ts';

const BUNDLES = join(import.meta.dirname, '..', '..', 'policy-bundles');
const production = loadBundleFile(join(BUNDLES, 'production', 'bundle.yaml')).bundle;
const candidate = loadBundleFile(join(BUNDLES, 'candidate', 'bundle.yaml')).bundle;

/** The identifying part of a change, for exact comparisons. */
const brief = (c: BundleChange) =>
  `${c.section} ${c.op} ${c.id}${c.field ? `.${c.field}` : ''}${c.loosened ? ' LOOSENED' : ''}`;

function guard(b: Bundle, id: string): Guardrail {
  const g = [...b.guardrails.input, ...b.guardrails.output].find((x) => x.id === id);
  if (!g) throw new Error(`no guardrail ${id}`);
  return g;
}

describe('diffBundles(production, candidate)', () => {
  const d = diffBundles(production, candidate);

  it('reports exactly the intended differences, none of them loosening', () => {
    expect(d.changes.map(brief)).toEqual([
      'metadata changed version.version',
      'metadata changed description.description',
      'routing added batch-mini',
      'guardrails.input changed pii-block-external.kinds',
      'guardrails.input changed pii-block-external.description',
      'guardrails.input changed pii-redact-external.kinds',
      'guardrails.input added role-spoofing',
    ]);
    expect(d.loosened).toBe(false);
    expect(d.identical).toBe(false);
    expect(d.from).toMatchObject({ name: 'corp', version: '2026.11.1' });
    expect(d.to).toMatchObject({ name: 'corp', version: '2026.11.2' });
  });

  it('explains each change', () => {
    const text = d.changes.map((c) => c.explanation);
    expect(text).toContain('metadata.version: 2026.11.1 → 2026.11.2');
    expect(text).toContain(
      'route batch-mini added: requests with api ∈ [openai.chat, openai.responses, openai.embeddings] and class ∈ [batch] now go to model mock-gpt-mini',
    );
    expect(text).toContain('guardrail pii-block-external: kinds adds pii.phone (stricter)');
    // pii.phone leaves the redact rule, but the block rule now covers it more strictly: not a loosening.
    expect(text).toContain(
      'guardrail pii-redact-external: kinds adds pii.ssn (stricter); drops pii.phone; still blocked by pii-block-external',
    );
    expect(
      text.find((t) => t.startsWith('guardrail role-spoofing added: input now checked for regex (')),
    ).toMatch(/for class external → block$/);
  });

  it('is empty between a bundle and itself', () => {
    const same = diffBundles(production, structuredClone(production));
    expect(same).toMatchObject({ identical: true, changes: [], loosened: false });
    expect(formatDiff(same)).toContain('no changes: the bundles are identical');
  });

  it('the reverse direction (a rollback) is a loosening', () => {
    const back = diffBundles(candidate, production);
    expect(back.loosened).toBe(true);
    // Removing batch-mini only changes which model serves batch traffic: not a loosening.
    expect(back.changes.filter((c) => c.loosened).map(brief)).toEqual([
      'guardrails.input removed role-spoofing LOOSENED',
      'guardrails.input changed pii-block-external.kinds LOOSENED',
      'guardrails.input changed pii-redact-external.kinds LOOSENED',
    ]);
  });
});

describe('diffBundles flags loosening', () => {
  const loose = structuredClone(production);
  loose.metadata.version = '2026.11.1-loose';
  loose.guardrails.input = loose.guardrails.input.filter((g) => g.id !== 'injection-external');
  guard(loose, 'internal-hosts').action = 'flag';
  guard(loose, 'pii-redact-external').action = 'flag';
  (guard(loose, 'pii-block-external') as { kinds?: string[] }).kinds = ['pii.card'];
  (guard(loose, 'secrets-block') as { kinds?: string[] }).kinds = [
    'secret.aws_access_key',
    'secret.private_key',
  ];
  guard(loose, 'watchlist').classes = ['external'];
  (guard(loose, 'prompt-size-external') as { max: number }).max = 4096;
  loose.guardrails.output = loose.guardrails.output.filter((g) => g.id !== 'output-secrets');
  loose.guardrails.holdBackChars = 64;
  loose.tools[0]!.deny = ['restart_*', 'delete_*'];
  loose.tools[1]!.allow = [...loose.tools[1]!.allow!, 'deploy_*'];
  loose.budgets[0]!.maxTokens = 400_000;
  loose.budgets[3]!.mode = 'failOpen';
  loose.budgets.splice(2, 1);
  loose.logging.content.external = 'full';
  loose.models.external = [...loose.models.external!, 'mock-gpt'];
  loose.routing = [];
  loose.classification.rules = loose.classification.rules.filter((r) => r.id !== 'external-apps');
  // Two that tighten, for contrast.
  guard(loose, 'output-pii-external').classes = undefined;
  loose.budgets.push({ id: 'new-budget', scope: 'app', window: 60_000, maxTokens: 1000, mode: 'failOpen' });

  const d = diffBundles(production, loose);
  const byBrief = new Map(d.changes.map((c) => [brief(c).replace(' LOOSENED', ''), c]));
  const looseness = (key: string) => {
    const c = byBrief.get(key);
    if (!c) throw new Error(`no change ${key} in:\n${[...byBrief.keys()].join('\n')}`);
    return c.loosened;
  };

  it.each([
    'guardrails.input removed injection-external',
    'guardrails.input changed internal-hosts.action',
    'guardrails.input changed pii-redact-external.action',
    'guardrails.input changed pii-block-external.kinds',
    'guardrails.input changed secrets-block.kinds',
    'guardrails.input changed watchlist.classes',
    'guardrails.input changed prompt-size-external.max',
    'guardrails.output removed output-secrets',
    'guardrails changed holdBackChars.holdBackChars',
    'tools changed external-no-mutation.deny',
    'tools changed internal-tool-allowlist.allow',
    'budgets changed app-tokens.maxTokens',
    'budgets changed private-capacity.mode',
    'budgets removed batch-pool',
    'logging changed external.content',
    'models changed external.models',
    'routing removed sensitive-private',
    'classification removed external-apps',
  ])('%s is a loosening', (key) => {
    expect(looseness(key)).toBe(true);
  });

  it.each([
    'metadata changed version.version',
    'guardrails.output changed output-pii-external.classes',
    'budgets added new-budget',
  ])('%s is not', (key) => {
    expect(looseness(key)).toBe(false);
  });

  it('says what each loosening means', () => {
    const text = (key: string) => byBrief.get(key)!.explanation;
    expect(text('guardrails.input changed internal-hosts.action')).toBe(
      'guardrail internal-hosts: action block → flag (looser)',
    );
    expect(text('guardrails.input removed injection-external')).toBe(
      'guardrail injection-external removed: input no longer checked for prompt injection for class external (was block)',
    );
    expect(text('guardrails.input changed pii-block-external.kinds')).toBe(
      'guardrail pii-block-external: kinds drops pii.iban (looser)',
    );
    expect(text('budgets changed app-tokens.maxTokens')).toBe(
      'budget app-tokens: maxTokens 200000 → 400000 (looser)',
    );
    expect(text('logging changed external.content')).toBe(
      'logging for class external: redacted → full (looser: more content logged)',
    );
    expect(text('classification removed external-apps')).toMatch(
      /^classification rule external-apps removed: requests with app\.tags ∈ \[external\] no longer get class external .*\(looser: no longer under injection-external|\(looser: no longer under /,
    );
    expect(text('tools changed external-no-mutation.deny')).toBe(
      'tool rule external-no-mutation: no longer denies drop_* (looser)',
    );
    expect(text('routing removed sensitive-private')).toContain(
      '(looser: no longer pinned to provider private)',
    );
  });

  it('budget tightening reads as tighter', () => {
    const tight = structuredClone(production);
    tight.budgets[0]!.maxTokens = 100_000;
    tight.budgets[0]!.window = 3_600_000;
    const [max, window] = diffBundles(production, tight).changes;
    expect(max).toMatchObject({
      explanation: 'budget app-tokens: maxTokens 200000 → 100000 (tighter)',
      loosened: false,
    });
    expect(window).toMatchObject({
      explanation: 'budget app-tokens: window 1m → 1h (tighter)',
      loosened: false,
    });
  });

  it('a kind moved to an equally strict rule, or a rule replaced by a broader one, is not a loosening', () => {
    const moved = structuredClone(production);
    moved.guardrails.input = moved.guardrails.input.filter((g) => g.id !== 'pii-block-external');
    moved.guardrails.input.push({
      id: 'payment-data',
      detector: 'pii',
      kinds: ['pii.card', 'pii.iban', 'pii.ssn'],
      action: 'block',
    });
    const changes = diffBundles(production, moved).changes;
    expect(changes.map(brief)).toEqual([
      'guardrails.input removed pii-block-external',
      'guardrails.input added payment-data',
    ]);
    expect(changes[0]!.explanation).toContain('still blocked by payment-data');
  });

  it('formats the loosening for a reviewer', () => {
    const text = formatDiff(d);
    expect(text).toContain('guardrails.input\n  - guardrail injection-external removed');
    expect(text).toContain('~ guardrail internal-hosts: action block → flag (looser)  [LOOSENED]');
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^\d+ changes, \d+ loosening the policy$/);
  });
});
