/**
 * The control-plane store: the ring state (one versioned document, compare-and-set), the registry of immutable
 * content-addressed bundles, append-only event journals, and small shared documents. One interface, several
 * backends: files in a state directory (`file-store.ts`, the default for one replica), memory (`memory-store.ts`),
 * and PostgreSQL (`pg-store.ts`, for several replicas sharing one control plane). Nothing here knows which backend
 * it runs on; the helpers below hold the rules every backend shares.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../policy/canonical.ts';

/** A JSON-serialisable record with a version, e.g. the ring state. */
export interface Versioned {
  readonly version: number;
}

/** Thrown when a stored file exists but cannot be trusted (unparseable, checksum mismatch, wrong format). Never replaced silently. */
export class StoreCorruptError extends Error {
  /** The file (or, for non-file backends, the record) that cannot be trusted. */
  readonly file: string;
  constructor(file: string, reason: string) {
    super(
      `control-plane store: ${file} cannot be trusted: ${reason} (left untouched; restore or move it aside)`,
    );
    this.name = 'StoreCorruptError';
    this.file = file;
  }
}

/** Thrown by a compare-and-set whose expected version is not the stored one. Names the current version. */
export class StoreConflictError extends Error {
  /** The version the caller based its change on (undefined: it expected nothing stored). */
  readonly expected: number | undefined;
  /** The version actually stored (undefined: nothing stored). */
  readonly actual: number | undefined;
  constructor(expected: number | undefined, actual: number | undefined) {
    super(
      `control-plane store: state changed concurrently: expected ${expected === undefined ? 'no stored state' : `version ${expected}`}, ` +
        `but the stored version is ${actual === undefined ? 'none' : actual}`,
    );
    this.name = 'StoreConflictError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** Thrown by an append whose `uniqueKey` the journal already holds: nothing was written. */
export class DuplicateEventError extends Error {
  readonly journal: string;
  readonly key: string;
  constructor(journal: string, key: string) {
    super(
      `control-plane store: journal "${journal}" already holds an event with unique key ${JSON.stringify(key)} (not appended again)`,
    );
    this.name = 'DuplicateEventError';
    this.journal = journal;
    this.key = key;
  }
}

/**
 * Thrown when the backend cannot be reached in time (a database that is down, refuses connections, or does not
 * answer within its timeouts). The operation may or may not have taken effect when the connection dropped
 * mid-commit; callers re-read before retrying a compare-and-set.
 */
export class StoreUnavailableError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`control-plane store unreachable: ${reason}`, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Options of `appendEvent`. */
export interface AppendOptions {
  /**
   * At most one event per (journal, uniqueKey) is ever appended, across every process sharing the store: a second
   * append with the same key is refused with DuplicateEventError and writes nothing (e.g. an approval id, so an
   * approval is used once across replicas). Any non-empty string up to 512 characters.
   */
  readonly uniqueKey?: string;
}

/** One shared document as listed: its key, the document as stored, and when it was last written (ISO 8601). */
export interface SharedDoc {
  readonly key: string;
  readonly doc: unknown;
  readonly updatedAt: string;
}

/** What changed: the ring state (`detail`: its new version, or why to re-read) or a journal (`detail`: its name). */
export type StoreChangeKind = 'state' | 'events';

/** Receives the change feed of a shared store (`ControlStore.subscribe`). */
export interface StoreChangeListener {
  /**
   * Something changed in the store, possibly written by another replica. `('state', 'subscribed' | 'reconnected')`
   * means the feed was (re)established and notifications may have been missed meanwhile: re-read everything.
   */
  onChange(kind: StoreChangeKind, detail: string): void;
  /** The feed went down (`up` false, with the error) or came (back) up. */
  onStatus?(up: boolean, error?: Error): void;
}

/**
 * Where the control plane keeps its state. Every method may also reject with the backend's I/O error, or (a
 * database backend) StoreUnavailableError when it cannot be reached in time.
 */
export interface ControlStore {
  /**
   * The saved state document, or undefined when none was ever saved. Throws StoreCorruptError. The document is
   * returned as stored, unvalidated: the caller checks it against its own schema.
   */
  loadState<T extends Versioned>(): Promise<T | undefined>;
  /**
   * Saves atomically, compare-and-set: `expectedVersion` must equal the stored version (undefined = nothing stored
   * yet). `next.version` must be a non-negative integer above `expectedVersion`, and `next` plain JSON (no class
   * instances, Dates, NaN or undefined array items): what is saved is exactly what loads.
   */
  saveState<T extends Versioned>(next: T, expectedVersion: number | undefined): Promise<void>;
  /** The version of the stored state (undefined when none), without loading the document: cheap enough to poll. */
  stateVersion(): Promise<number | undefined>;
  /** Stores an immutable, content-addressed bundle: `id` is `sha256:<hex>` of `canonical` (verified; a mismatch throws). Idempotent. */
  putBundle(id: string, canonical: string): Promise<void>;
  /** The canonical JSON of a stored bundle, or undefined. Verifies the content still hashes to the id (StoreCorruptError if not). */
  getBundle(id: string): Promise<string | undefined>;
  /** Ids of every stored bundle. */
  listBundles(): Promise<string[]>;
  /**
   * Appends one JSON event to a named append-only journal (e.g. 'rollbacks', 'divergence-acks'); durable. With
   * `opts.uniqueKey`, refuses (DuplicateEventError, nothing written) when the journal already has that key.
   */
  appendEvent(journal: string, event: object, opts?: AppendOptions): Promise<void>;
  /**
   * Atomically reads the journal's last event (undefined when it is empty) and appends `build(last)`, returning
   * what was appended. Concurrent callers, even in other processes sharing the store, never build on the same
   * `last`: a hash chain written this way never forks. `build` must be synchronous; when it throws, nothing is
   * appended and the error propagates.
   */
  appendChained<T extends object>(journal: string, build: (last: unknown | undefined) => T): Promise<T>;
  /** Every event of a journal in order; a torn last line (crash mid-append) is ignored and reported via the returned `torn` flag; corruption in the middle throws StoreCorruptError. */
  readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }>;
  /**
   * Creates or replaces the small shared document `key` of `namespace` (e.g. namespace `stats:<epoch>`, key the
   * replica id). Names: 1–200 characters of `[A-Za-z0-9._:@-]`. `doc` must be plain JSON.
   */
  putShared(namespace: string, key: string, doc: object): Promise<void>;
  /** Every document of `namespace`, sorted by key (empty when there is none). */
  listShared(namespace: string): Promise<SharedDoc[]>;
  /**
   * The change feed of a store shared between processes (PostgreSQL: LISTEN/NOTIFY). Returns the unsubscribe
   * function. Undefined for stores that only this process writes (memory) or that have no feed (files: poll
   * `stateVersion`).
   */
  subscribe?(listener: StoreChangeListener): () => void;
  /** Waits for writes in flight, then refuses further calls. Idempotent. */
  close(): Promise<void>;
}

/** The format tag of a stored state document. */
export const STATE_FORMAT = 'ringfence-state/v1';

const BUNDLE_ID = /^sha256:([0-9a-f]{64})$/;
const JOURNAL_NAME = /^[a-z0-9-]+$/;

/** `sha256:<hex>` of the UTF-8 bytes of `data`. */
export function sha256Id(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex digest part of a well-formed bundle id, or undefined when `id` is not `sha256:<64 hex>`. */
export function bundleHex(id: string): string | undefined {
  return BUNDLE_ID.exec(id)?.[1];
}

/** Throws unless `canonical` is canonical JSON whose digest is `id`: the registry never holds a misnamed bundle. */
export function assertBundle(id: string, canonical: string): void {
  if (bundleHex(id) === undefined)
    throw new Error(`invalid bundle id ${JSON.stringify(id)}: not sha256:<64 hex>`);
  const actual = sha256Id(canonical);
  if (actual !== id) throw new Error(`bundle id mismatch: content hashes to ${actual}, not ${id}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(canonical);
  } catch {
    throw new Error(`bundle ${id} is not JSON`);
  }
  if (canonicalJson(parsed) !== canonical) throw new Error(`bundle ${id} is JSON but not in canonical form`);
}

const SHARED_NAME = /^[A-Za-z0-9._:@-]{1,200}$/;

/** Throws unless `name` is a shared-document namespace or key: 1–200 characters of `[A-Za-z0-9._:@-]`. */
export function assertSharedName(what: 'namespace' | 'key', name: string): void {
  if (typeof name !== 'string' || !SHARED_NAME.test(name) || name === '.' || name === '..')
    throw new Error(`invalid shared ${what} ${JSON.stringify(name)}: use 1-200 of [A-Za-z0-9._:@-]`);
}

/** Throws unless `key` is a usable unique key for `appendEvent` (a non-empty string up to 512 characters). */
export function assertUniqueKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512)
    throw new Error(
      `invalid unique key ${JSON.stringify(key)}: a non-empty string of at most 512 characters`,
    );
}

/** The canonical JSON of a journal event (or, `what` = 'doc', a shared document), after checking it is a plain-JSON object. */
export function eventToStore(event: unknown, what: 'event' | 'doc' = 'event'): string {
  if (typeof event !== 'object' || event === null)
    throw new TypeError(
      what === 'event' ? 'a journal event must be an object' : 'a shared document must be an object',
    );
  return plainJson(event, what);
}

/** Throws unless `name` is a journal name (`[a-z0-9-]+`), which keeps it a safe file or key name anywhere. */
export function assertJournalName(name: string): void {
  if (!JOURNAL_NAME.test(name))
    throw new Error(`invalid journal name ${JSON.stringify(name)}: use [a-z0-9-]+`);
}

/** Checks the arguments of a save, then returns the canonical JSON of `next` (what is stored and checksummed). */
export function stateToStore(next: Versioned, expectedVersion: number | undefined): string {
  if (expectedVersion !== undefined && !isVersion(expectedVersion))
    throw new Error(`expectedVersion must be a non-negative integer or undefined, got ${expectedVersion}`);
  if (!isVersion(next.version))
    throw new Error(`state version must be a non-negative integer, got ${next.version}`);
  // An unchanged version would let two writers both "win" against the same expected version.
  if (expectedVersion !== undefined && next.version <= expectedVersion)
    throw new Error(`state version ${next.version} must be above the expected version ${expectedVersion}`);
  return plainJson(next, 'state');
}

/** Throws StoreConflictError unless the stored version is the expected one. */
export function checkExpected(expected: number | undefined, actual: number | undefined): void {
  if (expected !== actual) throw new StoreConflictError(expected, actual);
}

/** A non-negative safe integer. */
export function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The canonical JSON of `value` after checking it is plain JSON, so that parsing the text gives back an equal
 * value. JSON.stringify would silently turn a Date into a string, NaN into null and drop class identity.
 */
export function plainJson(value: unknown, what: string): string {
  checkPlain(value, what, new Set());
  return canonicalJson(value);
}

function checkPlain(v: unknown, path: string, ancestors: Set<object>): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${path}: ${v} has no JSON form`);
    return;
  }
  if (typeof v !== 'object') throw new TypeError(`${path}: a ${typeof v} has no JSON form`);
  if (ancestors.has(v)) throw new TypeError(`${path}: circular reference`);
  ancestors.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (v[i] === undefined) throw new TypeError(`${path}[${i}]: undefined (or a hole) has no JSON form`);
      checkPlain(v[i], `${path}[${i}]`, ancestors);
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null)
      throw new TypeError(`${path}: a ${v.constructor?.name ?? 'non-plain'} object is not plain JSON`);
    for (const [k, x] of Object.entries(v)) if (x !== undefined) checkPlain(x, `${path}.${k}`, ancestors);
  }
  ancestors.delete(v);
}
