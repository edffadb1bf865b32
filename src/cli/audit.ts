import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  AUDIT_KINDS,
  type AuditHead,
  type AuditRecord,
  auditJournalPath,
  describeBreak,
  publicKeyOf,
  verifyJournal,
} from '../control/audit.ts';
import { AdminCallError, type AdminTarget, adminTarget } from './admin-client.ts';

/** Usage lines of the audit commands. */
export const AUDIT_USAGE = `  audit verify --state-dir DIR [--public-key FILE] [--expect-head SEQ:HASH] [--json]
                                                    prove the audit trail untouched: exit 0 intact, 1 broken
  audit verify --admin URL --token T [...]          the same, reading the trail over the admin API
  audit log --state-dir DIR [--kind K,…] [--since ISO] [--json]
                                                    list audit records (K: a kind or a family, e.g. approval)
    (the public key may also come from RINGFENCE_AUDIT_PUBLIC_KEY, or be derived from RINGFENCE_AUDIT_SIGNING_KEY)
`;

/** A usage problem: reported with the usage text, exit 2. */
class UsageError extends Error {}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** `ringfence audit verify|log`. Exit 0 intact, 1 broken (or the trail cannot be read), 2 usage. */
export async function runAudit(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    const [sub, ...extra] = positionals;
    if ((sub !== 'verify' && sub !== 'log') || extra.length > 0)
      throw new UsageError(
        sub ? `unknown audit command "${[sub, ...extra].join(' ')}"` : 'audit needs a command',
      );
    if (values['state-dir'] !== undefined && values.admin !== undefined)
      throw new UsageError('give --state-dir DIR or --admin URL, not both');
    if (sub === 'verify') return await verifyCommand(values);
    return await logCommand(values);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ringfence: ${err.message}\nusage:\n${AUDIT_USAGE}`);
      return 2;
    }
    if (err instanceof AdminCallError) {
      process.stderr.write(`ringfence: cannot read the audit trail: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'state-dir': { type: 'string' },
        admin: { type: 'string' },
        token: { type: 'string' },
        'public-key': { type: 'string' },
        'expect-head': { type: 'string' },
        kind: { type: 'string' },
        since: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message);
    throw err;
  }
}

type Flags = {
  'state-dir'?: string | undefined;
  admin?: string | undefined;
  token?: string | undefined;
  'public-key'?: string | undefined;
  'expect-head'?: string | undefined;
  kind?: string | undefined;
  since?: string | undefined;
  json?: boolean | undefined;
};

async function verifyCommand(values: Flags): Promise<number> {
  const publicKey = publicKeyFrom(values['public-key']);
  const expectHead = anchorOf(values['expect-head']);
  const text = await readTrail(values);
  const v = verifyJournal(text, { publicKey, expectHead });
  const signed = v.records.filter((r) => r.sig !== undefined).length;
  if (values.json) {
    out(
      JSON.stringify(
        {
          ok: v.ok,
          records: v.records.length,
          signed,
          signaturesChecked: publicKey !== undefined,
          head: v.head,
          ...(v.firstBad ? { firstBad: v.firstBad } : {}),
        },
        null,
        2,
      ),
    );
    return v.ok ? 0 : 1;
  }
  if (v.ok) {
    const n = v.records.length;
    const how = publicKey
      ? 'every signature verified'
      : signed === 0
        ? 'unsigned'
        : `${signed} signed; pass --public-key to check the signatures`;
    out(
      `audit trail intact: ${n} record${n === 1 ? '' : 's'}, head seq ${v.head.seq} ${v.head.hash} (${how}` +
        `${expectHead ? `; reaches the anchored head seq ${expectHead.seq}` : ''})`,
    );
    return 0;
  }
  const bad = v.firstBad!;
  out(`audit trail BROKEN at ${describeBreak(bad)}`);
  out(
    `  ${v.records.length} record${v.records.length === 1 ? '' : 's'} before it verify` +
      (v.records.length ? ` (up to seq ${v.head.seq} ${v.head.hash})` : ''),
  );
  if (bad.reason === 'truncated' && bad.detail.startsWith('the file ends mid-line'))
    out(
      '  (a gateway that crashed mid-append leaves this too; it drops the partial line on its next append)',
    );
  return 1;
}

