import type { MiddlewareHandler } from 'hono';
import { hashKey } from '../config/load.ts';
import type { AppIdentity } from '../core/policy-input.ts';
import { type DataEnv, header } from './context.ts';
import { fail } from './respond.ts';

/** The gateway key a client presented: `Authorization: Bearer`, `x-api-key` (Anthropic) or `api-key` (Azure). */
export function presentedKey(
  authorization: string | undefined,
  xApiKey: string | undefined,
  apiKey: string | undefined,
) {
  if (authorization) {
    const m = /^Bearer\s+(.+)$/i.exec(authorization);
    if (m) return m[1]!.trim();
  }
  return xApiKey || apiKey || undefined;
}

/**
 * Authenticates the application by its gateway key. Keys are held only as sha256 hashes, so the lookup
 * compares digests, never the secret. A missing or unknown key is 401 in the SDK's shape.
 */
export function authenticate(appKeys: ReadonlyMap<string, AppIdentity>): MiddlewareHandler<DataEnv> {
  return async function authenticate(c, next) {
    const arrivedAt = performance.now();
    const key = presentedKey(header(c, 'authorization'), header(c, 'x-api-key'), header(c, 'api-key'));
    if (!key)
      return fail(c, 'unauthenticated', 'missing gateway key: send Authorization: Bearer <key> or x-api-key');
    const app = appKeys.get(hashKey(key));
    if (!app) return fail(c, 'unauthenticated', 'invalid gateway key');
    c.set('app', app);
    c.set('arrivedAt', arrivedAt);
    c.set('authUs', Math.round((performance.now() - arrivedAt) * 1000));
    await next();
  };
}
