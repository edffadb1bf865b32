import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { GatewayError } from '../core/errors.ts';
import { type DataEnv, header } from './context.ts';

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
  const declared = Number(header(c, 'content-length') ?? -1);
  if (declared > limit) throw tooLarge(limit);
  const incoming = c.env?.incoming;
  if (incoming && !incoming.readableEnded) return readIncoming(incoming, limit);
  const buf = Buffer.from(await c.req.arrayBuffer());
  if (buf.length > limit) throw tooLarge(limit);
  return buf;
}

/**
 * How deep objects and arrays may nest in a request body. Real API bodies (tool schemas included) stay far
 * below; the bound keeps every recursive reader downstream (text flatteners, redaction, detectors) off the end of
 * the call stack, where a 100 kB body of nested content parts would otherwise turn into a 500.
 */
export const MAX_JSON_DEPTH = 128;

/** Whether objects and arrays in `root` nest deeper than `max` (iterative: safe on any depth). */
function nestsDeeperThan(root: object, max: number): boolean {
  const stack: Array<[object, number]> = [[root, 1]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, depth] = top;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v))
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** Parses the raw body as a JSON object, or throws `invalid_json` (or `invalid_request` when nested too deep). */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new GatewayError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new GatewayError('invalid_json', 'request body must be a JSON object');
  if (nestsDeeperThan(v, MAX_JSON_DEPTH))
    throw new GatewayError('invalid_request', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  return v as Record<string, unknown>;
}
