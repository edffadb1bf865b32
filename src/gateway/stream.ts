import type { Readable } from 'node:stream';
import type { GatewayError } from '../core/errors.ts';
import { type ApiFamily, errorBody } from '../core/errors.ts';

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

/**
 * Wraps a Node body stream as a web ReadableStream that pulls one chunk per demand (highWaterMark 0), so a slow
 * client slows the provider down instead of filling memory; cancelling (the client left) destroys the source.
 * When the source fails midway, `onError` may give a last chunk (an in-protocol error frame) before the end.
 */
export function pullStream(
  body: Readable,
  onError: (err: unknown, partial: boolean) => Uint8Array | undefined,
): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let partial = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await it.next();
          if (done) controller.close();
          else {
            // A frame ends with a blank line; remember whether the last chunk stopped mid-frame.
            partial = !(
              value.length >= 2 &&
              value[value.length - 1] === 10 &&
              value[value.length - 2] === 10
            );
            controller.enqueue(value);
          }
        } catch (err) {
          const last = onError(err, partial);
          if (last) controller.enqueue(last);
          controller.close();
        }
      },
      cancel() {
        body.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads a whole (non-streamed) body. */
export async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
