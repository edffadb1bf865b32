import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { BENCH_MODEL } from './payloads.ts';

/**
 * The mode table. A mode is a server the load goes through; `direct` is the bench mock itself. A mode the bench
 * cannot run yet is listed with `available: false` and a reason: it is reported, never faked.
 * To switch one on: set `available: true` and give it the config it needs (`config`; see bench/README.md).
 */

/** The gateway key the bench presents (ringfence stores only its sha256) and the provider key ringfence sends. */
export const BENCH_APP_KEY = 'rf-bench-app-key-0123456789';
export const BENCH_PROVIDER_KEY = 'sk-bench-provider-key';

/** How the server under test is started. */
export type ServerKind =
  /** No server in between: the load goes straight to the bench mock (its own CPU is measured). */
  | { readonly kind: 'mock' }
  /** bench/reference-proxy.ts in front of the mock. */
  | { readonly kind: 'reference' }
  /**
   * `ringfence serve` with the generated config, `config(ctx)` merged into it (a bundle, providers, rings...), and
   * an optional `setup` run against its admin API once it is ready (register a candidate, shadow, canary).
   */
  | {
      readonly kind: 'ringfence';
      readonly config?: (ctx: ConfigContext) => ConfigTree;
      readonly setup?: (adminUrl: string, ctx: ConfigContext, dataUrl: string) => Promise<void>;
    };

/** A piece of ringfence config as a YAML tree: objects merge into the generated config key by key. */
export type ConfigTree = { readonly [key: string]: unknown };

/** What a mode's extra config may refer to. */
export interface ConfigContext {
  /** The repository root, for paths such as policy-bundles/. */
  readonly repoDir: string;
  readonly mockUrl: string;
}

/** One benchmark mode. */
export type Mode = {
  readonly name: string;
  readonly description: string;
  readonly server: ServerKind;
} & ({ readonly available: true } | { readonly available: false; readonly reason: string });

/** Every mode, in report order. The first is the latency baseline (`added` = mode − direct). */
export const MODES: readonly Mode[] = [
  {
    name: 'direct',
    description: 'load generator straight to the bench mock (no proxy)',
    server: { kind: 'mock' },
    available: true,
  },
  {
    name: 'reference',
    description:
      'bench/reference-proxy.ts: undici Pool, JSON.parse of the body, original bytes forwarded, stream relayed',
    server: { kind: 'reference' },
    available: true,
  },
  {
    name: 'passthrough',
    description:
      'ringfence with no policy bundle: auth, parse, normalise, allow-all decision, forward, relay',
    server: { kind: 'ringfence' },
    available: true,
  },
  {
    name: 'prod',
    description: 'ringfence enforcing the example production bundle (policy-bundles/production)',
    server: { kind: 'ringfence', config: policyConfig },
    available: true,
  },
  {
    name: 'prod+shadow',
    description:
      'production bundle enforcing, the example candidate evaluated in shadow on every request, decision log and metrics on',
    server: {
      kind: 'ringfence',
      config: policyConfig,
      setup: (url, ctx) => candidate(url, ctx, undefined, ''),
    },
    available: true,
  },
  {
    name: 'canary',
    description:
      'the candidate enforcing for a 25% sticky slice, production shadowing it (and the candidate shadowing the rest)',
    server: {
      kind: 'ringfence',
      config: policyConfig,
      setup: (url, ctx, data) => candidate(url, ctx, { percent: 25 }, data),
    },
    available: true,
  },
];

function merge(base: ConfigTree, extra: ConfigTree): ConfigTree {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    const mergeable = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
    out[k] = mergeable(b) && mergeable(v) ? merge(b as ConfigTree, v as ConfigTree) : v;
  }
  return out;
}

/**
 * The ringfence config for a mode, as YAML: one `kind: openai` provider at the bench mock, one app key (stored as
 * its sha256), process log level warn, the decision log to a temp file; `extra` merged in.
 */
