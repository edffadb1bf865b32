/**
 * Facts about the gateway image, read from the Dockerfile and .dockerignore (no container engine runs on the
 * development machines or in CI: deploy/verify-image-steps.sh runs the same steps by hand).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEPLOY, REPO } from './config.ts';
import {
  copyPaths,
  dockerignorePatterns,
  execForm,
  healthcheckCommand,
  type Instruction,
  isIgnored,
  parseDockerfile,
  parseInstructions,
  type Stage,
} from './dockerfile.ts';

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages.at(-1)!;
const deps = stages.find((s) => s.name === 'deps');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  devDependencies: Record<string, string>;
};
const ignore = dockerignorePatterns(readFileSync(join(REPO, '.dockerignore'), 'utf8'));

const all = (stage: Stage, keyword: string): Instruction[] =>
  stage.instructions.filter((i) => i.keyword === keyword);
const last = (stage: Stage, keyword: string): Instruction | undefined => all(stage, keyword).at(-1);
/** Source paths normalised: no `./` prefix, no trailing `/`. */
const norm = (p: string) => p.replace(/^\.\//, '').replace(/\/+$/, '') || '.';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('the Dockerfile reader', () => {
  it('joins continuations, drops comments, reads flags and stages', () => {
    const s = parseDockerfile(
      'ARG X=1\nFROM a:1 AS One\n# c\nRUN a \\\n  # inside\n  b\nCOPY --from=one --chown=1:1 x /y\n',
    );
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ from: 'a:1', name: 'one' });
    expect(s[0]!.instructions.map((i) => [i.keyword, i.flags, i.args.replace(/\s+/g, ' ')])).toEqual([
      ['RUN', {}, 'a b'],
      ['COPY', { from: 'one', chown: '1:1' }, 'x /y'],
    ]);
  });
  it('refuses what it does not understand', () => {
    expect(() => parseInstructions('# escape=`\nFROM a')).toThrow(/escape/);
    expect(() => parseInstructions('FROM a\nRUN <<EOF\necho\nEOF')).toThrow(/heredoc/);
    expect(() => parseDockerfile('RUN x\nFROM a')).toThrow(/before the first FROM/);
  });
  it('matches .dockerignore patterns the way Docker does for the forms used', () => {
    const p = dockerignorePatterns('# c\n/node_modules/\n**/state\n*.log\n!keep.log\n');
    expect(isIgnored('node_modules/x/y.js', p)).toBe(true);
    expect(isIgnored('src/node_modules', p)).toBe(false);
    expect(isIgnored('config/state/ring.json', p)).toBe(true);
    expect(isIgnored('state', p)).toBe(true);
    expect(isIgnored('a.log', p)).toBe(true);
    expect(isIgnored('keep.log', p)).toBe(false);
    expect(isIgnored('src/a.log', p)).toBe(false);
  });
});

