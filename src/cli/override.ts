import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from '../config/load.ts';
import type { OverrideSource } from '../control/ci-gate.ts';
import { formatOverrideReport, overrideReport } from '../control/override-report.ts';
import { type GateOverride, overrideSchema } from '../control/override-schema.ts';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';
import { OVERRIDE_REQUEST_USAGE, runOverrideRequest } from './override-request.ts';

/** Usage lines of the `override` commands. */
export const OVERRIDE_USAGE = `${OVERRIDE_REQUEST_USAGE}  override report (--state-dir DIR | --admin URL --token T | --dir DIR) [--days 30]
        [--now ISO] [--json]
                                                    overrides per gate per week, who used them; gates
                                                    overridden >= 3 times in 30 days flagged as deprecated
`;

/** A source of overrides that cannot be read at all (as opposed to one bad override in it). */
export class OverrideSourceError extends Error {}

/** Validates one parsed override document (or a list of them) into sources named `source` / `source[i]`. */
export function overrideSources(raw: unknown, source: string): OverrideSource[] {
  const items = Array.isArray(raw) ? raw : [raw];
  return items.map((item, i) => {
    const name = Array.isArray(raw) ? `${source}[${i}]` : source;
    const r = overrideSchema.safeParse(item);
    return r.success ? { source: name, override: r.data } : { source: name, issues: formatIssues(r.error) };
  });
}

/** Reads every `*.yaml`, `*.yml` and `*.json` file of a directory; each holds one override or a list. */
export function readOverrideDir(dir: string): OverrideSource[] {
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new OverrideSourceError(`${dir}: not a directory`);
    files = readdirSync(dir)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
  } catch (err) {
    if (err instanceof OverrideSourceError) throw err;
    throw new OverrideSourceError(`${dir}: cannot read directory: ${(err as NodeJS.ErrnoException).code}`);
  }
  return files.flatMap((f) => {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(join(dir, f), 'utf8'), { uniqueKeys: true });
    } catch (err) {
      return [{ source: f, issues: [`YAML: ${(err as Error).message.split('\n')[0]}`] }];
    }
    return overrideSources(raw, f);
  });
}

/**
 * The `overrides` journal of a state directory (`journals/overrides.jsonl`); a torn last line is left out. The
 * gateway journals events (`granted` carries the override, `ended` and `unblocked` carry none); a line that is a
 * bare override object is read as one too.
 */
export function readOverrideJournal(stateDir: string): OverrideSource[] {
  const file = join(stateDir, 'journals', 'overrides.jsonl');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (!statSync(stateDir, { throwIfNoEntry: false })?.isDirectory())
        throw new OverrideSourceError(`${stateDir}: no such state directory`);
      return []; // no override was ever recorded
    }
    throw new OverrideSourceError(`${file}: cannot read: ${code}`);
  }
  // Only newline-terminated lines were appended completely (as the file store writes them).
  const lines = text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .slice(0, -1);
  return lines.flatMap((line, i) => {
    const source = `overrides.jsonl:${i + 1}`;
    let ev: { type?: string; record?: { override?: unknown } };
    try {
      ev = JSON.parse(line);
    } catch {
      return [{ source, issues: ['not valid JSON'] }];
    }
    if (ev.type === 'granted') return overrideSources(ev.record?.override, source);
    if (ev.type !== undefined) return [];
    return overrideSources(ev, source);
  });
}

/** GET /admin/v1/overrides → `{ overrides: GateOverride[] }`. */
async function fetchOverrides(t: ReturnType<typeof adminTarget>): Promise<OverrideSource[]> {
  const body = await adminCall(t, 'GET', '/overrides');
  if (!Array.isArray(body.overrides))
    throw new OverrideSourceError('GET /admin/v1/overrides: expected { overrides: [...] }');
  return body.overrides.flatMap((o, i) => overrideSources(o, `admin[${i}]`));
}

function usage(problem: string): number {
  process.stderr.write(`ringfence: ${problem}\nusage:\n${OVERRIDE_USAGE}`);
  return 2;
}

/** `ringfence override report …`. Exit 0 reported, 1 the source could not be read, 2 usage. */
export async function runOverride(argv: string[]): Promise<number> {
  if (argv[0] === 'request' || argv[0] === 'list') return runOverrideRequest(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'state-dir': { type: 'string' },
      dir: { type: 'string' },
      admin: { type: 'string' },
      token: { type: 'string' },
      days: { type: 'string', default: '30' },
      now: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'report' || positionals.length !== 1)
    return usage(
      positionals[0] ? `unknown override command "${positionals[0]}"` : 'override needs a command',
    );
  const chosen = [values['state-dir'], values.dir, values.admin].filter((v) => v !== undefined);
  if (chosen.length !== 1) return usage('override report needs exactly one of --state-dir, --admin, --dir');
  const days = Number(values.days);
  if (!Number.isInteger(days) || days <= 0)
    return usage(`--days: expected a positive integer, got "${values.days}"`);
  const now = values.now === undefined ? new Date() : new Date(values.now);
  if (Number.isNaN(now.getTime())) return usage(`--now: expected an ISO time, got "${values.now}"`);
  let sources: OverrideSource[];
  try {
    if (values['state-dir']) sources = readOverrideJournal(values['state-dir']);
    else if (values.dir) sources = readOverrideDir(values.dir);
    else sources = await fetchOverrides(adminTarget(values, process.env));
  } catch (err) {
    if (!(err instanceof OverrideSourceError || err instanceof AdminCallError)) throw err;
    process.stderr.write(`ringfence: ${err.message}\n`);
    return 1;
  }
  const valid = sources.flatMap((s) => (s.override ? [s.override] : [])) as GateOverride[];
  const invalid = sources.filter((s) => !s.override);
  const report = overrideReport(valid, now, days);
  if (values.json) {
    const skipped = invalid.map((s) => ({ source: s.source, issues: s.issues ?? [] }));
    process.stdout.write(`${JSON.stringify({ ...report, skipped }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatOverrideReport(report));
  for (const s of invalid) process.stderr.write(`skipped ${s.source}: ${(s.issues ?? []).join('; ')}\n`);
  return 0;
}
