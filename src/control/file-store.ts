import { randomBytes, randomUUID } from 'node:crypto';
import { type FileHandle, link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalJson } from '../policy/canonical.ts';
import {
  type AppendOptions,
  assertBundle,
  assertJournalName,
  assertSharedName,
  assertUniqueKey,
  bundleHex,
  type ControlStore,
  checkExpected,
  DuplicateEventError,
  eventToStore,
  isVersion,
  type SharedDoc,
  STATE_FORMAT,
  StoreCorruptError,
  sha256Id,
  stateToStore,
  type Versioned,
} from './store.ts';

/** Tuning of the file store; the defaults suit one gateway plus an occasional CLI on the same directory. */
export interface FileStoreOptions {
  /** How long a write waits for another process's lock before it fails, in ms. Default 5000. */
  readonly lockTimeoutMs?: number;
  /** A lock older than this is abandoned whoever wrote it (holders keep it for one write), in ms. Default 30000. */
  readonly staleLockMs?: number;
}

const STATE = 'state.json';
/** `.<final name>.<pid>.<random>.tmp`: a write in progress, or left by a crash. */
const TEMP = /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/;
const BROKEN_LOCK = /^\.lock\.\d+\.[0-9a-f]{12}\.broken$/;
const BUNDLE_FILE = /^([0-9a-f]{64})\.json$/;
const SHARED_FORMAT = 'ringfence-shared/v1';
/** A shared document's file: its encoded key (never starting with a dot, unlike temp files) + `.json`. */
const SHARED_FILE = /^[^.].*\.json$/;
/** Tells this process apart from an earlier one that had the same pid (pid 1 in a restarted container). */
const PROCESS_TOKEN = randomUUID();
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Opens (creating if needed) the control-plane store in `dir`: `state.json`, `bundles/<hex>.json`,
 * `journals/<name>.jsonl` (with `journals/<name>.keys/<sha256 of key>` markers for unique keys), and
 * `shared/<namespace>/<key>.json` (names with `:`, `@` and a leading dot %-encoded). Every write is atomic (temp
 * file, fsync, rename, fsync of the directory) and done under an in-process queue plus a cross-process lock file,
 * so a restart resumes exactly the last saved state. No change feed: other processes poll `stateVersion`.
 */
export async function openFileStore(dir: string, options: FileStoreOptions = {}): Promise<ControlStore> {
  const root = resolve(dir);
  const created = await mkdir(root, { recursive: true });
  await mkdir(join(root, 'bundles'), { recursive: true });
  await mkdir(join(root, 'journals'), { recursive: true });
  if (created !== undefined) await fsyncDir(dirname(root));
  await fsyncDir(root);
  const store = new FileStore(root, options);
  await store.sweep();
  return store;
}

class FileStore implements ControlStore {
  readonly #dir: string;
  readonly #bundles: string;
  readonly #journals: string;
  readonly #shared: string;
  readonly #lock: DirLock;
  readonly #seenJournals = new Set<string>();
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The last version `stateVersion` read, keyed by the state file's identity (inode, size, times). */
  #versionSeen: { sig: string; version: number } | undefined;

