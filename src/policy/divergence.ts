import type { Decision, GuardrailVerdict, ToolVerdict } from '../core/decision.ts';

/** The ways two decisions on the same request can differ. */
export type DivergenceKind =
  | 'action'
  | 'class'
  | 'route'
  | 'input_verdicts'
  | 'output_verdicts'
  | 'tool_verdicts';

/** The rule that decided a request: the denying rule, else the first guardrail that fired, else route, else class. */
export function decidingRule(d: Decision): string {
  if (d.deny) return d.deny.rule;
  const fired = d.verdicts.find((v) => v.verdict !== 'pass');
  if (fired) return fired.guardrail;
  return d.route.rule ?? d.matchedRules[0] ?? '(default)';
}

function verdictKey(vs: readonly GuardrailVerdict[]): string {
  // Guardrail ids differ between bundles; what matters is which detectors fired and how.
  return vs
    .filter((v) => v.verdict !== 'pass')
    .map((v) => `${v.detector}:${v.verdict}:${[...v.kinds].sort().join('+')}`)
    .sort()
    .join('|');
}

function toolKey(ts: readonly ToolVerdict[]): string {
  return ts
    .map((t) => `${t.stage}:${t.tool}:${t.verdict}`)
    .sort()
    .join('|');
}

/**
 * How two decisions on the same request differ (empty: they agree). Output verdicts are compared when both are
 * given (the response was inspected under both bundles).
 */
export function diffDecisions(
  a: Decision,
  b: Decision,
  outA?: readonly GuardrailVerdict[],
  outB?: readonly GuardrailVerdict[],
): DivergenceKind[] {
  const kinds: DivergenceKind[] = [];
  if (a.action !== b.action) kinds.push('action');
  if (a.class !== b.class) kinds.push('class');
  if (a.route.provider !== b.route.provider || a.route.model !== b.route.model) kinds.push('route');
  if (verdictKey(a.verdicts) !== verdictKey(b.verdicts)) kinds.push('input_verdicts');
  if (outA && outB && verdictKey(outA) !== verdictKey(outB)) kinds.push('output_verdicts');
  if (toolKey(a.tools) !== toolKey(b.tools)) kinds.push('tool_verdicts');
  return kinds;
}
