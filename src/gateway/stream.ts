import type { Readable } from 'node:stream';

/**
 * Wraps a Node body stream as a web ReadableStream that pulls one chunk per demand (highWaterMark 0), so a slow
 * client slows the provider down instead of filling memory; cancelling (the client left) destroys the source.
 */
export function pullStream(body: Readable): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await it.next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(err);
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