  constructor(dir: string, options: FileStoreOptions) {
    this.#dir = dir;
    this.#bundles = join(dir, 'bundles');
    this.#journals = join(dir, 'journals');
    this.#shared = join(dir, 'shared');
    this.#lock = new DirLock(
      join(dir, '.lock'),
      options.lockTimeoutMs ?? 5000,
      options.staleLockMs ?? 30_000,
    );
  }

  /** Removes temp files left by a crashed writer. Only under the lock: then no live writer has one open. */
  sweep(): Promise<void> {
    return this.#exclusive(async () => {
      await removeLeftovers(this.#dir);
      await removeLeftovers(this.#bundles);
      for (const ns of await readdirIfPresent(this.#shared)) await removeLeftovers(join(this.#shared, ns));
    });
  }

  async loadState<T extends Versioned>(): Promise<T | undefined> {
    this.#open();
    return (await this.#readState()) as T | undefined;
  }

  async saveState<T extends Versioned>(next: T, expectedVersion: number | undefined): Promise<void> {
    this.#open();
    const json = stateToStore(next, expectedVersion);
    const doc = { format: STATE_FORMAT, checksum: sha256Id(json), state: JSON.parse(json) as unknown };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    await this.#exclusive(async () => {
      // Re-read under the lock: the compare-and-set is against what is on disk, whoever wrote it.
      checkExpected(expectedVersion, (await this.#readState())?.version);
      await writeAtomic(this.#dir, STATE, text);
    });
  }

  async putBundle(id: string, canonical: string): Promise<void> {
    this.#open();
    assertBundle(id, canonical);
    await this.#exclusive(async () => {
      // Present already: verified to hash to its id, hence equal. A bad file throws and is never overwritten.
      if ((await this.#readBundle(id)) !== undefined) return;
      await writeAtomic(this.#bundles, `${bundleHex(id)}.json`, canonical);
    });
  }

  async getBundle(id: string): Promise<string | undefined> {
    this.#open();
    return this.#readBundle(id);
  }

  async listBundles(): Promise<string[]> {
    this.#open();
    const names = await readdir(this.#bundles);
    return names.flatMap((n) => (BUNDLE_FILE.exec(n) ? [`sha256:${n.slice(0, 64)}`] : [])).sort();
  }

  async stateVersion(): Promise<number | undefined> {
    this.#open();
    const file = join(this.#dir, STATE);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    try {
      // Stat and read through one handle: the version belongs to the file whose identity is cached. A save
      // renames a new file in place, so a changed state is a new inode (and new times) and is read again.
      const st = await fh.stat({ bigint: true });
      const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      if (this.#versionSeen?.sig === sig) return this.#versionSeen.version;
      const { version } = parseState(file, await fh.readFile());
      this.#versionSeen = { sig, version };
      return version;
    } finally {
      await fh.close();
    }
  }

  async appendEvent(journal: string, event: object, opts?: AppendOptions): Promise<void> {
    this.#open();
    assertJournalName(journal);
    const line = `${eventToStore(event)}\n`;
    const key = opts?.uniqueKey;
    if (key !== undefined) assertUniqueKey(key);
    await this.#exclusive(async () => {
      // The key's marker first: a crash between the two leaves the key used and no event, so a retry is
      // refused (fail closed: a once-only key, e.g. an approval, is never used twice).
      if (key !== undefined) await this.#claimKey(journal, key);
      await this.#appendLine(journal, async () => line);
    });
  }

  async appendChained<T extends object>(journal: string, build: (last: unknown) => T): Promise<T> {
    this.#open();
    assertJournalName(journal);
    let built: T | undefined;
    await this.#exclusive(() =>
      // Under the cross-process lock: no other writer can append between reading the last line and appending.
      this.#appendLine(journal, async (fh, file) => {
        const last = await lastLine(fh);
        let prev: unknown;
        if (last !== undefined) {
          try {
            prev = JSON.parse(decode(file, last));
          } catch (e) {
            if (e instanceof StoreCorruptError) throw e;
            throw new StoreCorruptError(file, 'the last line is not valid JSON');
          }
        }
        built = build(prev);
        return `${eventToStore(built)}\n`;
      }),
    );
    return built!;
  }

  /** Appends the line `make` returns (given the journal with any torn tail cut), durably. */
  async #appendLine(journal: string, make: (fh: FileHandle, file: string) => Promise<string>): Promise<void> {
    const file = join(this.#journals, `${journal}.jsonl`);
    const fh = await open(file, 'a+');
    try {
      await cutTornTail(fh);
      await fh.appendFile(await make(fh, file));
      await fh.sync();
    } finally {
      await fh.close();
    }
    // The first append may have created the file: make its directory entry durable too.
    if (!this.#seenJournals.has(journal)) {
      await fsyncDir(this.#journals);
      this.#seenJournals.add(journal);
    }
  }

  /** Creates the durable marker of `key` in `journal`, or throws DuplicateEventError when it exists. */
  async #claimKey(journal: string, key: string): Promise<void> {
    const dir = join(this.#journals, `${journal}.keys`);
    if ((await mkdir(dir, { recursive: true })) !== undefined) await fsyncDir(this.#journals);
    const marker = join(dir, sha256Id(key).slice(7));
    let fh: FileHandle;
    try {
      fh = await open(marker, 'wx');
    } catch (e) {
      if (errCode(e) === 'EEXIST') throw new DuplicateEventError(journal, key);
      throw e;
    }
    try {
      await fh.writeFile(`${JSON.stringify(key)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(dir);
  }

  async readEvents(journal: string): Promise<{ events: unknown[]; torn: boolean }> {
    this.#open();
    assertJournalName(journal);
    const file = join(this.#journals, `${journal}.jsonl`);
    const bytes = await readIfPresent(file);
    if (bytes === undefined) return { events: [], torn: false };
    // Only newline-terminated lines were appended completely; anything after the last newline is torn.
    const end = bytes.lastIndexOf(0x0a) + 1;
    const text = decode(file, bytes.subarray(0, end));
    const lines = text === '' ? [] : text.slice(0, -1).split('\n');
    const events = lines.map((l, i) => {
      let ev: unknown;
      try {
        ev = JSON.parse(l);
      } catch {
        throw new StoreCorruptError(file, `line ${i + 1} of ${lines.length} is not valid JSON`);
      }
      if (typeof ev !== 'object' || ev === null)
        throw new StoreCorruptError(file, `line ${i + 1} is not a JSON object`);
      return ev;
    });
    return { events, torn: end < bytes.length };
  }

  async putShared(namespace: string, key: string, doc: object): Promise<void> {
    this.#open();
    assertSharedName('namespace', namespace);
    assertSharedName('key', key);
    const json = eventToStore(doc, 'doc');
    const text = `${JSON.stringify({ format: SHARED_FORMAT, key, updatedAt: new Date().toISOString(), doc: JSON.parse(json) as unknown })}\n`;
    const dir = join(this.#shared, fileName(namespace));
    // Under the lock only so that another process's sweep never removes this write's temp file.
    await this.#exclusive(async () => {
      if ((await mkdir(dir, { recursive: true })) !== undefined) await fsyncDir(this.#dir);
      await writeAtomic(dir, `${fileName(key)}.json`, text);
    });
  }

  async listShared(namespace: string): Promise<SharedDoc[]> {
    this.#open();
    assertSharedName('namespace', namespace);
    const dir = join(this.#shared, fileName(namespace));
    const docs: SharedDoc[] = [];
    for (const name of await readdirIfPresent(dir)) {
      if (!SHARED_FILE.test(name)) continue;
      const file = join(dir, name);
      const bytes = await readIfPresent(file);
      if (bytes !== undefined) docs.push(parseShared(file, name, bytes));
    }
    return docs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }

  #open(): void {
    if (this.#closed) throw new Error('control-plane store is closed');
  }

  /** Runs `fn` after every earlier write of this store, holding the directory lock against other processes. */
  #exclusive<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.#tail.then(async () => {
      const held = await this.#lock.acquire();
      try {
        return await fn();
      } finally {
        await this.#lock.release(held);
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #readState(): Promise<Versioned | undefined> {
    const file = join(this.#dir, STATE);
    const bytes = await readIfPresent(file);
    return bytes === undefined ? undefined : parseState(file, bytes);
  }

  async #readBundle(id: string): Promise<string | undefined> {
    const hex = bundleHex(id);
    if (hex === undefined) return undefined;
    const file = join(this.#bundles, `${hex}.json`);
    const bytes = await readIfPresent(file);
    if (bytes === undefined) return undefined;
    const actual = sha256Id(bytes);
    if (actual !== id) throw new StoreCorruptError(file, `content hashes to ${actual}, not to its id`);
    return decode(file, bytes);
  }
}

/** Verifies a state file: JSON, format tag, checksum over the canonical JSON of the state, a version. */
function parseState(file: string, bytes: Uint8Array): Versioned {
  const bad = (why: string) => new StoreCorruptError(file, why);
  if (bytes.length === 0) throw bad('empty file');
  let doc: unknown;
  try {
    doc = JSON.parse(decode(file, bytes));
  } catch (e) {
    if (e instanceof StoreCorruptError) throw e;
    throw bad(`not valid JSON (${bytes.length} bytes: truncated, half-written or overwritten)`);
  }
  if (!isRecord(doc)) throw bad('not a JSON object');
  if (doc.format !== STATE_FORMAT)
    throw bad(`format is ${JSON.stringify(doc.format)}, expected "${STATE_FORMAT}"`);
  if (!isRecord(doc.state)) throw bad('no state object');
  const sum = sha256Id(canonicalJson(doc.state));
  if (doc.checksum !== sum)
    throw bad(`checksum mismatch: recorded ${JSON.stringify(doc.checksum)}, the state hashes to ${sum}`);
  if (!isVersion(doc.state.version)) throw bad('the state has no non-negative integer version');
  return doc.state as unknown as Versioned;
}

/** Verifies a shared document file: JSON, format tag, a key whose file name it is, a time, an object. */
function parseShared(file: string, name: string, bytes: Uint8Array): SharedDoc {
  const bad = (why: string) => new StoreCorruptError(file, why);
  let rec: unknown;
  try {
    rec = JSON.parse(decode(file, bytes));
  } catch (e) {
    if (e instanceof StoreCorruptError) throw e;
    throw bad('not valid JSON');
  }
  if (!isRecord(rec) || rec.format !== SHARED_FORMAT) throw bad(`not a ${SHARED_FORMAT} document`);
  if (typeof rec.key !== 'string' || `${fileName(rec.key)}.json` !== name)
    throw bad('its key is not its name');
  if (typeof rec.updatedAt !== 'string' || !isRecord(rec.doc)) throw bad('no updatedAt or no document');
  return { key: rec.key, doc: rec.doc, updatedAt: rec.updatedAt };
}

/** A shared name as a file name: `:`, `@` (not allowed everywhere) and a leading dot (temp files) %-encoded. */
function fileName(name: string): string {
  return name.replace(
    /[^A-Za-z0-9._-]|^\./g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decode(file: string, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new StoreCorruptError(file, 'not valid UTF-8');
  }
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

async function readdirIfPresent(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return [];
    throw e;
  }
}

/** The last line of a journal that ends with a newline (cutTornTail ran), without it; undefined when empty. */
async function lastLine(fh: FileHandle): Promise<Buffer | undefined> {
  const { size } = await fh.stat();
  if (size === 0) return undefined;
  const parts: Buffer[] = [];
  for (let end = size - 1; end > 0; ) {
    const start = Math.max(0, end - 4096);
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const part = buf.subarray(0, bytesRead);
    const nl = part.lastIndexOf(0x0a);
    if (nl >= 0) {
      parts.unshift(part.subarray(nl + 1));
      return Buffer.concat(parts);
    }
    parts.unshift(part);
    end = start;
  }
  return Buffer.concat(parts);
}

/** Replaces `dir/name` with `data` all at once: readers and a crash see the old file or the new, never a mix. */
async function writeAtomic(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let done = false;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
    done = true;
  } finally {
    if (!done) await rm(tmp, { force: true });
  }
  await fsyncDir(dir);
}

/** Makes renames and new files in `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Windows cannot open a directory; its file system journals metadata itself.
    if (process.platform !== 'win32') throw e;
  } finally {
    await fh?.close();
  }
}

async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const file = join(dir, name);
    if (TEMP.test(name)) await rm(file, { force: true });
    // A lock moved aside by a breaker that crashed; the breaker itself removes it within milliseconds.
    else if (BROKEN_LOCK.test(name) && Date.now() - (await stat(file)).mtimeMs > 60_000)
      await rm(file, { force: true });
  }
}

/** Drops the bytes after the last newline of a journal: an append that a crash cut short, never acknowledged. */
async function cutTornTail(fh: FileHandle): Promise<void> {
  const { size } = await fh.stat();
  const buf = Buffer.alloc(4096);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) {
      if (start + nl + 1 < size) await fh.truncate(start + nl + 1);
      return;
    }
    end = start;
  }
  if (size > 0) await fh.truncate(0);
}

/**
 * A lock file created with O_EXCL holding `{pid, host, token}`. A lock is stale, and is broken, when its pid no
 * longer runs on this host, when it carries this process's pid but another incarnation's token, when it is older
 * than `staleMs`, or when it is unreadable for more than 2 s (a crash between create and write).
 */
class DirLock {
  readonly #file: string;
  readonly #timeoutMs: number;
  readonly #staleMs: number;

  constructor(file: string, timeoutMs: number, staleMs: number) {
    this.#file = file;
    this.#timeoutMs = timeoutMs;
    this.#staleMs = staleMs;
  }

  /** Takes the lock, waiting up to the timeout; returns the body written, which identifies this holding. */
  async acquire(): Promise<string> {
    const body = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      token: PROCESS_TOKEN,
      nonce: randomUUID(),
    });
    const deadline = Date.now() + this.#timeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      if (await this.#tryCreate(body)) return body;
      const seen = await this.#look();
      if (seen === undefined) continue;
      if (this.#isStale(seen.text, seen.ageMs)) {
        await this.#break(seen.text);
        continue;
      }
      if (Date.now() >= deadline)
        throw new Error(
          `control-plane store: timed out after ${this.#timeoutMs} ms waiting for ${this.#file} (held: ${seen.text || 'empty'})`,
        );
      await sleep(delay + Math.random() * delay);
    }
  }

  /** Removes the lock if it is still this holding's (a holder slower than `staleMs` may have lost it). */
  async release(body: string): Promise<void> {
    try {
      if ((await readFile(this.#file, 'utf8')) === body) await rm(this.#file);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
    }
  }

  async #tryCreate(body: string): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await open(this.#file, 'wx');
    } catch (e) {
      if (errCode(e) === 'EEXIST') return false;
      throw e;
    }
    try {
      await fh.writeFile(body);
    } catch (e) {
      await fh.close();
      await rm(this.#file, { force: true });
      throw e;
    }
    await fh.close();
    return true;
  }

  /** The current lock's body and age, read through one handle so both belong to the same file. */
  async #look(): Promise<{ text: string; ageMs: number } | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.#file, 'r');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const { mtimeMs } = await fh.stat();
      return { text: await fh.readFile('utf8'), ageMs: Date.now() - mtimeMs };
    } finally {
      await fh.close();
    }
  }

  #isStale(text: string, ageMs: number): boolean {
    if (ageMs > this.#staleMs) return true;
    let info: unknown;
    try {
      info = JSON.parse(text);
    } catch {
      info = undefined;
    }
    if (!isRecord(info)) return ageMs > 2000;
    if (typeof info.pid !== 'number' || info.host !== hostname()) return false;
    if (info.pid === process.pid) return info.token !== PROCESS_TOKEN;
    return !isAlive(info.pid);
  }

  /**
   * Breaks a stale lock. It is moved aside first and checked: when another process re-took the lock between
   * our look and the move, the live lock is put back (link fails, rather than overwrites, if one exists again).
   */
  async #break(seen: string): Promise<void> {
    const aside = `${this.#file}.${process.pid}.${randomBytes(6).toString('hex')}.broken`;
    try {
      await rename(this.#file, aside);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return;
      throw e;
    }
    try {
      if ((await readFile(aside, 'utf8')) !== seen) await link(aside, this.#file).catch(() => undefined);
    } finally {
      await rm(aside, { force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}
