import { randomUUID } from 'node:crypto';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';
import { type DataEnv, header } from './context.ts';

const VALID = /^[\w.:@/+=-]{1,128}$/;

/**
 * Takes the request id from `x-request-id` when it is well-formed, else makes one; always echoes it back.
 * Also decides the API family (from the path, or `anthropic-version`) so every later error has the right shape.
 *
 * The header is added to the response after the handler, and only when the handler did not set it: the proxy
 * writes its responses straight to the Node response with the id among their headers, and setting it up front
 * (`c.header()`) would make every response go through a web `Headers` object.
 */
export function requestId({ headerName = 'x-request-id' } = {}): MiddlewareHandler<DataEnv> {
  return async function requestId(c, next) {
    const given = header(c, headerName);
    const id = given && VALID.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.set(
      'family',
      c.req.path.startsWith('/v1/messages') || header(c, 'anthropic-version') !== undefined
        ? 'anthropic'
        : 'openai',
    );
    await next();
    if (c.res !== RESPONSE_ALREADY_SENT && !c.res.headers.has(headerName)) c.res.headers.set(headerName, id);
  };
}
