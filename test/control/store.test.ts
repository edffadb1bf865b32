import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FileStoreOptions, openFileStore } from '../../src/control/file-store.ts';
import { memoryStore } from '../../src/control/memory-store.ts';
import { openPgStore } from '../../src/control/pg-store.ts';
import {
  type ControlStore,
  DuplicateEventError,
  StoreConflictError,
  StoreCorruptError,
} from '../../src/control/store.ts';
import { bundleId, canonicalJson } from '../../src/policy/canonical.ts';
import { createSchema } from '../helpers/postgres.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** Node 24 runs the TypeScript sources; under npm/npx that is this process's node, else the pinned one. */
const NODE =
  Number(process.versions.node.split('.')[0]) >= 24
    ? process.execPath
    : join(ROOT, 'node_modules', 'node', 'bin', 'node');

/** A ring-state-like document. */
interface Doc {
  version: number;
  note: string;
  candidate?: { stage: string } | undefined;
  list?: number[];
}

const dirs: string[] = [];
const stores: ControlStore[] = [];
const schemas: Array<() => Promise<void>> = [];
const children = new Set<ChildProcess>();

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ringfence-store-'));
  dirs.push(d);
  return d;
}

async function fileStore(dir: string, opts?: FileStoreOptions): Promise<ControlStore> {
  const s = await openFileStore(dir, opts);
  stores.push(s);
  return s;
}

/** The PostgreSQL store in a schema of its own on the shared server (dropped after the test). */
async function pgStore(): Promise<ControlStore> {
  const { url, schema, drop } = createSchema();
  schemas.push(drop);
  const s = await openPgStore({ url, schema });
  stores.push(s);
  return s;
}

afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  for (const drop of schemas.splice(0)) await drop();
});

const bundle = { apiVersion: 'ringfence/v1', metadata: { name: 'corp', version: '1' }, rules: [1, 2, 3] };

