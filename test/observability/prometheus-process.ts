/**
 * A real Prometheus for the tests: the Debian package's binary, started as a child process on a loopback port
 * with a config derived from grafana/prometheus/prometheus.yml (the test gateway as target, 1 s scrape and rule
 * evaluation) and the real alerts.yaml. Nothing is skipped when it is missing: the tests fail, saying how to
 * install it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

export const GRAFANA = join(import.meta.dirname, '..', '..', 'grafana');
export const ALERTS_FILE = join(GRAFANA, 'prometheus', 'alerts.yaml');
const CONFIG_FILE = join(GRAFANA, 'prometheus', 'prometheus.yml');

/** A running Prometheus: its URL, and a stop that kills it and removes its data. */
export interface RunningPrometheus {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr (its log), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** The shipped prometheus.yml, with only the target, the intervals and the rule file's path changed. */
export function testConfig(target: string): string {
  const cfg = parse(readFileSync(CONFIG_FILE, 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: Array<{
      job_name: string;
      metrics_path: string;
      static_configs: Array<{ targets: string[] }>;
    }>;
  };
  // The shipped config must keep the shape this test relies on: one job scraping the admin /metrics.
  const [job, ...more] = cfg.scrape_configs;
  if (!job || more.length || job.job_name !== 'ringfence' || job.metrics_path !== '/metrics')
    throw new Error(`unexpected scrape_configs in ${CONFIG_FILE}: ${JSON.stringify(cfg.scrape_configs)}`);
  if (JSON.stringify(cfg.rule_files) !== JSON.stringify(['alerts.yaml']))
    throw new Error(`unexpected rule_files in ${CONFIG_FILE}: ${JSON.stringify(cfg.rule_files)}`);
  cfg.global = { ...cfg.global, scrape_interval: '1s', evaluation_interval: '1s' };
  cfg.rule_files = [ALERTS_FILE];
  job.static_configs = [{ targets: [target] }];
  return stringify(cfg);
}

/** A free loopback port (bound and released: another process could take it first, which start() reports). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function binary(): string {
  for (const p of ['/usr/bin/prometheus', '/usr/local/bin/prometheus']) if (existsSync(p)) return p;
  throw new Error(
    "prometheus not found: install Debian's prometheus package (apt-get install prometheus); .ci/run does",
  );
}

/** Starts Prometheus scraping `target` (host:port of the gateway's admin listener); resolves once it is ready. */
export async function startPrometheus(target: string): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'ringfence-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, testConfig(target));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    binary(),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}:\n${log}`);
    }
    const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready on ${url} after 15 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, log: () => log, stop };
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  error?: string;
  data: T;
}

/** GET a Prometheus API path; throws on an error answer. */
export async function api<T>(url: string, path: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as ApiResponse<T>;
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
  return body.data;
}

/** An instant query's result vector. */
export async function instant(
  url: string,
  query: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const data = await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
    url,
    `/api/v1/query?${new URLSearchParams({ query })}`,
  );
  return data.result;
}

/** Polls `check` every 250 ms until it returns a value other than undefined, or throws after `ms`. */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}
