import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockProvider, startMockProvider } from '../../src/providers/mock/server.ts';
import { killAll, listening, type Proc, spawnRingfence } from '../helpers/processes.ts';
import { APP_KEY, PROVIDER_KEY, stackConfig, writeConfig } from '../helpers/stack.ts';

/** The assistant text of a chat completion or of an Anthropic message. */
async function replyText(res: Response): Promise<string | undefined> {
  const b = (await res.json()) as {
    choices?: Array<{ message: { content: string } }>;
    content?: Array<{ text: string }>;
  };
  return b.choices?.[0]?.message.content ?? b.content?.[0]?.text;
}

function ringfence(args: string[], env: Record<string, string> = {}): Proc {
  return spawnRingfence(args, { env });
}

/** Resolves with the exit code, or rejects after `ms`. */
function exitWithin(p: Proc, ms: number): Promise<number | string> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${p.stderr}`)), ms),
    ),
  ]);
}

/** One request on a fresh connection (no pooled keep-alive socket), resolving to status or error code. */
function freshRequest(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

afterAll(() => {
  killAll();
});

// Each run boots Node (about half a second of CPU): independent runs start side by side.
describe('ringfence CLI: exit codes', () => {
  it('configuration problems exit 1 and name the field path and the problem, without a stack trace', async () => {
    const file = writeConfig(`
providers:
  mock: { kind: gemini, bogus: 1 }
