import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { diffBundles, formatDiff } from '../policy/diff.ts';
import { CaseFileError, formatResults, loadCases, runCases } from '../policy/golden.ts';
import { type BundleContext, BundleError, loadBundleFile } from '../policy/load.ts';
import { type Validation, validateBundleFile } from '../policy/validate.ts';

/** Usage lines of the `bundle` commands, shown in the CLI's help. */
export const BUNDLE_USAGE = `  bundle validate FILE [--config CONFIG]            check a policy bundle (schema, references, CEL, regexes);
                                                    with --config, route providers are checked against it
  bundle test FILE --cases DIR [--config CONFIG]    run a golden set against a bundle
  bundle diff A B [--json]                          explain what changes from bundle A to bundle B
`;

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

const std: Out = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Provider ids of a config file, to check routes against (the environment interpolates it, as `serve` does). */
function contextOf(config: string | undefined): BundleContext {
  if (!config) return {};
  return { providers: Object.keys(loadConfig(config, process.env).config.providers) };
}

function printInvalid(out: Out, file: string, issues: readonly string[]): void {
  out.stderr(`✗ ${file} is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
  for (const i of issues) out.stderr(`  - ${i}\n`);
}

function validate(args: string[], out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) return usage(out, 'bundle validate needs exactly one FILE');
  const file = positionals[0]!;
  const v: Validation = validateBundleFile(file, contextOf(values.config));
  if (!v.ok) {
    printInvalid(out, file, v.issues);
    return 1;
  }
  const cb = v.compiled;
  out.stdout(`✓ ${file} is valid\n  name:    ${cb.name}\n  version: ${cb.version}\n  id:      ${cb.id}\n`);
  return 0;
}

function test(args: string[], out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    options: { cases: { type: 'string' }, config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1 || !values.cases) return usage(out, 'bundle test needs FILE and --cases DIR');
  const file = positionals[0]!;
  const v = validateBundleFile(file, contextOf(values.config));
  if (!v.ok) {
    printInvalid(out, file, v.issues);
    return 1;
  }
  let cases: ReturnType<typeof loadCases>;
  try {
    cases = loadCases(values.cases);
  } catch (err) {
    if (!(err instanceof CaseFileError)) throw err;
    out.stderr(`ringfence: ${err.message}\n`);
    return 1;
  }
  out.stdout(`${v.compiled.name} ${v.compiled.version} (${v.compiled.id})\n\n`);
  const results = runCases(v.compiled, cases);
  out.stdout(formatResults(results));
  return results.every((r) => r.passed) ? 0 : 1;
}

function diff(args: string[], out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 2) return usage(out, 'bundle diff needs two bundle files, A and B');
  let d: ReturnType<typeof diffBundles>;
  try {
    d = diffBundles(loadBundleFile(positionals[0]!).bundle, loadBundleFile(positionals[1]!).bundle);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    out.stderr(`ringfence: ${err.message}\n`);
    return 1;
  }
  out.stdout(values.json ? `${JSON.stringify(d, null, 2)}\n` : formatDiff(d));
  return 0;
}

function usage(out: Out, problem: string): number {
  out.stderr(`ringfence: ${problem}\nusage:\n${BUNDLE_USAGE}`);
  return 2;
}

/** `ringfence bundle <validate|test|diff> …`. Exit codes: 0 valid / all passed, 1 invalid / a case failed, 2 usage. */
export function runBundle(args: string[], out: Out = std): number {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'validate':
      return validate(rest, out);
    case 'test':
      return test(rest, out);
    case 'diff':
      return diff(rest, out);
    default:
      return usage(out, sub ? `unknown bundle command "${sub}"` : 'bundle needs a command');
  }
}