describe('Dockerfile', () => {
  it('has a deps stage and a final stage, and the final stage is FROM node:24…-slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(deps, 'a stage named deps').toBeDefined();
    expect(final).not.toBe(deps);
    // node:24-slim or node:24.x(.y)-slim, optionally with a digest; the deps stage uses the same image.
    expect(final.from).toMatch(/^node:24(\.\d+){0,2}-slim(@sha256:[0-9a-f]{64})?$/);
    expect(deps!.from).toBe(final.from);
  });

  it('installs production dependencies only, from the lockfile, in the deps stage', () => {
    const run = all(deps!, 'RUN').map((r) => r.args);
    const install = run.find((r) => /\bnpm\s+ci\b/.test(r));
    expect(install, 'npm ci in the deps stage').toBeDefined();
    expect(install).toMatch(/--omit[= ]dev\b/);
    expect(install).toMatch(/--ignore-scripts\b/);
    expect(run.join('\n')).not.toMatch(/\bnpm\s+(install|i)\b/);
    const copied = all(deps!, 'COPY').flatMap((c) => copyPaths(c).sources.map(norm));
    expect(copied.sort()).toEqual(['package-lock.json', 'package.json']);
  });

  it('copies into the final stage only node_modules from deps and the runtime files', () => {
    const copies = [...all(final, 'COPY'), ...all(final, 'ADD')];
    expect(all(final, 'ADD'), 'COPY, not ADD').toEqual([]);
    const fromDeps = copies.filter((c) => c.flags.from !== undefined);
    expect(fromDeps.map((c) => [c.flags.from, copyPaths(c).sources.map(norm)])).toEqual([
      ['deps', ['/app/node_modules']],
    ]);
    const context = copies.filter((c) => c.flags.from === undefined).flatMap((c) => copyPaths(c).sources);
    expect(context.map(norm).sort()).toEqual(['bin', 'config', 'package.json', 'policy-bundles', 'src']);
  });

  it('never copies the whole context, tests, benchmarks, .git or node_modules from the context', () => {
    for (const stage of stages)
      for (const c of all(stage, 'COPY').filter((i) => i.flags.from === undefined))
        for (const src of copyPaths(c).sources.map(norm)) {
          expect(src, `line ${c.line}`).not.toMatch(/^(\.|\*|test|bench|\.git|node_modules|deploy)(\/|$)/);
          expect(src, `line ${c.line}: glob`).not.toMatch(/[*?[]/);
        }
  });

  it('names no devDependency in a COPY path', () => {
    const dev = Object.keys(pkg.devDependencies);
    expect(dev).toContain('node');
    for (const stage of stages)
      for (const c of all(stage, 'COPY')) {
        const { sources, dest } = copyPaths(c);
        for (const p of [...sources, dest])
          for (const segment of p.split('/'))
            expect(dev.includes(segment), `line ${c.line}: ${p} names devDependency ${segment}`).toBe(false);
      }
  });

  it('copies sources that exist and that .dockerignore leaves in the context', () => {
    for (const stage of stages)
      for (const c of all(stage, 'COPY').filter((i) => i.flags.from === undefined))
        for (const src of copyPaths(c).sources.map(norm)) {
          const abs = join(REPO, src);
          expect(statSync(abs, { throwIfNoEntry: false }), `${src} exists`).toBeDefined();
          const files = statSync(abs).isDirectory() ? listFiles(abs) : [abs];
          for (const f of files) {
            const rel = relative(REPO, f).split('\\').join('/');
            expect(isIgnored(rel, ignore), `${rel} is excluded by .dockerignore`).toBe(false);
          }
        }
  });

  it('runs as a non-root user, set before ENTRYPOINT and CMD', () => {
    const user = last(final, 'USER');
    expect(user, 'USER in the final stage').toBeDefined();
    const [name, group] = user!.args.split(':');
    expect(['root', '0']).not.toContain(name);
    expect(['root', '0']).not.toContain(group ?? '1000');
    // Numeric, so that Kubernetes' runAsNonRoot can verify it (deploy/k8s/deployment.yaml runs as the same uid).
    expect(name).toMatch(/^[1-9]\d*$/);
    for (const k of ['ENTRYPOINT', 'CMD']) {
      const at = last(final, k);
      expect(at, k).toBeDefined();
      expect(user!.line, `USER before ${k}`).toBeLessThan(at!.line);
    }
    // Nothing after USER switches back.
    expect(final.instructions.filter((i) => i.keyword === 'USER' && i.line > user!.line)).toEqual([]);
  });

  it('has a HEALTHCHECK on /healthz of the data port, with no curl', () => {
    const hc = last(final, 'HEALTHCHECK');
    expect(hc, 'HEALTHCHECK in the final stage').toBeDefined();
    const cmd = healthcheckCommand(hc!);
    expect(cmd).not.toBe('NONE');
    expect(Array.isArray(cmd), 'exec form').toBe(true);
    const argv = cmd as string[];
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toMatch(/127\.0\.0\.1:'\+\(process\.env\.PORT\|\|8080\)\+'\/healthz/);
    expect(argv.join(' ')).not.toMatch(/\b(curl|wget)\b/);
    expect(hc!.flags.timeout).toBeDefined();
  });

  it('starts `ringfence serve` with the config mounted at /etc/ringfence', () => {
    const entrypoint = execForm(last(final, 'ENTRYPOINT')!.args);
    const cmd = execForm(last(final, 'CMD')!.args);
    expect(entrypoint).toEqual(['node', pkg.bin.ringfence]);
    expect(cmd).toEqual(['serve', '--config', '/etc/ringfence/ringfence.yaml']);
    expect(last(final, 'WORKDIR')?.args).toBe('/app');
  });

  it('sets NODE_ENV=production, listens on every interface and exposes the data and admin ports', () => {
    const env = all(final, 'ENV')
      .map((e) => e.args)
      .join(' ');
    expect(env).toMatch(/\bNODE_ENV=production\b/);
    expect(env).toMatch(/\bRINGFENCE_HOST=0\.0\.0\.0\b/);
    expect(env).toMatch(/\bRINGFENCE_ADMIN_HOST=0\.0\.0\.0\b/);
    // The host variables are the ones the configs read.
    expect(readFileSync(join(REPO, 'config', 'default.yaml'), 'utf8')).toContain('${RINGFENCE_HOST:-');
    const deploy = parseYaml(readFileSync(join(DEPLOY, 'ringfence.yaml'), 'utf8')) as {
      listeners: { data: { host: string; port: number }; admin: { host: string; port: number } };
    };
    expect(deploy.listeners.data.host).toMatch(/^\$\{RINGFENCE_HOST:-/);
    expect(deploy.listeners.admin.host).toMatch(/^\$\{RINGFENCE_ADMIN_HOST:-/);
    const exposed = all(final, 'EXPOSE').flatMap((e) => e.args.split(/\s+/));
    expect(exposed.sort()).toEqual([String(deploy.listeners.data.port), String(deploy.listeners.admin.port)]);
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, .git, tests, benchmarks, state and local env files out of the context', () => {
    for (const p of [
      'node_modules/zod/index.js',
      '.git/HEAD',
      'test/config.test.ts',
      'bench/results/smoke.json',
      'config/state/ring-state.json',
      'deploy/.env',
      '.env',
    ])
      expect(isIgnored(p, ignore), p).toBe(true);
    for (const p of ['package.json', 'package-lock.json', 'src/main.ts', 'bin/ringfence.js'])
      expect(isIgnored(p, ignore), p).toBe(false);
  });
});

describe('bin/ringfence.js in the image', () => {
  it('re-executes under node_modules/node only when the running Node is older than 24', () => {
    // The image is Node 24 and has no `node` devDependency: the re-exec branch must be gated on the version.
    const bin = readFileSync(join(REPO, pkg.bin.ringfence!), 'utf8');
    expect(bin).toMatch(/if \(major < 24\) \{[^}]*node_modules', 'node', 'bin', 'node'/s);
    expect(pkg.devDependencies.node).toBeDefined();
  });
});
