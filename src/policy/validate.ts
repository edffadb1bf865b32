import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from '../config/load.ts';
import { bundleId } from './canonical.ts';
import { type CompiledBundle, compileBundle } from './compile.ts';
import { type BundleContext, BundleError, checkReferences } from './load.ts';
import { bundleSchema } from './schema.ts';

/** The outcome of validating a bundle: compiled, or every problem found as `path: problem` lines. */
export type Validation =
  | { readonly ok: true; readonly compiled: CompiledBundle }
  | { readonly ok: false; readonly issues: string[] };

/**
 * Validates bundle text as far as it can go and reports everything found on the way: YAML, then the schema
 * (which must pass for anything else to be checked), then references and compilation (CEL, regexes) together.
 * `parseBundle` stops at the first failing stage; a CI check wants the whole list at once.
 */
export function validateBundleText(text: string, source: string, ctx: BundleContext = {}): Validation {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    return { ok: false, issues: [`YAML: ${(err as Error).message}`] };
  }
  const parsed = bundleSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, issues: formatIssues(parsed.error) };
  const bundle = parsed.data;
  const issues = checkReferences(bundle, ctx);
  try {
    const compiled = compileBundle(Object.freeze({ id: bundleId(bundle), bundle, source }));
    if (issues.length === 0) return { ok: true, compiled };
  } catch (err) {
    if (err instanceof BundleError) {
      for (const i of err.issues) if (!issues.includes(i)) issues.push(i);
    } else if (issues.length === 0) {
      // Anything else comes from compiling a reference already reported (an unknown detector kind, say).
      issues.push(`(compile): ${(err as Error).message}`);
    }
  }
  return { ok: false, issues };
}

/** Reads a bundle file and validates it (see `validateBundleText`). */
export function validateBundleFile(file: string, ctx: BundleContext = {}): Validation {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return {
      ok: false,
      issues: [`cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`],
    };
  }
  return validateBundleText(text, file, ctx);
}
