import { timingSafeEqual } from 'node:crypto';

/**
 * Cross-site request forgery defences of the console's forms: a per-session token in a hidden field, compared in
 * constant time, and the browser's own statement of where the request comes from (Origin, Sec-Fetch-Site).
 * The session cookie is SameSite=Strict as well; each layer alone would refuse a forged form.
 */

/** The hidden field every state-changing form carries. */
export const CSRF_FIELD = '_csrf';

/** Whether `given` is the session's CSRF token (constant time; any other length or type is refused). */
export function csrfOk(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length === 0) return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether a state-changing request comes from the console's own pages. `Sec-Fetch-Site` (set by the browser, never
 * by a page's script), when sent, must be `same-origin`. `Origin`, when it names an origin, must be the console's
 * (or one of `allowed`, for a console reached through a proxy under another origin). The console's pages are
 * served with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` on form posts: such a post
 * is accepted only with `Sec-Fetch-Site: same-origin` (a sandboxed frame or a redirect elsewhere says otherwise).
 * A request carrying neither header is refused: browsers send them, and scripts have the admin API.
 */
export function sameOrigin(
  headers: { origin: string | undefined; secFetchSite: string | undefined },
  ownOrigin: string,
  allowed: readonly string[] = [],
): boolean {
  const { origin, secFetchSite } = headers;
  if (origin === undefined && secFetchSite === undefined) return false;
  if (secFetchSite !== undefined && secFetchSite !== 'same-origin') return false;
  if (origin === 'null') return secFetchSite === 'same-origin';
  if (origin !== undefined && origin !== ownOrigin && !allowed.includes(origin)) return false;
  return true;
}
