import { z } from 'zod';

/**
 * Gates no override can pass: a candidate that throws, a response that leaked data, a rollback path that was not
 * proven. Config `rings.nonOverridableGates` and a bundle's `metadata.nonOverridableGates` add to this list.
 */
export const NON_OVERRIDABLE_GATES: readonly string[] = Object.freeze([
  'candidate_policy_error_rate',
  'output_leak_blocks',
  'rollback_drill',
]);

const isoTime = z.iso.datetime({ offset: true });
const bundleId = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'expected sha256:<64 hex>');

/** One gate an override excepts, as it stood when the override was requested. */
export const overriddenGateSchema = z.strictObject({
  name: z.string().min(1),
  observed: z.number().nullable(),
  threshold: z.string().min(1),
  verdict: z.enum(['fail', 'insufficient_data']),
  /** Why the figure is (or is not) trustworthy: sample size, noise, known cause. */
  confidenceNote: z.string().min(1),
});

/**
 * When an override stops holding. At least one bound is required; the first reached ends it. `reevaluateAt`
 * forces a fresh look even if nothing else ended it.
 */
export const overrideExpirySchema = z
  .strictObject({
    /** Time box: the override ends at this instant. */
    expiresAt: isoTime.optional(),
    /** Traffic cap: the override ends once this many canary requests have been served under it. */
    maxRequests: z.number().int().positive().optional(),
    /** Auto-revert: the override ends as soon as this metric of the gate's own figure crosses the value. */
    revertWhen: z
      .strictObject({
        gate: z.string().min(1),
        above: z.number(),
      })
      .optional(),
    /** Mandatory re-evaluation: the gate is evaluated again at this instant, and the action runs if it fails. */
    reevaluateAt: isoTime.optional(),
  })
  .refine(
    (e) =>
      e.expiresAt !== undefined ||
      e.maxRequests !== undefined ||
      e.revertWhen !== undefined ||
      e.reevaluateAt !== undefined,
    { message: 'an override needs an expiry: expiresAt, maxRequests, revertWhen and/or reevaluateAt' },
  );

/**
 * An override of failed (or noisy) gates: a logged decision with evidence and an expiry, requested by one
 * identity and approved by another. Committed to a repository, it is honoured by `ringfence gate evaluate` only
 * when bound to the candidate's sha256, unexpired and two-keyed.
 */
export const overrideSchema = z.strictObject({
  apiVersion: z.literal('ringfence/v1'),
  kind: z.literal('GateOverride'),
  id: z.string().regex(/^ovr_[a-z0-9-]+$/i, 'expected ovr_<id>'),
  /** The release / change this override belongs to. */
  changeId: z.string().min(1),
  /** Production (the control) and the candidate the override is bound to. */
  controlBundleId: bundleId,
  candidateBundleId: bundleId,
  /** The transition the gates belong to. */
  transition: z.enum(['shadow_to_canary', 'canary_to_production']),
  gates: z.array(overriddenGateSchema).min(1),
  rationale: z.string().min(20, 'a rationale of at least 20 characters'),
  evidence: z.strictObject({
    sampleSize: z.number().int().nonnegative(),
    /** Counts of the divergences or failures by severity, e.g. { high: 0, medium: 2, low: 14 }. */
    severityMix: z.record(z.string(), z.number().int().nonnegative()),
    mitigation: z.string().min(1),
    links: z.array(z.string()).default([]),
  }),
  expiry: overrideExpirySchema,
  /** What happens when the override ends and the gate still fails. */
  onExpiry: z.enum(['block_widening', 'rollback']),
  requestedBy: z.string().min(1),
  requestedAt: isoTime,
  approvedBy: z.string().min(1),
  approvedAt: isoTime,
  /** The audit record that granted it (hash), when issued by a gateway. */
  auditHash: z.string().optional(),
});

export type GateOverride = z.infer<typeof overrideSchema>;
export type OverriddenGate = z.infer<typeof overriddenGateSchema>;