applications: [{ id: a, keys: [{ id: k, env: NOT_SET_ANYWHERE }] }]
`);
    const invalid = ringfence(['serve', '--config', file]);
    const badPort = ringfence(['serve', '--config', 'x.yaml', '--port', 'http']);
    const codes = await Promise.all([invalid, badPort].map((p) => exitWithin(p, 20_000)));
    expect(codes).toEqual([1, 1]);
    expect(invalid.stderr).toContain(`invalid configuration ${file}`);
    expect(invalid.stderr).toContain('providers.mock: unknown field(s) bogus');
    expect(invalid.stderr).toMatch(/providers\.mock\.kind: .*openai/);
    // A port that is no number is a configuration problem too, named by its flag.
    expect(badPort.stderr).toContain('--port: expected a port number, got "http"');
    for (const p of [invalid, badPort]) expect(p.stderr).not.toMatch(/\n\s+at /);
  });

  it('usage problems exit 2: an unknown command, serve without --config, an unknown flag', async () => {
    const unknown = ringfence(['frobnicate']);
    const noConfig = ringfence(['serve']);
    const badFlag = ringfence(['serve', '--config', 'x.yaml', '--bogus']);
    const codes = await Promise.all([unknown, noConfig, badFlag].map((p) => exitWithin(p, 20_000)));
    expect(codes).toEqual([2, 2, 2]);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect(unknown.stderr).toContain('usage: ringfence');
    expect(noConfig.stderr).toContain('--config FILE is required');
    expect(badFlag.stderr).toContain('--bogus');
  });
});

describe('ringfence serve', () => {
  let mock: MockProvider;
  /** Ports held busy: a gateway that tried the file's ports would fail to listen. */
  let busy: Server[];
  let busyPorts: number[];

  beforeAll(async () => {
    mock = await startMockProvider({ expectKey: PROVIDER_KEY });
    busy = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<Server>((resolve) => {
            const s = createServer();
            s.listen(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    busyPorts = busy.map((s) => (s.address() as { port: number }).port);
  });
  afterAll(async () => {
    await mock.close();
    for (const s of busy) s.close();
  });

  /** The test config, but with the listeners on the busy ports. */
  const busyConfig = () =>
    stackConfig(mock.url).replace(
      'data: { host: 127.0.0.1, port: 0 }\n  admin: { host: 127.0.0.1, port: 0 }',
      `data: { host: 127.0.0.1, port: ${busyPorts[0]} }\n  admin: { host: 127.0.0.1, port: ${busyPorts[1]} }`,
    );
  const ENV = { TEST_PROVIDER_KEY: PROVIDER_KEY, TEST_APP_KEY: APP_KEY };

  // The two port checks are independent: they run side by side.
  it.concurrent('without overrides, the file’s (busy) ports are used and the start fails', async () => {
    const file = writeConfig(busyConfig());
    expect(busyConfig()).toContain(`port: ${busyPorts[0]}`);
    const p = ringfence(['serve', '--config', file], ENV);
    expect(await exitWithin(p, 20_000)).not.toBe(0);
    expect(p.stderr).toContain('EADDRINUSE');
  });

  it.concurrent('--port 0 --admin-port 0 win over the file; the first log line has the real URLs', async () => {
    const file = writeConfig(busyConfig());
    const p = ringfence(['serve', '--config', file, '--port', '0', '--admin-port', '0'], ENV);
    const { dataUrl, adminUrl } = await listening(p);
    const dataPort = Number(new URL(dataUrl).port);
    const adminPort = Number(new URL(adminUrl).port);
    expect(dataPort).toBeGreaterThan(0);
    expect(busyPorts).not.toContain(dataPort);
    expect(busyPorts).not.toContain(adminPort);
    expect(dataPort).not.toBe(adminPort);
    expect((await fetch(`${dataUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await exitWithin(p, 5000)).toBe(0);
  });

  it('SIGTERM mid-stream: the stream completes, new connections are refused, exit 0 within the grace', async () => {
    const graceMs = 5000;
    const file = writeConfig(stackConfig(mock.url));
    expect(stackConfig(mock.url)).toContain(`shutdownGraceMs: ${graceMs}`);
    const p = ringfence(['serve', '--config', file], ENV);
    const { dataUrl, adminUrl } = await listening(p);

    const started = mock.stats.streamsStarted;
    const res = await fetch(`${dataUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${APP_KEY}`,
        'content-type': 'application/json',
        'x-mock-chunk-delay-ms': '40',
        'x-mock-chunks': '30',
      },
      body: JSON.stringify({
        model: 'mock-gpt',
        stream: true,
        messages: [{ role: 'user', content: 'a stream that outlives the signal, thirty chunks long' }],
      }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // Read until a few frames have arrived, so the signal lands mid-stream.
    while ((text.match(/^data: /gm) ?? []).length < 3) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended early: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
    const signalledAt = Date.now();
    p.child.kill('SIGTERM');

    // While it drains, a new connection is refused (or, if it slipped in, reset or answered 503 by readiness).
    const refusedBy = Date.now() + 1000;
    let fresh = await freshRequest(`${dataUrl}/readyz`);
    while (fresh === 200 && Date.now() < refusedBy) {
      await new Promise((r) => setTimeout(r, 20));
      fresh = await freshRequest(`${dataUrl}/readyz`);
    }
    // A connection accepted in the instant the listener closes carries no request yet, so the drain closes it:
    // the client sees a reset. Refused, reset or 503: no new request is served.
    expect(['ECONNREFUSED', 'ECONNRESET', 503]).toContain(fresh);
    expect(['ECONNREFUSED', 'ECONNRESET', 503]).toContain(await freshRequest(`${adminUrl}/readyz`));
    expect(p.child.exitCode).toBeNull(); // still serving the stream

    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const frames = text.split('\n\n').filter((f) => f.startsWith('data: '));
    expect(frames.at(-1)).toBe('data: [DONE]');
    const deltas = frames
      .slice(0, -1)
      .map((f) => JSON.parse(f.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
      .map((c) => c.choices[0]?.delta.content ?? '')
      .join('');
    expect(deltas).toBe('Mock reply: a stream that outlives the signal, thirty chunks long');
    expect(mock.stats.streamsStarted).toBe(started + 1);
    expect(Date.now() - signalledAt).toBeGreaterThan(500); // the stream really did outlive the signal

    expect(await exitWithin(p, graceMs)).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(graceMs);
    expect(p.stdout).toContain('shutting down');
    expect(p.stdout).toContain('"msg":"stopped"');
  });

  it('the shipped config/default.yaml serves a chat completion with the demo key', async () => {
    const p = ringfence(['serve', '--config', 'config/default.yaml', '--port', '0', '--admin-port', '0']);
    const { dataUrl } = await listening(p);
    const res = await fetch(`${dataUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer rf-demo-key', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello default' }] }),
    });
    expect(res.status).toBe(200);
    expect(await replyText(res)).toBe('Mock reply: hello default');
    const msg = await fetch(`${dataUrl}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': 'rf-demo-key',
        'anthropic-version': '2023-06-01',
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        model: 'mock-claude',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(await replyText(msg)).toBe('Mock reply: hi');
    expect((await fetch(`${dataUrl}/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(
      401,
    );
    p.child.kill('SIGINT');
    expect(await exitWithin(p, 5000)).toBe(0);
  });
});
