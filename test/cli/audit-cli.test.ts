import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditHead, AuditLog, auditJournalPath } from '../../src/control/audit.ts';
import { openFileStore } from '../../src/control/file-store.ts';
import { killAll, spawnRingfence } from '../helpers/processes.ts';

/** Runs `ringfence ARGS` to completion. */
async function ringfence(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = spawnRingfence(args, { env, killAfterMs: 20_000 });
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

const HEAD_LINE = /^audit trail intact: 6 records, head seq 6 sha256:[0-9a-f]{64} \(/;

let root: string;
/** An intact unsigned trail of six records. */
let plain: { dir: string; file: string; text: string; head: AuditHead };
/** The same, signed. */
let signed: { dir: string; file: string; text: string; head: AuditHead };
const keys = generateKeyPairSync('ed25519');
const PRIV = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
let pubFile: string;
let otherPubFile: string;

async function makeTrail(name: string, signingKey?: string) {
  const dir = join(root, name);
  const store = await openFileStore(dir);
  let t = Date.parse('2026-05-01T10:00:00.000Z');
  const log = await AuditLog.open(store, {
    signingKey,
    now: () => {
      t += 60_000;
      return new Date(t);
    },
  });
  await log.append('bundle.registered', 'alice', { bundleId: `sha256:${'ab'.repeat(32)}`, name: 'corp' });
  await log.append('ring.entered', 'alice', { ring: 'shadow', at: '2026-05-01T10:02:00.000Z' }, 'chg_1');
  await log.append('ring.entered', 'bob', { ring: 'canary', slice: { percent: 5 } }, 'chg_2');
  await log.append('approval.requested', 'bob', { approvalId: 'apr_1', action: 'promote' });
  await log.append('rollback', 'auto-rollback', { trigger: 'error_rate', timeToRestoreMs: 42 }, 'chg_3');
  await log.append('kill', 'carol', { target: 'openai/gpt-4o', reason: 'provider incident' }, 'chg_4');
  await store.close();
  const file = auditJournalPath(dir);
  return { dir, file, text: await readFile(file, 'utf8'), head: log.head() };
}

/** A copy of `text` in a fresh state dir, with its lines changed by `tamper`. */
async function tampered(name: string, text: string, tamper: (lines: string[]) => string[] | string) {
  const dir = join(root, name);
  const store = await openFileStore(dir);
  await store.close();
  const out = tamper(text.split('\n'));
  await writeFile(auditJournalPath(dir), typeof out === 'string' ? out : out.join('\n'));
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ringfence-audit-cli-'));
  plain = await makeTrail('plain');
  signed = await makeTrail('signed', PRIV);
  pubFile = join(root, 'audit.pub');
  await writeFile(pubFile, keys.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  otherPubFile = join(root, 'other.pub');
  await writeFile(
    otherPubFile,
    generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string,
  );
});

afterAll(async () => {
  killAll();
  await rm(root, { recursive: true, force: true });
});

describe('ringfence audit verify --state-dir', () => {
  it('reports an intact trail with its head, exit 0', async () => {
    const r = await ringfence(['audit', 'verify', '--state-dir', plain.dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(HEAD_LINE);
    expect(r.stdout).toContain(`head seq 6 ${plain.head.hash} (unsigned)`);
  });

  it('pinpoints each kind of tampering, exit 1', async () => {
    const cases: Array<[string, (l: string[]) => string[] | string, string]> = [
      [
        'edit',
        (l) => l.map((x, i) => (i === 3 ? x.replace('"approvalId":"apr_1"', '"approvalId":"apr_9"') : x)),
        "audit trail BROKEN at line 4 (seq 4): edited — hash does not match the record's content",
      ],
      ['remove', (l) => l.filter((_, i) => i !== 2), 'audit trail BROKEN at line 3 (seq 4): removed — '],
      [
        'swap',
        (l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)],
        'audit trail BROKEN at line 2 (seq 3): reordered — ',
      ],
      [
        'cut',
        (l) => l.map((x, i) => (i === 4 ? x.slice(0, 50) : x)),
        'audit trail BROKEN at line 5 (seq 5): truncated — ',
      ],
      [
        'cut-end',
        (l) => l.join('\n').slice(0, -25),
        'audit trail BROKEN at line 6 (seq 6): truncated — the file ends mid-line',
      ],
    ];
    for (const [name, tamper, message] of cases) {
      const dir = await tampered(name, plain.text, tamper);
      const r = await ringfence(['audit', 'verify', '--state-dir', dir]);
      expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stdout, name).toContain(message);
    }
  });

  it('catches a dropped last record against --expect-head; --json gives the verdict as JSON', async () => {
    const dir = await tampered('drop-last', plain.text, (l) => [...l.slice(0, 5), '']);
    const alone = await ringfence(['audit', 'verify', '--state-dir', dir]);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toContain('5 records');
    const anchored = `${plain.head.seq}:${plain.head.hash}`;
    const r = await ringfence(['audit', 'verify', '--state-dir', dir, '--expect-head', anchored, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const v = JSON.parse(r.stdout) as { ok: boolean; records: number; firstBad: object };
    expect(v).toMatchObject({
      ok: false,
      records: 5,
      firstBad: { line: 6, seq: 6, reason: 'truncated' },
    });
    const ok = await ringfence(['audit', 'verify', '--state-dir', plain.dir, '--expect-head', anchored]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('reaches the anchored head seq 6');
  });

  it('checks signatures with the right public key, fails with another, and with unsigned records', async () => {
    const right = await ringfence(['audit', 'verify', '--state-dir', signed.dir, '--public-key', pubFile]);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout).toMatch(HEAD_LINE);
    expect(right.stdout).toContain('every signature verified');
    const wrong = await ringfence([
      'audit',
      'verify',
      '--state-dir',
      signed.dir,
      '--public-key',
      otherPubFile,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain('audit trail BROKEN at line 1 (seq 1): bad signature');
    // The key from the environment: the public half derived from the signing key.
    const unsigned = await ringfence(['audit', 'verify', '--state-dir', plain.dir], {
      RINGFENCE_AUDIT_SIGNING_KEY: PRIV,
    });
    expect(unsigned.code).toBe(1);
    expect(unsigned.stdout).toContain('audit trail BROKEN at line 1 (seq 1): unsigned record');
  });
});

describe('ringfence audit verify --admin', () => {
  let server: Server;
  let url: string;
  let serving = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.headers.authorization !== 'Bearer t0ken') {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { code: 'unauthorized', message: 'missing or unknown admin token' } }),
        );
      } else if (req.url !== '/admin/v1/audit?format=raw') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'route_not_found', message: `no route ${req.url}` } }));
      } else {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(serving);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('verifies the trail the admin API serves: intact 0, tampered 1, refused 1', async () => {
    serving = plain.text;
    const ok = await ringfence(['audit', 'verify', '--admin', url, '--token', 't0ken']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(HEAD_LINE);
    serving = plain.text.replace('"percent":5', '"percent":50');
    const bad = await ringfence(['audit', 'verify'], {
      RINGFENCE_ADMIN_URL: url,
      RINGFENCE_ADMIN_TOKEN: 't0ken',
    });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('audit trail BROKEN at line 3 (seq 3): edited');
    const denied = await ringfence(['audit', 'verify', '--admin', url, '--token', 'nope']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('cannot read the audit trail: unauthorized');
  });
});

describe('ringfence audit log', () => {
  it('lists records readably, filtered by kind and time; --json', async () => {
    const all = await ringfence(['audit', 'log', '--state-dir', plain.dir]);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[4]).toBe(
      '    5  2026-05-01T10:05:00.000Z  rollback            auto-rollback  chg_3  timeToRestoreMs=42 trigger=error_rate',
    );
    const ring = await ringfence(['audit', 'log', '--state-dir', plain.dir, '--kind', 'ring,kill']);
    expect(
      ring.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[2]),
    ).toEqual(['ring.entered', 'ring.entered', 'kill']);
    const since = await ringfence([
      'audit',
      'log',
      '--state-dir',
      plain.dir,
      '--since',
      '2026-05-01T10:04:00Z',
      '--json',
    ]);
    expect(since.code).toBe(0);
    expect((JSON.parse(since.stdout) as Array<{ seq: number }>).map((r) => r.seq)).toEqual([4, 5, 6]);
  });

  it('lists only what verifies from a broken trail, and exits 1', async () => {
    const dir = await tampered('log-broken', plain.text, (l) => l.filter((_, i) => i !== 3));
    const r = await ringfence(['audit', 'log', '--state-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(r.stderr).toContain('audit trail BROKEN at line 4 (seq 5): removed');
  });
});

describe('ringfence audit usage', () => {
  it('exits 2 on usage errors', async () => {
    for (const args of [
      ['audit'],
      ['audit', 'frob'],
      ['audit', 'verify', '--state-dir', plain.dir, '--admin', 'http://127.0.0.1:1'],
      ['audit', 'verify', '--state-dir', join(root, 'no-such-dir')],
      ['audit', 'verify', '--state-dir', plain.dir, '--expect-head', '6'],
      ['audit', 'verify', '--state-dir', plain.dir, '--bogus'],
      ['audit', 'log', '--state-dir', plain.dir, '--kind', 'nope'],
      ['audit', 'log', '--state-dir', plain.dir, '--since', 'yesterday'],
    ]) {
      const r = await ringfence(args);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/usage/);
    }
  });
});
