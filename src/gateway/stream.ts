import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { type ApiFamily, errorBody, type GatewayError } from '../core/errors.ts';

/**
 * The SSE frame that tells an SDK its stream failed: OpenAI's SDKs raise on a `data:` object with `error`,
 * Anthropic's on an `event: error`. `partial` closes a frame the provider left half-written.
 */
export function sseErrorFrame(
  family: ApiFamily,
  err: GatewayError,
  requestId: string,
  partial: boolean,
): Buffer {
  const body = errorBody(family, err.code, err.message, requestId);
  const frame = family === 'anthropic' ? `event: error\ndata: ${body}\n\n` : `data: ${body}\n\n`;
  return Buffer.from(partial ? `\n\n${frame}` : frame);
}

/** Optional processing of a relayed stream. */
export interface StreamHooks {
  /** Rewrites a chunk (may hold bytes back and return nothing). */
  transform?(chunk: Buffer): Uint8Array | string | undefined;
  /** Everything still held when the source ends. */
  flush?(): Uint8Array | string | undefined;
  /** When true after a transform, the stream is ended now with `stop()`'s bytes and the source destroyed. */
  stopped?(): boolean;
  stop?(): Uint8Array | string | undefined;
  /** The source failed midway: a last chunk (an in-protocol error frame) to send, if any. */
  onError(err: unknown, partial: boolean): Uint8Array | undefined;
  /** Called once when the relay ends, however it ends. */
  onClose?(outcome: 'completed' | 'stopped' | 'failed' | 'cancelled'): void;
}

const toBytes = (v: Uint8Array | string | undefined) =>
  v === undefined || v.length === 0 ? undefined : typeof v === 'string' ? Buffer.from(v) : v;

/**
 * Wraps a Node body stream as a web ReadableStream that pulls one chunk per demand (highWaterMark 0), so a slow
 * client slows the provider down instead of filling memory; cancelling (the client left) destroys the source.
 */
export function pullStream(body: Readable, hooks: StreamHooks): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let partial = false;
  let closed = false;
  const close = (outcome: 'completed' | 'stopped' | 'failed' | 'cancelled') => {
    if (closed) return;
    closed = true;
    hooks.onClose?.(outcome);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const { value, done } = await it.next();
            if (done) {
              const last = toBytes(hooks.flush?.());
              if (hooks.stopped?.()) {
                const end = toBytes(hooks.stop?.());
                if (last) controller.enqueue(last);
                if (end) controller.enqueue(end);
                controller.close();
                return close('stopped');
              }
              if (last) controller.enqueue(last);
              controller.close();
              return close('completed');
            }
            const out = hooks.transform ? toBytes(hooks.transform(value)) : value;
            if (hooks.stopped?.()) {
              if (out) controller.enqueue(out);
              const end = toBytes(hooks.stop?.());
              if (end) controller.enqueue(end);
              controller.close();
              body.destroy();
              return close('stopped');
            }
            if (out) {
              // A frame ends with a blank line; remember whether the last chunk stopped mid-frame.
              partial = !(out.length >= 2 && out[out.length - 1] === 10 && out[out.length - 2] === 10);
              controller.enqueue(out);
              return;
            }
          }
        } catch (err) {
          const last = hooks.onError(err, partial);
          if (last) controller.enqueue(last);
          controller.close();
          close('failed');
        }
      },
      cancel() {
        body.destroy();
        close('cancelled');
      },
    },
    { highWaterMark: 0 },
  );
}

/** The error a source that closed before its end gives (the one `for await` and `stream.finished` give). */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Reads a whole (non-streamed) body. Listens for its events rather than iterating it (no promise per chunk):
 * rejects with the stream's error, or with a premature-close error when it closes before its end.
 */
export function readAll(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    body.on('data', (c: Buffer) => {
      parts.push(c);
      size += c.length;
    });
    body.once('end', () => {
      if (settled) return;
      settled = true;
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    });
    body.on('error', (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    body.once('close', () => {
      if (settled) return;
      settled = true;
      reject(prematureClose());
    });
  });
}

/**
 * Relays a stream straight into the Node response: the same hooks and outcomes as `pullStream`, without the web
 * stream in between (one less copy and promise per chunk). Each chunk is handled in the source's own `data`
 * event, so it is written to the client in the tick it arrived in. Back-pressure: a full socket pauses the
 * source until `drain`; a client that leaves destroys it (which aborts the upstream call).
 */
export function pipeToNode(
  body: Readable,
  out: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  hooks: StreamHooks,
): void {
  let closed = false;
  let partial = false;
  /** Nothing more is read from the source: it ended, failed, was stopped, or the client left. */
  let settled = false;
  const close = (outcome: 'completed' | 'stopped' | 'failed' | 'cancelled') => {
    if (closed) return;
    closed = true;
    hooks.onClose?.(outcome);
  };
  const fail = (err: unknown) => {
    settled = true;
    if (out.destroyed) return close('cancelled');
    out.end(hooks.onError(err, partial));
    close('failed');
  };
  const resume = () => {
    if (!settled) body.resume();
  };
  out.on('drain', resume);
  out.on('close', () => {
    if (!out.writableFinished) {
      settled = true;
      body.destroy();
      close('cancelled');
    }
  });
  out.writeHead(status, headers);

  body.on('data', (chunk: Buffer) => {
    if (settled) return;
    try {
      if (out.destroyed) {
        settled = true;
        body.destroy();
        return close('cancelled');
      }
      const x = hooks.transform ? toBytes(hooks.transform(chunk)) : chunk;
      if (hooks.stopped?.()) {
        settled = true;
        if (x) out.write(x);
        out.end(toBytes(hooks.stop?.()));
        body.destroy();
        return close('stopped');
      }
      if (x) {
        partial = !(x.length >= 2 && x[x.length - 1] === 10 && x[x.length - 2] === 10);
        if (!out.write(x)) body.pause();
      }
    } catch (err) {
      body.destroy();
      fail(err);
    }
  });
  body.once('end', () => {
    if (settled) return;
    settled = true;
    try {
      if (out.destroyed) return close('cancelled');
      const last = toBytes(hooks.flush?.());
      if (hooks.stopped?.()) {
        if (last) out.write(last);
        out.end(toBytes(hooks.stop?.()));
        return close('stopped');
      }
      out.end(last);
      close('completed');
    } catch (err) {
      fail(err);
    }
  });
  body.on('error', (err: Error) => {
    if (!settled) fail(err);
  });
  body.once('close', () => {
    if (!settled) fail(prematureClose());
  });
}

/**
 * Writes a whole response body to the Node response. A client already gone makes this a no-op (the socket is
 * destroyed; Node discards the write).
 */
export function writeWhole(
  out: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: Uint8Array,
): void {
  if (out.destroyed) return;
  if (headers['content-length'] === undefined) headers['content-length'] = String(body.byteLength);
  out.writeHead(status, headers);
  out.end(body);
}
