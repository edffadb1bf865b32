import { z } from 'zod';

/** Parses sizes such as `10mb`, `512kb` or a plain byte count. */
const byteSize = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, 'expected a size such as 10mb, 512kb or a byte count')
    .transform((s) => {
      const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(s)!;
      const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
      return Math.floor(Number(m[1]) * mult);
    }),
]);

/** A TCP port. Digit strings are accepted (`${PORT}` interpolates to a string); an empty value is not port 0. */
const port = z
  .union([z.number(), z.string().regex(/^\d+$/, 'expected a port number').transform(Number)])
  .pipe(z.number().int().min(0).max(65535));
const id = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected an id of letters, digits, . _ -');

const listener = (defaultPort: number) =>
  z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(defaultPort),
  });

const timeouts = z.strictObject({
  /** TCP + TLS connect. */
  connectMs: z.number().int().positive().default(10_000),
  /** Until the provider's response headers arrive (a long non-stream completion waits here). */
  headersMs: z.number().int().positive().default(300_000),
  /** Longest silence between two body chunks (a stream that stalls). */
  bodyMs: z.number().int().positive().default(300_000),
});

/**
 * One provider's circuit breakers (opossum), one per target (provider + model). A breaker opens when, over the
 * rolling window, at least `volumeThreshold` calls were made and more than `errorThresholdPercentage` of them
 * failed (5xx, timeout, connection error; never a 4xx or a client abort). After `resetTimeoutMs` one probe goes
 * through: success closes it, failure opens it again.
 */
const breaker = z
  .strictObject({
    /** Opens when the failed share of the window's calls exceeds this (strictly greater, as opossum counts). */
    errorThresholdPercentage: z.number().min(0).lt(100).default(50),
    /** Calls the window must hold before the percentage is looked at. */
    volumeThreshold: z.number().int().nonnegative().default(10),
    /** The rolling window's length, split into `rollingCountBuckets` buckets. */
    rollingCountTimeoutMs: z.number().int().positive().default(10_000),
    rollingCountBuckets: z.number().int().positive().default(10),
    /** How long an open breaker rejects before letting one probe through. */
    resetTimeoutMs: z.number().int().positive().default(30_000),
    /** Call timeout until the response headers, counted as a failure. Off by default: `timeouts` already bound calls. */
    timeoutMs: z.number().int().positive().optional(),
  })
  .refine((b) => b.rollingCountTimeoutMs / b.rollingCountBuckets >= 10, {
    message:
      'rollingCountTimeoutMs / rollingCountBuckets must be at least 10 ms (one bucket rotation timer each)',
    path: ['rollingCountBuckets'],
  });

/**
 * One step of a fallback chain: another target (`provider`, `model` defaulting to the requested one), or a
 * terminal `degraded` answer (a canned message in the SDK's success shape) or `fail` (503 with `retry-after`).
 * One object with optional keys rather than a union, so a typo is reported by name, not as "Invalid input".
 */
const fallbackStep = z
  .strictObject({
    provider: id.optional(),
    model: z.string().min(1).optional(),
    degraded: z.strictObject({ message: z.string().min(1) }).optional(),
    /** Without `retryAfterSeconds`, `retry-after` is the time until the open breaker's next probe. */
    fail: z.strictObject({ retryAfterSeconds: z.number().int().positive().optional() }).optional(),
  })
  .superRefine((s, ctx) => {
    const kinds = [s.provider, s.degraded, s.fail].filter((v) => v !== undefined).length;
    if (kinds !== 1)
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of provider, degraded, fail' });
    if (s.model !== undefined && s.provider === undefined)
      ctx.addIssue({ code: 'custom', path: ['model'], message: '`model` goes with `provider`' });
  })
  .transform((s) =>
    s.provider !== undefined
      ? ({ kind: 'target', provider: s.provider, model: s.model } as const)
      : s.degraded !== undefined
        ? ({ kind: 'degraded', message: s.degraded.message } as const)
        : ({ kind: 'fail', retryAfterSeconds: s.fail?.retryAfterSeconds } as const),
  );

/** The fallback chain of one target: `provider/model`, or `provider` for all its models (the exact one wins). */
const fallback = z.strictObject({
  target: z.string().regex(/^[a-z0-9][a-z0-9._-]*(\/.+)?$/i, 'expected PROVIDER or PROVIDER/MODEL'),
  // biome-ignore lint/suspicious/noThenProperty: the documented YAML key; an array, never a function, so never a thenable
  then: z.array(fallbackStep).min(1),
});

