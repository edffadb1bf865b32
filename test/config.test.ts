import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, hashKey, type LoadedConfig, loadConfig, parseConfig } from '../src/config/load.ts';

const HASH = hashKey('rf-static-key');

/** A minimal valid document: one mock provider, one application with a hashed key. */
const MINIMAL = `
providers:
  mock: { kind: mock }
applications:
  - id: app
    keys: [{ id: k1, sha256: ${HASH} }]
`;

type Env = Record<string, string | undefined>;

/** The ConfigError `parseConfig` throws for `text` (fails the test when it loads instead). */
function errorOf(text: string, env: Env = {}, overrides = {}): ConfigError {
  try {
    parseConfig(text, 'test.yaml', env, overrides);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

function isDeeplyFrozen(v: unknown, seen = new Set<unknown>()): boolean {
  if (v === null || typeof v !== 'object' || seen.has(v)) return true;
  seen.add(v);
  return Object.isFrozen(v) && Object.values(v).every((x) => isDeeplyFrozen(x, seen));
}

/** A document whose `providers` map is the given YAML (indented two spaces), plus `rest` at the top level. */
function withProviders(providers: string, rest = ''): string {
  return `
providers:
${providers}
applications:
  - id: app
    keys: [{ id: k1, sha256: ${HASH} }]
${rest}`;
}

describe('parseConfig: a valid document', () => {
  it('loads a minimal config with defaults filled in, deeply frozen', () => {
    const loaded = parseConfig(MINIMAL, 'min.yaml', {});
    expect(loaded.file).toBe('min.yaml');
    expect(loaded.config.listeners).toEqual({
      data: { host: '127.0.0.1', port: 8080 },
      admin: { host: '127.0.0.1', port: 8081 },
    });
    expect(loaded.config.limits).toEqual({ maxBodyBytes: 8 * 1024 * 1024, shutdownGraceMs: 30_000 });
    expect(loaded.config.log.level).toBe('info');
    expect(loaded.config.providers.mock?.timeouts.headersMs).toBe(300_000);
    expect(loaded.config.applications[0]?.tags).toEqual([]);

    expect(Object.isFrozen(loaded)).toBe(true);
    expect(isDeeplyFrozen(loaded.config)).toBe(true);
    // Frozen, not just flagged: writes throw in strict-mode code.
    const providers = loaded.config.providers as Record<string, { models: string[] }>;
    expect(() => providers.mock!.models.push('x')).toThrow(TypeError);
    expect(() => {
      (loaded.config.limits as { maxBodyBytes: number }).maxBodyBytes = 1;
    }).toThrow(TypeError);
    expect(loaded.config.limits.maxBodyBytes).toBe(8 * 1024 * 1024);
  });

  it('a listener given only a host keeps its default port', () => {
    const l = parseConfig(
      `${MINIMAL}listeners: { data: { host: 0.0.0.0 }, admin: { port: "9001" } }\n`,
      'f',
      {},
    ).config.listeners;
    expect(l).toEqual({ data: { host: '0.0.0.0', port: 8080 }, admin: { host: '127.0.0.1', port: 9001 } });
  });

  it('parses byte sizes', () => {
    const sizes = { '512kb': 512 * 1024, '4mb': 4 * 1024 * 1024, '1.5kb': 1536, 1000: 1000 };
    for (const [text, bytes] of Object.entries(sizes)) {
      const loaded = parseConfig(`${MINIMAL}limits: { maxBodyBytes: ${text} }\n`, 'f', {});
      expect(loaded.config.limits.maxBodyBytes).toBe(bytes);
    }
    expect(errorOf(`${MINIMAL}limits: { maxBodyBytes: 10 parsecs }\n`).issues).toEqual([
      'limits.maxBodyBytes: expected a size such as 10mb, 512kb or a byte count',
    ]);
  });
});

describe('parseConfig: errors name the field path', () => {
  it('an unknown field at the top level', () => {
    const err = errorOf(`${MINIMAL}bogus: 1\n`);
    expect(err.issues).toEqual(['(root): unknown field(s) bogus']);
    expect(err.message).toContain('invalid configuration test.yaml');
    expect(err.message).toContain('unknown field(s) bogus');
  });

  it('an unknown field inside a provider', () => {
    const err = errorOf(withProviders('  mock: { kind: mock, bogus: true, other: 2 }'));
    expect(err.issues).toEqual(['providers.mock: unknown field(s) bogus, other']);
  });

  it('an unknown field inside an application and inside one of its keys', () => {
    const err = errorOf(`
providers: { mock: { kind: mock } }
applications:
  - id: app
    colour: blue
    keys: [{ id: k1, sha256: ${HASH}, note: x }]
`);
    expect([...err.issues].sort()).toEqual([
      'applications[0].keys[0]: unknown field(s) note',
      'applications[0]: unknown field(s) colour',
    ]);
  });

  it('an unknown field deeper down (provider timeouts, listeners)', () => {
    const err = errorOf(
      withProviders(
        '  mock: { kind: mock, timeouts: { connectMs: 5, readMs: 5 } }',
        'listeners: { udp: {} }',
      ),
    );
    expect(err.issues).toEqual(
      expect.arrayContaining([
        'providers.mock.timeouts: unknown field(s) readMs',
        'listeners: unknown field(s) udp',
      ]),
    );
  });

  it('a wrong enum value or type names the path', () => {
    const kind = errorOf(withProviders('  x: { kind: gemini, baseUrl: "https://example.com" }'));
    expect(kind.issues).toHaveLength(1);
    expect(kind.issues[0]).toMatch(/^providers\.x\.kind: /);
    expect(kind.issues[0]).toContain('openai');

    const type = errorOf(withProviders('  mock: { kind: mock, connections: many }'));
    expect(type.issues).toEqual([expect.stringMatching(/^providers\.mock\.connections: .*number/)]);

    const level = errorOf(`${MINIMAL}log: { level: loud }\n`);
    expect(level.issues).toEqual([expect.stringMatching(/^log\.level: /)]);

    const port = errorOf(`${MINIMAL}listeners: { data: { port: 70000 } }\n`);
    expect(port.issues).toEqual([expect.stringMatching(/^listeners\.data\.port: /)]);
    // An empty value is an error, not silently port 0 (an ephemeral port).
    for (const empty of ['port:', 'port: ""', 'port: "80a"', 'port: true'])
      expect(errorOf(`${MINIMAL}listeners: { admin: { ${empty} } }\n`).issues).toEqual([
        expect.stringMatching(/^listeners\.admin\.port: /),
      ]);

    const appId = errorOf(`
providers: { mock: { kind: mock } }
applications: [{ id: "has space", keys: [{ id: k1, sha256: ${HASH} }] }]
`);
    expect(appId.issues).toEqual(['applications[0].id: expected an id of letters, digits, . _ -']);
  });

  it('every problem is reported, not only the first', () => {
    const err = errorOf(`
providers: { mock: { kind: nope } }
applications: []
log: { level: loud }
`);
    expect(err.issues.map((i) => i.split(':')[0])).toEqual(
      expect.arrayContaining(['providers.mock.kind', 'applications', 'log.level']),
    );
  });

  it('an empty providers map and an empty document are errors', () => {
    expect(errorOf(withProviders('  {}')).issues).toEqual(['providers: at least one provider']);
    expect(errorOf('').issues).toEqual([
      expect.stringMatching(/^providers: /),
      expect.stringMatching(/^applications: /),
    ]);
  });

  it('a document that is not a mapping is an error, also with port overrides', () => {
    expect(errorOf('[1, 2]').issues).toEqual([expect.stringMatching(/^\(root\): .*object/)]);
    // Port overrides used to write into the parsed document and crashed with a TypeError on a scalar.
    expect(errorOf('just a string', { PORT: '9000' }).issues).toEqual([
      expect.stringMatching(/^\(root\): .*object/),
    ]);
    expect(errorOf(`${MINIMAL}listeners: nope\n`, {}, { port: 1, adminPort: 2 }).issues).toEqual([
      expect.stringMatching(/^listeners: .*object/),
    ]);
  });
});

describe('parseConfig: environment interpolation', () => {
  it(`replaces \${NAME} and \${NAME:-default}`, () => {
    const loaded = parseConfig(
      `${MINIMAL}listeners:
  data: { host: "\${HOST}", port: "\${DATA_PORT:-9100}" }
  admin: { host: "\${ADMIN_HOST:-127.0.0.2}", port: "\${ADMIN_PORT_X:-9101}" }
`,
      'f',
      { HOST: '0.0.0.0', ADMIN_PORT_X: '9200' },
    );
    expect(loaded.config.listeners).toEqual({
      data: { host: '0.0.0.0', port: 9100 },
      admin: { host: '127.0.0.2', port: 9200 },
    });
  });

  it('interpolates inside longer strings, lists and nested maps', () => {
    const loaded = parseConfig(
      withProviders(`  up:
    kind: openai
    baseUrl: "https://\${API_HOST}/v\${API_VER:-1}"
    headers: { x-team: "team-\${TEAM}" }
    models: ["\${MODEL}", fixed]`),
      'f',
      { API_HOST: 'llm.example.com', TEAM: 'blue', MODEL: 'gpt-x' },
    );
    const up = loaded.config.providers.up!;
    expect(up.baseUrl).toBe('https://llm.example.com/v1');
    expect(up.headers).toEqual({ 'x-team': 'team-blue' });
    expect(up.models).toEqual(['gpt-x', 'fixed']);
  });

  it('an unset variable is an error naming the variable and the path', () => {
    const err = errorOf(`${MINIMAL}listeners: { data: { host: "\${NOPE_HOST}" } }\n`);
    expect(err.issues).toEqual(['listeners.data.host: environment variable NOPE_HOST is not set']);
    const inList = errorOf(withProviders(`  mock: { kind: mock, models: [a, "\${MISSING_MODEL}"] }`));
    expect(inList.issues).toEqual([
      'providers.mock.models[1]: environment variable MISSING_MODEL is not set',
    ]);
  });

  it('an empty variable counts as unset (so the default applies)', () => {
    const loaded = parseConfig(`${MINIMAL}listeners: { data: { host: "\${H:-10.0.0.1}" } }\n`, 'f', {
      H: '',
    });
    expect(loaded.config.listeners.data.host).toBe('10.0.0.1');
    expect(errorOf(`${MINIMAL}listeners: { data: { host: "\${H}" } }\n`, { H: '' }).issues).toEqual([
      'listeners.data.host: environment variable H is not set',
    ]);
  });

  it('$$ is a literal $, and is not the start of a reference', () => {
    const loaded = parseConfig(
      withProviders(
        '  mock: { kind: mock, headers: { x-price: "$$5", x-ref: "$${NOT_A_VAR}", x-lone: "a$b" } }',
      ),
      'f',
      {},
    );
    expect(loaded.config.providers.mock?.headers).toEqual({
      'x-price': '$5',
      'x-ref': `\${NOT_A_VAR}`,
      'x-lone': 'a$b',
    });
  });
});

describe('parseConfig: ports from env and flags', () => {
  const FILE = `${MINIMAL}listeners: { data: { port: 7000 }, admin: { port: 7001 } }\n`;

  it('the file alone', () => {
    const l = parseConfig(FILE, 'f', {}).config.listeners;
    expect([l.data.port, l.admin.port]).toEqual([7000, 7001]);
  });

  it('PORT and ADMIN_PORT win over the file', () => {
    const l = parseConfig(FILE, 'f', { PORT: '7100', ADMIN_PORT: '7101' }).config.listeners;
    expect([l.data.port, l.admin.port]).toEqual([7100, 7101]);
    expect(l.data.host).toBe('127.0.0.1');
  });

  it('flags win over PORT and ADMIN_PORT, each independently', () => {
    const env = { PORT: '7100', ADMIN_PORT: '7101' };
    const both = parseConfig(FILE, 'f', env, { port: 0, adminPort: 7201 }).config.listeners;
    expect([both.data.port, both.admin.port]).toEqual([0, 7201]);
    const one = parseConfig(FILE, 'f', env, { port: 7200 }).config.listeners;
    expect([one.data.port, one.admin.port]).toEqual([7200, 7101]);
  });

  it('overrides work when the file has no listeners section', () => {
    const l = parseConfig(MINIMAL, 'f', { ADMIN_PORT: '7301' }, { port: 7300 }).config.listeners;
    expect(l).toEqual({ data: { host: '127.0.0.1', port: 7300 }, admin: { host: '127.0.0.1', port: 7301 } });
  });

  it('a non-numeric PORT is an error at the listener port', () => {
    expect(errorOf(MINIMAL, { PORT: 'eighty' }).issues).toEqual([
      expect.stringMatching(/^listeners\.data\.port: /),
    ]);
  });
});

describe('parseConfig: keys and references', () => {
  it('resolves provider keys from apiKeyEnv, and an unset one is an error', () => {
    const doc = withProviders(`  up:
    kind: anthropic
    baseUrl: https://api.anthropic.com
    apiKeyEnv: UP_KEY`);
    const loaded = parseConfig(doc, 'f', { UP_KEY: 'sk-up-123' });
    expect(loaded.providerKeys.get('up')).toBe('sk-up-123');
    expect(errorOf(doc, {}).issues).toEqual([
      'providers.up.apiKeyEnv: environment variable UP_KEY is not set',
    ]);
    expect(errorOf(doc, { UP_KEY: '' }).issues).toEqual([
      'providers.up.apiKeyEnv: environment variable UP_KEY is not set',
    ]);
  });

  it('app keys by sha256: and by env: both resolve into appKeys, keyed by the sha256 of the key', () => {
    const loaded = parseConfig(
      `
providers: { mock: { kind: mock } }
applications:
  - id: alpha
    tags: [internal, batch]
    keys:
      - { id: alpha-static, sha256: ${HASH} }
      - { id: alpha-env, env: ALPHA_KEY }
  - id: beta
    keys: [{ id: beta-env, env: BETA_KEY }]
`,
      'f',
      { ALPHA_KEY: 'rf-alpha-secret', BETA_KEY: 'rf-beta-secret' },
    );
    expect(loaded.appKeys.size).toBe(3);
    expect(loaded.appKeys.get(hashKey('rf-static-key'))).toEqual({
      appId: 'alpha',
      keyId: 'alpha-static',
      tags: ['internal', 'batch'],
    });
    expect(loaded.appKeys.get(hashKey('rf-alpha-secret'))).toEqual({
      appId: 'alpha',
      keyId: 'alpha-env',
      tags: ['internal', 'batch'],
    });
    expect(loaded.appKeys.get(hashKey('rf-beta-secret'))?.keyId).toBe('beta-env');
    // Only digests are held: the secret itself is no key of the map.
    expect(loaded.appKeys.has('rf-alpha-secret')).toBe(false);
    expect(hashKey('rf-alpha-secret')).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(loaded.appKeys.get(HASH))).toBe(true);
  });

  it('an env: key whose variable is unset is an error naming the key', () => {
    const err = errorOf(`
providers: { mock: { kind: mock } }
applications: [{ id: a, keys: [{ id: k, env: APP_KEY_UNSET }] }]
`);
    expect(err.issues).toEqual([
      'applications[0].keys[0].env: environment variable APP_KEY_UNSET is not set',
    ]);
  });

  it('a malformed sha256 is rejected', () => {
    const err = errorOf(`
providers: { mock: { kind: mock } }
applications: [{ id: a, keys: [{ id: k, sha256: ${HASH.toUpperCase()} }] }]
`);
    expect(err.issues).toEqual(['applications[0].keys[0].sha256: expected 64 lowercase hex characters']);
  });

  it('duplicate application ids, key ids, and the same key twice are rejected', () => {
    const dupApp = errorOf(`
providers: { mock: { kind: mock } }
applications:
  - { id: a, keys: [{ id: k1, sha256: ${HASH} }] }
  - { id: a, keys: [{ id: k2, sha256: ${hashKey('other')} }] }
`);
    expect(dupApp.issues).toEqual(['applications[1].id: duplicate application id "a"']);

    const dupKey = errorOf(`
providers: { mock: { kind: mock } }
applications:
  - { id: a, keys: [{ id: k1, sha256: ${HASH} }] }
  - { id: b, keys: [{ id: k1, sha256: ${hashKey('other')} }] }
`);
    expect(dupKey.issues).toEqual(['applications[1].keys[0].id: duplicate key id "k1"']);

    const sameSecret = errorOf(
      `
providers: { mock: { kind: mock } }
applications:
  - { id: a, keys: [{ id: k1, sha256: ${HASH} }] }
  - { id: b, keys: [{ id: k2, env: SAME }] }
`,
      { SAME: 'rf-static-key' },
    );
    expect(sameSecret.issues).toEqual(['applications[1].keys[0]: the same key is configured twice']);
  });

  it('an application needs at least one key', () => {
    expect(
      errorOf(`
providers: { mock: { kind: mock } }
applications: [{ id: a, keys: [] }]
`).issues,
    ).toEqual([expect.stringMatching(/^applications\[0\]\.keys: /)]);
  });

  it('defaults must name a known provider of the right family', () => {
    const providers = `  oa: { kind: openai, baseUrl: "https://api.openai.com/v1" }
  an: { kind: anthropic, baseUrl: "https://api.anthropic.com" }
  mk: { kind: mock }`;
    expect(errorOf(withProviders(providers, 'defaults: { openai: ghost }')).issues).toEqual([
      'defaults.openai: unknown provider "ghost"',
    ]);
    expect(errorOf(withProviders(providers, 'defaults: { openai: an }')).issues).toEqual([
      'defaults.openai: provider "an" is anthropic, not openai',
    ]);
    expect(errorOf(withProviders(providers, 'defaults: { anthropic: oa }')).issues).toEqual([
      'defaults.anthropic: provider "oa" is openai, not anthropic',
    ]);
    // The right family, or a mock (which speaks both), is fine.
    const ok = parseConfig(withProviders(providers, 'defaults: { openai: oa, anthropic: mk }'), 'f', {});
    expect(ok.config.defaults).toEqual({ openai: 'oa', anthropic: 'mk' });
  });

  it('a non-mock provider needs a baseUrl, and it must be http(s)', () => {
    expect(errorOf(withProviders('  oa: { kind: openai }')).issues).toEqual([
      'providers.oa.baseUrl: baseUrl is required unless kind is mock',
    ]);
    expect(errorOf(withProviders('  oa: { kind: openai, baseUrl: "ftp://x.example" }')).issues).toEqual([
      expect.stringMatching(/^providers\.oa\.baseUrl: /),
    ]);
  });
});

describe('loadConfig: files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringfence-config-'));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('loads a file and records its path', () => {
    const f = write('ok.yaml', MINIMAL);
    const loaded: LoadedConfig = loadConfig(f, {}, { port: 0 });
    expect(loaded.file).toBe(f);
    expect(loaded.config.listeners.data.port).toBe(0);
  });

  it('a YAML syntax error is a ConfigError, not a crash', () => {
    const f = write('broken.yaml', 'providers:\n  mock: { kind: mock\napplications: [\n');
    const err = (() => {
      try {
        loadConfig(f, {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]).toMatch(/^YAML: /);
    expect((err as ConfigError).message).toContain(f);
  });

  it('a duplicate key in the YAML is an error', () => {
    const f = write('dup.yaml', `${MINIMAL}log: { level: info }\nlog: { level: debug }\n`);
    expect(() => loadConfig(f, {})).toThrow(ConfigError);
  });

  it('a missing file is a ConfigError naming the file', () => {
    const f = join(dir, 'does-not-exist.yaml');
    let err: unknown;
    try {
      loadConfig(f, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual(['cannot read file: ENOENT']);
    expect((err as ConfigError).message).toContain('does-not-exist.yaml');
  });

  it('a directory is a ConfigError too', () => {
    expect(() => loadConfig(dir, {})).toThrow(ConfigError);
  });

  it('the shipped config/default.yaml loads with an empty environment', () => {
    const loaded = loadConfig(join(import.meta.dirname, '..', 'config', 'default.yaml'), {});
    expect(loaded.config.listeners.data).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(loaded.config.providers.mock?.kind).toBe('mock');
    expect(loaded.config.providers.mock?.baseUrl).toBeUndefined();
    expect(loaded.providerKeys.size).toBe(0);
    // The documented demo key works.
    expect(loaded.appKeys.get(hashKey('rf-demo-key'))).toEqual({
      appId: 'demo',
      keyId: 'demo-dev',
      tags: ['internal'],
    });
    expect(isDeeplyFrozen(loaded.config)).toBe(true);
    // Its interpolated host follows RINGFENCE_HOST.
    const moved = loadConfig(join(import.meta.dirname, '..', 'config', 'default.yaml'), {
      RINGFENCE_HOST: '0.0.0.0',
    });
    expect(moved.config.listeners.data.host).toBe('0.0.0.0');
  });
});
