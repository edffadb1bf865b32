/**
 * deploy/k8s: every manifest validated against the Kubernetes OpenAPI schemas (kubernetes-models' validate(),
 * which checks types, required fields, enums and formats; like the API server's default, it does not reject
 * unknown fields, so the facts that matter are also asserted by path below), then the semantics that tie the
 * manifests to each other and to the gateway's own config.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { CONFIGMAP_FILE, CONFIGMAP_SOURCES, renderConfigMap } from '../../deploy/k8s/render-configmap.ts';
import { compileBundle } from '../../src/policy/compile.ts';
import { loadBundleFile } from '../../src/policy/load.ts';
import { DEPLOY, loadDeployConfig, PENDING_SECTIONS, REPO, requiredEnv } from './config.ts';
import { execForm, parseDockerfile } from './dockerfile.ts';

const K8S = join(DEPLOY, 'k8s');

// biome-ignore lint/suspicious/noExplicitAny: manifests are plain parsed YAML, checked field by field below
type Manifest = any;

/** The model class (and so the schema) of each kind the manifests may use. */
const MODELS: Record<string, new (data: Manifest) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

interface Doc {
  file: string;
  manifest: Manifest;
}

const files = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
const docs: Doc[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return { file, manifest: d.toJS() as Manifest };
  }),
);
const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Manifest;

function one(kind: string, file?: string): Manifest {
  const found = docs.filter((d) => d.manifest?.kind === kind && (!file || d.file === file));
  expect(found, `exactly one ${kind}${file ? ` in ${file}` : ''}`).toHaveLength(1);
  return found[0]!.manifest;
}

const deployment = one('Deployment');
const pod = deployment.spec.template;
const container = pod.spec.containers[0];
const configMap = one('ConfigMap');
const secret = one('Secret', 'secret.example.yaml');
const services = docs.filter((d) => d.manifest.kind === 'Service').map((d) => d.manifest);
const pdb = one('PodDisruptionBudget');

/** An env for the deploy config: every key of the example Secret, each with a distinct value. */
const secretEnv: Record<string, string> = Object.fromEntries(
  Object.keys(secret.stringData ?? {}).map((k) => [k, `test-${k.toLowerCase()}`]),
);
delete secretEnv.RINGFENCE_AUDIT_SIGNING_KEY; // a placeholder is no PEM key; optional anyway
secretEnv.DATABASE_URL = secret.stringData.DATABASE_URL;
secretEnv.REDIS_URL = secret.stringData.REDIS_URL;
const configText = configMap.data['ringfence.yaml'] as string;
const { loaded, pending } = loadDeployConfig(configText, '/etc/ringfence/ringfence.yaml', secretEnv);
const listeners = loaded.config.listeners;

/** A container port by name or number. */
function containerPort(port: string | number): number | undefined {
  const p = container.ports.find((x: Manifest) => x.name === port || x.containerPort === port);
  return p?.containerPort;
}

function subset(labels: Record<string, string>, of: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => of[k] === v);
}

