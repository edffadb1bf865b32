/**
 * The tamper-evident audit trail of the control plane: every change (bundles, rings, promotions, approvals,
 * overrides, rollbacks, kill switches, acknowledgements, drills) as one record appended to the store's `audit`
 * journal (`<stateDir>/journals/audit.jsonl` with the file store), hash-chained so that editing, removing or
 * reordering any record is detectable, and optionally signed (Ed25519) so that rewriting the whole chain is too.
 *
 * Record v1, one canonical-JSON line each:
 *   { v: 1, seq, at, kind, actor, changeId, data, prev, hash, sig? }
 *   seq   1, 2, 3, … without gaps
 *   prev  the previous record's hash; the first record's is GENESIS (`sha256:` + 64 zeros)
 *   hash  `sha256:` + hex sha256 of the canonical JSON of the record without `hash` and `sig`
 *   sig   base64 Ed25519 signature of the `hash` string (present when a signing key is configured)
 *
 * What the chain proves, and what it cannot:
 * - An edited, removed, inserted, duplicated or reordered record breaks the chain at the first damaged line;
 *   `verifyChain` names that line and why (`edited`, `removed`, `reordered`, `truncated`, signature problems).
 * - Whoever can write the file can also recompute every hash after an edit. Only signatures (the private key
 *   kept out of the state directory, in RINGFENCE_AUDIT_SIGNING_KEY) make such a rewrite detectable.
 * - Dropping whole records from the END leaves a shorter chain that is still perfectly valid: neither hashes
 *   nor signatures can see it. Only a head anchored elsewhere (`expectHead`: seq and hash recorded outside the
 *   state directory, e.g. in the ring state, a metric or an external log) reveals it.
 * - One writer per trail: the head is kept in memory by the one process that appends (the gateway); two
 *   processes appending to the same journal would fork the chain (and the fork would be reported as damage).
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { canonicalJson } from '../policy/canonical.ts';
import { type ControlStore, plainJson, StoreCorruptError, sha256Id } from './store.ts';

/** Every kind of control-plane event the trail records. */
export const AUDIT_KINDS = [
  'bundle.registered', // data: { bundleId, name, version, created }
  'ring.entered', // data: { ring: shadow|canary|production, bundleId, slice?, at }
  'promotion.decided', // data: { transition, decision: allowed|blocked, gates, requester, approver? }
  'approval.requested', // data: { approvalId, action, requester, expiresAt }
  'approval.granted', // data: { approvalId, approver }
  'approval.rejected', // data: { approvalId, approver, reason }
  'approval.expired', // data: { approvalId }
  'override.created', // data: { overrideId, scope, action, expiresAt, reason }
  'override.expired', // data: { overrideId, action (what was run when it lapsed) }
  'rollback', // data: { trigger, reason, figures, from, to, timeToRestoreMs }
  'kill', // data: { target | candidate, reason }
  'restore', // data: { target | candidate, reason }
  'divergence.ack', // data: { epoch, group, reason }
  'drill', // data: the drill result
] as const;

/** A kind of audit record. */
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** One record of the trail (format v1). */
export interface AuditRecord {
  readonly v: 1;
  readonly seq: number;
  readonly at: string;
  readonly kind: AuditKind;
  readonly actor: string;
  readonly changeId: string | null;
  readonly data: Record<string, unknown>;
  readonly prev: string;
  readonly hash: string;
  readonly sig?: string;
}

/** The last record of a chain: its seq and hash (seq 0 and GENESIS for an empty trail). */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** What is wrong at the first damaged line. */
export type AuditDamage =
  | 'edited'
  | 'removed'
  | 'reordered'
  | 'truncated'
  | 'bad signature'
  | 'unsigned record';

/** The first line that does not verify: 1-based line number, the record's seq (or the seq expected there). */
export interface AuditBreak {
  readonly line: number;
  readonly seq?: number;
  readonly reason: AuditDamage;
  readonly detail: string;
}

/** The outcome of a verification: the records that verify (all when ok) and the head they end on. */
export interface AuditVerification {
  readonly ok: boolean;
  readonly records: AuditRecord[];
  readonly head: AuditHead;
  readonly firstBad?: AuditBreak;
}

