/**
 * The control-plane store: the ring state (one versioned document, compare-and-set), the registry of immutable
 * content-addressed bundles, and append-only event journals. One interface, several backends: files in a state
 * directory (`file-store.ts`, the default for one replica), memory (`memory-store.ts`), and later PostgreSQL.
 * Nothing here knows which backend it runs on; the helpers below hold the rules every backend shares.
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

/** Where the control plane keeps its state. Every method may also reject with the backend's I/O error. */
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
  /** Stores an immutable, content-addressed bundle: `id` is `sha256:<hex>` of `canonical` (verified; a mismatch throws). Idempotent. */
  putBundle(id: string, canonical: string): Promise<void>;
  /** The canonical JSON of a stored bundle, or undefined. Verifies the content still hashes to the id (StoreCorruptError if not). */
  getBundle(id: string): Promise<string | undefined>;
  /** Ids of every stored bundle. */
  listBundles(): Promise<string[]>;
  /** Appends one JSON event line to a named append-only journal (e.g. 'rollbacks', 'divergence-acks'); durable (fsync). */
  appendEvent(journal: string, event: object): Promise<void>;
  /** Every event of a journal in order; a torn last line (crash mid-append) is ignored and reported via the returned `torn` flag; corruption in the middle throws StoreCorruptError. */
  readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }>;
  /** Waits for writes in flight, then refuses further calls. */
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
