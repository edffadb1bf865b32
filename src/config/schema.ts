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
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .default({ level: 'info' }),
  })
  .superRefine((cfg, ctx) => {
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
/** One validated application entry. */
export type ApplicationConfig = z.infer<typeof application>;
