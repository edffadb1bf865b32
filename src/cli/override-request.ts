import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { GateOverride } from '../control/override-schema.ts';
import { AdminCallError, adminCall, adminTarget } from './admin-client.ts';
import { pendingApproval } from './rollout.ts';

/** Usage lines of `override request` and `override list`. */
export const OVERRIDE_REQUEST_USAGE = `  override request --gate G[,H] --note TEXT --rationale TEXT --sample-size N --mitigation TEXT
        [--severity high=0,low=3] (--expires-in 2h | --expires-at ISO | --max-requests N
        | --revert-when GATE>VALUE | --reevaluate-at ISO)… --on-expiry block_widening|rollback
        (or --file DRAFT.yaml)                      ask to override failed gates: an approval (two keys)
  override list [--json]                            overrides in force and ended, with time left
`;

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `2h` → ms; throws on anything else. */
export function durationMs(v: string): number {
  const m = DURATION.exec(v.trim());
  if (!m) throw new Error(`expected a duration like 30m, 2h or 1d, got "${v}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Builds the override draft from the flags (validated again, fully, by the gateway). */
export function draftFromFlags(v: Record<string, string | undefined>, now: Date): Record<string, unknown> {
  const need = (k: string) => {
    const x = v[k];
    if (x === undefined || x === '') throw new Error(`--${k} is required`);
    return x;
  };
  const gates = need('gate')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  const severityMix: Record<string, number> = {};
  for (const part of (v.severity ?? '').split(',').filter(Boolean)) {
    const [k, n] = part.split('=');
    if (!k || n === undefined || !/^\d+$/.test(n))
      throw new Error(`--severity: expected k=N,…, got "${part}"`);
    severityMix[k.trim()] = Number(n);
  }
  const expiry: Record<string, unknown> = {};
  if (v['expires-in']) expiry.expiresAt = new Date(now.getTime() + durationMs(v['expires-in'])).toISOString();
  if (v['expires-at']) expiry.expiresAt = new Date(v['expires-at']).toISOString();
  if (v['max-requests']) expiry.maxRequests = Number(v['max-requests']);
  if (v['reevaluate-at']) expiry.reevaluateAt = new Date(v['reevaluate-at']).toISOString();
  if (v['revert-when']) {
    const m = /^([a-z0-9_]+)>(-?\d+(?:\.\d+)?)$/.exec(v['revert-when']);
    if (!m) throw new Error(`--revert-when: expected GATE>VALUE, got "${v['revert-when']}"`);
    expiry.revertWhen = { gate: m[1], above: Number(m[2]) };
  }
  return {
    gates: gates.map((name) => ({ name, confidenceNote: need('note') })),
    rationale: need('rationale'),
    evidence: {
      sampleSize: Number(need('sample-size')),
      severityMix,
      mitigation: need('mitigation'),
      links: [],
    },
    expiry,
    onExpiry: need('on-expiry'),
  };
}

function left(o: GateOverride, now: number): string {
  if (!o.expiry.expiresAt) return 'no time box';
  const ms = Date.parse(o.expiry.expiresAt) - now;
  if (ms <= 0) return 'expired';
  const m = Math.round(ms / 60_000);
  return m >= 120 ? `${Math.round(m / 60)} h left` : `${m} min left`;
}

/** `ringfence override request|list`. Exit 0 done, 1 refused, 2 usage. */
export async function runOverrideRequest(argv: string[]): Promise<number> {
  const opt = { type: 'string' } as const;
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      admin: opt,
      token: opt,
      file: opt,
      gate: opt,
      note: opt,
      rationale: opt,
      'sample-size': opt,
      severity: opt,
      mitigation: opt,
      'expires-in': opt,
      'expires-at': opt,
      'max-requests': opt,
      'revert-when': opt,
      'reevaluate-at': opt,
      'on-expiry': opt,
      json: { type: 'boolean', default: false },
    },
  });
  const t = adminTarget(values, process.env);
  try {
    if (positionals[0] === 'list') {
      const r = await adminCall(t, 'GET', '/overrides');
      const records = r.records as Array<{
        override: GateOverride;
        ended?: { at: string; reason: string; action: string };
      }>;
      if (values.json) {
        process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
        return 0;
      }
      if (!records.length) process.stdout.write('no overrides\n');
      for (const { override: o, ended } of records)
        process.stdout.write(
          `${o.id}  ${o.gates.map((g) => g.name).join(',')}  ${o.transition}  by ${o.requestedBy}+${o.approvedBy}  ` +
            `${ended ? `ended ${ended.at} (${ended.reason}; action ${ended.action})` : `${left(o, Date.now())}, on expiry: ${o.onExpiry}`}\n`,
        );
      return 0;
    }
    let draft: Record<string, unknown>;
    try {
      draft = values.file
        ? (parseYaml(readFileSync(values.file, 'utf8')) as Record<string, unknown>)
        : draftFromFlags(values as unknown as Record<string, string | undefined>, new Date());
    } catch (err) {
      process.stderr.write(
        `ringfence override request: ${(err as Error).message}\nusage:\n${OVERRIDE_REQUEST_USAGE}`,
      );
      return 2;
    }
    const r = await adminCall(t, 'POST', '/overrides', draft);
    process.stdout.write(`${pendingApproval(r.approval as Parameters<typeof pendingApproval>[0])}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof AdminCallError)) throw err;
    process.stderr.write(`ringfence override ${positionals[0]}: ${err.message} (${err.code})\n`);
    return 1;
  }
}
