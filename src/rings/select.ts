import type { PolicyInput } from '../core/policy-input.ts';
import type { Slice } from './state.ts';

/** FNV-1a, 32-bit: fast, stable across processes and versions, good enough spread for bucketing. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The sticky bucket (0–9,999) of a request: app + end user, so one user stays on one side; else the request id. */
export function bucketOf(input: PolicyInput): number {
  const key = input.endUser
    ? `${input.app.appId}\u0000${input.endUser}`
    : `${input.app.appId}\u0000${input.requestId}`;
  return fnv1a(key) % 10_000;
}

/** Whether a request falls in the canary slice. `prodClass` is production's classification of it. */
export function inSlice(slice: Slice, input: PolicyInput, prodClass: string): boolean {
  if (slice.apps.length && !slice.apps.includes(input.app.appId)) return false;
  if (slice.classes.length && !slice.classes.includes(prodClass)) return false;
  if (slice.percent >= 100) return true;
  return bucketOf(input) < Math.round(slice.percent * 100);
}
