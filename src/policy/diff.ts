import { bundleId } from './canonical.ts';
import { DETECTOR_KINDS } from './detectors/index.ts';
import { ch, minus, orderChange } from './diff-common.ts';
import { diffGuardrails } from './diff-guardrails.ts';
import { diffBudgets, diffLogging, diffTools } from './diff-limits.ts';
import { diffClassification, diffModels, diffRouting } from './diff-routing.ts';
import type { Bundle } from './schema.ts';

/**
 * `diffBundles`: what changes from one bundle to another, rule by rule, in words, and whether each change loosens
 * the policy (docs/policy.md, "Diff and loosening"). The sections live in diff-routing.ts, diff-guardrails.ts and
 * diff-limits.ts.
 */

/** Where in the bundle a change is. */
export type DiffSection =
  | 'metadata'
  | 'classes'
  | 'classification'
  | 'routing'
  | 'models'
  | 'guardrails.input'
  | 'guardrails.output'
  | 'guardrails'
  | 'tools'
  | 'budgets'
  | 'logging';

/** Section order of the text output. */
export const DIFF_SECTIONS: readonly DiffSection[] = [
  'metadata',
  'classes',
  'classification',
  'routing',
  'models',
  'guardrails.input',
  'guardrails.output',
  'guardrails',
  'tools',
  'budgets',
  'logging',
];

/** One difference: a rule (or field) added, removed or changed, explained, and whether it loosens the policy. */
export interface BundleChange {
  readonly section: DiffSection;
  readonly op: 'added' | 'removed' | 'changed';
  /** Rule id, class name, or field name (metadata). */
  readonly id: string;
  /** The field of the rule that changed (`changed` only). */
  readonly field: string | undefined;
  readonly before: unknown;
  readonly after: unknown;
  readonly explanation: string;
  /** True when traffic is checked less, or less strictly, than before: the kind of change that needs scrutiny. */
  readonly loosened: boolean;
}

/** Which bundle a side of the diff is. */
export interface BundleRef {
  readonly id: string;
  readonly name: string;
  readonly version: string;
}

/** Every difference between two bundles, rule by rule. */
export interface BundleDiff {
  readonly from: BundleRef;
  readonly to: BundleRef;
  readonly identical: boolean;
  readonly changes: readonly BundleChange[];
  /** Whether any change loosens the policy. */
  readonly loosened: boolean;
}

/** Every kind a fixed-kind detector reports: what a guardrail without `kinds` checks. */
const allKinds = (d: string): readonly string[] => DETECTOR_KINDS[d] ?? [];

function diffMetadata(a: Bundle, b: Bundle): BundleChange[] {
  const out: BundleChange[] = [];
  for (const k of ['name', 'version', 'description'] as const) {
    const was = a.metadata[k];
    const now = b.metadata[k];
    if (was !== now)
      out.push(
        ch(
          'metadata',
          'changed',
          k,
          k,
          was,
          now,
          `metadata.${k}: ${was ?? '(none)'} → ${now ?? '(none)'}`,
          false,
        ),
      );
  }
  if (a.guardrails.holdBackChars !== b.guardrails.holdBackChars) {
    const was = a.guardrails.holdBackChars;
    const now = b.guardrails.holdBackChars;
    const looser = now < was;
    const text = `guardrails.holdBackChars: ${was} → ${now} (${looser ? 'looser: a streamed match split across fewer held-back characters may slip through' : 'stricter'})`;
    out.push(ch('guardrails', 'changed', 'holdBackChars', 'holdBackChars', was, now, text, looser));
  }
  return out;
}

function diffClasses(a: Bundle, b: Bundle): BundleChange[] {
  return [
    ...minus(a.classes, b.classes).map((c) =>
      ch('classes', 'removed', c, undefined, c, undefined, `class ${c} removed`, false),
    ),
    ...minus(b.classes, a.classes).map((c) =>
      ch('classes', 'added', c, undefined, undefined, c, `class ${c} added`, false),
    ),
  ];
}

/** Compares two validated bundles rule by rule, explaining each difference and flagging those that loosen policy. */
export function diffBundles(a: Bundle, b: Bundle): BundleDiff {
  const ref = (x: Bundle): BundleRef => ({
    id: bundleId(x),
    name: x.metadata.name,
    version: x.metadata.version,
  });
  const changes = [
    ...diffMetadata(a, b),
    ...diffClasses(a, b),
    ...diffClassification(a, b),
    ...diffRouting(a, b),
    ...diffModels(a, b),
    ...diffGuardrails(a, b, 'input', allKinds),
    ...orderChange('guardrails.input', a.guardrails.input, b.guardrails.input, 'input guardrail'),
    ...diffGuardrails(a, b, 'output', allKinds),
    ...orderChange('guardrails.output', a.guardrails.output, b.guardrails.output, 'output guardrail'),
    ...diffTools(a, b),
    ...orderChange('tools', a.tools, b.tools, 'tool rule'),
    ...diffBudgets(a, b),
    ...orderChange('budgets', a.budgets, b.budgets, 'budget'),
    ...diffLogging(a, b),
  ];
  const from = ref(a);
  const to = ref(b);
  return { from, to, identical: from.id === to.id, changes, loosened: changes.some((c) => c.loosened) };
}

/** The diff as text: one section per heading, `+` added, `-` removed, `~` changed, `[LOOSENED]` marking loosening. */
export function formatDiff(d: BundleDiff): string {
  const lines = [
    `${d.from.name} ${d.from.version} → ${d.to.name} ${d.to.version}`,
    `  from ${d.from.id}`,
    `  to   ${d.to.id}`,
    '',
  ];
  if (d.changes.length === 0) {
    lines.push(
      d.identical ? 'no changes: the bundles are identical' : 'no rule changes found, yet the ids differ',
    );
    return `${lines.join('\n')}\n`;
  }
  const mark = { added: '+', removed: '-', changed: '~' } as const;
  for (const section of DIFF_SECTIONS) {
    const cs = d.changes.filter((c) => c.section === section);
    if (!cs.length) continue;
    lines.push(section);
    for (const c of cs) lines.push(`  ${mark[c.op]} ${c.explanation}${c.loosened ? '  [LOOSENED]' : ''}`);
    lines.push('');
  }
  const n = d.changes.filter((c) => c.loosened).length;
  lines.push(`${d.changes.length} change${d.changes.length === 1 ? '' : 's'}, ${n} loosening the policy`);
  return `${lines.join('\n')}\n`;
}
