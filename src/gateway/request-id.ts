import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { DataEnv } from './context.ts';

const VALID = /^[\w.:@/+=-]{1,128}$/;

/**
 * Takes the request id from `x-request-id` when it is well-formed, else makes one; always echoes it back.
 * Also decides the API family (from the path, or `anthropic-version`) so every later error has the right shape.
 */
export function requestId({ headerName = 'x-request-id' } = {}): MiddlewareHandler<DataEnv> {
  return async function requestId(c, next) {
    const given = c.req.header(headerName);
    const id = given && VALID.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.set(
      'family',
      c.req.path.startsWith('/v1/messages') || c.req.header('anthropic-version') !== undefined
        ? 'anthropic'
        : 'openai',
    );
    c.header(headerName, id);
    await next();
  };
}