describe.each([
  ['file', async () => fileStore(await tempDir())],
  ['memory', async () => memoryStore()],
  ['pg', pgStore],
] as const)('%s store', (name, make) => {
  it('loads undefined when nothing was ever saved', async () => {
    const s = await make();
    expect(await s.loadState()).toBeUndefined();
  });

  it('round-trips a saved state, as a copy', async () => {
    const s = await make();
    const doc: Doc = { version: 1, note: 'é ✓ "q"\n', candidate: undefined, list: [1, 2] };
    await s.saveState(doc, undefined);
    doc.note = 'mutated after save';
    expect(await s.loadState<Doc>()).toEqual({ version: 1, note: 'é ✓ "q"\n', list: [1, 2] });
    await s.saveState<Doc>({ version: 2, note: 'two', candidate: { stage: 'canary' } }, 1);
    expect(await s.loadState<Doc>()).toEqual({ version: 2, note: 'two', candidate: { stage: 'canary' } });
  });

  it('rejects a stale expected version, naming the stored one', async () => {
    const s = await make();
    await s.saveState({ version: 1, note: 'a' }, undefined);
    await s.saveState({ version: 2, note: 'b' }, 1);
    const err = await s.saveState({ version: 2, note: 'stale' }, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConflictError);
    expect(err).toMatchObject({ expected: 1, actual: 2 });
    expect((err as Error).message).toMatch(/stored version is 2/);
    expect(await s.loadState<Doc>()).toEqual({ version: 2, note: 'b' });
  });

  it('rejects expecting nothing when something is stored, and expecting something when nothing is', async () => {
    const s = await make();
    await expect(s.saveState({ version: 1, note: 'x' }, 0)).rejects.toMatchObject({
      name: 'StoreConflictError',
      expected: 0,
      actual: undefined,
    });
    await s.saveState({ version: 1, note: 'first' }, undefined);
    const err = await s.saveState({ version: 1, note: 'second' }, undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConflictError);
    expect(err).toMatchObject({ expected: undefined, actual: 1 });
    expect(await s.loadState<Doc>()).toEqual({ version: 1, note: 'first' });
  });

  it('refuses a version that does not move forward, and values JSON cannot carry', async () => {
    const s = await make();
    await s.saveState({ version: 3, note: 'x' }, undefined);
    await expect(s.saveState({ version: 3, note: 'same' }, 3)).rejects.toThrow(/above the expected version/);
    await expect(s.saveState({ version: 1.5, note: 'x' }, 3)).rejects.toThrow(/non-negative integer/);
    await expect(s.saveState({ version: 4, at: new Date() }, 3)).rejects.toThrow(/state\.at: a Date object/);
    await expect(s.saveState({ version: 4, n: Number.NaN }, 3)).rejects.toThrow(/NaN has no JSON form/);
    await expect(s.saveState({ version: 4, xs: [1, undefined] }, 3)).rejects.toThrow(/xs\[1\]/);
    expect(await s.loadState<Doc>()).toEqual({ version: 3, note: 'x' });
  });

  it('lets exactly one of 20 concurrent saves with the same expected version win', async () => {
    const s = await make();
    await s.saveState({ version: 1, note: 'base' }, undefined);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => s.saveState({ version: 2, note: `writer ${i}` }, 1)),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'StoreConflictError', actual: 2 });
    expect(await s.loadState<Doc>()).toEqual({ version: 2, note: `writer ${won[0]}` });
  });

  it('stores content-addressed bundles: put, get, list, idempotent, verified', async () => {
    const s = await make();
    const canonical = canonicalJson(bundle);
    const id = bundleId(bundle);
    expect(await s.getBundle(id)).toBeUndefined();
    await s.putBundle(id, canonical);
    await s.putBundle(id, canonical);
    expect(await s.getBundle(id)).toBe(canonical);
    expect(await s.listBundles()).toEqual([id]);

    const other = { ...bundle, rules: [] };
    await expect(s.putBundle(bundleId(other), canonical)).rejects.toThrow(/id mismatch/);
    await expect(s.putBundle('sha256:nothex', canonical)).rejects.toThrow(/invalid bundle id/);
    const pretty = JSON.stringify(other, null, 2);
    await expect(s.putBundle(`sha256:${sha256(pretty)}`, pretty)).rejects.toThrow(/not in canonical form/);
    expect(await s.getBundle('../state')).toBeUndefined();

    await s.putBundle(bundleId(other), canonicalJson(other));
    expect(await s.listBundles()).toEqual([id, bundleId(other)].sort());
  });

  it('appends journal events and reads them back in order', async () => {
    const s = await make();
    expect(await s.readEvents('rollbacks')).toEqual({ events: [], torn: false });
    for (let i = 0; i < 5; i++) await s.appendEvent('rollbacks', { i, reason: `r${i}\nmultiline` });
    await s.appendEvent('divergence-acks', { group: 'g' });
    const { events, torn } = await s.readEvents('rollbacks');
    expect(torn).toBe(false);
    expect(events).toEqual([0, 1, 2, 3, 4].map((i) => ({ i, reason: `r${i}\nmultiline` })));
    expect((await s.readEvents('divergence-acks')).events).toEqual([{ group: 'g' }]);
    await expect(s.appendEvent('../evil', {})).rejects.toThrow(/invalid journal name/);
    await expect(s.readEvents('Rollbacks')).rejects.toThrow(/invalid journal name/);
    await expect(s.appendEvent('x', { at: new Date() })).rejects.toThrow(/Date/);
  });

  it('refuses calls after close', async () => {
    const s = await make();
    await s.close();
    await expect(s.loadState()).rejects.toThrow(/closed/);
    await expect(s.saveState({ version: 1 }, undefined)).rejects.toThrow(/closed/);
    await expect(s.appendChained('x', () => ({}))).rejects.toThrow(/closed/);
    await expect(s.putShared('n', 'k', {})).rejects.toThrow(/closed/);
    await expect(s.stateVersion()).rejects.toThrow(/closed/);
  });

  it('reports the stored state version without loading it', async () => {
    const s = await make();
    expect(await s.stateVersion()).toBeUndefined();
    await s.saveState({ version: 4, note: 'a' }, undefined);
    expect(await s.stateVersion()).toBe(4);
    await s.saveState({ version: 9, note: 'b' }, 4);
    expect(await s.stateVersion()).toBe(9);
    await s.saveState({ version: 9, note: 'refused' }, 4).catch(() => undefined);
    expect(await s.stateVersion()).toBe(9);
  });

  it('appends a uniqueKey once per journal: a second append is refused and writes nothing', async () => {
    const s = await make();
    await s.appendEvent('approvals', { id: 'a1', used: 1 }, { uniqueKey: 'use:a1' });
    const err = await s
      .appendEvent('approvals', { id: 'a1', used: 2 }, { uniqueKey: 'use:a1' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateEventError);
    expect(err).toMatchObject({ journal: 'approvals', key: 'use:a1' });
    expect((err as Error).message).toMatch(/journal "approvals".*"use:a1"/);
    // Another key, another journal, or no key at all: appended.
    await s.appendEvent('approvals', { id: 'a2' }, { uniqueKey: 'use:a2' });
    await s.appendEvent('other', { id: 'a1' }, { uniqueKey: 'use:a1' });
    await s.appendEvent('approvals', { id: 'none' });
    await s.appendEvent('approvals', { id: 'none' });
    expect((await s.readEvents('approvals')).events).toEqual([
      { id: 'a1', used: 1 },
      { id: 'a2' },
      { id: 'none' },
      { id: 'none' },
    ]);
    await expect(s.appendEvent('approvals', {}, { uniqueKey: '' })).rejects.toThrow(/invalid unique key/);
    // Concurrent appends of one key: exactly one lands.
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => s.appendEvent('race', { i }, { uniqueKey: 'once' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DuplicateEventError);
    expect((await s.readEvents('race')).events).toHaveLength(1);
  });

  it('appendChained builds each event on the last one, never forking under concurrency', async () => {
    const s = await make();
    const first = await s.appendChained('chain', (last) => ({ n: last === undefined ? 1 : -1, prev: null }));
    expect(first).toEqual({ n: 1, prev: null });
    const link = (last: unknown) => {
      const l = last as { n: number };
      return { n: l.n + 1, prev: l.n };
    };
    const built = await Promise.all(Array.from({ length: 30 }, () => s.appendChained('chain', link)));
    expect(built.map((b) => b.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
    const { events } = await s.readEvents('chain');
    expect(events).toEqual(Array.from({ length: 31 }, (_, i) => ({ n: i + 1, prev: i === 0 ? null : i })));
    // Plain appends and chained ones share the journal: the next link sees the plain event.
    await s.appendEvent('chain', { n: 100, prev: 'plain' });
    expect(await s.appendChained('chain', link)).toEqual({ n: 101, prev: 100 });
    // A build that throws, or returns what JSON cannot carry, appends nothing.
    await expect(
      s.appendChained('chain', () => {
        throw new Error('build refused');
      }),
    ).rejects.toThrow(/build refused/);
    await expect(s.appendChained('chain', () => ({ at: new Date() }))).rejects.toThrow(/Date/);
    expect((await s.readEvents('chain')).events).toHaveLength(33);
    await expect(s.appendChained('Bad', () => ({}))).rejects.toThrow(/invalid journal name/);
  });

  it('keeps shared documents per namespace: upsert, list sorted by key, copies', async () => {
    const s = await make();
    expect(await s.listShared('stats:1')).toEqual([]);
    const doc = { replica: 'r2', requests: 10, nested: { p95: 1.5 } };
    const before = Date.now();
    await s.putShared('stats:1', 'r2', doc);
    doc.requests = 11;
    await s.putShared('stats:1', 'r1@host:9', { replica: 'r1', requests: 1 });
    await s.putShared('stats:1', 'r1@host:9', { replica: 'r1', requests: 2 });
    await s.putShared('stats:2', 'r1@host:9', { replica: 'r1', epoch: 2 });
    await s.putShared('.hidden', '.k', { dots: true });
    const list = await s.listShared('stats:1');
    expect(list.map(({ key, doc }) => ({ key, doc }))).toEqual([
      { key: 'r1@host:9', doc: { replica: 'r1', requests: 2 } },
      { key: 'r2', doc: { replica: 'r2', requests: 10, nested: { p95: 1.5 } } },
    ]);
    for (const d of list) {
      expect(new Date(d.updatedAt).toISOString()).toBe(d.updatedAt);
      // The database's clock may differ from ours by a little.
      expect(Date.parse(d.updatedAt)).toBeGreaterThanOrEqual(before - 5000);
    }
    expect((await s.listShared('stats:2')).map((d) => d.doc)).toEqual([{ replica: 'r1', epoch: 2 }]);
    expect((await s.listShared('.hidden')).map((d) => d.key)).toEqual(['.k']);
    await expect(s.putShared('a/b', 'k', {})).rejects.toThrow(/invalid shared namespace/);
    await expect(s.putShared('ns', '..', {})).rejects.toThrow(/invalid shared key/);
    await expect(s.putShared('ns', '', {})).rejects.toThrow(/invalid shared key/);
    await expect(s.listShared('x'.repeat(201))).rejects.toThrow(/invalid shared namespace/);
    await expect(s.putShared('ns', 'k', { at: new Date() })).rejects.toThrow(/Date/);
    await expect(s.putShared('ns', 'k', null as unknown as object)).rejects.toThrow(/must be an object/);
    expect(await s.listShared('ns')).toEqual([]);
  });

  it('has a change feed only when other processes write it through a database', async () => {
    const s = await make();
    expect(typeof s.subscribe).toBe(name === 'pg' ? 'function' : 'undefined');
  });
});

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('file store on disk', () => {
  const statePath = (dir: string) => join(dir, 'state.json');

  it('resumes exactly the saved state, bundles and journals after a restart', async () => {
    const dir = await tempDir();
    const a = await fileStore(dir);
    await a.saveState<Doc>({ version: 1, note: 'one' }, undefined);
    await a.saveState<Doc>({ version: 2, note: 'two', candidate: { stage: 'shadow' }, list: [3] }, 1);
    await a.putBundle(bundleId(bundle), canonicalJson(bundle));
    await a.appendEvent('rollbacks', { to: 'x' });
    await a.close();

    const b = await fileStore(dir);
    expect(await b.loadState<Doc>()).toEqual({
      version: 2,
      note: 'two',
      candidate: { stage: 'shadow' },
      list: [3],
    });
    expect(await b.listBundles()).toEqual([bundleId(bundle)]);
    expect(await b.getBundle(bundleId(bundle))).toBe(canonicalJson(bundle));
    expect(await b.readEvents('rollbacks')).toEqual({ events: [{ to: 'x' }], torn: false });
    await b.saveState({ version: 3, note: 'three' }, 2);

    const doc = JSON.parse(await readFile(statePath(dir), 'utf8')) as Record<string, unknown>;
    expect(doc).toEqual({
      format: 'ringfence-state/v1',
      checksum: `sha256:${sha256(canonicalJson({ version: 3, note: 'three' }))}`,
      state: { version: 3, note: 'three' },
    });
    expect((await readdir(dir)).sort()).toEqual(['bundles', 'journals', 'state.json']);
  });

  /** Writes `bad` over state.json, then checks loads and saves both throw and leave the bytes as they are. */
  async function expectCorrupt(dir: string, bad: Uint8Array | string, reason: RegExp): Promise<void> {
    await writeFile(statePath(dir), bad);
    const before = await readFile(statePath(dir));
    const s = await fileStore(dir);
    const err = await s.loadState().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect(err).toMatchObject({ file: statePath(dir) });
    expect((err as Error).message).toMatch(reason);
    await expect(s.saveState({ version: 2, note: 'x' }, 1)).rejects.toBeInstanceOf(StoreCorruptError);
    await expect(s.saveState({ version: 1, note: 'x' }, undefined)).rejects.toBeInstanceOf(StoreCorruptError);
    expect(await readFile(statePath(dir))).toEqual(before);
  }

  async function savedOnce(): Promise<{ dir: string; text: string }> {
    const dir = await tempDir();
    const s = await fileStore(dir);
    await s.saveState<Doc>({ version: 1, note: 'good', list: [1, 2, 3] }, undefined);
    return { dir, text: await readFile(statePath(dir), 'utf8') };
  }

  it('detects a truncated state file and leaves it untouched', async () => {
    const { dir, text } = await savedOnce();
    await expectCorrupt(dir, text.slice(0, Math.floor(text.length / 2)), /not valid JSON/);
  });

  it('detects an empty state file', async () => {
    const { dir } = await savedOnce();
    await expectCorrupt(dir, '', /empty file/);
  });

  it('detects a hand-edited state (checksum mismatch)', async () => {
    const { dir, text } = await savedOnce();
    await expectCorrupt(dir, text.replace('"good"', '"evil"'), /checksum mismatch/);
  });

  it('detects garbage bytes and a foreign format', async () => {
    const { dir, text } = await savedOnce();
    await expectCorrupt(dir, randomBytes(512), /not valid (JSON|UTF-8)/);
    await expectCorrupt(
      dir,
      text.replace('ringfence-state/v1', 'ringfence-state/v9'),
      /format is "ringfence-state\/v9"/,
    );
    await expectCorrupt(dir, '[1,2]', /not a JSON object/);
  });

  it('ignores and removes a temp file left by a crash; the last good state loads', async () => {
    const { dir, text } = await savedOnce();
    const leftover = join(dir, '.state.json.999999.0123456789ab.tmp');
    await writeFile(leftover, text.slice(0, 40));
    const s = await fileStore(dir);
    expect(await s.loadState<Doc>()).toEqual({ version: 1, note: 'good', list: [1, 2, 3] });
    await expect(stat(leftover)).rejects.toMatchObject({ code: 'ENOENT' });
    await s.saveState({ version: 2, note: 'next' }, 1);
    expect(await s.loadState<Doc>()).toEqual({ version: 2, note: 'next' });
  });

  it('detects a bundle file tampered on disk and never overwrites it', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir);
    const id = bundleId(bundle);
    await s.putBundle(id, canonicalJson(bundle));
    const file = join(dir, 'bundles', `${id.slice(7)}.json`);
    const tampered = canonicalJson({ ...bundle, rules: [] });
    await writeFile(file, tampered);
    await expect(s.getBundle(id)).rejects.toBeInstanceOf(StoreCorruptError);
    await expect(s.getBundle(id)).rejects.toMatchObject({ file });
    await expect(s.putBundle(id, canonicalJson(bundle))).rejects.toBeInstanceOf(StoreCorruptError);
    expect(await readFile(file, 'utf8')).toBe(tampered);
  });

  it('ignores a torn last journal line, reports it, and cuts it before the next append', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir);
    await s.appendEvent('rollbacks', { n: 1 });
    await s.appendEvent('rollbacks', { n: 2 });
    await appendFile(join(dir, 'journals', 'rollbacks.jsonl'), '{"n":3,"reason":"caf\xc3');
    expect(await s.readEvents('rollbacks')).toEqual({ events: [{ n: 1 }, { n: 2 }], torn: true });
    await s.appendEvent('rollbacks', { n: 4 });
    expect(await s.readEvents('rollbacks')).toEqual({ events: [{ n: 1 }, { n: 2 }, { n: 4 }], torn: false });
  });

  it('keeps unique keys, shared documents and chains across a restart, in their own files', async () => {
    const dir = await tempDir();
    const a = await fileStore(dir);
    await a.appendEvent('approvals', { id: 'a1' }, { uniqueKey: 'use:a1' });
    await a.putShared('stats:7', 'r1@h:1', { n: 1 });
    await a.appendChained('audit', () => ({ seq: 1 }));
    await a.close();
    // Names a file system may refuse (`:`, `@`) and a leading dot (a temp file) are %-encoded.
    expect(await readdir(join(dir, 'shared'))).toEqual(['stats%3A7']);
    expect(await readdir(join(dir, 'shared', 'stats%3A7'))).toEqual(['r1%40h%3A1.json']);
    expect(await readdir(join(dir, 'journals', 'approvals.keys'))).toEqual([sha256('use:a1')]);

    const b = await fileStore(dir);
    await expect(b.appendEvent('approvals', { id: 'a1' }, { uniqueKey: 'use:a1' })).rejects.toBeInstanceOf(
      DuplicateEventError,
    );
    expect((await b.readEvents('approvals')).events).toEqual([{ id: 'a1' }]);
    expect((await b.listShared('stats:7')).map((d) => d.doc)).toEqual([{ n: 1 }]);
    expect(await b.appendChained('audit', (last) => ({ seq: (last as { seq: number }).seq + 1 }))).toEqual({
      seq: 2,
    });

    // A hand-edited shared document is reported, not used.
    await writeFile(join(dir, 'shared', 'stats%3A7', 'r1%40h%3A1.json'), '{"format":"ringfence-shared/v1"');
    await expect(b.listShared('stats:7')).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it("sees another instance's saves in stateVersion (the cached version follows the file)", async () => {
    const dir = await tempDir();
    const a = await fileStore(dir);
    const b = await fileStore(dir);
    expect(await b.stateVersion()).toBeUndefined();
    await a.saveState({ version: 1 }, undefined);
    expect(await b.stateVersion()).toBe(1);
    expect(await b.stateVersion()).toBe(1);
    await a.saveState({ version: 2 }, 1);
    expect(await b.stateVersion()).toBe(2);
    await writeFile(statePath(dir), '{"format":');
    await expect(b.stateVersion()).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('chains onto the last complete line when the journal ends torn', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir);
    await s.appendEvent('audit', { seq: 1 });
    await appendFile(join(dir, 'journals', 'audit.jsonl'), '{"seq":2,"cut');
    const next = await s.appendChained('audit', (last) => ({ seq: (last as { seq: number }).seq + 1 }));
    expect(next).toEqual({ seq: 2 });
    expect(await s.readEvents('audit')).toEqual({ events: [{ seq: 1 }, { seq: 2 }], torn: false });
    // A last line that is complete but not JSON: refused, nothing appended.
    await appendFile(join(dir, 'journals', 'audit.jsonl'), 'garbage\n');
    await expect(s.appendChained('audit', () => ({ seq: 9 }))).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('throws on corruption in the middle of a journal', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir);
    await s.appendEvent('rollbacks', { n: 1 });
    const file = join(dir, 'journals', 'rollbacks.jsonl');
    await appendFile(file, 'not json\n{"n":3}\n');
    const err = await s.readEvents('rollbacks').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as Error).message).toMatch(/line 2 of 3/);
    await writeFile(file, '{"n":1}\n{"n":2}\n\n{"n":4}\n');
    await expect(s.readEvents('rollbacks')).rejects.toThrow(/line 3 of 4/);
  });
});

