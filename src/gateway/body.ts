import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { GatewayError } from '../core/errors.ts';
import type { DataEnv } from './context.ts';

function tooLarge(limit: number): GatewayError {
  return new GatewayError('body_too_large', `request body is over the limit of ${limit} bytes`, {
    headers: { connection: 'close' },
  });
}

function readIncoming(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        incoming.pause();
        reject(tooLarge(limit));
      } else parts.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

/**
 * Reads the raw request body, refusing more than `limit` bytes (by Content-Length up front, else while reading).
 * Under Node it reads the socket stream directly, skipping the web-stream copy.
 */
export async function readRawBody(c: Context<DataEnv>, limit: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? -1);
  if (declared > limit) throw tooLarge(limit);
  const incoming = c.env?.incoming;
  if (incoming && !incoming.readableEnded) return readIncoming(incoming, limit);
  const buf = Buffer.from(await c.req.arrayBuffer());
  if (buf.length > limit) throw tooLarge(limit);
  return buf;
}

/** Parses the raw body as a JSON object, or throws `invalid_json`. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new GatewayError('invalid_json', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}
