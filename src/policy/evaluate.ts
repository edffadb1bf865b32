import type { BudgetCheck, Decision, GuardrailVerdict, ToolVerdict, Verdict } from '../core/decision.ts';
import type { PolicyInput } from '../core/policy-input.ts';
import type { CompiledBundle, CompiledGuardrail } from './compile.ts';
import { createContext } from './context.ts';
import type { Match } from './detectors/index.ts';
import type { ScanCache } from './scan-cache.ts';

const ACTION_VERDICT: Record<CompiledGuardrail['action'], Verdict> = {
  block: 'block',
  redact: 'redact',
  flag: 'flag',
};

function applies(classes: ReadonlySet<string> | undefined, cls: string): boolean {
  return classes === undefined || classes.has(cls);
}

/** Counts the matches of a guardrail and the kinds they are. */
function tally(
  g: CompiledGuardrail,
  matches: readonly Match[] | undefined,
): { spans: number; kinds: string[] } {
  if (!matches) return { spans: 0, kinds: [] };
  let spans = 0;
  const kinds: string[] = [];
  for (const m of matches) {
    if (g.kinds && !g.kinds.has(m.kind)) continue;
    spans++;
    if (!kinds.includes(m.kind)) kinds.push(m.kind);
  }
  return { spans, kinds };
}

/** The verdict of a tool name under the rules that apply to a class: the first rule that refuses it wins. */
export function checkTool(
  cb: CompiledBundle,
  cls: string,
  stage: ToolVerdict['stage'],
  tool: string,
): ToolVerdict {
  for (const r of cb.toolRules) {
    if (!applies(r.classes, cls)) continue;
    if (r.deny?.test(tool) || (r.allow && !r.allow.test(tool)))
      return { stage, tool, verdict: 'deny', rule: r.id };
  }
  return { stage, tool, verdict: 'allow', rule: undefined };
}

/** The output guardrails that apply to a class (empty: the response needs no inspection). */
export function outputGuardsFor(cb: CompiledBundle, cls: string): CompiledGuardrail[] {
  return cb.outputGuards.filter((g) => applies(g.classes, cls));
}

/**
 * Runs the output guardrails' detectors over a text: each guardrail with the matches that count for it. With a
 * scan cache, a detector another bundle already ran on the same text (same spec) is not run again. The match
 * arrays returned may be shared: read them, never change them.
 */
export function scanOutput(
  cb: CompiledBundle,
  guards: readonly CompiledGuardrail[],
  text: string,
  cache?: ScanCache,
): Array<{ guard: CompiledGuardrail; matches: readonly Match[] }> {
  const found = cache ? undefined : new Map<string, readonly Match[]>();
  const out: Array<{ guard: CompiledGuardrail; matches: readonly Match[] }> = [];
  for (const g of guards) {
    if (!g.scanKey) continue;
    const detector = cb.outputScan.get(g.scanKey);
    if (!detector) continue;
    let all: readonly Match[] | undefined;
    if (cache) all = cache.outputMatches(cb.outputSpecs.get(g.scanKey) ?? g.scanKey, detector, text);
    else {
      all = found!.get(g.scanKey);
      if (!all) {
        const fresh: Match[] = [];
        detector.scan(text, fresh);
        found!.set(g.scanKey, fresh);
        all = fresh;
      }
    }
    const matches = g.kinds ? all.filter((m) => g.kinds!.has(m.kind)) : all;
    if (matches.length) out.push({ guard: g, matches });
  }
  return out;
}

/** The verdict a guardrail's action gives when it matched. */
export function verdictOf(g: CompiledGuardrail): Verdict {
  return ACTION_VERDICT[g.action];
}

/**
 * Evaluates one request against a compiled bundle: classify, route, check the model allowlist, run input
 * guardrails and tool rules, list the budgets that apply. Pure and deterministic; never parses or compiles.
 * Input detectors run only when a rule that applies reads them. `cache` (the request's ScanCache) shares detector
 * results between the bundles evaluated on the same input; the decision is the same with or without it.
 */
export function evaluate(cb: CompiledBundle, input: PolicyInput, cache?: ScanCache): Decision {
  const ctx = createContext(cb, input, cache);
  const matched: string[] = [];

  let cls = cb.defaultClass;
  let confidence = 0.5;
  for (const r of cb.classRules) {
    if (r.test(ctx)) {
      cls = r.cls;
      confidence = r.confidence;
      matched.push(r.id);
      break;
    }
  }
  ctx.cls = cls;

  let provider: string | undefined;
  let model = input.model;
  let routeRule: string | undefined;
  for (const r of cb.routes) {
    if (r.test(ctx)) {
      provider = r.provider;
      model = r.model ?? model;
      routeRule = r.id;
      matched.push(r.id);
      break;
    }
  }

  let deny: Decision['deny'];
  const allowed = cb.allowedModels.get(cls);
  if (allowed && !allowed.test(model)) {
    deny = { rule: `models.${cls}`, message: `model "${model}" is not allowed for class ${cls}` };
    matched.push(deny.rule);
  }

  const verdicts: GuardrailVerdict[] = [];
  let redact = false;
  for (const g of cb.inputGuards) {
    if (!applies(g.classes, cls)) continue;
    let spans: number;
    let kinds: string[];
    if (g.max !== undefined) {
      spans = ctx.tokens > g.max ? 1 : 0;
      kinds = spans ? ['tokens.max'] : [];
    } else ({ spans, kinds } = tally(g, g.scanKey ? ctx.matches(g.scanKey) : undefined));
    const verdict: Verdict = spans ? ACTION_VERDICT[g.action] : 'pass';
    verdicts.push({ stage: 'input', guardrail: g.id, detector: g.detector, verdict, spans, kinds });
    if (verdict === 'pass') continue;
    matched.push(g.id);
    if (verdict === 'block')
      deny ??= {
        rule: g.id,
        message:
          g.max !== undefined
            ? `input of ~${ctx.tokens} tokens is over the limit of ${g.max}`
            : `input blocked by guardrail ${g.id} (${kinds.join(', ')})`,
      };
    else if (verdict === 'redact') redact = true;
  }

  const tools: ToolVerdict[] = [];
  if (cb.toolRules.length)
    for (const t of input.tools) {
      const v = checkTool(cb, cls, 'request', t);
      tools.push(v);
      if (v.verdict === 'deny') {
        if (!matched.includes(v.rule!)) matched.push(v.rule!);
        deny ??= { rule: v.rule!, message: `tool "${t}" is not permitted for class ${cls}` };
      }
    }

  const budgets: BudgetCheck[] = [];
  for (const b of cb.budgets) {
    if (b.classes && !b.classes.includes(cls)) continue;
    const subject =
      b.scope === 'app'
        ? input.app.appId
        : b.scope === 'class'
          ? cls
          : `${input.app.appId}/${input.endUser ?? '-'}`;
    budgets.push({
      id: b.id,
      key: `${b.id}:${b.scope}:${subject}`,
      maxTokens: b.maxTokens,
      maxRequestTokens: b.maxRequestTokens,
      windowMs: b.window,
      mode: b.mode,
    });
  }

  const rerouted = routeRule !== undefined && (provider !== undefined || model !== input.model);
  return {
    bundleId: cb.id,
    action: deny ? 'deny' : redact ? 'redact' : rerouted ? 'reroute' : 'allow',
    class: cls,
    confidence,
    matchedRules: matched,
    route: { provider, model, rule: routeRule },
    verdicts,
    tools,
    budgets,
    deny,
    contentLogging: cb.logging.get(cls) ?? cb.loggingDefault,
  };
}
