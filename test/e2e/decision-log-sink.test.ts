/**
 * The decision log never blocks the response path (issue #8). Its sink here is a named pipe that nobody reads:
 * once the pipe (64 KiB) and the bounded buffer are full, events are dropped and counted while every request is
 * still answered. Reading the pipe drains what was buffered. And a real `ringfence serve` process flushes the
 * decision log to stdout on SIGTERM: every request's line is there after it exits.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { startMockProvider } from '../../src/providers/mock/server.ts';
import { killAll, listening, spawnRingfence } from '../helpers/processes.ts';
import { APP_KEY, type Stack, stackConfig, startStack } from '../helpers/stack.ts';

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name}`);
  return Number(m[1]);
}

describe('a decision-log sink that cannot keep up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringfence-fifo-'));
  const fifo = join(dir, 'decisions.fifo');
  let stack: Stack | undefined;
  let reader: number | undefined;
  afterAll(async () => {
    if (reader !== undefined) {
      // Drain so the gateway's pending write can finish, then stop.
      const buf = Buffer.alloc(1 << 16);
      try {
        while (readSync(reader, buf) > 0);
      } catch {}
    }
    await stack?.close();
    if (reader !== undefined) closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops and counts events when full, never delays a response, and catches up once read', async () => {
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads (non-blocking open, so neither side waits for the other to appear).
    reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    stack = await startStack({
      config: (url) =>
        stackConfig(url, `log:\n  level: warn\n  decisions: { destination: ${fifo}, bufferBytes: 65536 }\n`),
    });
    const client = new OpenAI({ apiKey: APP_KEY, baseURL: stack.openaiBase, maxRetries: 0 });
    const N = 400;
    const content = 'x'.repeat(1500); // ~2 KB per event with the redacted prompt and response
    for (let i = 0; i < N; i += 20)
      await Promise.all(
        Array.from({ length: 20 }, () =>
          client.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content }] }),
        ),
      );
    const m = await (await fetch(`${stack.gw.adminUrl}/metrics`)).text();
    const written = metric(m, 'ringfence_decision_log_events_total');
    const dropped = metric(m, 'ringfence_decision_log_dropped_total');
    expect(written + dropped).toBe(N);
    // 64 KiB of pipe + 64 KiB of buffer hold some 60 events of ~2 KB; the rest had to go.
    expect(dropped).toBeGreaterThan(N / 2);
    expect(written).toBeGreaterThan(10);

    // Read the pipe: everything that was accepted arrives, whole lines of valid JSON, and nothing more.
    const buf = Buffer.alloc(1 << 16);
    let text = '';
    const deadline = Date.now() + 10_000;
    while (text.split('\n').length - 1 < written && Date.now() < deadline) {
      try {
        const n = readSync(reader, buf);
        if (n > 0) text += buf.subarray(0, n).toString('utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const lines = text.split('\n').filter(Boolean);
    expect(lines).toHaveLength(written);
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ log: 'decision', v: 1 });
  });
});

describe('ringfence serve', () => {
  afterAll(killAll);

  it('flushes every decision line to stdout before it exits on SIGTERM', async () => {
    const mock = await startMockProvider({ record: 100 });
    const dir = mkdtempSync(join(tmpdir(), 'ringfence-serve-'));
    try {
      const configFile = join(dir, 'ringfence.yaml');
      writeFileSync(configFile, stackConfig(mock.url));
      const p = spawnRingfence(['serve', '--config', configFile], {
        env: { TEST_APP_KEY: APP_KEY, TEST_PROVIDER_KEY: 'sk-unused' },
      });
      const { dataUrl } = await listening(p);
      const client = new OpenAI({ apiKey: APP_KEY, baseURL: `${dataUrl}/v1`, maxRetries: 0 });
      // 50 requests in flight when SIGTERM arrives: the drain lets them finish, their lines are written after
      // their responses, and the flush at exit must still get every one out.
      const pending = Array.from({ length: 50 }, (_, i) =>
        client.chat.completions
          .create(
            { model: 'mock-gpt', messages: [{ role: 'user', content: `hello ${i}` }] },
            { headers: { 'x-mock-delay-ms': '300' } },
          )
          .withResponse()
          .then((r) => r.response.headers.get('x-request-id')!),
      );
      // Every request is in flight (the provider holds it) before the signal.
      for (let i = 0; i < 500 && mock.received.length < 50; i++) await new Promise((r) => setTimeout(r, 10));
      expect(mock.received).toHaveLength(50);
      p.child.kill('SIGTERM');
      const ids = await Promise.all(pending);
      expect(await p.exited).toBe(0);
      const decisions = p.stdout
        .split('\n')
        .filter((l) => l.startsWith('{"log":"decision"'))
        .map((l) => JSON.parse(l) as { requestId: string });
      expect(decisions.map((d) => d.requestId).sort()).toEqual(ids.sort());
      expect(p.stdout).not.toContain(APP_KEY);
    } finally {
      await mock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