async function logCommand(values: Flags): Promise<number> {
  const wanted = kindFilter(values.kind);
  const since = values.since === undefined ? undefined : Date.parse(values.since);
  if (since !== undefined && Number.isNaN(since))
    throw new UsageError(`--since: expected an ISO timestamp, got "${values.since}"`);
  const v = verifyJournal(await readTrail(values));
  const shown = v.records.filter(
    (r) => (wanted === undefined || wanted(r.kind)) && (since === undefined || Date.parse(r.at) >= since),
  );
  if (values.json) out(JSON.stringify(shown, null, 2));
  else if (shown.length === 0) out(v.records.length ? 'no matching audit records' : 'no audit records');
  else for (const r of shown) out(formatRecord(r));
  if (!v.ok) {
    process.stderr.write(
      `ringfence: audit trail BROKEN at ${describeBreak(v.firstBad!)}; only the ${v.records.length} records before it are listed\n`,
    );
    return 1;
  }
  return 0;
}

/** One record on one line: seq, time, kind, actor, change id, then the data as key=value. */
export function formatRecord(r: AuditRecord): string {
  const data = Object.entries(r.data)
    .map(([k, v]) => `${k}=${clip(typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v))}`)
    .join(' ');
  return `${String(r.seq).padStart(5)}  ${r.at}  ${r.kind.padEnd(18)}  ${r.actor}${r.changeId ? `  ${r.changeId}` : ''}${data ? `  ${data}` : ''}`;
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 119)}…` : s;
}

function kindFilter(flag: string | undefined): ((kind: string) => boolean) | undefined {
  if (flag === undefined) return undefined;
  const parts = flag
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of parts)
    if (!AUDIT_KINDS.some((k) => k === p || k.startsWith(`${p}.`)))
      throw new UsageError(`--kind: unknown kind "${p}" (kinds: ${AUDIT_KINDS.join(', ')})`);
  return (kind) => parts.some((p) => kind === p || kind.startsWith(`${p}.`));
}

/** --public-key FILE, else RINGFENCE_AUDIT_PUBLIC_KEY, else the public half of RINGFENCE_AUDIT_SIGNING_KEY. */
function publicKeyFrom(file: string | undefined): string | undefined {
  let pem: string | undefined;
  let from: string;
  if (file !== undefined) {
    if (!existsSync(file)) throw new UsageError(`--public-key: no such file ${file}`);
    pem = readFileSync(file, 'utf8');
    from = `--public-key ${file}`;
  } else {
    pem = process.env.RINGFENCE_AUDIT_PUBLIC_KEY || process.env.RINGFENCE_AUDIT_SIGNING_KEY || undefined;
    from = process.env.RINGFENCE_AUDIT_PUBLIC_KEY
      ? 'RINGFENCE_AUDIT_PUBLIC_KEY'
      : 'RINGFENCE_AUDIT_SIGNING_KEY';
  }
  if (pem === undefined) return undefined;
  try {
    publicKeyOf(pem);
  } catch (err) {
    throw new UsageError(`${from}: not a usable Ed25519 key (${(err as Error).message})`);
  }
  return pem;
}

function anchorOf(flag: string | undefined): AuditHead | undefined {
  if (flag === undefined) return undefined;
  const m = /^(\d+):(sha256:[0-9a-f]{64})$/.exec(flag);
  if (!m) throw new UsageError(`--expect-head: expected SEQ:sha256:<64 hex>, got "${flag}"`);
  return { seq: Number(m[1]), hash: m[2]! };
}

/** The raw journal text: from the state directory's file, else over the admin API. */
async function readTrail(values: Flags): Promise<string> {
  const dir = values['state-dir'];
  if (dir === undefined) return fetchRaw(adminTarget(values, process.env));
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`--state-dir: no such directory ${dir}`);
  const file = auditJournalPath(dir);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** GET /admin/v1/audit?format=raw: the journal's lines as text/plain. */
async function fetchRaw(t: AdminTarget): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${t.url}/admin/v1/audit?format=raw`, {
      headers: t.token ? { authorization: `Bearer ${t.token}` } : {},
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new AdminCallError(
      0,
      'unreachable',
      `cannot reach the admin API at ${t.url}: ${(err as Error).cause ?? (err as Error).message}`,
      {},
    );
  }
  const text = await res.text();
  if (!res.ok) {
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { raw: text };
    }
    const e = (body.error ?? {}) as { code?: string; message?: string };
    throw new AdminCallError(res.status, e.code ?? `http_${res.status}`, e.message ?? text, body);
  }
  return text;
}
