import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.ts';
import {
  CI_EXIT,
  type CiGateInput,
  type CiGateResult,
  evaluateCiGate,
  gateStatsSchema,
  type MeasuredGates,
  measuredFromStats,
} from '../control/ci-gate.ts';
import { diffBundles } from '../policy/diff.ts';
import { CaseFileError, loadCases, runCases } from '../policy/golden.ts';
import { BundleError, loadBundleFile } from '../policy/load.ts';
import { type Bundle, bundleSchema } from '../policy/schema.ts';
import { validateBundleFile } from '../policy/validate.ts';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';
import { OverrideSourceError, readOverrideDir } from './override.ts';

/** Usage lines of the `gate` command. */
export const GATE_USAGE = `  gate evaluate --candidate FILE [--production FILE] [--cases DIR]
        [--stats FILE | --admin URL --token T] [--overrides DIR] [--non-overridable G,H]
        [--config CONFIG] [--now ISO] [--json]
                                                    CI gate: exit 0 ALLOW, 1 BLOCK, 2 REQUIRE_OVERRIDE,
                                                    3 usage or unreadable input
`;

/** Usage or input the gate cannot evaluate with: exit 3 (0-2 are verdicts). */
class GateInputError extends Error {}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function readStats(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GateInputError(`--stats ${file}: cannot read: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GateInputError(`--stats ${file}: not JSON: ${(err as Error).message}`);
  }
}

function parseStats(raw: unknown, source: string): ReturnType<typeof measuredFromStats> {
  const r = gateStatsSchema.safeParse(raw);
  if (!r.success)
    throw new GateInputError(
      `${source}: expected the GET /admin/v1/rollout body or its gate table ({ transition, gates: GateResult[] }): ${r.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    );
  return measuredFromStats(r.data);
}

/** Production's bundle as the gateway holds it (GET /admin/v1/bundles/:id), checked against its id. */
async function adminBundle(t: ReturnType<typeof adminTarget>, id: string): Promise<Bundle> {
  const body = await adminCall(t, 'GET', `/bundles/${encodeURIComponent(id)}`);
  const r = bundleSchema.safeParse(body.bundle);
  if (!r.success) throw new GateInputError(`GET /admin/v1/bundles/${id}: not a valid bundle`);
  return r.data;
}

interface Gathered {
  input: CiGateInput;
  title: string;
  json: boolean;
}

async function gather(argv: string[]): Promise<Gathered> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new GateInputError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'evaluate' || positionals.length !== 1)
    throw new GateInputError(
      positionals[0] ? `unknown gate command "${positionals[0]}"` : 'gate needs a command',
    );
  if (!values.candidate) throw new GateInputError('gate evaluate needs --candidate FILE');
  if (values.stats !== undefined && values.admin !== undefined)
    throw new GateInputError('give --stats FILE or --admin URL, not both');
  const now = values.now === undefined ? new Date() : new Date(values.now);
  if (values.now !== undefined && (!/^\d{4}-\d\d-\d\dT/.test(values.now) || Number.isNaN(now.getTime())))
    throw new GateInputError(`--now: expected an ISO time, got "${values.now}"`);

  let ctx = {};
  if (values.config)
    ctx = { providers: Object.keys(loadConfig(values.config, process.env).config.providers) };
  if (!existsSync(values.candidate))
    throw new GateInputError(`--candidate ${values.candidate}: no such file`);
  const v = validateBundleFile(values.candidate, ctx);
  const compiled = v.ok ? v.compiled : undefined;
  const input: { -readonly [K in keyof CiGateInput]: CiGateInput[K] } = {
    candidate: compiled
      ? { id: compiled.id, name: compiled.name, version: compiled.version, issues: [] }
      : { id: null, issues: v.ok ? [] : v.issues },
    overrides: [],
    nonOverridable: list(values['non-overridable']),
    now,
  };

  if (values.cases !== undefined) {
    if (!statSync(values.cases, { throwIfNoEntry: false })?.isDirectory())
      throw new GateInputError(`--cases ${values.cases}: no such directory`);
    if (compiled) {
      try {
        input.golden = { results: runCases(compiled, loadCases(values.cases)) };
      } catch (err) {
        if (!(err instanceof CaseFileError)) throw err;
        input.golden = { loadIssues: err.issues };
      }
    } else input.golden = { results: [] };
  }

  const useAdmin =
    values.admin !== undefined || (values.stats === undefined && !!process.env.RINGFENCE_ADMIN_URL);
  let production: { id: string; bundle: Bundle } | undefined;
  if (values.production !== undefined) {
    try {
      const p = loadBundleFile(values.production);
      production = { id: p.id, bundle: p.bundle };
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      throw new GateInputError(`--production: ${err.message}`);
    }
  }
  let measured: MeasuredGates | undefined;
  let statsProductionId: string | undefined;
  if (values.stats !== undefined) {
    ({ measured, productionId: statsProductionId } = parseStats(readStats(values.stats), values.stats));
  } else if (useAdmin) {
    const t = adminTarget(values, process.env);
    const status = await adminCall(t, 'GET', '/rollout');
    ({ measured, productionId: statsProductionId } = parseStats(status, 'GET /admin/v1/rollout'));
    if (!production && statsProductionId)
      production = { id: statsProductionId, bundle: await adminBundle(t, statsProductionId) };
  }
  if (measured) input.measured = measured;
  const productionId = production?.id ?? statsProductionId;
  if (productionId) input.productionId = productionId;
  if (production && compiled) {
    const d = diffBundles(production.bundle, compiled.loaded.bundle);
    input.diff = { production: d.from, changes: d.changes };
  }
  if (values.overrides !== undefined) {
    try {
      input.overrides = readOverrideDir(values.overrides);
    } catch (err) {
      if (!(err instanceof OverrideSourceError)) throw err;
      throw new GateInputError(`--overrides ${err.message}`);
    }
  }
  const title = compiled
    ? `candidate ${compiled.name} ${compiled.version} (${compiled.id})`
    : `candidate ${values.candidate} (invalid)`;
  return { input, title: `${title}${production ? `\nproduction ${production.id}` : ''}`, json: values.json };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      candidate: { type: 'string' },
      production: { type: 'string' },
      cases: { type: 'string' },
      stats: { type: 'string' },
      admin: { type: 'string' },
      token: { type: 'string' },
      overrides: { type: 'string' },
      'non-overridable': { type: 'string' },
      config: { type: 'string', short: 'c' },
      now: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
}

