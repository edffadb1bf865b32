import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../config/load.ts';
import type { Decision } from '../core/decision.ts';
import type { ApiKind, AppIdentity, PolicyInput } from '../core/policy-input.ts';
import { anthropicPolicyInput } from '../providers/anthropic/request.ts';
import { openaiPolicyInput } from '../providers/openai/request.ts';
import type { CompiledBundle } from './compile.ts';
import { evaluate, outputGuardsFor, scanOutput, verdictOf } from './evaluate.ts';

/**
 * Golden sets: YAML files of requests (real OpenAI / Anthropic bodies) and the decision a bundle must reach for
 * each. They run through the same adapters the gateway uses, so a case is exactly what a client would send.
 */

const API_KINDS = [
  'openai.chat',
  'openai.responses',
  'openai.embeddings',
  'anthropic.messages',
  'anthropic.count_tokens',
] as const satisfies readonly ApiKind[];

/** `skip`: the guardrail does not apply to the request's class, so it never ran. */
const expectedVerdict = z.enum(['pass', 'flag', 'redact', 'block', 'skip']);

const expectSchema = z
  .strictObject({
    class: z.string().min(1).optional(),
    action: z.enum(['allow', 'deny', 'redact', 'reroute']).optional(),
    /** `provider` is compared only when given. */
    route: z.strictObject({ provider: z.string().min(1).optional(), model: z.string().min(1) }).optional(),
    /** The id of the rule that denied the request. */
    deny: z.string().min(1).optional(),
    /** Every matched rule id, in evaluation order. */
    matchedRules: z.array(z.string().min(1)).optional(),
    /** Input guardrail id → verdict. */
    verdicts: z.record(z.string(), expectedVerdict).optional(),
    /** Tool offered in the request → verdict. */
    tools: z.record(z.string(), z.enum(['allow', 'deny'])).optional(),
    /** Ids of the budgets charged, in bundle order. */
    budgets: z.array(z.string().min(1)).optional(),
    /** How content may be logged. */
    logging: z.enum(['none', 'redacted', 'full']).optional(),
    /** Output guardrail id → verdict on the case's `response` text. */
    output: z.record(z.string(), expectedVerdict).optional(),
  })
  .refine((e) => Object.keys(e).length > 0, 'expect needs at least one expectation');

const caseSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    request: z.strictObject({
      app: z.strictObject({ id: z.string().min(1), tags: z.array(z.string().min(1)).default([]) }),
      api: z.enum(API_KINDS),
      body: z.record(z.string(), z.unknown()),
    }),
    /** Model output text, for `expect.output`. */
    response: z.string().optional(),
    expect: expectSchema,
  })
  .refine((c) => c.expect.output === undefined || c.response !== undefined, {
    message: 'expect.output needs a response text',
    path: ['response'],
  });

const caseListSchema = z.array(caseSchema).min(1);

/** One golden case as loaded (defaults applied), with the file it came from. */
export type GoldenCase = z.infer<typeof caseSchema> & { readonly file: string };

