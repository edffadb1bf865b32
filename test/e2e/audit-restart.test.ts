/**
 * The audit trail across restarts (issue #9): a gateway with a state directory appends to one chain across
 * restarts; a trail edited while it was down stops the next start (nothing is appended to a tampered record), and
 * `ringfence audit verify` pinpoints the line.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/main.ts';
import { startMockProvider } from '../../src/providers/mock/server.ts';
import { spawnRingfence } from '../helpers/processes.ts';
import { APP_KEY, LogCapture, PROVIDER_KEY, writeConfig } from '../helpers/stack.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'rings');

describe('audit trail across restarts', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'ringfence-audit-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('continues the chain after a restart, refuses to start on a tampered trail, verify names the line', async () => {
    const mock = await startMockProvider({ expectKey: PROVIDER_KEY });
    const configFile = writeConfig(`
listeners:
  data: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
providers:
  a: { kind: mock, baseUrl: ${mock.url}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt] }
  b: { kind: mock, baseUrl: ${mock.url}, apiKeyEnv: TEST_PROVIDER_KEY, models: [mock-gpt-b] }
defaults: { openai: a }
applications:
  - { id: jobs, keys: [{ id: jobs-key, env: TEST_APP_KEY }] }
policy:
  bundle: ${join(FIXTURES, 'production.yaml')}
rings:
  stateDir: ${stateDir}
log: { level: warn, decisions: { enabled: false } }
`);
    const env = { TEST_PROVIDER_KEY: PROVIDER_KEY, TEST_APP_KEY: APP_KEY };
    const start = () => startGateway({ configFile, env, logger: pino({ level: 'warn' }, new LogCapture()) });
    try {
      let gw = await start();
      const cand = await gw.rings.registerBundle(
        readFileSync(join(FIXTURES, 'candidate.yaml'), 'utf8'),
        'c',
        'tester',
      );
      await gw.rings.shadow(cand.id, { by: 'tester', at: new Date() });
      await gw.rings.kill({ candidate: true }, { by: 'tester', at: new Date() }, 'audit restart test');
      await gw.shutdown(500);

      gw = await start();
      await gw.rings.restore({ candidate: true }, { by: 'tester', at: new Date() }, 'audit restart test');
      await gw.shutdown(500);

      const file = join(stateDir, 'journals', 'audit.jsonl');
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((r) => r.kind)).toEqual([
        'ring.entered',
        'bundle.registered',
        'ring.entered',
        'kill',
        'restore',
      ]);
      expect(lines.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
      for (let i = 1; i < lines.length; i++) expect(lines[i].prev).toBe(lines[i - 1].hash);

      const ok = spawnRingfence(['audit', 'verify', '--state-dir', stateDir]);
      expect(await ok.exited).toBe(0);
      expect(ok.stdout).toContain('audit trail intact: 5 records');

      // Someone edits who killed the candidate while the gateway is down.
      const text = readFileSync(file, 'utf8').split('\n');
      expect(text[3]).toContain('"actor":"tester"');
      text[3] = text[3]!.replace('"actor":"tester"', '"actor":"nobody"');
      writeFileSync(file, text.join('\n'));
      const again = await start().then(
        async (g) => {
          await g.shutdown(100);
          return undefined;
        },
        (e: unknown) => e as Error,
      );
      expect(again?.message).toMatch(/audit trail BROKEN at line 4 \(seq 4\): edited/);
      const bad = spawnRingfence(['audit', 'verify', '--state-dir', stateDir]);
      expect(await bad.exited).toBe(1);
      expect(bad.stdout + bad.stderr).toMatch(/BROKEN at line 4 \(seq 4\): edited/);
    } finally {
      await mock.close();
    }
  });
});
