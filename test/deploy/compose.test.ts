/**
 * deploy/compose.yaml, read as compose reads it (YAML with merge keys, `${VAR}` interpolation from deploy/.env,
 * here deploy/.env.example): the services and how they depend on each other, mounts, secrets, and the gateway
 * config it mounts loaded by the gateway's own loader. No container engine runs here to `docker compose up` it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEPLOY, loadDeployConfig, PENDING_SECTIONS, REPO, requiredEnv } from './config.ts';
import { execForm, parseDockerfile } from './dockerfile.ts';

// biome-ignore lint/suspicious/noExplicitAny: compose files are plain parsed YAML, checked field by field below
type Any = any;

const composeText = readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8');
const compose = parseYaml(composeText, { merge: true }) as Any;
const services = compose.services as Record<string, Any>;
const gateways = Object.keys(services).filter((s) => /^gateway-\d+$/.test(s));

/** deploy/.env.example as compose would read deploy/.env: KEY=VALUE lines. */
const dotenv: Record<string, string> = Object.fromEntries(
  readFileSync(join(DEPLOY, '.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$$`. */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (whole, name: string | undefined, colon: string | undefined, op: string | undefined, arg: string) => {
      if (whole === '$$') return '$';
      const v = env[name!];
      const missing = v === undefined || (colon === ':' && v === '');
      if (!missing) return v!;
      if (op === '-') return arg;
      if (op === '?') throw new Error(`required variable ${name} is missing: ${arg}`);
      return '';
    },
  );
}

/** The variables a compose string references, and how: required (`:?`), with a default, or plain. */
function references(value: string): { name: string; op: string | undefined; arg: string | undefined }[] {
  return [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}/g)].map((m) => ({
    name: m[1]!,
    op: m[2],
    arg: m[3],
  }));
}

/** A service's environment, interpolated with `env`. */
function environment(service: string, env: Record<string, string | undefined>): Record<string, string> {
  const e = services[service].environment;
  expect(Array.isArray(e), `${service}: environment as a map`).toBe(false);
  return Object.fromEntries(Object.entries(e ?? {}).map(([k, v]) => [k, interpolate(String(v), env)]));
}

/** Short-syntax bind mounts: host path (resolved from deploy/) → container path. Named volumes are skipped. */
function binds(service: string): { host: string; target: string; readOnly: boolean }[] {
  return (services[service].volumes ?? []).flatMap((v: Any) => {
    expect(typeof v, `${service}: short volume syntax`).toBe('string');
    const [src, target, mode] = (v as string).split(':');
    if (!src!.startsWith('.') && !src!.startsWith('/')) return [];
    return [{ host: resolve(DEPLOY, src!), target: target!, readOnly: mode === 'ro' }];
  });
}

function publishedPorts(service: string): string[] {
  return (services[service].ports ?? []).map(String);
}

const dockerfileCmd = (() => {
  const cmd = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))
    .at(-1)!
    .instructions.filter((i) => i.keyword === 'CMD')
    .at(-1)!;
  return execForm(cmd.args)!;
})();
const deployConfigText = readFileSync(join(DEPLOY, 'ringfence.yaml'), 'utf8');
const deployConfig = parseYaml(deployConfigText) as Any;

describe('compose.yaml: services', () => {
  it('runs two gateways, PostgreSQL 15, Redis 7, Prometheus and Grafana', () => {
    expect(gateways).toEqual(['gateway-1', 'gateway-2']);
    expect(Object.keys(services).sort()).toEqual(
      [...gateways, 'grafana', 'postgres', 'prometheus', 'redis'].sort(),
    );
    expect(services.postgres.image).toMatch(/^postgres:15(\.|-|$)/);
    expect(services.redis.image).toMatch(/^redis:7(\.|-|$)/);
    expect(services.prometheus.image).toMatch(/^prom\/prometheus:v\d/);
    expect(services.grafana.image).toMatch(/^grafana\/grafana(-oss)?:\d/);
  });

  it('builds both gateways from the repository’s Dockerfile and starts them with its CMD', () => {
    for (const g of gateways) {
      const s = services[g];
      expect(resolve(DEPLOY, s.build.context), g).toBe(REPO);
      expect(s.build.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
      expect(existsSync(join(REPO, s.build.dockerfile))).toBe(true);
      expect(s.command ?? dockerfileCmd).toEqual(dockerfileCmd);
      expect(s.read_only, `${g}: read-only root filesystem`).toBe(true);
    }
    expect(services['gateway-1'].image).toBe(services['gateway-2'].image);
    const ids = gateways.map((g) => services[g].environment.RINGFENCE_REPLICA_ID);
    expect(new Set(ids).size).toBe(gateways.length);
  });

  it('gives every service a healthcheck', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck?.test, name).toBeDefined();
      expect(s.healthcheck.disable, name).not.toBe(true);
      expect(s.healthcheck.test[0], name).toMatch(/^CMD(-SHELL)?$/);
    }
    expect(services.postgres.healthcheck.test.join(' ')).toMatch(/pg_isready/);
    expect(services.redis.healthcheck.test.join(' ')).toMatch(/redis-cli ping/);
    for (const g of gateways) expect(services[g].healthcheck.test.join(' ')).toMatch(/8080\/readyz/);
  });

  it('starts each service once what it needs is healthy', () => {
    const conditions = (s: string) =>
      Object.fromEntries(
        Object.entries(services[s].depends_on ?? {}).map(([k, v]) => [k, (v as Any).condition]),
      );
    for (const g of gateways)
      expect(conditions(g)).toEqual({ postgres: 'service_healthy', redis: 'service_healthy' });
    expect(conditions('prometheus')).toEqual(Object.fromEntries(gateways.map((g) => [g, 'service_healthy'])));
    expect(conditions('grafana')).toEqual({ prometheus: 'service_healthy' });
  });

  it('publishes ports on the host’s loopback only: the gateways’ data ports, one admin port, the UIs', () => {
    for (const [name] of Object.entries(services))
      for (const p of publishedPorts(name)) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    expect(publishedPorts('postgres')).toEqual([]);
    expect(publishedPorts('redis')).toEqual([]);
    const admin = String(deployConfig.listeners.admin.port);
    const data = String(deployConfig.listeners.data.port);
    for (const g of gateways)
      expect(
        publishedPorts(g).some((p) => p.endsWith(`:${data}`)),
        g,
      ).toBe(true);
    expect(gateways.filter((g) => publishedPorts(g).some((p) => p.endsWith(`:${admin}`)))).toEqual([
      'gateway-1',
    ]);
  });
});