/** The `prev` of the first record. */
export const GENESIS = `sha256:${'0'.repeat(64)}`;
/** The store journal holding the trail. */
export const AUDIT_JOURNAL = 'audit';

const HASH = /^sha256:[0-9a-f]{64}$/;
const kinds: ReadonlySet<string> = new Set(AUDIT_KINDS);

/** Thrown when a stored trail does not verify: names the first bad line. The trail is never appended to then. */
export class AuditChainError extends Error {
  readonly firstBad: AuditBreak | undefined;
  constructor(message: string, firstBad?: AuditBreak) {
    super(message);
    this.name = 'AuditChainError';
    this.firstBad = firstBad;
  }
}

/** The hash of a record: `sha256:` + hex sha256 of its canonical JSON without `hash` and `sig`. */
export function auditHash(record: object): string {
  const { hash: _h, sig: _s, ...body } = record as Record<string, unknown>;
  return sha256Id(canonicalJson(body));
}

/** Loads an Ed25519 private key (PEM); any other key is refused, with what it is. */
export function signingKeyOf(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`the audit signing key must be an Ed25519 private key, not ${key.asymmetricKeyType}`);
  return key;
}

/** Loads an Ed25519 public key from a PEM public key, or derives it from a PEM private key. */
export function publicKeyOf(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`the audit public key must be an Ed25519 key, not ${key.asymmetricKeyType}`);
  return key;
}

/** One line: `line 17 (seq 17): edited — hash does not match the record's content`. */
export function describeBreak(b: AuditBreak): string {
  return `line ${b.line}${b.seq === undefined ? '' : ` (seq ${b.seq})`}: ${b.reason} — ${b.detail}`;
}

/** `verifyChain` over a journal's whole text. */
export function verifyJournal(
  text: string,
  opts: { publicKey?: string | KeyObject; expectHead?: AuditHead } = {},
): AuditVerification {
  return verifyChain(text.split('\n'), opts);
}

/**
 * Verifies a trail from the raw lines of its journal, as `text.split('\n')` gives them: the last item is what
 * follows the final newline, '' when the file ends with one (anything else is a line cut short). Checks each
 * line in order (JSON, v1 shape, hash, signature when `publicKey` is given, seq and prev against the record
 * before) and stops at the first that fails. `expectHead` (an anchored head) also catches records dropped from
 * the end, or a rewritten tail, which the chain alone cannot.
 */