/** Renders the outcome for a terminal: the gate table, notes, the loosening changes, the overrides, the verdict. */
export function formatCiGate(r: CiGateResult, title: string): string {
  const dash = (v: unknown) => (v === null || v === undefined ? '—' : String(v));
  const head = ['gate', 'observed', 'threshold', 'verdict', 'samples', 'outcome', 'override'];
  const cells = r.rows.map((x) => [
    x.gate,
    dash(x.observed),
    x.threshold,
    x.verdict.toUpperCase(),
    dash(x.sampleSize),
    x.outcome,
    x.coveredBy ?? (x.overridable ? '—' : 'non-overridable'),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  const out = [title, '', line(head), ...cells.map(line)];
  const noted = r.rows.filter((x) => x.note && x.verdict !== 'pass');
  if (noted.length) out.push('', 'notes:', ...noted.map((x) => `  ${x.gate}: ${x.note}`));
  if (r.loosened.length)
    out.push('', 'loosened vs production:', ...r.loosened.map((c) => `  - ${c.explanation}`));
  if (r.honouredOverrides.length || r.ignoredOverrides.length) {
    out.push('', 'overrides:');
    for (const o of r.honouredOverrides)
      out.push(
        `  ✓ ${o.id} (${o.source}) covers ${o.covers.join(', ')}`,
        ...o.reasons.map((x) => `      ${x}`),
      );
    for (const o of r.ignoredOverrides)
      out.push(`  ✗ ${o.id ?? '(invalid)'} (${o.source}) ignored:`, ...o.reasons.map((x) => `      - ${x}`));
  }
  const why = r.rows.filter((x) => x.outcome === r.verdict && r.verdict !== 'ALLOW').map((x) => x.gate);
  out.push(
    '',
    `verdict: ${r.verdict} (exit ${CI_EXIT[r.verdict]})${why.length ? `: ${why.join(', ')}` : ''}`,
  );
  return `${out.join('\n')}\n`;
}

/** `ringfence gate evaluate …`. Exit 0 ALLOW, 1 BLOCK, 2 REQUIRE_OVERRIDE, 3 usage or input error. */
export async function runGate(argv: string[]): Promise<number> {
  let g: Gathered;
  try {
    g = await gather(argv);
  } catch (err) {
    if (err instanceof GateInputError) {
      process.stderr.write(`ringfence: ${err.message}\nusage:\n${GATE_USAGE}`);
      return 3;
    }
    if (err instanceof AdminCallError || err instanceof ConfigError) {
      process.stderr.write(`ringfence: ${(err as Error).message}\n`);
      return 3;
    }
    throw err;
  }
  const r = evaluateCiGate(g.input);
  if (g.json) {
    const body = {
      verdict: r.verdict,
      exitCode: CI_EXIT[r.verdict],
      candidate: g.input.candidate,
      productionId: g.input.productionId ?? null,
      transition: g.input.measured?.transition ?? null,
      rows: r.rows,
      honouredOverrides: r.honouredOverrides,
      ignoredOverrides: r.ignoredOverrides,
      loosened: r.loosened,
    };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
  } else process.stdout.write(formatCiGate(r, g.title));
  return CI_EXIT[r.verdict];
}