/** One upstream provider. Keys come only from the environment, named by `apiKeyEnv`. */
const provider = z
  .strictObject({
    kind: z.enum(['openai', 'anthropic', 'mock']),
    /** OpenAI-style base URLs include the version (`https://api.openai.com/v1`); Anthropic's do not. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name')
      .optional(),
    /** Header carrying the key: OpenAI uses `authorization` (Bearer), Azure OpenAI `api-key`, Anthropic `x-api-key`. */
    apiKeyHeader: z.enum(['authorization', 'api-key', 'x-api-key']).optional(),
    /** Query parameters added to every upstream call (Azure's `api-version`). */
    query: z.record(z.string(), z.string()).default({}),
    /** Static headers added to every upstream call. */
    headers: z.record(z.string(), z.string()).default({}),
    /** Models this provider serves; `GET /v1/models` lists them and routing matches on them. */
    models: z.array(z.string().min(1)).default([]),
    connections: z.number().int().positive().default(128),
    timeouts: timeouts.default({ connectMs: 10_000, headersMs: 300_000, bodyMs: 300_000 }),
    breaker: breaker.prefault({}),
    /**
     * Prices per million tokens by model (`*` for the provider's other models), for the cost estimate in the
     * decision log and `ringfence_cost_usd_total`. A model without a price is logged without a cost.
     */
    pricing: z
      .record(
        z.string().min(1),
        z.strictObject({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() }),
      )
      .default({}),
  })
  .refine((p) => p.kind === 'mock' || p.baseUrl !== undefined, {
    message: 'baseUrl is required unless kind is mock',
    path: ['baseUrl'],
  });

const appKey = z.union([
  z.strictObject({ id, sha256: z.string().regex(/^[a-f0-9]{64}$/, 'expected 64 lowercase hex characters') }),
  z.strictObject({
    id,
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name'),
  }),
]);

const application = z.strictObject({
  id,
  tags: z.array(z.string().min(1)).default([]),
  keys: z.array(appKey).min(1),
});

/** Splits a fallback `target` into its provider and (optional) model; models may contain `/`. */
export function parseTargetRef(ref: string): { provider: string; model: string | undefined } {
  const i = ref.indexOf('/');
  return i < 0 ? { provider: ref, model: undefined } : { provider: ref.slice(0, i), model: ref.slice(i + 1) };
}

/** Cross-references of `fallbacks`: providers exist and speak the target's API, no duplicates, no self-steps. */
function checkFallbacks(
  providers: Readonly<Record<string, { readonly kind: 'openai' | 'anthropic' | 'mock' }>>,
  fallbacks: readonly z.infer<typeof fallback>[],
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  fallbacks.forEach((f, i) => {
    const at = (...rest: (string | number)[]) => ['fallbacks', i, ...rest];
    const target = parseTargetRef(f.target);
    const from = providers[target.provider];
    if (!from)
      ctx.addIssue({ code: 'custom', path: at('target'), message: `unknown provider "${target.provider}"` });
    if (seen.has(f.target))
      ctx.addIssue({ code: 'custom', path: at('target'), message: `duplicate fallback for "${f.target}"` });
    seen.add(f.target);
    f.then.forEach((step, j) => {
      // zod runs this refinement even when a step failed its own checks (reported there; never transformed).
      if (step.kind === undefined) return;
      if (step.kind !== 'target') {
        if (j !== f.then.length - 1)
          ctx.addIssue({
            code: 'custom',
            path: at('then', j),
            message: `${step.kind} must be the last step`,
          });
        return;
      }
      const to = providers[step.provider];
      if (!to) {
        ctx.addIssue({
          code: 'custom',
          path: at('then', j, 'provider'),
          message: `unknown provider "${step.provider}"`,
        });
        return;
      }
      if (from && from.kind !== 'mock' && to.kind !== 'mock' && from.kind !== to.kind)
        ctx.addIssue({
          code: 'custom',
          path: at('then', j, 'provider'),
          message: `provider "${step.provider}" is ${to.kind}; requests for "${f.target}" are ${from.kind}`,
        });
      if (step.provider === target.provider && (step.model ?? target.model) === target.model)
        ctx.addIssue({
          code: 'custom',
          path: at('then', j),
          message: `falls back to "${f.target}" itself`,
        });
    });
  });
}

