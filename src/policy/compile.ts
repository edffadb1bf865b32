import type { ContentLogging } from '../core/decision.ts';
import { type CelProgram, celEnvironment, compileCel } from './cel.ts';
import type { EvalContext } from './context.ts';
import { createDetector, type Detector } from './detectors/index.ts';
import { globsToRegExp } from './glob.ts';
import { BundleError, type LoadedBundle } from './load.ts';
import type { Budget, Condition, Guardrail } from './schema.ts';

/** A condition compiled to a predicate over the evaluation context. */
export type Predicate = (ctx: EvalContext) => boolean;

/** A guardrail ready to run: which detector result it reads (`scanKey`) and which kinds count. */
export interface CompiledGuardrail {
  readonly id: string;
  readonly stage: 'input' | 'output';
  readonly detector: Guardrail['detector'];
  readonly action: Guardrail['action'];
  readonly classes: ReadonlySet<string> | undefined;
  /** Key into the scan plan; undefined for max_tokens. */
  readonly scanKey: string | undefined;
  /** Kinds that count for this guardrail; undefined: every kind the detector reports. */
  readonly kinds: ReadonlySet<string> | undefined;
  readonly max: number | undefined;
}

/** A tool rule with its globs compiled. */
export interface CompiledToolRule {
  readonly id: string;
  readonly classes: ReadonlySet<string> | undefined;
  readonly allow: RegExp | undefined;
  readonly deny: RegExp | undefined;
}

/** Everything evaluation needs, built once when a bundle is loaded: no parsing or compiling per request. */
export interface CompiledBundle {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly loaded: LoadedBundle;
  /** Detectors run over the input, each once per message: key → detector. */
  readonly inputScan: ReadonlyMap<string, Detector>;
  readonly outputScan: ReadonlyMap<string, Detector>;
  /**
   * Canonical spec of each scan key's detector (its name and options): detectors with equal specs, in this bundle
   * or another, report equal matches on equal text (the per-request ScanCache shares them between bundles).
   */
  readonly inputSpecs: ReadonlyMap<string, string>;
  readonly outputSpecs: ReadonlyMap<string, string>;
  /** For each kind an input detector can report, the scan keys whose detector reports it, in plan order. */
  readonly kindSources: ReadonlyMap<string, readonly string[]>;
  readonly classRules: ReadonlyArray<{ id: string; cls: string; confidence: number; test: Predicate }>;
  readonly defaultClass: string;
  readonly routes: ReadonlyArray<{
    id: string;
    test: Predicate;
    provider: string | undefined;
    model: string | undefined;
  }>;
  readonly allowedModels: ReadonlyMap<string, RegExp>;
  readonly inputGuards: readonly CompiledGuardrail[];
  readonly outputGuards: readonly CompiledGuardrail[];
  readonly holdBackChars: number;
  readonly toolRules: readonly CompiledToolRule[];
  readonly budgets: readonly Budget[];
  readonly logging: ReadonlyMap<string, ContentLogging>;
  readonly loggingDefault: ContentLogging;
  /** Whether any condition uses CEL (the CEL activation is built only then). */
  readonly usesCel: boolean;
}

const anyOf = (values: readonly string[]) => new Set(values);