/** Case files that failed to load; `issues` are `file: path: problem` lines, all of them. */
export class CaseFileError extends Error {
  readonly issues: readonly string[];
  constructor(source: string, issues: readonly string[]) {
    super(`invalid golden cases in ${source}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'CaseFileError';
    this.issues = issues;
  }
}

/** Loads every `*.yaml` / `*.yml` file of a directory (sorted by name); each holds one case or a list of cases. */
export function loadCases(dir: string): GoldenCase[] {
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new CaseFileError(dir, ['not a directory']);
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    if (err instanceof CaseFileError) throw err;
    throw new CaseFileError(dir, [
      `cannot read directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  if (files.length === 0) throw new CaseFileError(dir, ['no case files (*.yaml)']);
  const issues: string[] = [];
  const cases: GoldenCase[] = [];
  const names = new Map<string, string>();
  for (const f of files) {
    const file = join(dir, f);
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
    } catch (err) {
      issues.push(`${f}: YAML: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    // A file holds one case or a list of them; validating against the shape it has names paths precisely.
    const isList = Array.isArray(raw);
    const parsed = isList ? caseListSchema.safeParse(raw) : caseSchema.safeParse(raw);
    if (!parsed.success) {
      for (const line of formatIssues(parsed.error)) issues.push(`${f}: ${line}`);
      continue;
    }
    const list = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
    list.forEach((c, i) => {
      const prev = names.get(c.name);
      if (prev)
        issues.push(
          `${f}: ${isList ? `[${i}].` : ''}name: duplicate case name "${c.name}" (first in ${prev})`,
        );
      else names.set(c.name, isList ? `${f} [${i}]` : f);
      cases.push({ ...c, file });
    });
  }
  if (issues.length) throw new CaseFileError(dir, issues);
  return cases;
}

/** The outcome of one case: `mismatches` are readable lines such as `expected action deny, got redact`. */
export interface CaseResult {
  readonly name: string;
  readonly file: string;
  readonly passed: boolean;
  readonly mismatches: readonly string[];
  /** Undefined when evaluation threw. */
  readonly decision: Decision | undefined;
}

/** The PolicyInput the gateway would build for a case's request. */
export function caseInput(c: GoldenCase, requestId = 'golden'): PolicyInput {
  const app: AppIdentity = { appId: c.request.app.id, keyId: 'golden', tags: c.request.app.tags };
  const { api, body } = c.request;
  return api.startsWith('anthropic.')
    ? anthropicPolicyInput(api, body, app, requestId)
    : openaiPolicyInput(api, body, app, requestId);
}

const list = (xs: readonly string[]) => `[${xs.join(', ')}]`;
const orNone = (v: string | undefined) => v ?? '(none)';

function compareVerdicts(
  stage: 'input' | 'output',
  expected: Record<string, z.infer<typeof expectedVerdict>>,
  known: ReadonlySet<string>,
  got: ReadonlyMap<string, string>,
  out: string[],
): void {
  for (const [id, want] of Object.entries(expected)) {
    if (!known.has(id)) {
      out.push(`expected ${stage} guardrail ${id} ${want}, but the bundle has no ${stage} guardrail ${id}`);
      continue;
    }
    const actual = got.get(id) ?? 'skip';
    if (actual !== want) out.push(`expected ${stage} guardrail ${id} ${want}, got ${actual}`);
  }
}

/** Compares a decision (and the output verdicts) with a case's expectations. */
function mismatchesOf(cb: CompiledBundle, c: GoldenCase, input: PolicyInput, d: Decision): string[] {
  const e = c.expect;
  const out: string[] = [];
  if (e.class !== undefined && e.class !== d.class) out.push(`expected class ${e.class}, got ${d.class}`);
  if (e.action !== undefined && e.action !== d.action)
    out.push(`expected action ${e.action}, got ${d.action}`);
  if (e.route) {
    if (e.route.model !== d.route.model)
      out.push(`expected route model ${e.route.model}, got ${d.route.model}`);
    if (e.route.provider !== undefined && e.route.provider !== d.route.provider)
      out.push(`expected route provider ${e.route.provider}, got ${orNone(d.route.provider)}`);
  }
  if (e.deny !== undefined && e.deny !== d.deny?.rule)
    out.push(`expected deny by ${e.deny}, got ${orNone(d.deny?.rule)}`);
  if (e.matchedRules && list(e.matchedRules) !== list(d.matchedRules))
    out.push(`expected matchedRules ${list(e.matchedRules)}, got ${list(d.matchedRules)}`);
  if (e.verdicts)
    compareVerdicts(
      'input',
      e.verdicts,
      new Set(cb.inputGuards.map((g) => g.id)),
      new Map(d.verdicts.map((v) => [v.guardrail, v.verdict])),
      out,
    );
  if (e.tools)
    for (const [tool, want] of Object.entries(e.tools)) {
      if (!input.tools.includes(tool)) {
        out.push(`expected tool ${tool} ${want}, but the request does not offer ${tool}`);
        continue;
      }
      // No tool rules: evaluation lists no tool verdicts, and every tool is allowed.
      const v = d.tools.find((t) => t.tool === tool);
      const got = v?.verdict ?? 'allow';
      if (got !== want)
        out.push(`expected tool ${tool} ${want}, got ${got}${v?.rule ? ` (by ${v.rule})` : ''}`);
    }
  if (e.budgets) {
    const got = d.budgets.map((b) => b.id);
    if (list(got) !== list(e.budgets)) out.push(`expected budgets ${list(e.budgets)}, got ${list(got)}`);
  }
  if (e.logging !== undefined && e.logging !== d.contentLogging)
    out.push(`expected logging ${e.logging}, got ${d.contentLogging}`);
  if (e.output && c.response !== undefined) {
    const got = new Map<string, string>();
    const guards = outputGuardsFor(cb, d.class);
    for (const g of guards) got.set(g.id, 'pass');
    for (const { guard } of scanOutput(cb, guards, c.response)) got.set(guard.id, verdictOf(guard));
    compareVerdicts('output', e.output, new Set(cb.outputGuards.map((g) => g.id)), got, out);
  }
  return out;
}

/** Runs each case through its adapter and `evaluate`, and compares. Never throws: an exception is a mismatch. */
export function runCases(cb: CompiledBundle, cases: readonly GoldenCase[]): CaseResult[] {
  return cases.map((c, i) => {
    let decision: Decision | undefined;
    let mismatches: string[];
    try {
      const input = caseInput(c, `golden-${i}`);
      decision = evaluate(cb, input);
      mismatches = mismatchesOf(cb, c, input, decision);
    } catch (err) {
      mismatches = [`evaluation threw: ${(err as Error).message.split('\n')[0]}`];
    }
    return { name: c.name, file: c.file, passed: mismatches.length === 0, mismatches, decision };
  });
}

/** Test-runner output: `✓ name` / `✗ name` with indented mismatch lines, then `N passed, N failed` on its own line. */
export function formatResults(results: readonly CaseResult[]): string {
  const lines: string[] = [];
  let passed = 0;
  for (const r of results) {
    if (r.passed) {
      passed++;
      lines.push(`✓ ${r.name}`);
    } else {
      lines.push(`✗ ${r.name}`);
      for (const m of r.mismatches) lines.push(`    ${m}`);
    }
  }
  lines.push('', `${passed} passed, ${results.length - passed} failed`);
  return `${lines.join('\n')}\n`;
}
