import { createHash, generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AuditChainError,
  type AuditKind,
  AuditLog,
  type AuditLogOptions,
  auditHash,
  auditJournalPath,
  GENESIS,
  rawAuditText,
  verifyChain,
  verifyJournal,
} from '../../src/control/audit.ts';
import { openFileStore } from '../../src/control/file-store.ts';
import { memoryStore } from '../../src/control/memory-store.ts';
import type { ControlStore } from '../../src/control/store.ts';
import { canonicalJson } from '../../src/policy/canonical.ts';

const dirs: string[] = [];
const stores: ControlStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function fileStore(): Promise<{ dir: string; store: ControlStore; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ringfence-audit-'));
  dirs.push(dir);
  const store = await openFileStore(dir);
  stores.push(store);
  return { dir, store, file: auditJournalPath(dir) };
}

function keyPair(type: 'ed25519' | 'ec' = 'ed25519'): { priv: string; pub: string } {
  const { privateKey, publicKey } =
    type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    pub: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

function clock(): () => Date {
  let t = Date.parse('2026-05-01T10:00:00.000Z');
  return () => {
    t += 1000;
    return new Date(t);
  };
}

const BUNDLE = `sha256:${'ab'.repeat(32)}`;
const SCRIPT: Array<[AuditKind, string, Record<string, unknown>, string?]> = [
  ['bundle.registered', 'alice', { bundleId: BUNDLE, name: 'corp', version: '2026.11.2', created: true }],
  ['ring.entered', 'alice', { ring: 'shadow', bundleId: BUNDLE, at: '2026-05-01T10:00:02.000Z' }, 'chg_1'],
  ['divergence.ack', 'alice', { group: 'pii-redact → pii-block', reason: 'expected tightening' }],
  ['ring.entered', 'bob', { ring: 'canary', slice: { apps: ['demo'], percent: 5 } }, 'chg_2'],
  [
    'rollback',
    'auto-rollback',
    { trigger: 'error_rate', figures: { candidate: 0.2, production: 0.01 }, timeToRestoreMs: 42 },
    'chg_3',
  ],
  ['kill', 'carol', { target: 'openai/gpt-4o', reason: 'provider incident' }, 'chg_4'],
];

/** Writes the six records of SCRIPT through an AuditLog; returns the log. */
async function buildTrail(store: ControlStore, opts: AuditLogOptions = {}): Promise<AuditLog> {
  const log = await AuditLog.open(store, { now: clock(), ...opts });
  for (const [kind, actor, data, changeId] of SCRIPT) await log.append(kind, actor, data, changeId);
  return log;
}

/** The journal file as `text.split('\n')` lines (the last item '' for a complete file). */
async function linesOf(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n');
}

describe('AuditLog', () => {
  it('appends hash-chained v1 records to the audit journal', async () => {
    const store = memoryStore();
    const log = await buildTrail(store);
    const recs = await log.records();
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(recs[0]).toMatchObject({
      v: 1,
      seq: 1,
      at: '2026-05-01T10:00:01.000Z',
      kind: 'bundle.registered',
      actor: 'alice',
      changeId: null,
      data: { bundleId: BUNDLE, name: 'corp' },
      prev: GENESIS,
    });
    expect(recs[1]!.changeId).toBe('chg_1');
    for (let i = 0; i < recs.length; i++) {
      const { hash, sig, ...body } = recs[i]!;
      expect(sig).toBeUndefined();
      expect(hash).toBe(`sha256:${createHash('sha256').update(canonicalJson(body)).digest('hex')}`);
      expect(recs[i]!.prev).toBe(i === 0 ? GENESIS : recs[i - 1]!.hash);
    }
    expect(log.head()).toEqual({ seq: 6, hash: recs[5]!.hash });
    expect((await store.readEvents('audit')).events).toEqual(recs);
  });

  it('refuses bad appends without moving the head', async () => {
    const log = await AuditLog.open(memoryStore());
    await expect(log.append('no.such' as AuditKind, 'alice', {})).rejects.toThrow(/unknown audit kind/);
    await expect(log.append('kill', '', {})).rejects.toThrow(/actor/);
    await expect(log.append('kill', 'alice', { when: new Date() })).rejects.toThrow(/Date/);
    await expect(log.append('kill', 'alice', [] as unknown as Record<string, unknown>)).rejects.toThrow(
      /object/,
    );
    expect(log.head()).toEqual({ seq: 0, hash: GENESIS });
    const r = await log.append('kill', 'alice', { target: 'mock', dropped: undefined });
    expect(r.seq).toBe(1);
    expect(r.data).toEqual({ target: 'mock' });
  });

  it('never forks the chain under concurrent appends (memory and file stores)', async () => {
    const { store: fs, file } = await fileStore();
    for (const [store, n] of [
      [memoryStore(), 60],
      [fs, 20],
    ] as const) {
      const log = await AuditLog.open(store);
      const appended = await Promise.all(
        Array.from({ length: n }, (_, i) => log.append('drill', `op${i}`, { i })),
      );
      expect(appended.map((r) => r.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const v = await log.verify();
      expect(v.ok).toBe(true);
      expect(v.records).toHaveLength(n);
      expect(log.head().seq).toBe(n);
    }
    expect(verifyJournal(await readFile(file, 'utf8')).records).toHaveLength(20);
  });

  it('resumes the head of a stored trail after a restart', async () => {
    const { dir, store, file } = await fileStore();
    const first = await buildTrail(store);
    const head = first.head();
    await store.close();
    const again = await openFileStore(dir);
    stores.push(again);
    const log = await AuditLog.open(again);
    expect(log.head()).toEqual(head);
    const r = await log.append('restore', 'carol', { target: 'openai/gpt-4o', reason: 'recovered' }, 'chg_5');
    expect(r).toMatchObject({ seq: 7, prev: head.hash });
    const v = verifyJournal(await readFile(file, 'utf8'));
    expect(v.ok).toBe(true);
    expect(v.head).toEqual({ seq: 7, hash: r.hash });
  });

  it('refuses to open a tampered trail, naming the first bad record, and appends nothing', async () => {
    const { dir, store, file } = await fileStore();
    await buildTrail(store);
    const lines = await linesOf(file);
    const cases: Array<[string, string[], RegExp]> = [
      [
        'edited',
        lines.map((l, i) => (i === 2 ? l.replace('expected tightening', 'nothing to see') : l)),
        /line 3 \(seq 3\): edited — hash does not match the record's content/,
      ],
      ['removed', lines.filter((_, i) => i !== 2), /line 3 \(seq 4\): removed/],
      ['cut', lines.map((l, i) => (i === 2 ? l.slice(0, 40) : l)), /line 3: truncated/],
    ];
    for (const [, tampered, message] of cases) {
      await writeFile(file, tampered.join('\n'));
      const s = await openFileStore(dir);
      stores.push(s);
      const err = await AuditLog.open(s).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuditChainError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/refusing to append/);
      expect(await readFile(file, 'utf8')).toBe(tampered.join('\n'));
    }
  });

  it('opens a trail whose last line a crash cut short, and continues the chain', async () => {
    const { dir, store, file } = await fileStore();
    await buildTrail(store);
    await appendFile(file, '{"actor":"alice","at":"2026-05-01T1');
    expect(verifyJournal(await readFile(file, 'utf8')).firstBad).toMatchObject({
      line: 7,
      reason: 'truncated',
    });
    const s = await openFileStore(dir);
    stores.push(s);
    const warn = vi.fn();
    const logger = { info: vi.fn(), warn } as unknown as Logger;
    const log = await AuditLog.open(s, { logger });
    expect(warn).toHaveBeenCalledOnce();
    expect(log.head().seq).toBe(6);
    await log.append('restore', 'carol', { target: 'openai/gpt-4o', reason: 'ok' });
    const v = verifyJournal(await readFile(file, 'utf8'));
    expect(v.ok, JSON.stringify(v.firstBad)).toBe(true);
    expect(v.head.seq).toBe(7);
  });

  it('refuses a trail that does not reach the anchored head', async () => {
    const { dir, store, file } = await fileStore();
    const head = (await buildTrail(store)).head();
    const lines = await linesOf(file);
    await writeFile(file, `${lines.slice(0, 5).join('\n')}\n`);
    const s = await openFileStore(dir);
    stores.push(s);
    expect((await AuditLog.open(s)).head().seq).toBe(5);
    await expect(AuditLog.open(s, { expectHead: head })).rejects.toThrow(/line 6 \(seq 6\): truncated/);
  });

  it('re-reads the head after a failed append, so a write that landed is not forked', async () => {
    const inner = memoryStore();
    let failNext = true;
    const flaky: ControlStore = {
      ...inner,
      async appendChained(journal, build) {
        const written = await inner.appendChained(journal, build);
        if (failNext) {
          failNext = false;
          throw new Error('EIO after the write');
        }
        return written;
      },
    };
    const log = await AuditLog.open(flaky);
    await expect(log.append('kill', 'alice', { target: 'mock' })).rejects.toThrow(/EIO/);
    expect(log.head().seq).toBe(0);
    const r = await log.append('restore', 'alice', { target: 'mock' });
    expect(r.seq).toBe(2);
    const v = await log.verify();
    expect(v.ok).toBe(true);
    expect(v.records.map((x) => x.kind)).toEqual(['kill', 'restore']);
  });

  it('notices damage done after it opened: records() throws, verify() names it', async () => {
    const { store, file } = await fileStore();
    const log = await buildTrail(store);
    const lines = await linesOf(file);
    await writeFile(file, `${lines.slice(0, 4).join('\n')}\n`);
    const v = await log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBad).toMatchObject({ line: 5, seq: 5, reason: 'truncated' });
    await expect(log.records()).rejects.toThrow(AuditChainError);
  });

  it('rawAuditText serves the journal bytes (file store) or canonical lines (memory store)', async () => {
    const { dir, store, file } = await fileStore();
    await buildTrail(store);
    expect(await rawAuditText(store, dir)).toBe(await readFile(file, 'utf8'));
    const mem = memoryStore();
    const log = await buildTrail(mem);
    const text = await rawAuditText(mem);
    expect(text.split('\n')).toHaveLength(7);
    expect(verifyJournal(text)).toMatchObject({ ok: true, head: log.head() });
    const empty = await fileStore();
    expect(await rawAuditText(empty.store, empty.dir)).toBe('');
  });
});

describe('verifyChain on a real journal file', () => {
  /** A six-record trail in a temp state dir, and its lines. */
  async function trail(opts: AuditLogOptions = {}) {
    const { store, file } = await fileStore();
    const log = await buildTrail(store, opts);
    return { file, head: log.head(), lines: await linesOf(file) };
  }

  it('verifies an intact trail', async () => {
    const { lines, head } = await trail();
    expect(lines).toHaveLength(7);
    expect(lines[6]).toBe('');
    const v = verifyChain(lines);
    expect(v.ok).toBe(true);
    expect(v.firstBad).toBeUndefined();
    expect(v.records).toHaveLength(6);
    expect(v.head).toEqual(head);
    expect(verifyChain(lines, { expectHead: head }).ok).toBe(true);
    expect(verifyChain([''])).toEqual({ ok: true, records: [], head: { seq: 0, hash: GENESIS } });
    expect(verifyChain([]).ok).toBe(true);
  });

  it('edit of a field in a middle line: edited at that line', async () => {
    const { lines } = await trail();
    lines[3] = lines[3]!.replace('"actor":"bob"', '"actor":"alice"');
    const v = verifyChain(lines);
    expect(v.ok).toBe(false);
    expect(v.firstBad).toEqual({
      line: 4,
      seq: 4,
      reason: 'edited',
      detail: "hash does not match the record's content",
    });
    expect(v.records).toHaveLength(3);
    expect(v.head.seq).toBe(3);
  });

  it('edit with the hash recomputed: edited at that line (the next record still names the old hash)', async () => {
    const { lines } = await trail();
    const rec = JSON.parse(lines[2]!) as Record<string, unknown>;
    rec.data = { group: 'pii-redact → pii-block', reason: 'rewritten' };
    rec.hash = auditHash(rec);
    lines[2] = canonicalJson(rec);
    const v = verifyChain(lines);
    expect(v.firstBad).toMatchObject({ line: 3, seq: 3, reason: 'edited' });
    expect(v.firstBad!.detail).toMatch(/recomputed/);
    expect(v.records).toHaveLength(2);
  });

  it('removal of a middle line: removed where the gap shows', async () => {
    const { lines } = await trail();
    lines.splice(2, 1);
    const v = verifyChain(lines);
    expect(v.firstBad).toMatchObject({ line: 3, seq: 4, reason: 'removed' });
    expect(v.firstBad!.detail).toMatch(/record 3 is missing/);
    lines.splice(2, 2);
    expect(verifyChain(lines).firstBad).toMatchObject({ line: 3, seq: 6, reason: 'removed' });
  });

  it('two lines swapped: reordered at the first of them', async () => {
    const { lines } = await trail();
    const adjacent = [...lines];
    [adjacent[2], adjacent[3]] = [adjacent[3]!, adjacent[2]!];
    expect(verifyChain(adjacent).firstBad).toMatchObject({ line: 3, seq: 4, reason: 'reordered' });
    const apart = [...lines];
    [apart[1], apart[4]] = [apart[4]!, apart[1]!];
    const v = verifyChain(apart);
    expect(v.firstBad).toMatchObject({ line: 2, seq: 5, reason: 'reordered' });
    expect(v.firstBad!.detail).toMatch(/line 5/);
  });

  it('a line repeated: reordered where it repeats', async () => {
    const { lines } = await trail();
    lines.splice(3, 0, lines[2]!);
    expect(verifyChain(lines).firstBad).toMatchObject({ line: 4, seq: 3, reason: 'reordered' });
  });

  it('a middle line cut short: truncated at that line', async () => {
    const { lines } = await trail();
    lines[2] = lines[2]!.slice(0, Math.floor(lines[2]!.length / 2));
    const v = verifyChain(lines);
    expect(v.firstBad).toMatchObject({ line: 3, seq: 3, reason: 'truncated' });
    expect(v.records).toHaveLength(2);
    lines[2] = '';
    expect(verifyChain(lines).firstBad).toMatchObject({ line: 3, reason: 'truncated', detail: 'empty line' });
  });

  it('the file cut mid-line at the end: truncated at the last line', async () => {
    const { file } = await trail();
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, text.length - 30));
    const v = verifyJournal(await readFile(file, 'utf8'));
    expect(v.firstBad).toMatchObject({ line: 6, seq: 6, reason: 'truncated' });
    expect(v.firstBad!.detail).toMatch(/ends mid-line/);
    expect(v.records).toHaveLength(5);
    // Only the final newline missing: the record is whole, but the append never completed.
    expect(verifyJournal(text.slice(0, -1)).firstBad).toMatchObject({ line: 6, seq: 6, reason: 'truncated' });
  });

  it('the last whole record dropped: invisible to the chain alone, truncated against the anchored head', async () => {
    const { lines, head } = await trail();
    lines.splice(5, 1);
    const alone = verifyChain(lines);
    expect(alone.ok).toBe(true);
    expect(alone.head.seq).toBe(5);
    const v = verifyChain(lines, { expectHead: head });
    expect(v.ok).toBe(false);
    expect(v.firstBad).toMatchObject({ line: 6, seq: 6, reason: 'truncated' });
    expect(v.firstBad!.detail).toMatch(/anchored head is seq 6/);
  });

  it('an anchored head: an earlier anchor still verifies; a different hash at its seq is edited', async () => {
    const { lines } = await trail();
    const third = JSON.parse(lines[2]!) as { hash: string };
    expect(verifyChain(lines, { expectHead: { seq: 3, hash: third.hash } }).ok).toBe(true);
    const v = verifyChain(lines, { expectHead: { seq: 3, hash: `sha256:${'1'.repeat(64)}` } });
    expect(v.firstBad).toMatchObject({ line: 3, seq: 3, reason: 'edited' });
    expect(v.records).toHaveLength(2);
  });

  it('a JSON line that is not a v1 record: edited', async () => {
    const { lines } = await trail();
    lines[1] = '{"note":"hello"}';
    expect(verifyChain(lines).firstBad).toMatchObject({ line: 2, reason: 'edited' });
    expect(verifyChain(lines).firstBad!.detail).toMatch(/not an audit record v1/);
  });

  it('signed trails verify with the right public key and fail with another', async () => {
    const keys = keyPair();
    const { lines } = await trail({ signingKey: keys.priv });
    for (const l of lines.slice(0, -1))
      expect((JSON.parse(l) as { sig?: string }).sig).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(verifyChain(lines, { publicKey: keys.pub })).toMatchObject({ ok: true, head: { seq: 6 } });
    // The public key derived from the private one.
    expect(verifyChain(lines, { publicKey: keys.priv }).ok).toBe(true);
    const other = keyPair();
    expect(verifyChain(lines, { publicKey: other.pub }).firstBad).toMatchObject({
      line: 1,
      seq: 1,
      reason: 'bad signature',
    });
    // Without a key the chain alone still verifies.
    expect(verifyChain(lines).ok).toBe(true);
  });

  it('a signed record rewritten with its hash recomputed: bad signature', async () => {
    const keys = keyPair();
    const { lines } = await trail({ signingKey: keys.priv });
    const rec = JSON.parse(lines[4]!) as Record<string, unknown>;
    rec.data = { trigger: 'manual', timeToRestoreMs: 1 };
    rec.hash = auditHash(rec);
    lines[4] = canonicalJson(rec);
    expect(verifyChain(lines, { publicKey: keys.pub }).firstBad).toMatchObject({
      line: 5,
      seq: 5,
      reason: 'bad signature',
    });
  });

  it('unsigned records fail when a public key is given', async () => {
    const keys = keyPair();
    const { lines } = await trail();
    expect(verifyChain(lines, { publicKey: keys.pub }).firstBad).toMatchObject({
      line: 1,
      reason: 'unsigned record',
    });
    const signed = (await trail({ signingKey: keys.priv })).lines;
    const rec = JSON.parse(signed[3]!) as Record<string, unknown>;
    delete rec.sig;
    signed[3] = canonicalJson(rec);
    expect(verifyChain(signed, { publicKey: keys.pub }).firstBad).toMatchObject({
      line: 4,
      seq: 4,
      reason: 'unsigned record',
    });
  });

  it('opening with the public key checks signatures; a non-Ed25519 signing key is refused', async () => {
    const keys = keyPair();
    const { store } = await fileStore();
    await buildTrail(store, { signingKey: keys.priv });
    const log = await AuditLog.open(store, { signingKey: keys.priv, publicKey: keys.pub });
    expect(log.head().seq).toBe(6);
    await expect(AuditLog.open(store, { publicKey: keyPair().pub })).rejects.toThrow(
      /line 1 \(seq 1\): bad signature/,
    );
    await expect(AuditLog.open(memoryStore(), { signingKey: keyPair('ec').priv })).rejects.toThrow(/Ed25519/);
  });
});
