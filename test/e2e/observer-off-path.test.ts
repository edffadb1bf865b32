/**
 * The request observer (ring statistics, metrics, decision log, the shadow's leftovers) runs after the answer was
 * written, never in front of it: the hot path does not wait for it.
 *
 * Proved by order, not by a clock: the client runs on another thread (a worker with its own event loop) and
 * raises a shared flag once it has read the whole answer; the observer blocks the gateway's thread waiting for
 * that flag (Atomics.wait, at most 10 s). Had the observer run before the answer was written, the client could not
 * have read it, and the wait would time out.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../src/gateway/context.ts';
import { APP_KEY, type Stack, startStack } from '../helpers/stack.ts';

const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const flag = new Int32Array(workerData.flag);
(async () => {
  const res = await fetch(workerData.url, {
    method: 'POST',
    headers: { authorization: 'Bearer ' + workerData.key, 'content-type': 'application/json', ...workerData.headers },
    body: JSON.stringify(workerData.body),
  });
  const text = await res.text();
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  parentPort.postMessage({ status: res.status, bytes: text.length });
})().catch((err) => parentPort.postMessage({ error: String(err) }));
`;

let stack: Stack;
const flag = new Int32Array(new SharedArrayBuffer(4));
let armed = false;
const seen: Array<{ outcome: string; wait: string }> = [];

/** The observer: while armed, holds the gateway's thread until the client has the whole answer (or 10 s). */
let throwing = false;
function observe(r: RequestRecord) {
  if (throwing) throw new Error('observer bug');
  if (!armed) return;
  seen.push({ outcome: r.outcome, wait: Atomics.wait(flag, 0, 0, 10_000) });
}

async function request(
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; bytes: number; wait: string; outcome: string }> {
  Atomics.store(flag, 0, 0);
  seen.length = 0;
  armed = true;
  try {
    const worker = new Worker(CLIENT, {
      eval: true,
      workerData: {
        url: `${stack.openaiBase}/chat/completions`,
        key: APP_KEY,
        body,
        headers,
        flag: flag.buffer,
      },
    });
    const answer = await new Promise<{ status: number; bytes: number; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(answer.error).toBeUndefined();
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toHaveLength(1);
    return { status: answer.status, bytes: answer.bytes, ...seen[0]! };
  } finally {
    armed = false;
  }
}

beforeAll(async () => {
  stack = await startStack({ observe });
});
afterAll(() => stack?.close());

describe('the request observer runs after the answer is written', () => {
  it('a whole (non-stream) answer reaches the client before the observer runs', async () => {
    const r = await request({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello' }] });
    expect(r).toMatchObject({ status: 200, outcome: 'completed' });
    expect(r.bytes).toBeGreaterThan(0);
    // 'ok': woken by the client; 'not-equal': the client had it already. 'timed-out' = the client was kept waiting.
    expect(['ok', 'not-equal']).toContain(r.wait);
  });

  it('a streamed answer too', async () => {
    const r = await request({
      model: 'mock-gpt',
      stream: true,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(r).toMatchObject({ status: 200, outcome: 'completed' });
    expect(['ok', 'not-equal']).toContain(r.wait);
  });

  it('a gateway error answer too (the provider dropped the connection: 502)', async () => {
    const r = await request(
      { model: 'mock-gpt', messages: [{ role: 'user', content: 'hello' }] },
      { 'x-mock-drop': 'connect' },
    );
    expect(r).toMatchObject({ status: 502, outcome: 'error' });
    expect(['ok', 'not-equal']).toContain(r.wait);
  });

  it('an observer that throws loses its record, logged; the gateway goes on serving', async () => {
    const call = () =>
      fetch(`${stack.openaiBase}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hello' }] }),
      });
    throwing = true;
    try {
      const res = await call();
      expect(res.status).toBe(200);
      await res.text();
      for (let i = 0; i < 100 && !stack.logs.text.includes('request observer failed'); i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(stack.logs.text).toContain('request observer failed');
      expect(stack.logs.text).toContain('observer bug');
    } finally {
      throwing = false;
    }
    const again = await call();
    expect(again.status).toBe(200);
  });
});