describe('Kubernetes manifests: schema', () => {
  it('every document is a known kind and valid against the Kubernetes OpenAPI schema', () => {
    expect(docs.length).toBeGreaterThanOrEqual(7);
    for (const { file, manifest } of docs) {
      const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      expect(Model, `${file}: ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
      expect(() => new Model!(manifest).validate(), file).not.toThrow();
      expect(manifest.metadata?.name, `${file}: metadata.name`).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('the schema check catches a broken manifest (so the check above can fail)', () => {
    const broken = structuredClone(deployment);
    broken.spec.replicas = 'two';
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8080';
    expect(() => new Deployment(broken).validate()).toThrow(/replicas|containerPort/);
    const badPdb = structuredClone(pdb);
    badPdb.spec.minAvailable = { percent: 50 };
    expect(() => new PodDisruptionBudget(badPdb).validate()).toThrow();
  });

  it('kustomization.yaml lists every manifest but the example Secret, in the manifests’ namespace', () => {
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    const listed = [...kustomization.resources].sort();
    expect(listed).toEqual(files.filter((f) => f !== 'secret.example.yaml').sort());
    expect(listed).not.toContain('secret.example.yaml');
    expect(kustomization.namespace).toBe(one('Namespace').metadata.name);
    expect(secret.metadata.namespace).toBe(kustomization.namespace);
    const image = kustomization.images.find((i: Manifest) => container.image.split(':')[0] === i.name);
    expect(image, 'kustomization images names the container image').toBeDefined();
  });
});

describe('Kubernetes manifests: the gateway Deployment', () => {
  it('runs two or more replicas, with a selector matching its pods', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(subset(deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('names its ports after the config’s listeners', () => {
    expect(containerPort('data')).toBe(listeners.data.port);
    expect(containerPort('admin')).toBe(listeners.admin.port);
    expect(pod.metadata.annotations['prometheus.io/port']).toBe(String(listeners.admin.port));
  });

  it('probes readiness on /readyz and liveness on /healthz, on the data listener', () => {
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(containerPort(container.readinessProbe.httpGet.port)).toBe(listeners.data.port);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(containerPort(container.livenessProbe.httpGet.port)).toBe(listeners.data.port);
    expect(container.startupProbe.httpGet.path).toBe('/healthz');
    expect(containerPort(container.startupProbe.httpGet.port)).toBe(listeners.data.port);
  });

  it('gives SIGTERM longer than the preStop sleep plus the gateway’s shutdownGraceMs', () => {
    const preStop = container.lifecycle.preStop;
    const sleepS = preStop.sleep?.seconds ?? Number(preStop.exec?.command?.at(-1));
    expect(sleepS).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(
      sleepS + loaded.config.limits.shutdownGraceMs / 1000,
    );
  });

  it('runs non-root as the image’s uid, read-only, no privilege escalation, no capabilities', () => {
    const podSc = pod.spec.securityContext;
    const sc = container.securityContext;
    expect(sc.runAsNonRoot ?? podSc.runAsNonRoot).toBe(true);
    const uid = sc.runAsUser ?? podSc.runAsUser;
    const stages = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
    const user = stages
      .at(-1)!
      .instructions.filter((i) => i.keyword === 'USER')
      .at(-1)!;
    expect(uid).toBe(Number(user.args.split(':')[0]));
    expect(uid).toBeGreaterThan(0);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect((sc.seccompProfile ?? podSc.seccompProfile).type).toBe('RuntimeDefault');
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    // The Pod Security level the namespace enforces.
    expect(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // A writable /tmp on an emptyDir, since the root filesystem is not.
    const tmp = container.volumeMounts.find((m: Manifest) => m.mountPath === '/tmp');
    expect(pod.spec.volumes.find((v: Manifest) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  it('sets resource requests and limits', () => {
    for (const k of ['requests', 'limits'])
      for (const r of ['cpu', 'memory']) expect(container.resources[k][r], `${k}.${r}`).toBeDefined();
  });

  it('mounts exactly the ConfigMap’s keys at /etc/ringfence and serves the config found there', () => {
    const mount = container.volumeMounts.find((m: Manifest) => m.mountPath === '/etc/ringfence');
    expect(mount?.readOnly).toBe(true);
    const volume = pod.spec.volumes.find((v: Manifest) => v.name === mount.name);
    expect(volume.configMap.name).toBe(configMap.metadata.name);
    const items: { key: string; path: string }[] = volume.configMap.items;
    expect(items.map((i) => i.key).sort()).toEqual(Object.keys(configMap.data).sort());
    const mounted = new Set(items.map((i) => posix.join(mount.mountPath, i.path)));
    // The args are the image's CMD, and the config they name is one of the mounted files.
    const cmd = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))
      .at(-1)!
      .instructions.filter((i) => i.keyword === 'CMD')
      .at(-1)!;
    expect(container.args).toEqual(execForm(cmd.args));
    const configPath = container.args[container.args.indexOf('--config') + 1];
    expect(mounted.has(configPath)).toBe(true);
    expect(items.find((i) => posix.join(mount.mountPath, i.path) === configPath)?.key).toBe('ringfence.yaml');
    // The bundle the config names, relative to the config file, is mounted too.
    const bundle = loaded.config.policy?.bundle;
    expect(bundle).toBeDefined();
    expect(mounted.has(posix.resolve(posix.dirname(configPath), bundle!))).toBe(true);
  });

  it('reads every key it references from the Secret, and gives the config every variable it needs', () => {
    const refs = container.env.filter((e: Manifest) => e.valueFrom?.secretKeyRef);
    expect(refs.length).toBeGreaterThan(0);
    for (const e of refs) {
      expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData ?? secret.data), e.name).toContain(e.valueFrom.secretKeyRef.key);
    }
    expect(container.envFrom).toBeUndefined();
    const provided = new Set(container.env.map((e: Manifest) => e.name));
    for (const name of requiredEnv(configText)) expect(provided.has(name), `env ${name}`).toBe(true);
    // Fleet statistics name each replica after its pod.
    expect(
      container.env.find((e: Manifest) => e.name === 'RINGFENCE_REPLICA_ID')?.valueFrom.fieldRef,
    ).toEqual({
      fieldPath: 'metadata.name',
    });
    // No value is written in the Deployment itself, only references.
    for (const e of container.env) expect(e.value, e.name).toBeUndefined();
  });
});

describe('Kubernetes manifests: PodDisruptionBudget and Services', () => {
  it('the PDB keeps one pod of the Deployment available', () => {
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(subset(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  });

  it('one Service for the data port and a separate ClusterIP one for the admin port', () => {
    expect(services).toHaveLength(2);
    const byTarget = (port: number) =>
      services.filter((s) => s.spec.ports.some((p: Manifest) => containerPort(p.targetPort) === port));
    const [data] = byTarget(listeners.data.port);
    const [admin] = byTarget(listeners.admin.port);
    expect(data, 'a Service targeting the data port').toBeDefined();
    expect(admin, 'a Service targeting the admin port').toBeDefined();
    expect(data).not.toBe(admin);
    for (const s of [data, admin]) {
      expect(subset(s.spec.selector, pod.metadata.labels), s.metadata.name).toBe(true);
      expect(s.spec.ports).toHaveLength(1);
    }
    expect(data.spec.ports[0].targetPort).toBe('data');
    expect(admin.spec.ports[0].targetPort).toBe('admin');
    // The admin listener is never exposed outside the cluster.
    expect(admin.spec.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(admin.spec.ports[0].nodePort).toBeUndefined();
    expect(data.spec.type ?? 'ClusterIP').toBe('ClusterIP');
  });
});

describe('Kubernetes manifests: ConfigMap and Secret', () => {
  it('the ConfigMap is rendered from deploy/ringfence.yaml and the production bundle, byte for byte', () => {
    expect(readFileSync(CONFIGMAP_FILE, 'utf8'), 'run npx node deploy/k8s/render-configmap.ts').toBe(
      renderConfigMap(),
    );
    for (const [key, source] of Object.entries(CONFIGMAP_SOURCES))
      expect(configMap.data[key], key).toBe(readFileSync(source, 'utf8'));
  });

  it('its ringfence.yaml passes the gateway’s own config loader, with the Secret’s keys as environment', () => {
    expect(loaded.config.store.kind).toBe('postgres');
    expect(loaded.config.store.url).toBe(secretEnv.DATABASE_URL);
    expect(listeners.data.host).toBe('0.0.0.0');
    expect(listeners.admin.host).toBe('0.0.0.0');
    expect([...loaded.adminTokens.values()].flatMap((t) => t.roles)).toContain('approver');
    expect(loaded.appKeys.size).toBe(1);
    // Redis counters: checked by the schema once it has them (src/config/schema.ts); until then, by hand here.
    if (PENDING_SECTIONS.includes('counters'))
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's interpolation syntax, not a template literal
      expect(pending.counters).toEqual({ kind: 'redis', url: '${REDIS_URL}' });
    else
      expect((loaded.config as Manifest).counters).toMatchObject({ kind: 'redis', url: secretEnv.REDIS_URL });
    // Without the Secret, the loader names what is missing.
    expect(() => loadDeployConfig(configText, 'ringfence.yaml', {})).toThrow(/DATABASE_URL/);
  });

  it('its bundle.yaml compiles against the config’s providers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-k8s-'));
    writeFileSync(join(dir, 'bundle.yaml'), configMap.data['bundle.yaml']);
    const compiled = compileBundle(
      loadBundleFile(join(dir, 'bundle.yaml'), { providers: Object.keys(loaded.config.providers) }),
    );
    expect(compiled.name).toBeTruthy();
  });

  it('the example Secret holds placeholders only', () => {
    expect(secret.data).toBeUndefined();
    for (const [k, v] of Object.entries(secret.stringData as Record<string, string>))
      expect(v, k).toMatch(/CHANGE-ME/);
  });
});