function compileCondition(
  w: Condition,
  path: string,
  issues: string[],
  cel: () => ReturnType<typeof celEnvironment>,
): Predicate {
  const tests: Predicate[] = [];
  if (w.app) {
    const s = anyOf(w.app);
    tests.push((c) => s.has(c.input.app.appId));
  }
  if (w['app.tags']) {
    const s = anyOf(w['app.tags']);
    tests.push((c) => c.input.app.tags.some((t) => s.has(t)));
  }
  if (w.api) {
    const s = anyOf(w.api);
    tests.push((c) => s.has(c.input.api));
  }
  if (w.model) {
    const re = globsToRegExp(w.model);
    tests.push((c) => re.test(c.input.model));
  }
  if (w.endUser) {
    const s = anyOf(w.endUser);
    tests.push((c) => c.input.endUser !== undefined && s.has(c.input.endUser));
  }
  if (w.metadata) {
    const entries = Object.entries(w.metadata).map(([k, v]) => [k, anyOf(v)] as const);
    tests.push((c) => entries.every(([k, s]) => s.has(c.input.metadata[k] ?? '\u0000')));
  }
  if (w['input.detects']) {
    const kinds = w['input.detects'];
    tests.push((c) => kinds.some((k) => c.hasKind(k)));
  }
  if (w.tokens) {
    const { gt, lte } = w.tokens;
    tests.push((c) => (gt === undefined || c.tokens > gt) && (lte === undefined || c.tokens <= lte));
  }
  if (w.class) {
    const s = anyOf(w.class);
    tests.push((c) => c.cls !== undefined && s.has(c.cls));
  }
  if (w.stream !== undefined) {
    const want = w.stream;
    tests.push((c) => c.input.stream === want);
  }
  if (w.expr) {
    const program = compileCel(cel(), w.expr);
    if (typeof program === 'string') issues.push(`${path}.expr: ${program}`);
    else {
      const p: CelProgram = program;
      tests.push((c) => p(c.celRequest()));
    }
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (c) => {
    for (const t of tests) if (!t(c)) return false;
    return true;
  };
}

function usesCel(w: Condition): boolean {
  return w.expr !== undefined;
}

/**
 * Builds the scan plan of one stage: shared detectors for fixed-kind detectors, one per keyword/regex guardrail.
 * Each detector also gets its canonical spec: everything its matches depend on (name, options, the kind it reports).
 */
function planScan(
  guards: readonly Guardrail[],
  stage: 'input' | 'output',
  extraKinds: readonly string[],
  issues: string[],
): { scan: Map<string, Detector>; specs: Map<string, string>; compiled: CompiledGuardrail[] } {
  const scan = new Map<string, Detector>();
  const specs = new Map<string, string>();
  const compiled: CompiledGuardrail[] = [];
  const fixedKinds = { pii: new Set<string>(), secrets: new Set<string>() };
  const injectionThresholds = new Set<number>();
  for (const k of extraKinds) {
    if (k.startsWith('pii.')) fixedKinds.pii.add(k);
    else if (k.startsWith('secret.')) fixedKinds.secrets.add(k);
    else if (k === 'injection.prompt') injectionThresholds.add(1);
  }
  guards.forEach((g, i) => {
    const path = `guardrails.${stage}[${i}]`;
    let scanKey: string | undefined;
    let kinds: ReadonlySet<string> | undefined;
    try {
      switch (g.detector) {
        case 'pii':
        case 'secrets': {
          // One detector per distinct kind set: where kinds overlap on the same text (an SSN also looks like a
          // phone number) the detector settles it among the kinds it scans, so a guardrail's result must not
          // depend on what other rules of the bundle ask for.
          const wanted = [...(g.kinds ?? createDetector(g.detector, {}).kinds)].sort();
          scanKey = `${g.detector}:${wanted.join(',')}`;
          if (!scan.has(scanKey)) {
            scan.set(scanKey, createDetector(g.detector, { kinds: wanted }));
            specs.set(scanKey, scanKey); // the sorted kind set is all a pii/secrets detector depends on
          }
          kinds = g.kinds ? new Set(g.kinds) : undefined;
          break;
        }
        case 'prompt_injection': {
          const t = g.threshold ?? 1;
          injectionThresholds.add(t);
          scanKey = `prompt_injection:${t}`;
          break;
        }
        case 'keywords': {
          scanKey = `keyword.${g.id}`;
          const opts = {
            keywords: g.keywords,
            caseSensitive: g.caseSensitive,
            wholeWord: g.wholeWord,
            kind: scanKey,
          };
          scan.set(scanKey, createDetector('keywords', opts));
          specs.set(scanKey, specOf('keywords', opts));
          break;
        }
        case 'regex': {
          scanKey = `regex.${g.id}`;
          const opts = { patterns: g.patterns, flags: g.flags, kind: scanKey };
          scan.set(scanKey, createDetector('regex', opts));
          specs.set(scanKey, specOf('regex', opts));
          break;
        }
        case 'max_tokens':
          break;
      }
    } catch (err) {
      issues.push(`${path}: ${(err as Error).message}`);
    }
    compiled.push(
      Object.freeze({
        id: g.id,
        stage,
        detector: g.detector,
        action: g.action,
        classes: g.classes ? new Set(g.classes) : undefined,
        scanKey,
        kinds,
        max: g.detector === 'max_tokens' ? g.max : undefined,
      }),
    );
  });
  // Kinds named only by conditions (`input.detects`) get their own detector per family.
  for (const fam of ['pii', 'secrets'] as const) {
    const wanted = [...fixedKinds[fam]].sort();
    const key = `${fam}:${wanted.join(',')}`;
    if (wanted.length && !scan.has(key)) {
      scan.set(key, createDetector(fam, { kinds: wanted }));
      specs.set(key, key);
    }
  }
  for (const t of injectionThresholds) {
    const key = `prompt_injection:${t}`;
    scan.set(key, createDetector('prompt_injection', { threshold: t }));
    specs.set(key, key);
  }
  return { scan, specs, compiled };
}

/** A detector's canonical spec from its options as the bundle gave them (unset options left out). */
function specOf(detector: string, opts: Record<string, unknown>): string {
  return JSON.stringify([detector, opts]);
}

/** Kind → the scan keys whose detector can report it, in plan order. */
function kindSources(scan: ReadonlyMap<string, Detector>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, d] of scan)
    for (const kind of d.kinds) {
      const keys = out.get(kind);
      if (keys) keys.push(key);
      else out.set(kind, [key]);
    }
  return out;
}

