import { z } from 'zod';

/** Who did something, when. */
const stamp = z.strictObject({ by: z.string().min(1), at: z.string().min(1) });

/** The canary slice: every listed dimension must hold; an empty dimension holds for all. */
export const sliceSchema = z.strictObject({
  apps: z.array(z.string().min(1)).default([]),
  /** Request classes as production classifies them, so the slice is stable whatever the candidate says. */
  classes: z.array(z.string().min(1)).default([]),
  /** Sticky share of traffic, 0–100 (hash of app + end user, else request id, into 10,000 buckets). */
  percent: z.number().min(0).max(100).default(100),
});

const placed = z.strictObject({
  bundleId: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  ...stamp.shape,
  changeId: z.string(),
});

/** The ring state: what enforces where. Immutable; every change makes a new one with `version + 1`. */
export const ringStateSchema = z.strictObject({
  version: z.number().int().nonnegative(),
  /** The change that produced this state (carried into decision logs and the audit trail). */
  changeId: z.string().min(1),
  /** When the change was made (wall clock of the replica that made it). */
  changedAt: z.string().optional(),
  production: placed,
  /** Earlier production bundles, most recent first: rollback targets. */
  previous: z.array(placed).max(20),
  candidate: z
    .strictObject({
      ...placed.shape,
      stage: z.enum(['shadow', 'canary']),
      /** When the current stage was entered: gates measure from here. */
      stageSince: z.string(),
      slice: sliceSchema.optional(),
    })
    .optional(),
  /** Manual kill switches: a killed target is skipped (its fallback serves); a killed candidate is ignored. */
  killed: z
    .strictObject({
      targets: z
        .array(z.strictObject({ target: z.string().min(1), ...stamp.shape, reason: z.string() }))
        .default([]),
      candidate: z.strictObject({ ...stamp.shape, reason: z.string() }).optional(),
    })
    .optional(),
});

/** The ring state. */
export type RingState = z.infer<typeof ringStateSchema>;
/** A canary slice. */
export type Slice = z.infer<typeof sliceSchema>;
/** Which ring served a request. */
export type Ring = 'production' | 'canary';