export function verifyChain(
  lines: readonly string[],
  opts: { publicKey?: string | KeyObject; expectHead?: AuditHead } = {},
): AuditVerification {
  const key = typeof opts.publicKey === 'string' ? publicKeyOf(opts.publicKey) : opts.publicKey;
  const all = lines.length > 0 && lines.at(-1) === '' ? lines.slice(0, -1) : lines;
  const complete = all.length === lines.length - 1 || lines.length === 0;
  const parsed = all.map(parseLine);
  const records: AuditRecord[] = [];
  const lineOf: number[] = [];
  const earlier = new Map<string, number>();
  const head = (): AuditHead => {
    const r = records.at(-1);
    return r ? { seq: r.seq, hash: r.hash } : { seq: 0, hash: GENESIS };
  };
  const fail = (firstBad: AuditBreak): AuditVerification => ({ ok: false, records, head: head(), firstBad });

  for (let i = 0; i < all.length; i++) {
    const line = i + 1;
    const { seq: last, hash: prevHash } = head();
    const p = parsed[i]!;
    if (i === all.length - 1 && !complete)
      return fail({
        line,
        seq: p.rec?.seq ?? last + 1,
        reason: 'truncated',
        detail: 'the file ends mid-line: the last record was cut short',
      });
    if (p.rec === undefined) {
      if (p.notJson)
        return fail({
          line,
          seq: last + 1,
          reason: 'truncated',
          detail: all[i] === '' ? 'empty line' : 'not valid JSON (the line was cut short)',
        });
      return fail({ line, seq: p.seq, reason: 'edited', detail: `not an audit record v1: ${p.why}` });
    }
    const r = p.rec;
    if (auditHash(r) !== r.hash)
      return fail({ line, seq: r.seq, reason: 'edited', detail: "hash does not match the record's content" });
    if (key) {
      if (r.sig === undefined)
        return fail({
          line,
          seq: r.seq,
          reason: 'unsigned record',
          detail: 'no signature (a key was given)',
        });
      if (!sigOk(r, key))
        return fail({
          line,
          seq: r.seq,
          reason: 'bad signature',
          detail: 'the signature does not verify with the public key',
        });
    }
    if (r.seq < last + 1)
      return fail({
        line,
        seq: r.seq,
        reason: 'reordered',
        detail: `seq ${r.seq} after seq ${last}: the sequence goes backwards or repeats`,
      });
    if (r.seq > last + 1) {
      const missing = (q: Parsed, j: number) => j > i && q.seq !== undefined && q.seq > last && q.seq < r.seq;
      // The record that should come next, else any other that was skipped: found later, the lines were moved.
      const next = parsed.findIndex((q, j) => missing(q, j) && q.seq === last + 1);
      const later = next >= 0 ? next : parsed.findIndex(missing);
      return later >= 0
        ? fail({
            line,
            seq: r.seq,
            reason: 'reordered',
            detail: `seq ${r.seq} comes before seq ${parsed[later]!.seq} (line ${later + 1}): records out of order`,
          })
        : fail({
            line,
            seq: r.seq,
            reason: 'removed',
            detail: `seq jumps from ${last} to ${r.seq}: ${r.seq - 1 > last + 1 ? `records ${last + 1}–${r.seq - 1} are` : `record ${last + 1} is`} missing`,
          });
    }
    if (r.prev !== prevHash) {
      const j = earlier.get(r.prev);
      if (j !== undefined)
        return fail({
          line,
          seq: r.seq,
          reason: 'reordered',
          detail: `prev matches the record on line ${j}, not the one just before it`,
        });
      if (records.length === 0)
        return fail({
          line,
          seq: r.seq,
          reason: 'edited',
          detail: 'the first record does not chain to GENESIS',
        });
      // This record still names the original hash of the one before: that one was edited, its hash recomputed.
      records.pop();
      return fail({
        line: lineOf.pop()!,
        seq: r.seq - 1,
        reason: 'edited',
        detail: `its hash was recomputed after an edit: the next record (line ${line}) chains to ${r.prev}`,
      });
    }
    records.push(r);
    lineOf.push(line);
    earlier.set(r.hash, line);
  }
  return checkAnchor(records, lineOf, head(), opts.expectHead, all.length);
}

/** Checks the chain against an anchored head: the record with that seq must exist and have that hash. */
function checkAnchor(
  records: AuditRecord[],
  lineOf: number[],
  head: AuditHead,
  anchor: AuditHead | undefined,
  lineCount: number,
): AuditVerification {
  if (anchor === undefined || anchor.seq === 0) return { ok: true, records, head };
  if (head.seq < anchor.seq)
    return {
      ok: false,
      records,
      head,
      firstBad: {
        line: lineCount + 1,
        seq: head.seq + 1,
        reason: 'truncated',
        detail: `the trail ends at seq ${head.seq} but the anchored head is seq ${anchor.seq}: records ${head.seq + 1}–${anchor.seq} are missing`,
      },
    };
  const at = anchor.seq - 1;
  if (records[at]!.hash === anchor.hash) return { ok: true, records, head };
  const kept = records.slice(0, at);
  return {
    ok: false,
    records: kept,
    head: kept.length ? { seq: kept.at(-1)!.seq, hash: kept.at(-1)!.hash } : { seq: 0, hash: GENESIS },
    firstBad: {
      line: lineOf[at]!,
      seq: anchor.seq,
      reason: 'edited',
      detail: `the anchored head is ${anchor.hash}, the record hashes to ${records[at]!.hash}: the chain from here was rewritten`,
    },
  };
}

type Parsed = { rec?: AuditRecord; seq?: number; notJson?: boolean; why?: string };