describe('compose.yaml: mounts', () => {
  it('mounts only host paths that exist in the repository', () => {
    for (const name of Object.keys(services))
      for (const b of binds(name)) {
        expect(b.host.startsWith(REPO), `${name}: ${b.host} inside the repository`).toBe(true);
        expect(existsSync(b.host), `${name}: ${b.host}`).toBe(true);
        expect(b.readOnly, `${name}: ${b.target} read-only`).toBe(true);
      }
  });

  it('mounts the gateway config and the bundle it names at /etc/ringfence', () => {
    const configPath = dockerfileCmd[dockerfileCmd.indexOf('--config') + 1]!;
    for (const g of gateways) {
      const mounts = new Map(binds(g).map((b) => [b.target, b.host]));
      expect(mounts.get(configPath)).toBe(join(DEPLOY, 'ringfence.yaml'));
      const bundle = posix.resolve(posix.dirname(configPath), deployConfig.policy.bundle);
      expect(mounts.get(bundle)).toBe(join(REPO, 'policy-bundles', 'production', 'bundle.yaml'));
    }
  });

  it('runs Prometheus on deploy/prometheus.yml, its rule file mounted beside it, scraping both admin ports', () => {
    const s = services.prometheus;
    const flag = (s.command as string[]).find((c) => c.startsWith('--config.file='))!;
    const configPath = flag.slice('--config.file='.length);
    const mounts = new Map(binds('prometheus').map((b) => [b.target, b.host]));
    expect(mounts.get(configPath)).toBe(join(DEPLOY, 'prometheus.yml'));
    const prom = parseYaml(readFileSync(join(DEPLOY, 'prometheus.yml'), 'utf8')) as Any;
    const base = parseYaml(
      readFileSync(join(REPO, 'grafana', 'prometheus', 'prometheus.yml'), 'utf8'),
    ) as Any;
    expect(prom.rule_files).toEqual(base.rule_files);
    expect(prom.global).toEqual(base.global);
    for (const rule of prom.rule_files as string[])
      expect(mounts.get(posix.resolve(posix.dirname(configPath), rule))).toBe(
        join(REPO, 'grafana', 'prometheus', rule),
      );
    const targets = (prom.scrape_configs as Any[]).flatMap((c) =>
      c.static_configs.flatMap((sc: Any) => sc.targets as string[]),
    );
    const admin = deployConfig.listeners.admin.port;
    expect(targets.sort()).toEqual(gateways.map((g) => `${g}:${admin}`).sort());
    expect(prom.scrape_configs[0].metrics_path).toBe('/metrics');
  });

  it('deploy/prometheus.yml and its rules pass promtool check config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-compose-prom-'));
    copyFileSync(join(DEPLOY, 'prometheus.yml'), join(dir, 'prometheus.yml'));
    copyFileSync(join(REPO, 'grafana', 'prometheus', 'alerts.yaml'), join(dir, 'alerts.yaml'));
    // promtool comes with Debian's prometheus package, which .ci/run installs (as for `npm run test:rules`).
    const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    expect(r.error, 'promtool not found: apt-get install prometheus').toBeUndefined();
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('provisions Grafana from grafana/provisioning with the dashboards where the provider looks for them', () => {
    const mounts = new Map(binds('grafana').map((b) => [b.target, b.host]));
    expect(mounts.get('/etc/grafana/provisioning')).toBe(join(REPO, 'grafana', 'provisioning'));
    const provider = parseYaml(
      readFileSync(join(REPO, 'grafana', 'provisioning', 'dashboards', 'ringfence.yaml'), 'utf8'),
    ) as Any;
    expect(mounts.get(provider.providers[0].options.path)).toBe(join(REPO, 'grafana', 'dashboards'));
    const ds = parseYaml(
      readFileSync(join(REPO, 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8'),
    ) as Any;
    const url = new URL(ds.datasources[0].url);
    expect(services[url.hostname], `datasource host ${url.hostname} is a service`).toBeDefined();
    expect(publishedPorts(url.hostname).some((p) => p.endsWith(`:${url.port}`))).toBe(true);
    const env = services.grafana.environment;
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(references(env.GF_SECURITY_ADMIN_PASSWORD).map((r) => r.op)).toEqual(['?']);
  });
});

describe('compose.yaml: secrets and the gateway config', () => {
  const secretLike = /PASSWORD|TOKEN|_KEY$|SECRET/;

  it('writes no secret value: credentials are variable references with no default', () => {
    for (const [name, s] of Object.entries(services))
      for (const [k, raw] of Object.entries(s.environment ?? {})) {
        const value = String(raw);
        const refs = references(value);
        for (const r of refs) if (r.op === '-') expect(r.arg, `${name}.${k}: default of ${r.name}`).toBe('');
        // With every variable empty, what is left holds no credential: no URL password, no key or token.
        const rest = value.replace(/\$\{[^}]*\}/g, '');
        if (/^[a-z]+:\/\//.test(rest)) expect(new URL(rest).password, `${name}.${k}`).toBe('');
        if (secretLike.test(k)) {
          expect(refs.length, `${name}.${k} reads a variable`).toBeGreaterThan(0);
          expect(rest, `${name}.${k}`).toBe('');
        }
      }
    // None of the example values (or anything like them) is written in the file.
    for (const v of Object.values(dotenv).filter(Boolean)) expect(composeText).not.toContain(v);
    expect(composeText).not.toMatch(/change-me|sk-[A-Za-z0-9]{8,}/i);
  });

  it('requires the credentials (`:?` references) and passes provider keys through when set', () => {
    for (const g of gateways) {
      const env = services[g].environment;
      for (const k of ['RINGFENCE_APP_KEY', 'RINGFENCE_ADMIN_TOKEN', 'RINGFENCE_APPROVER_TOKEN'])
        expect(env[k], `${g}.${k}`).toMatch(new RegExp(`^\\$\\{${k}:\\?[^}]+\\}$`));
      for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY']) expect(env[k], `${g}.${k}`).toBe(`\${${k}:-}`);
    }
    expect(() => environment('gateway-1', {})).toThrow(/required variable/);
  });

  it('.env.example names every variable compose.yaml reads, and deploy/.env stays out of git', () => {
    const strings: string[] = [];
    const walk = (n: unknown): void => {
      if (typeof n === 'string') strings.push(n);
      else if (n && typeof n === 'object') for (const v of Object.values(n)) walk(v);
    };
    walk(compose);
    const names = new Set(strings.flatMap((v) => references(v).map((r) => r.name)));
    expect(names.size).toBeGreaterThan(5);
    for (const n of names) expect(Object.keys(dotenv), n).toContain(n);
    expect(readFileSync(join(DEPLOY, '.gitignore'), 'utf8').split('\n')).toContain('.env');
  });

  it('gives each gateway what deploy/ringfence.yaml needs, and the gateway’s loader accepts it', () => {
    const pg = environment('postgres', dotenv);
    for (const g of gateways) {
      const env = environment(g, dotenv);
      for (const name of requiredEnv(deployConfigText)) expect(env[name], `${g}: ${name}`).toBeTruthy();
      const db = new URL(env.DATABASE_URL!);
      expect(db.hostname).toBe('postgres');
      expect(db.username).toBe(pg.POSTGRES_USER);
      expect(db.password).toBe(pg.POSTGRES_PASSWORD);
      expect(db.pathname).toBe(`/${pg.POSTGRES_DB}`);
      const redis = new URL(env.REDIS_URL!);
      expect(services[redis.hostname], 'REDIS_URL names the redis service').toBe(services.redis);
      const { loaded, pending } = loadDeployConfig(deployConfigText, join(DEPLOY, 'ringfence.yaml'), env);
      expect(loaded.config.store).toMatchObject({ kind: 'postgres', url: env.DATABASE_URL });
      expect(loaded.config.listeners.data.host).toBe('0.0.0.0');
      // Mock providers only by default: up with no provider key.
      expect(Object.values(loaded.config.providers).every((p) => p.kind === 'mock')).toBe(true);
      expect(loaded.providerKeys.size).toBe(0);
      if (PENDING_SECTIONS.includes('counters')) expect(pending.counters).toMatchObject({ kind: 'redis' });
      else expect((loaded.config as Any).counters).toMatchObject({ kind: 'redis', url: env.REDIS_URL });
    }
  });

  it('gives the gateways more time to stop than the config’s shutdown grace', () => {
    for (const g of gateways) {
      const m = /^(\d+)s$/.exec(services[g].stop_grace_period);
      expect(m, `${g}: stop_grace_period in seconds`).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(deployConfig.limits.shutdownGraceMs / 1000);
    }
    expect(isAbsolute(DEPLOY)).toBe(true);
  });
});
