import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from '../config/load.ts';
import { bundleId } from './canonical.ts';
import { DETECTOR_KINDS } from './detectors/index.ts';
import { type Bundle, bundleSchema, type Condition } from './schema.ts';

/** A bundle that failed validation; `issues` are `path: problem` lines, all of them. */
export class BundleError extends Error {
  readonly issues: readonly string[];
  constructor(source: string, issues: readonly string[]) {
    super(`invalid policy bundle ${source}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'BundleError';
    this.issues = issues;
  }
}

/** A validated bundle and its identity. */
export interface LoadedBundle {
  /** `sha256:<hex>` of the canonical JSON: the identity. `metadata.version` is only a label. */
  readonly id: string;
  readonly bundle: Bundle;
  readonly source: string;
}

/** What the bundle is checked against besides itself. */
export interface BundleContext {
  /** Provider ids of the gateway config; routes to any other are errors. Unchecked when absent. */
  readonly providers?: readonly string[];
}

/** Detector kinds a condition may name: fixed kinds plus `keyword.<id>` / `regex.<id>` of input guardrails. */
export function knownKinds(bundle: Bundle): Set<string> {
  const kinds = new Set<string>();
  for (const ks of Object.values(DETECTOR_KINDS)) for (const k of ks) kinds.add(k);
  for (const g of bundle.guardrails.input) {
    if (g.detector === 'keywords') kinds.add(`keyword.${g.id}`);
    if (g.detector === 'regex') kinds.add(`regex.${g.id}`);
  }
  return kinds;
}

/** Cross-reference checks zod cannot express: unique ids, declared classes, providers, detector kinds. */
export function checkReferences(b: Bundle, ctx: BundleContext = {}): string[] {
  const issues: string[] = [];
  const classes = new Set(b.classes);
  const kinds = knownKinds(b);
  const ids = new Map<string, string>();
  const claim = (id: string, path: string) => {
    const prev = ids.get(id);
    if (prev) issues.push(`${path}.id: duplicate rule id "${id}" (first at ${prev})`);
    else ids.set(id, path);
  };
  const cls = (c: string, path: string) => {
    if (!classes.has(c)) issues.push(`${path}: unknown class "${c}" (declared: ${b.classes.join(', ')})`);
  };
  const cond = (w: Condition, path: string, allowClass: boolean) => {
    if (w.class) {
      if (!allowClass)
        issues.push(`${path}.class: classification rules cannot depend on the class they assign`);
      w.class.forEach((c, i) => {
        cls(c, `${path}.class[${i}]`);
      });
    }
    w['input.detects']?.forEach((k, i) => {
      if (!kinds.has(k)) issues.push(`${path}["input.detects"][${i}]: unknown detector kind "${k}"`);
    });
  };
  if (new Set(b.classes).size !== b.classes.length) issues.push('classes: duplicate class names');
  cls(b.classification.default, 'classification.default');
  b.classification.rules.forEach((r, i) => {
    const p = `classification.rules[${i}]`;
    claim(r.id, p);
    cls(r.class, `${p}.class`);
    cond(r.when, `${p}.when`, false);
  });
  b.routing.forEach((r, i) => {
    const p = `routing[${i}]`;
    claim(r.id, p);
    cond(r.when, `${p}.when`, true);
    if (r.route.provider && ctx.providers && !ctx.providers.includes(r.route.provider))
      issues.push(
        `${p}.route.provider: unknown provider "${r.route.provider}" (configured: ${ctx.providers.join(', ')})`,
      );
  });
  for (const c of Object.keys(b.models)) cls(c, `models.${c}`);
  for (const stage of ['input', 'output'] as const) {
    b.guardrails[stage].forEach((g, i) => {
      const p = `guardrails.${stage}[${i}]`;
      claim(g.id, p);
      g.classes?.forEach((c, j) => {
        cls(c, `${p}.classes[${j}]`);
      });
      if ((g.detector === 'pii' || g.detector === 'secrets') && g.kinds) {
        const valid = DETECTOR_KINDS[g.detector] ?? [];
        g.kinds.forEach((k, j) => {
          if (!valid.includes(k))
            issues.push(`${p}.kinds[${j}]: unknown ${g.detector} kind "${k}" (known: ${valid.join(', ')})`);
        });
      }
      if (g.detector === 'max_tokens' && g.action === 'redact')
        issues.push(`${p}.action: max_tokens can block or flag, not redact`);
      if (g.detector === 'max_tokens' && stage === 'output')
        issues.push(
          `${p}.detector: max_tokens applies to input only (cap output with the request's max tokens)`,
        );
    });
  }
  b.tools.forEach((t, i) => {
    const p = `tools[${i}]`;
    claim(t.id, p);
    if (!t.allow && !t.deny) issues.push(`${p}: a tool rule needs allow, deny, or both`);
    t.classes?.forEach((c, j) => {
      cls(c, `${p}.classes[${j}]`);
    });
  });
  b.budgets.forEach((t, i) => {
    claim(t.id, `budgets[${i}]`);
    t.classes?.forEach((c, j) => {
      cls(c, `budgets[${i}].classes[${j}]`);
    });
  });
  for (const c of Object.keys(b.logging.content)) if (c !== 'default') cls(c, `logging.content.${c}`);
  return issues;
}

/** Parses and validates bundle YAML (schema, then references). Throws BundleError listing every problem. */
export function parseBundle(text: string, source: string, ctx: BundleContext = {}): LoadedBundle {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new BundleError(source, [`YAML: ${(err as Error).message}`]);
  }
  const parsed = bundleSchema.safeParse(raw);
  if (!parsed.success) throw new BundleError(source, formatIssues(parsed.error));
  const issues = checkReferences(parsed.data, ctx);
  if (issues.length) throw new BundleError(source, issues);
  return Object.freeze({ id: bundleId(parsed.data), bundle: parsed.data, source });
}

/** Reads a bundle file and validates it. */
export function loadBundleFile(file: string, ctx: BundleContext = {}): LoadedBundle {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BundleError(file, [
      `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  return parseBundle(text, file, ctx);
}