function parseLine(text: string): Parsed {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { notJson: true };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { why: 'not a JSON object' };
  const r = v as Record<string, unknown>;
  const seq = Number.isSafeInteger(r.seq) && (r.seq as number) > 0 ? (r.seq as number) : undefined;
  const why =
    r.v !== 1
      ? `v is ${JSON.stringify(r.v)}`
      : seq === undefined
        ? 'seq is not a positive integer'
        : typeof r.at !== 'string' || Number.isNaN(Date.parse(r.at))
          ? 'at is not a timestamp'
          : typeof r.kind !== 'string' || !kinds.has(r.kind)
            ? `unknown kind ${JSON.stringify(r.kind)}`
            : typeof r.actor !== 'string'
              ? 'actor is not a string'
              : r.changeId !== null && typeof r.changeId !== 'string'
                ? 'changeId is not a string or null'
                : typeof r.data !== 'object' || r.data === null || Array.isArray(r.data)
                  ? 'data is not an object'
                  : typeof r.prev !== 'string' || !HASH.test(r.prev)
                    ? 'prev is not a sha256 hash'
                    : typeof r.hash !== 'string' || !HASH.test(r.hash)
                      ? 'hash is not a sha256 hash'
                      : r.sig !== undefined && typeof r.sig !== 'string'
                        ? 'sig is not a string'
                        : undefined;
  return why === undefined ? { rec: r as unknown as AuditRecord, seq } : { seq, why };
}

function sigOk(r: AuditRecord, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(r.hash), key, Buffer.from(r.sig!, 'base64'));
  } catch {
    return false;
  }
}

/** The path of the trail in a file store's state directory. */
export function auditJournalPath(stateDir: string): string {
  return join(resolve(stateDir), 'journals', `${AUDIT_JOURNAL}.jsonl`);
}

/**
 * The trail as raw text (what `GET /admin/v1/audit?format=raw` serves): with a state directory the journal
 * file's bytes exactly as stored, damage included ('' when there is none yet); otherwise (memory store) the
 * records as the canonical JSON lines the file store would hold.
 */
