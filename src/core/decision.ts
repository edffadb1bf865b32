import type { PolicyInput } from './policy-input.ts';

/**
 * What the enforcement step decided for one request. The policy issue widens this (class, route, verdicts);
 * the data plane only needs to know whether to dispatch.
 */
export type Decision =
  | { readonly action: 'allow' }
  | { readonly action: 'deny'; readonly message: string; readonly rule: string };

/** The seam between the data plane and policy: decides synchronously from the normalised input. */
export interface Enforcer {
  decide(input: PolicyInput): Decision;
}

const ALLOW: Decision = Object.freeze({ action: 'allow' });

/** The enforcer used until a policy bundle is loaded: allows everything. */
export const allowAll: Enforcer = Object.freeze({ decide: () => ALLOW });