/** The whole gateway configuration file. */
export const configSchema = z
  .strictObject({
    listeners: z
      .strictObject({
        data: listener(8080).default({ host: '127.0.0.1', port: 8080 }),
        admin: listener(8081).default({ host: '127.0.0.1', port: 8081 }),
      })
      .default({ data: { host: '127.0.0.1', port: 8080 }, admin: { host: '127.0.0.1', port: 8081 } }),
    providers: z.record(id, provider).refine((r) => Object.keys(r).length > 0, 'at least one provider'),
    /** Provider used for each API when no provider lists the requested model. */
    defaults: z.strictObject({ openai: id.optional(), anthropic: id.optional() }).default({}),
    /** Ordered fallback chains, tried when a target fails or its breaker is open. */
    fallbacks: z.array(fallback).default([]),
    applications: z.array(application).min(1),
    limits: z
      .strictObject({
        maxBodyBytes: byteSize.default(8 * 1024 * 1024),
        /** How long SIGTERM waits for in-flight requests and streams before closing them. */
        shutdownGraceMs: z.number().int().nonnegative().default(30_000),
      })
      .default({ maxBodyBytes: 8 * 1024 * 1024, shutdownGraceMs: 30_000 }),
    /** The policy bundle enforced in production (a path relative to this file). Without it, everything is allowed. */
    policy: z.strictObject({ bundle: z.string().min(1) }).optional(),
    /** Release rings: where the ring state lives, the promotion gates, the automatic rollback triggers. */
    rings: z
      .strictObject({
        /** Directory of the file state store; without it ring state lives in memory (lost on restart). */
        stateDir: z.string().min(1).optional(),
        gates: z
          .strictObject({
            shadowToCanary: z
              .strictObject({
                maxCandidatePolicyErrorRate: z.number().min(0).max(1).default(0.001),
                ackMinGroupCount: z.number().int().positive().default(1),
                maxCandidateEvalP95Us: z.number().positive().default(1000),
                minSamples: z.number().int().nonnegative().default(1000),
                minDurationS: z.number().nonnegative().default(600),
              })
              .prefault({}),
            canaryToProduction: z
              .strictObject({
                maxErrorRateDelta: z.number().min(0).max(1).default(0.01),
                maxTriggerRateDelta: z.number().min(0).max(1).default(0.05),
                maxLatencyP50DeltaMs: z.number().nonnegative().default(5),
                maxLatencyP95DeltaMs: z.number().nonnegative().default(25),
                minSamples: z.number().int().nonnegative().default(500),
                minDurationS: z.number().nonnegative().default(900),
                /** Promotion needs a passed kill-switch drill within `drillMaxAgeDays`; a failed last drill always blocks. */
                requireDrill: z.boolean().default(false),
                drillMaxAgeDays: z.number().positive().default(30),
              })
              .prefault({}),
          })
          .prefault({}),
        triggers: z
          .strictObject({
            errorRateFactor: z.number().positive().default(2),
            minErrorRate: z.number().min(0).max(1).default(0.05),
            windowS: z.number().positive().default(60),
            minSamples: z.number().int().positive().default(20),
            triggerSpikeFactor: z.number().positive().default(3),
            latencyP95SlaMs: z.number().positive().default(60_000),
            leakBlock: z.boolean().default(true),
            checkIntervalMs: z.number().int().positive().default(1000),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Where the control plane lives: `file` (rings.stateDir, one replica; memory without it) or `postgres`
     * (shared by every replica: ring state, bundles, approvals, overrides, audit trail, fleet gate statistics).
     */
    store: z
      .strictObject({
        kind: z.enum(['file', 'postgres']).default('file'),
        /** postgres: connection URL, e.g. `${DATABASE_URL}`. */
        url: z.string().min(1).optional(),
        /** postgres: the schema holding ringfence's tables. */
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lowercase SQL identifier')
          .default('ringfence'),
        /** How often a replica publishes its gate statistics and polls the state version. */
        syncIntervalMs: z.number().int().positive().default(2000),
        /** This replica's id in fleet statistics (default: host name and process id). */
        replicaId: z.string().min(1).optional(),
      })
      .prefault({})
      .refine((s) => s.kind !== 'postgres' || s.url !== undefined, {
        message: 'store.url is required for kind postgres',
        path: ['url'],
      }),
    /**
     * Where token budgets are counted: `memory` (this replica only; saved to `rings.stateDir` when set) or `redis`
     * (shared by every replica: a budget is one budget for the whole fleet).
     */
    counters: z
      .strictObject({
        kind: z.enum(['memory', 'redis']).default('memory'),
        /** redis: connection URL, e.g. `${REDIS_URL}` (`redis://[user:password@]host:port[/db]`, or `rediss://`). */
        url: z.string().min(1).optional(),
        /** redis: every key starts with it. */
        keyPrefix: z.string().default('ringfence:'),
        /** redis: the longest a request waits for the store; past it each budget follows its `mode`. */
        timeoutMs: z.number().int().positive().max(10_000).default(25),
      })
      .prefault({})
      .refine((c) => c.kind !== 'redis' || c.url !== undefined, {
        message: 'counters.url is required for kind redis',
        path: ['url'],
      }),
    /** Two-key approvals and gate overrides (docs/governance.md). */
    governance: z
      .strictObject({
        /** How long a high-risk request waits for its second key. */
        approvalTtlS: z.number().int().positive().default(3600),
        /** Gates no override may pass, on top of the built-in ones (policy errors, leak blocks, failed drills). */
        nonOverridableGates: z.array(z.string().min(1)).default([]),
        /** How often override expiry (time box, traffic cap, auto-revert, re-evaluation) is checked. */
        expiryCheckIntervalMs: z.number().int().positive().default(1000),
      })
      .prefault({}),
    /** Admin API tokens: each an identity with roles. Tokens are stored as sha256 hashes or read from env. */
    admin: z
      .strictObject({
        tokens: z
          .array(
            z.union([
              z.strictObject({
                id,
                sha256: z.string().regex(/^[a-f0-9]{64}$/, 'expected 64 lowercase hex characters'),
                roles: z.array(z.enum(['viewer', 'operator', 'approver', 'sre'])).min(1),
              }),
              z.strictObject({
                id,
                env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name'),
                roles: z.array(z.enum(['viewer', 'operator', 'approver', 'sre'])).min(1),
              }),
            ]),
          )
          .default([]),
      })
      .default({ tokens: [] }),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /**
         * The decision log: one DecisionEventV1 JSON line per request, written after the response ends through an
         * async buffer of at most `bufferBytes`; when the sink cannot keep up, events are dropped and counted.
         */
        decisions: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** `stdout` (shared with the process log), `stderr`, or a file path (relative to the config file). */
            destination: z.string().min(1).default('stdout'),
            bufferBytes: z
              .number()
              .int()
              .min(65_536)
              .default(4 * 1024 * 1024),
            /** Longest prompt or response text kept per event when the bundle lets content be logged. */
            maxContentChars: z.number().int().nonnegative().default(4096),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    checkFallbacks(cfg.providers, cfg.fallbacks, ctx);
    for (const fam of ['openai', 'anthropic'] as const) {
      const ref = cfg.defaults[fam];
      if (ref === undefined) continue;
      const p = cfg.providers[ref];
      if (!p) ctx.addIssue({ code: 'custom', path: ['defaults', fam], message: `unknown provider "${ref}"` });
      else if (p.kind !== 'mock' && p.kind !== fam)
        ctx.addIssue({
          code: 'custom',
          path: ['defaults', fam],
          message: `provider "${ref}" is ${p.kind}, not ${fam}`,
        });
    }
    const seenApps = new Set<string>();
    const seenKeys = new Set<string>();
    cfg.applications.forEach((app, i) => {
      if (seenApps.has(app.id))
        ctx.addIssue({
          code: 'custom',
          path: ['applications', i, 'id'],
          message: `duplicate application id "${app.id}"`,
        });
      seenApps.add(app.id);
      app.keys.forEach((k, j) => {
        if (seenKeys.has(k.id))
          ctx.addIssue({
            code: 'custom',
            path: ['applications', i, 'keys', j, 'id'],
            message: `duplicate key id "${k.id}"`,
          });
        seenKeys.add(k.id);
      });
    });
  });

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** One validated provider entry. */
export type ProviderConfig = z.infer<typeof provider>;
/** One provider's validated circuit-breaker options. */
export type BreakerConfig = z.infer<typeof breaker>;
/** One validated fallback chain; its steps are `{ kind: 'target' | 'degraded' | 'fail', ... }`. */
export type FallbackConfig = z.infer<typeof fallback>;
/** One validated step of a fallback chain. */
export type FallbackStep = FallbackConfig['then'][number];
/** One validated application entry. */
export type ApplicationConfig = z.infer<typeof application>;
