import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pipeToNode, readAll, type StreamHooks } from '../../src/gateway/stream.ts';

/** The parts of a ServerResponse pipeToNode uses, recording what it is told; `full` makes write() report a full socket. */
class FakeResponse extends EventEmitter {
  status = 0;
  readonly writes: string[] = [];
  ended: string | undefined;
  destroyed = false;
  writableFinished = false;
  full = false;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(chunk: Uint8Array | string): boolean {
    this.writes.push(Buffer.from(chunk).toString());
    return !this.full;
  }
  end(chunk?: Uint8Array | string): this {
    this.ended = chunk === undefined ? '' : Buffer.from(chunk).toString();
    this.writableFinished = true;
    return this;
  }
  /** The client went away. */
  leave(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function source(): Readable {
  return new Readable({ read() {} });
}

const tick = () => new Promise((r) => setImmediate(r));

function start(hooks: Partial<StreamHooks> = {}) {
  const src = source();
  const out = new FakeResponse();
  const outcomes: string[] = [];
  const errors: unknown[] = [];
  pipeToNode(
    src,
    out as unknown as ServerResponse,
    200,
    { 'content-type': 'text/event-stream' },
    {
      onError: (err, partial) => {
        errors.push(err);
        return Buffer.from(`error partial=${partial}`);
      },
      onClose: (o) => outcomes.push(o),
      ...hooks,
    },
  );
  return { src, out, outcomes, errors };
}

describe('pipeToNode', () => {
  it('writes each chunk in the tick it arrives, then ends with what flush gives', async () => {
    const { src, out, outcomes } = start({ flush: () => 'tail\n\n' });
    await tick();
    expect(out.status).toBe(200);
    src.push(Buffer.from('data: 1\n\n'));
    // No promise or tick between the source's chunk and the client write.
    expect(out.writes).toEqual(['data: 1\n\n']);
    src.push(Buffer.from('data: 2\n\n'));
    expect(out.writes).toEqual(['data: 1\n\n', 'data: 2\n\n']);
    src.push(null);
    await tick();
    expect(out.ended).toBe('tail\n\n');
    expect(outcomes).toEqual(['completed']);
  });

  it('pauses the source while the client socket is full, and resumes it on drain', async () => {
    const { src, out, outcomes } = start();
    await tick();
    out.full = true;
    src.push(Buffer.from('a'));
    expect(src.isPaused()).toBe(true);
    src.push(Buffer.from('b'));
    await tick();
    expect(out.writes).toEqual(['a']); // b waits in the source
    out.full = false;
    out.emit('drain');
    await tick();
    expect(out.writes).toEqual(['a', 'b']);
    src.push(null);
    await tick();
    expect(outcomes).toEqual(['completed']);
  });

  it('destroys the source when the client leaves, and reports cancelled once', async () => {
    const { src, out, outcomes } = start();
    await tick();
    src.push(Buffer.from('a'));
    out.leave();
    expect(src.destroyed).toBe(true);
    await tick();
    expect(outcomes).toEqual(['cancelled']);
  });

  it('ends a source that fails midway with the error frame, knowing whether a frame was left half-written', async () => {
    const { src, out, outcomes, errors } = start();
    await tick();
    src.push(Buffer.from('data: {"a":'));
    src.destroy(Object.assign(new Error('socket'), { code: 'UND_ERR_SOCKET' }));
    await tick();
    expect(out.ended).toBe('error partial=true');
    expect((errors[0] as { code: string }).code).toBe('UND_ERR_SOCKET');
    expect(outcomes).toEqual(['failed']);
  });

  it('treats a source that closes before its end as failed (premature close)', async () => {
    const { src, out, outcomes, errors } = start();
    await tick();
    src.push(Buffer.from('data: 1\n\n'));
    src.destroy();
    await tick();
    expect(out.ended).toBe('error partial=false');
    expect((errors[0] as { code: string }).code).toBe('ERR_STREAM_PREMATURE_CLOSE');
    expect(outcomes).toEqual(['failed']);
  });

  it('stops when the hooks say so: the stop bytes end the response and the source is destroyed', async () => {
    let stopped = false;
    const { src, out, outcomes } = start({
      transform: (c) => {
        if (c.toString().includes('BAD')) {
          stopped = true;
          return 'held\n\n';
        }
        return c;
      },
      stopped: () => stopped,
      stop: () => 'data: [filtered]\n\n',
    });
    await tick();
    src.push(Buffer.from('ok\n\n'));
    src.push(Buffer.from('BAD'));
    expect(out.writes).toEqual(['ok\n\n', 'held\n\n']);
    expect(out.ended).toBe('data: [filtered]\n\n');
    expect(src.destroyed).toBe(true);
    await tick();
    expect(outcomes).toEqual(['stopped']);
  });

  it('fails the relay when a hook throws, and stops reading', async () => {
    const { src, out, outcomes } = start({
      transform: () => {
        throw new Error('boom');
      },
    });
    await tick();
    src.push(Buffer.from('x'));
    expect(out.ended).toBe('error partial=false');
    expect(src.destroyed).toBe(true);
    await tick();
    expect(outcomes).toEqual(['failed']);
  });
});

describe('readAll', () => {
  it('joins every chunk', async () => {
    const src = source();
    const p = readAll(src);
    src.push(Buffer.from('ab'));
    src.push(Buffer.from('cd'));
    src.push(null);
    expect((await p).toString()).toBe('abcd');
  });

  it('rejects with the stream error, and on a close before the end', async () => {
    const failing = source();
    const a = readAll(failing);
    failing.destroy(new Error('boom'));
    await expect(a).rejects.toThrow('boom');
    const closing = source();
    const b = readAll(closing);
    closing.push(Buffer.from('ab'));
    closing.destroy();
    await expect(b).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });
});