describe('file store across processes', () => {
  let scriptDir: string;
  let script: string;

  beforeAll(async () => {
    scriptDir = await mkdtemp(join(tmpdir(), 'ringfence-store-child-'));
    script = join(scriptDir, 'child.mts');
    const storeUrl = pathToFileURL(join(ROOT, 'src', 'control', 'file-store.ts')).href;
    // Modes: `crash` saves bigger and bigger versions until killed; `count N` does N compare-and-set increments.
    await writeFile(
      script,
      `import { openFileStore } from ${JSON.stringify(storeUrl)};
const [dir, mode, n] = process.argv.slice(2);
const store = await openFileStore(dir, { lockTimeoutMs: 20000 });
if (mode === 'crash') {
  let v = (await store.loadState())?.version;
  const pad = 'x'.repeat(256 * 1024);
  process.stdout.write('start ' + v + '\\n');
  for (;;) {
    const next = (v ?? 0) + 1;
    await store.saveState({ version: next, pad, sum: next * 7 }, v);
    v = next;
    process.stdout.write('saved ' + v + '\\n');
  }
} else if (mode === 'chain') {
  for (let i = 0; i < Number(n); i++)
    await store.appendChained('chain', (last) => ({ n: (last?.n ?? 0) + 1, prev: last?.n ?? null, pid: process.pid }));
  await store.close();
  process.stdout.write('chained\\n');
} else {
  let done = 0;
  let conflicts = 0;
  while (done < Number(n)) {
    const cur = await store.loadState();
    try {
      await store.saveState({ version: (cur?.version ?? 0) + 1, by: process.pid }, cur?.version);
      await store.appendEvent('increments', { pid: process.pid, version: (cur?.version ?? 0) + 1 });
      done += 1;
    } catch (e) {
      if (e.name !== 'StoreConflictError') throw e;
      conflicts += 1;
    }
  }
  await store.close();
  process.stdout.write(JSON.stringify({ done, conflicts }) + '\\n');
}
`,
    );
  });

  afterAll(async () => {
    await rm(scriptDir, { recursive: true, force: true });
  });

  interface Child {
    readonly child: ChildProcess;
    out: string;
    err: string;
    readonly exited: Promise<number | string>;
  }

  function run(args: string[]): Child {
    const child = spawn(NODE, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const c: Child = {
      child,
      out: '',
      err: '',
      exited: new Promise((resolve) =>
        child.on('exit', (code, signal) => {
          children.delete(child);
          resolve(code ?? signal ?? -1);
        }),
      ),
    };
    child.stdout?.on('data', (d: Buffer) => {
      c.out += d.toString('utf8');
    });
    child.stderr?.on('data', (d: Buffer) => {
      c.err += d.toString('utf8');
    });
    return c;
  }

  async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it('survives SIGKILL mid-write: every restart loads one of the written versions, never a corrupt file', async () => {
    const dir = await tempDir();
    let floor = 0;
    for (let round = 0; round < 5; round++) {
      const c = run([dir, 'crash']);
      await until(() => /saved \d+/.test(c.out) || c.err !== '', 'the child to start saving');
      expect(c.err).toBe('');
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
      c.child.kill('SIGKILL');
      expect(await c.exited).toBe('SIGKILL');
      const saved = [...c.out.matchAll(/saved (\d+)/g)].map((m) => Number(m[1]));
      const last = saved.at(-1) ?? floor;
      // The kill may land after a rename but before the child reported it: last or last + 1.
      const s = await fileStore(dir);
      const state = await s.loadState<{ version: number; pad: string; sum: number }>();
      expect(state).toBeDefined();
      expect(state!.version).toBeGreaterThanOrEqual(last);
      expect(state!.version).toBeLessThanOrEqual(last + 1);
      expect(state!.sum).toBe(state!.version * 7);
      expect(state!.pad).toHaveLength(256 * 1024);
      expect(state!.version).toBeGreaterThan(floor);
      floor = state!.version;
      // Opening swept whatever the killed writer left; the lock it held was broken (its pid is gone).
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      await s.saveState({ version: floor + 1, pad: 'x'.repeat(256 * 1024), sum: (floor + 1) * 7 }, floor);
      floor += 1;
    }
  });

  it('serialises two contending processes: no lost update, no deadlock', async () => {
    const dir = await tempDir();
    const n = 25;
    const a = run([dir, 'count', String(n)]);
    const b = run([dir, 'count', String(n)]);
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    expect(a.err + b.err).toBe('');
    for (const c of [a, b]) expect(JSON.parse(c.out)).toMatchObject({ done: n });
    const s = await fileStore(dir);
    expect(await s.loadState()).toMatchObject({ version: 2 * n });
    const { events, torn } = await s.readEvents('increments');
    expect(torn).toBe(false);
    expect((events as Array<{ version: number }>).map((e) => e.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 2 * n }, (_, i) => i + 1),
    );
    expect(await stat(join(dir, '.lock')).catch((e: { code: string }) => e.code)).toBe('ENOENT');
  });

  it('appendChained from two processes at once never forks the chain', async () => {
    const dir = await tempDir();
    const a = run([dir, 'chain', '50']);
    const b = run([dir, 'chain', '50']);
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    expect(a.err + b.err).toBe('');
    const s = await fileStore(dir);
    const events = (await s.readEvents('chain')).events as Array<{
      n: number;
      prev: number | null;
      pid: number;
    }>;
    expect(events.map((e) => e.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(events.map((e) => e.prev)).toEqual(Array.from({ length: 100 }, (_, i) => (i === 0 ? null : i)));
    expect(new Set(events.map((e) => e.pid)).size).toBe(2);
  });

  async function writeLock(dir: string, body: string, ageMs = 0): Promise<string> {
    const file = join(dir, '.lock');
    await writeFile(file, body);
    if (ageMs > 0) {
      const t = new Date(Date.now() - ageMs);
      await utimes(file, t, t);
    }
    return file;
  }

  it('breaks a lock whose pid is dead, or that an earlier process with our pid left', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir, { lockTimeoutMs: 2000 });
    const dead = spawn(NODE, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));

    await writeLock(dir, JSON.stringify({ pid: deadPid, host: hostname(), token: 'gone' }));
    const t0 = Date.now();
    await s.saveState({ version: 1 }, undefined);
    expect(Date.now() - t0).toBeLessThan(1000);

    await writeLock(
      dir,
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'earlier-incarnation' }),
    );
    await s.saveState({ version: 2 }, 1);
    expect(await s.loadState()).toEqual({ version: 2 });
    expect(await stat(join(dir, '.lock')).catch((e: { code: string }) => e.code)).toBe('ENOENT');
  });

  it('waits for a live holder within a bounded time, then fails naming it', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir, { lockTimeoutMs: 300 });
    // The vitest main process: alive, and not us.
    const body = JSON.stringify({ pid: process.ppid, host: hostname(), token: 'other' });
    const file = await writeLock(dir, body);
    const t0 = Date.now();
    await expect(s.saveState({ version: 1 }, undefined)).rejects.toThrow(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await readFile(file, 'utf8')).toBe(body);
    expect(await s.loadState()).toBeUndefined();

    // Released while we wait: the save goes through.
    const pending = s.saveState({ version: 1 }, undefined);
    setTimeout(() => void rm(file), 100);
    await pending;
    expect(await s.loadState()).toEqual({ version: 1 });
  });

  it('breaks a lock older than staleLockMs even from another host, and an unreadable one after 2 s', async () => {
    const dir = await tempDir();
    const s = await fileStore(dir, { lockTimeoutMs: 300, staleLockMs: 5000 });
    const foreign = JSON.stringify({ pid: 1, host: `not-${hostname()}`, token: 'x' });
    await writeLock(dir, foreign);
    await expect(s.saveState({ version: 1 }, undefined)).rejects.toThrow(/timed out/);
    await writeLock(dir, foreign, 10_000);
    await s.saveState({ version: 1 }, undefined);

    await writeLock(dir, '');
    await expect(s.saveState({ version: 2 }, 1)).rejects.toThrow(/timed out/);
    await writeLock(dir, '', 3000);
    await s.saveState({ version: 2 }, 1);
    expect(await s.loadState()).toEqual({ version: 2 });
  });

  it('lets two stores in one process share the lock without breaking each other', async () => {
    const dir = await tempDir();
    const a = await fileStore(dir);
    const b = await fileStore(dir);
    await a.saveState({ version: 1 }, undefined);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).saveState({ version: 2, i }, 1)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await b.loadState()).toMatchObject({ version: 2 });
  });
});
