import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutputTally } from '../../src/gateway/output/guard.ts';
import { streamProtocol } from '../../src/gateway/output/protocol.ts';
import { StreamGuard } from '../../src/gateway/output/stream-guard.ts';
import { compileBundle } from '../../src/policy/compile.ts';
import { outputGuardsFor } from '../../src/policy/evaluate.ts';
import { loadBundleFile } from '../../src/policy/load.ts';
import { chatCompletionStream } from '../../src/providers/mock/openai.ts';
import { computeReply } from '../../src/providers/mock/reply.ts';

const cb = compileBundle(
  loadBundleFile(join(import.meta.dirname, '..', 'fixtures', 'bundles', 'enforce.yaml')),
);

function frames(text: string, chunks: number): Buffer {
  const reply = computeReply(
    { model: 'm', messages: [{ role: 'user', content: text }] },
    { 'x-mock-chunks': String(chunks) },
  );
  return Buffer.from(chatCompletionStream(reply, 'id', false).join(''));
}

/** Feeds the bytes in pieces of the given sizes (cycled) and returns what the client would get. */
function run(bytes: Buffer, cls: string, sizes: number[]): { out: string; tally: OutputTally } {
  const guards = outputGuardsFor(cb, cls);
  const tally = new OutputTally(guards);
  const g = new StreamGuard({
    cb,
    cls,
    guards,
    checkTools: true,
    protocol: streamProtocol('openai.chat')!,
    tally,
  });
  let out = '';
  let i = 0;
  let k = 0;
  while (i < bytes.length && !g.blocked) {
    const n = sizes[k++ % sizes.length]!;
    out += g.push(bytes.subarray(i, i + n));
    i += n;
  }
  out += g.blocked ? g.termination() : g.end();
  return { out, tally };
}

const text = (sse: string) =>
  sse
    .split('\n\n')
    .filter((f) => f.startsWith('data: {'))
    .map((f) => JSON.parse(f.slice(6)).choices?.[0]?.delta?.content ?? '')
    .join('');

describe('StreamGuard', () => {
  it('never lets a secret through, whatever the chunking (down to one byte), and ends with content_filter + [DONE]', () => {
    const bytes = frames('here is AKIAIOSFODNN7EXAMPLE and more words after it', 60);
    for (const sizes of [[1], [2, 3], [7], [64], [5, 1, 13], [bytes.length]]) {
      const { out, tally } = run(bytes, 'internal', sizes);
      expect(out).not.toContain('AKIA');
      expect(out).toContain('"finish_reason":"content_filter"');
      expect(out.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(tally.report().blockedBy).toBe('secret-leak');
    }
  });

  it('redacts a span split across frames, leaving the rest of the text exact', () => {
    const bytes = frames('mail ops.team@example.org now 👋 ok', 30);
    for (const sizes of [[1], [9], [bytes.length]]) {
      const { out } = run(bytes, 'strict', sizes);
      expect(text(out)).toBe('Mock reply: mail [REDACTED:pii.email] now 👋 ok');
    }
  });

  it('relays a stream with nothing to find byte for byte', () => {
    const bytes = frames('an ordinary sentence with ünïcödé and 🎉 inside', 25);
    for (const sizes of [[1], [3], [bytes.length]])
      expect(run(bytes, 'internal', sizes).out).toBe(bytes.toString('utf8'));
  });
});