export async function rawAuditText(store: ControlStore, stateDir?: string): Promise<string> {
  if (stateDir !== undefined) {
    try {
      return await readFile(auditJournalPath(stateDir), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  }
  const { events } = await store.readEvents(AUDIT_JOURNAL);
  return events.map((e) => `${canonicalJson(e)}\n`).join('');
}

/** Options of `AuditLog.open`. */
export interface AuditLogOptions {
  /** Ed25519 private key (PEM), e.g. from RINGFENCE_AUDIT_SIGNING_KEY: every appended record is signed. */
  readonly signingKey?: string;
  /** Also verify signatures when opening (every record must then be signed by this key's pair). */
  readonly publicKey?: string;
  /** A head anchored outside the store: opening refuses a trail that does not reach it with that hash. */
  readonly expectHead?: AuditHead;
  readonly logger?: Logger;
  /** The clock for `at` (tests). */
  readonly now?: () => Date;
}

/**
 * The append side of the trail. `open` verifies the stored trail once and keeps its head in memory; `append`
 * runs one at a time (a promise chain), so concurrent appends never fork the chain.
 */
export class AuditLog {
  readonly #store: ControlStore;
  readonly #key: KeyObject | undefined;
  readonly #opts: AuditLogOptions;
  #head: AuditHead = { seq: 0, hash: GENESIS };
  #chain: Promise<unknown> = Promise.resolve();
  /** A failed append may or may not have reached the journal: re-read the head before the next one. */
  #resync = false;

  private constructor(store: ControlStore, opts: AuditLogOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#key = opts.signingKey === undefined ? undefined : signingKeyOf(opts.signingKey);
  }

  /** Opens the trail of `store`, verifying it: throws AuditChainError naming the first bad record if it is damaged. */
  static async open(store: ControlStore, opts: AuditLogOptions = {}): Promise<AuditLog> {
    const log = new AuditLog(store, opts);
    const v = await log.#loadVerified(opts.expectHead);
    opts.logger?.info(
      { records: v.records.length, head: v.head, signing: log.#key !== undefined },
      'audit trail verified',
    );
    return log;
  }

  /** The last record appended (seq 0 and GENESIS when the trail is empty). */
  head(): AuditHead {
    return this.#head;
  }

  /** Appends one record (signed when a key is configured) after every earlier append; resolves once durable. */
  append(
    kind: AuditKind,
    actor: string,
    data: Record<string, unknown>,
    changeId?: string,
  ): Promise<AuditRecord> {
    if (!kinds.has(kind)) return Promise.reject(new TypeError(`unknown audit kind ${JSON.stringify(kind)}`));
    if (typeof actor !== 'string' || actor === '')
      return Promise.reject(new TypeError('an audit record needs an actor'));
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      return Promise.reject(new TypeError('audit data must be an object'));
    let plain: Record<string, unknown>;
    try {
      // What is hashed must be exactly what the store writes and a reader parses back.
      plain = JSON.parse(plainJson(data, 'data')) as Record<string, unknown>;
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.#chain.then(() => this.#append(kind, actor, plain, changeId ?? null));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Every record, oldest first, after pending appends; throws AuditChainError if the stored trail no longer verifies. */
  async records(): Promise<AuditRecord[]> {
    const v = await this.verify();
    if (!v.ok) throw chainError(v);
    return v.records;
  }

  /** Verifies the stored trail now (after pending appends), anchored to this log's head. */
  async verify(): Promise<AuditVerification> {
    await this.#chain;
    return this.#verifyStored(this.#head);
  }

  async #append(
    kind: AuditKind,
    actor: string,
    data: Record<string, unknown>,
    changeId: string | null,
  ): Promise<AuditRecord> {
    if (this.#resync) await this.#loadVerified(undefined);
    const now = this.#opts.now?.() ?? new Date();
    // Built on the stored last record, atomically (the store serialises chained appends across processes):
    // replicas sharing one store never fork the chain. The in-memory head only checks we are not behind a gap.
    const build = (last: unknown): AuditRecord => {
      const prev = last as AuditRecord | undefined;
      const body = {
        v: 1 as const,
        seq: (prev?.seq ?? 0) + 1,
        at: now.toISOString(),
        kind,
        actor,
        changeId,
        data,
        prev: prev?.hash ?? GENESIS,
      };
      const hash = auditHash(body);
      return this.#key
        ? { ...body, hash, sig: sign(null, Buffer.from(hash), this.#key).toString('base64') }
        : { ...body, hash };
    };
    let rec: AuditRecord;
    try {
      rec = await this.#store.appendChained(AUDIT_JOURNAL, build);
    } catch (e) {
      this.#resync = true;
      throw e;
    }
    this.#head = { seq: rec.seq, hash: rec.hash };
    return rec;
  }

  async #loadVerified(anchor: AuditHead | undefined): Promise<AuditVerification> {
    const v = await this.#verifyStored(anchor);
    if (!v.ok) throw chainError(v);
    this.#head = v.head;
    this.#resync = false;
    return v;
  }

  async #verifyStored(anchor: AuditHead | undefined): Promise<AuditVerification> {
    let read: { events: unknown[]; torn: boolean };
    try {
      read = await this.#store.readEvents(AUDIT_JOURNAL);
    } catch (e) {
      if (!(e instanceof StoreCorruptError)) throw e;
      const line = /line (\d+) of \d+ is not valid JSON/.exec(e.message)?.[1];
      if (line === undefined) throw new AuditChainError(`audit trail BROKEN: ${e.message}`);
      const firstBad: AuditBreak = {
        line: Number(line),
        reason: 'truncated',
        detail: 'not valid JSON (the line was cut short)',
      };
      return { ok: false, records: [], head: { seq: 0, hash: GENESIS }, firstBad };
    }
    if (read.torn)
      // A crash mid-append (never acknowledged), or a cut: the file store drops the partial line on the next append.
      this.#opts.logger?.warn(
        'audit trail: the last line is incomplete (a crash mid-append?); it is ignored',
      );
    const lines = [...read.events.map((e) => JSON.stringify(e)), ''];
    return verifyChain(lines, { publicKey: this.#opts.publicKey, expectHead: anchor });
  }
}

function chainError(v: AuditVerification): AuditChainError {
  return new AuditChainError(
    `audit trail BROKEN at ${describeBreak(v.firstBad!)} (refusing to append to a damaged trail; ` +
      'run `ringfence audit verify`, then restore the journal or move it aside)',
    v.firstBad,
  );
}