/**
 * Compiles a validated bundle once, at load: globs and regexes, detectors, CEL programs (type-checked), lookup
 * tables. Throws BundleError naming the path of anything that does not compile.
 */
export function compileBundle(loaded: LoadedBundle): CompiledBundle {
  const b = loaded.bundle;
  const issues: string[] = [];
  let env: ReturnType<typeof celEnvironment> | undefined;
  const cel = () => {
    env ??= celEnvironment();
    return env;
  };
  const conditionKinds: string[] = [];
  const allConditions: Condition[] = [
    ...b.classification.rules.map((r) => r.when),
    ...b.routing.map((r) => r.when),
  ];
  for (const w of allConditions) for (const k of w['input.detects'] ?? []) conditionKinds.push(k);

  const input = planScan(b.guardrails.input, 'input', conditionKinds, issues);
  const output = planScan(b.guardrails.output, 'output', [], issues);

  const classRules = b.classification.rules.map((r, i) => ({
    id: r.id,
    cls: r.class,
    confidence: r.confidence,
    test: compileCondition(r.when, `classification.rules[${i}].when`, issues, cel),
  }));
  const routes = b.routing.map((r, i) => ({
    id: r.id,
    test: compileCondition(r.when, `routing[${i}].when`, issues, cel),
    provider: r.route.provider,
    model: r.route.model,
  }));
  const toolRules = b.tools.map((t) =>
    Object.freeze({
      id: t.id,
      classes: t.classes ? new Set(t.classes) : undefined,
      allow: t.allow ? globsToRegExp(t.allow) : undefined,
      deny: t.deny ? globsToRegExp(t.deny) : undefined,
    }),
  );
  if (issues.length) throw new BundleError(loaded.source, issues);

  const { default: loggingDefault = 'none', ...perClass } = b.logging.content;
  return Object.freeze({
    id: loaded.id,
    name: b.metadata.name,
    version: b.metadata.version,
    loaded,
    inputScan: input.scan,
    outputScan: output.scan,
    inputSpecs: input.specs,
    outputSpecs: output.specs,
    kindSources: kindSources(input.scan),
    classRules,
    defaultClass: b.classification.default,
    routes,
    allowedModels: new Map(Object.entries(b.models).map(([c, ms]) => [c, globsToRegExp(ms)])),
    inputGuards: input.compiled,
    outputGuards: output.compiled,
    holdBackChars: b.guardrails.holdBackChars,
    toolRules,
    budgets: b.budgets,
    logging: new Map(Object.entries(perClass)),
    loggingDefault,
    usesCel: allConditions.some(usesCel),
  });
}
