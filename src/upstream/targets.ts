import { Pool } from 'undici';
import type { LoadedConfig } from '../config/load.ts';
import type { ProviderConfig } from '../config/schema.ts';
import type { ApiFamily } from '../core/errors.ts';

/** How to reach one provider for one API family: origin, path prefix, auth header. Built once at start. */
export interface UpstreamTarget {
  readonly providerId: string;
  readonly kind: ProviderConfig['kind'];
  readonly family: ApiFamily;
  readonly origin: string;
  /** The base URL's path. OpenAI-family paths are appended without their `/v1` (the base carries the version, as in the SDK); Anthropic paths whole. */
  readonly basePath: string;
  /** `?a=b` appended to every path, or ''. */
  readonly search: string;
  /** Lower-cased header name and value carrying the provider key; undefined when the provider takes none. */
  readonly auth: readonly [string, string] | undefined;
  readonly staticHeaders: Readonly<Record<string, string>>;
  readonly pool: Pool;
  readonly timeouts: ProviderConfig['timeouts'];
  readonly models: readonly string[];
}

/** Every upstream target, and the lookup from (API family, model) to the target that serves it. */
export interface Upstreams {
  readonly targets: readonly UpstreamTarget[];
  /** The target for a model: the first provider listing it, else the family's default provider. */
  pick(family: ApiFamily, model: string): UpstreamTarget | undefined;
  /** The target of a named provider for a family, when that provider speaks it. */
  byProvider(family: ApiFamily, providerId: string): UpstreamTarget | undefined;
  /** Models routed for a family, in config order, without duplicates. */
  models(family: ApiFamily): string[];
  close(): Promise<void>;
}

function authFor(
  p: ProviderConfig,
  family: ApiFamily,
  key: string | undefined,
): readonly [string, string] | undefined {
  if (key === undefined) return undefined;
  const header = p.apiKeyHeader ?? (family === 'anthropic' ? 'x-api-key' : 'authorization');
  return [header, header === 'authorization' ? `Bearer ${key}` : key];
}

/**
 * Builds the targets and their undici pools (one keep-alive pool per provider origin).
 * `mockUrl` is where the embedded mock provider listens, for `kind: mock` entries without a `baseUrl`.
 */
export function createUpstreams(loaded: LoadedConfig, mockUrl?: string): Upstreams {
  const { config, providerKeys } = loaded;
  const pools = new Map<string, Pool>();
  const targets: UpstreamTarget[] = [];
  const byModel = { openai: new Map<string, UpstreamTarget>(), anthropic: new Map<string, UpstreamTarget>() };
  const firstOf = new Map<string, UpstreamTarget>();

  for (const [providerId, p] of Object.entries(config.providers)) {
    const families: ApiFamily[] = p.kind === 'mock' ? ['openai', 'anthropic'] : [p.kind];
    for (const family of families) {
      let base = p.baseUrl ?? mockUrl;
      if (base === undefined)
        throw new Error(`provider ${providerId}: kind mock without baseUrl needs the embedded mock`);
      // The mock speaks both APIs under one origin; its OpenAI base carries /v1 like api.openai.com/v1.
      if (
        p.kind === 'mock' &&
        family === 'openai' &&
        !new URL(base).pathname.replace(/\/+$/, '').endsWith('/v1')
      )
        base = `${base.replace(/\/+$/, '')}/v1`;
      const url = new URL(base);
      let pool = pools.get(`${providerId}|${url.origin}`);
      if (!pool) {
        pool = new Pool(url.origin, {
          connections: p.connections,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          connect: { timeout: p.timeouts.connectMs },
          headersTimeout: p.timeouts.headersMs,
          bodyTimeout: p.timeouts.bodyMs,
        });
        pools.set(`${providerId}|${url.origin}`, pool);
      }
      const basePath = url.pathname.replace(/\/+$/, '');
      const q = new URLSearchParams({ ...Object.fromEntries(url.searchParams), ...p.query }).toString();
      const target: UpstreamTarget = Object.freeze({
        providerId,
        kind: p.kind,
        family,
        origin: url.origin,
        basePath,
        search: q ? `?${q}` : '',
        auth: authFor(p, family, providerKeys.get(providerId)),
        staticHeaders: Object.freeze(
          Object.fromEntries(Object.entries(p.headers).map(([k, v]) => [k.toLowerCase(), v])),
        ),
        pool,
        timeouts: p.timeouts,
        models: p.models,
      });
      targets.push(target);
      firstOf.set(`${family}|${providerId}`, target);
      for (const m of p.models) if (!byModel[family].has(m)) byModel[family].set(m, target);
    }
  }
  const defaults = {
    openai: config.defaults.openai ? firstOf.get(`openai|${config.defaults.openai}`) : undefined,
    anthropic: config.defaults.anthropic ? firstOf.get(`anthropic|${config.defaults.anthropic}`) : undefined,
  };
  // With a single provider for a family, it is the default without saying so.
  for (const fam of ['openai', 'anthropic'] as const) {
    const ofFam = targets.filter((t) => t.family === fam);
    if (!defaults[fam] && new Set(ofFam.map((t) => t.providerId)).size === 1) defaults[fam] = ofFam[0];
  }
  return {
    targets,
    pick: (family, model) => byModel[family].get(model) ?? defaults[family],
    byProvider: (family, providerId) => firstOf.get(`${family}|${providerId}`),
    models: (family) => [...byModel[family].keys()],
    close: async () => {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
