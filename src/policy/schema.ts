import { z } from 'zod';

/**
 * The policy bundle format (`apiVersion: ringfence/v1`, `kind: PolicyBundle`). Declarative, validated, diff-able:
 * every list entry has an `id`, every reference (class, provider, detector kind) is checked by `validateBundle`.
 */

const ruleId = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected an id of letters, digits, . _ -');
const className = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a class name of letters, digits, . _ -');
const list = z.array(z.string().min(1)).min(1);
/** A duration: `500ms`, `60s`, `5m`, `1h`, `1d`, or milliseconds (the canonical form stored). */
const durationString = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 500ms, 60s, 5m, 1h, 1d')
  .transform((s) => {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(s)!;
    return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  });
const duration = z.union([z.number().int().positive(), durationString]);

/**
 * A condition: every key present must hold (AND). Lists match any of their values. `expr` is CEL over
 * `request` (see docs/policy.md for its fields), compiled and type-checked at load.
 */
export const conditionSchema = z.strictObject({
  app: list.optional(),
  'app.tags': list.optional(),
  api: z
    .array(
      z.enum([
        'openai.chat',
        'openai.responses',
        'openai.embeddings',
        'anthropic.messages',
        'anthropic.count_tokens',
      ]),
    )
    .min(1)
    .optional(),
  /** Model names; `*` is a wildcard (`gpt-4o*`). */
  model: list.optional(),
  endUser: list.optional(),
  /** Metadata key → accepted values. */
  metadata: z.record(z.string(), list).optional(),
  /** Detector kinds found in the input, e.g. `pii.email`, `secret.aws_access_key`, `injection.prompt`. */
  'input.detects': list.optional(),
  /** Estimated input tokens (characters / 4). */
  tokens: z
    .strictObject({
      gt: z.number().int().nonnegative().optional(),
      lte: z.number().int().positive().optional(),
    })
    .optional(),
  /** The request class (not allowed in classification rules). */
  class: list.optional(),
  stream: z.boolean().optional(),
  expr: z.string().min(1).optional(),
});

const classificationRule = z.strictObject({
  id: ruleId,
  description: z.string().optional(),
  when: conditionSchema,
  class: className,
  confidence: z.number().min(0).max(1).default(1),
});

const routingRule = z.strictObject({
  id: ruleId,
  description: z.string().optional(),
  when: conditionSchema,
  route: z
    .strictObject({ provider: z.string().min(1).optional(), model: z.string().min(1).optional() })
    .refine((r) => r.provider || r.model, 'route needs a provider, a model, or both'),
});

const guardrailBase = {
  id: ruleId,
  description: z.string().optional(),
  /** Classes this guardrail applies to; all classes when absent. */
  classes: z.array(className).min(1).optional(),
  action: z.enum(['block', 'redact', 'flag']),
};

const guardrail = z.discriminatedUnion('detector', [
  z.strictObject({ ...guardrailBase, detector: z.literal('pii'), kinds: list.optional() }),
  z.strictObject({ ...guardrailBase, detector: z.literal('secrets'), kinds: list.optional() }),
  z.strictObject({
    ...guardrailBase,
    detector: z.literal('prompt_injection'),
    threshold: z.number().positive().optional(),
  }),
  z.strictObject({
    ...guardrailBase,
    detector: z.literal('keywords'),
    keywords: list,
    caseSensitive: z.boolean().optional(),
    wholeWord: z.boolean().optional(),
  }),
  z.strictObject({
    ...guardrailBase,
    detector: z.literal('regex'),
    patterns: list,
    flags: z
      .string()
      .regex(/^[imsu]*$/)
      .optional(),
  }),
  z.strictObject({ ...guardrailBase, detector: z.literal('max_tokens'), max: z.number().int().positive() }),
]);

const toolRule = z.strictObject({
  id: ruleId,
  description: z.string().optional(),
  classes: z.array(className).min(1).optional(),
  /** Glob patterns (`restart_*`). A tool matching `deny` is refused; with `allow` set, anything not matching it is too. */
  allow: list.optional(),
  deny: list.optional(),
});

const budget = z.strictObject({
  id: ruleId,
  scope: z.enum(['app', 'class', 'end_user']),
  classes: z.array(className).min(1).optional(),
  window: duration,
  maxTokens: z.number().int().positive(),
  /** A per-request cap on the tokens a request may ask for (`max_tokens` and its kin); over it: 429. */
  maxRequestTokens: z.number().int().positive().optional(),
  /** When the counter store cannot answer: let traffic through (default) or refuse it. */
  mode: z.enum(['failOpen', 'failClosed']).default('failOpen'),
});

const contentLogging = z.enum(['none', 'redacted', 'full']);

/** The bundle document as written in YAML. */
export const bundleSchema = z.strictObject({
  apiVersion: z.literal('ringfence/v1'),
  kind: z.literal('PolicyBundle'),
  metadata: z.strictObject({
    name: ruleId,
    version: z.string().min(1),
    description: z.string().optional(),
    /** Promotion gates no override may pass for this bundle, on top of the built-in ones (docs/governance.md). */
    nonOverridableGates: z.array(z.string().regex(/^[a-z0-9_]+$/, 'expected a gate name')).optional(),
  }),
  /** Every class the bundle may assign; references to any other class are errors. */
  classes: z.array(className).min(1),
  classification: z.strictObject({
    default: className,
    rules: z.array(classificationRule).default([]),
  }),
  routing: z.array(routingRule).default([]),
  /** Class → models allowed (after routing). Classes not listed allow any model. */
  models: z.record(className, list).default({}),
  guardrails: z
    .strictObject({
      input: z.array(guardrail).default([]),
      output: z.array(guardrail).default([]),
      /** Characters of streamed output held back so a match straddling chunks is still caught. */
      holdBackChars: z.number().int().min(0).max(65_536).default(256),
    })
    .default({ input: [], output: [], holdBackChars: 256 }),
  tools: z.array(toolRule).default([]),
  budgets: z.array(budget).default([]),
  logging: z
    .strictObject({
      /** Class → whether prompt and response content may be logged; `default` for the rest. */
      content: z.record(z.string(), contentLogging).default({}),
    })
    .default({ content: {} }),
});

/** A bundle as validated (defaults applied). */
export type Bundle = z.infer<typeof bundleSchema>;
/** A condition block. */
export type Condition = z.infer<typeof conditionSchema>;
/** One guardrail entry. */
export type Guardrail = z.infer<typeof guardrail>;
/** One tool rule. */
export type ToolRule = z.infer<typeof toolRule>;
/** One budget. */
export type Budget = z.infer<typeof budget>;
/** How content may be logged for a class. */
export type ContentLogging = z.infer<typeof contentLogging>;
