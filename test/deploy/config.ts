/** Shared by the deploy tests: the repository's paths and the deploy config as the gateway itself reads it. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify } from 'yaml';
import { type LoadedConfig, parseConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEPLOY = join(REPO, 'deploy');

/** Top-level config sections the gateway's schema does not know yet (its strict schema would reject them). */
export const PENDING_SECTIONS = ['counters'].filter((k) => !(k in configSchema.shape));

/**
 * Validates a deploy config with the gateway's own loader (interpolation, schema, keys and tokens from `env`).
 * Sections listed in PENDING_SECTIONS (Redis `counters`, until the schema has it) are taken out first and
 * returned for the caller to check by hand; once the schema knows them they are validated like the rest.
 */
export function loadDeployConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
): { loaded: LoadedConfig; pending: Record<string, unknown> } {
  const raw = parseYaml(text) as Record<string, unknown>;
  const pending: Record<string, unknown> = {};
  for (const k of PENDING_SECTIONS)
    if (k in raw) {
      pending[k] = raw[k];
      delete raw[k];
    }
  return { loaded: parseConfig(stringify(raw), file, env), pending };
}

/**
 * The environment variables a config needs: `${NAME}` references without a default, plus the variables named
 * by `apiKeyEnv` and by `env:` keys and tokens (active YAML only: commented-out blocks do not count).
 */
export function requiredEnv(text: string): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown, key: string | undefined): void => {
    if (typeof node === 'string') {
      for (const m of node.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) if (!m[2]) names.add(m[1]!);
      if (key === 'apiKeyEnv' || key === 'env') names.add(node);
    } else if (Array.isArray(node)) for (const v of node) walk(v, undefined);
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, k);
  };
  walk(parseYaml(text), undefined);
  return names;
}