export function ringfenceConfig(ctx: ConfigContext, extra: ConfigTree = {}): string {
  const base: ConfigTree = {
    listeners: { data: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
    providers: {
      bench: {
        kind: 'openai',
        baseUrl: `${ctx.mockUrl}/v1`,
        apiKeyEnv: 'BENCH_PROVIDER_KEY',
        models: [BENCH_MODEL],
        connections: 128,
      },
    },
    applications: [
      {
        id: 'bench',
        tags: ['internal'],
        keys: [{ id: 'bench-key', sha256: createHash('sha256').update(BENCH_APP_KEY).digest('hex') }],
      },
    ],
    limits: { maxBodyBytes: '4mb', shutdownGraceMs: 5000 },
    // The decision log is on, as in production, written to a file (not the bench's stdout pipe, whose reader
    // would be the load generator competing for the same two cores).
    log: {
      level: 'warn',
      decisions: { destination: join(mkdtempSync(join(tmpdir(), 'ringfence-bench-log-')), 'decisions.log') },
    },
  };
  return `# generated by bench/run.ts\n${stringify(merge(base, extra))}`;
}

/** The admin token of the bench's ringfence (stored as its sha256 in the generated config). */
export const BENCH_ADMIN_TOKEN = 'rf-bench-admin-token';

/**
 * An example bundle as the bench uses it: every rule as shipped, but budgets raised out of reach, so the load
 * measures their cost (checked and charged on every request) without being refused by them.
 */
function benchBundle(ctx: ConfigContext, name: 'production' | 'candidate'): string {
  const doc = parseYaml(readFileSync(join(ctx.repoDir, 'policy-bundles', name, 'bundle.yaml'), 'utf8')) as {
    budgets?: Array<{ maxTokens: number }>;
  };
  for (const b of doc.budgets ?? []) b.maxTokens = 1e15;
  return stringify(doc);
}

function benchBundleFile(ctx: ConfigContext, name: 'production' | 'candidate'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ringfence-bench-bundle-')), `${name}.yaml`);
  writeFileSync(file, benchBundle(ctx, name));
  return file;
}

/** Config of the policy modes: the example production bundle, the `private` provider it routes to, open gates. */
function policyConfig(ctx: ConfigContext): ConfigTree {
  return {
    providers: {
      private: {
        kind: 'openai',
        baseUrl: `${ctx.mockUrl}/v1`,
        apiKeyEnv: 'BENCH_PROVIDER_KEY',
        models: ['private-llm'],
      },
    },
    policy: { bundle: benchBundleFile(ctx, 'production') },
    admin: {
      tokens: [
        {
          id: 'bench',
          sha256: createHash('sha256').update(BENCH_ADMIN_TOKEN).digest('hex'),
          roles: ['operator'],
        },
      ],
    },
    // The bench measures cost, not rollout safety: the candidate may enter canary at once.
    rings: {
      gates: {
        shadowToCanary: {
          minSamples: 0,
          minDurationS: 0,
          ackMinGroupCount: 1_000_000_000,
          maxCandidateEvalP95Us: 1_000_000,
        },
      },
    },
  };
}

async function admin(
  url: string,
  path: string,
  body: string,
  contentType = 'application/json',
): Promise<void> {
  const res = await fetch(`${url}/admin/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': contentType },
    body,
  });
  if (!res.ok) throw new Error(`bench setup: ${path} answered ${res.status}: ${await res.text()}`);
}

/** Registers the example candidate and puts it in shadow, then (with a slice) in canary. */
async function candidate(
  url: string,
  ctx: ConfigContext,
  slice: { percent: number } | undefined,
  dataUrl: string,
): Promise<void> {
  const yaml = benchBundle(ctx, 'candidate');
  const res = await fetch(`${url}/admin/v1/bundles`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/yaml' },
    body: yaml,
  });
  if (!res.ok)
    throw new Error(`bench setup: registering the candidate answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  await admin(url, '/rollout/shadow', JSON.stringify({ bundleId: id }));
  if (!slice) return;
  // The shadow → canary gates want some evaluations of the candidate first.
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${dataUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BENCH_APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: BENCH_MODEL, messages: [{ role: 'user', content: `warm ${i}` }] }),
    });
    await r.arrayBuffer();
  }
  await new Promise((r) => setTimeout(r, 50));
  await admin(url, '/rollout/canary', JSON.stringify(slice));
}
