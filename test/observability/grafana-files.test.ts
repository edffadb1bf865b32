/**
 * The files under grafana/ hold together without a Prometheus or a Grafana: every alert is documented in the
 * runbook and unit-tested both ways, the dashboard is well-formed for an SRE (descriptions, datasource variable,
 * a grid without overlaps), and every metric the dashboard and the rules read is one the gateway declares.
 * (prometheus.e2e.test.ts runs the same files against a real Prometheus.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadDashboard } from '../../grafana/render.ts';

/** Grafana's reference to the dashboard's `datasource` variable. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
const DATASOURCE = '${datasource}';
const ROOT = join(import.meta.dirname, '..', '..');
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const groups = (
  parse(read('grafana', 'prometheus', 'alerts.yaml')) as { groups: Array<{ name: string; rules: Rule[] }> }
).groups;
const alerts = groups.flatMap((g) => g.rules.filter((r) => r.alert));
const records = groups.flatMap((g) => g.rules.filter((r) => r.record));
const dashboard = loadDashboard();
const panels = dashboard.panels.filter((p) => p.type !== 'row');

describe('alert rules', () => {
  it('live in the group `ringfence`, each with a severity, a summary, a description and a runbook section', () => {
    expect(groups.find((g) => g.name === 'ringfence')?.rules.map((r) => r.alert)).toEqual(
      alerts.map((a) => a.alert),
    );
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    const runbook = read('docs', 'runbook.md');
    const sections = [...runbook.matchAll(/^## (\S+)$/gm)].map((m) => m[1]);
    for (const a of alerts) {
      expect(['critical', 'warning', 'info'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description?.length ?? 0, a.alert).toBeGreaterThan(80);
      expect(a.annotations?.runbook).toBe(`docs/runbook.md#${a.alert!.toLowerCase()}`);
    }
    // One section per alert, no section for an alert that does not exist.
    expect(sections).toEqual(alerts.map((a) => a.alert));
  });

  it('each fire in at least one promtool unit test and stay quiet in another', () => {
    const tests = (
      parse(read('grafana', 'prometheus', 'alerts.test.yaml')) as {
        rule_files: string[];
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
      }
    ).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = tests.filter((t) => t.alertname === a.alert);
      expect(
        mine.some((t) => (t.exp_alerts ?? []).length > 0),
        `${a.alert} never fires in alerts.test.yaml`,
      ).toBe(true);
      expect(
        mine.some((t) => (t.exp_alerts ?? []).length === 0),
        `${a.alert} is never tested quiet`,
      ).toBe(true);
    }
  });

  it('mirror the gateway trigger defaults of rings.triggers', () => {
    // The `rings.triggers` block of the config schema (gates have fields of the same names before it).
    const schema = read('src', 'config', 'schema.ts');
    const triggers = schema.slice(schema.indexOf('triggers: z'));
    const dflt = (field: string) => {
      const m = new RegExp(`${field}: z[^\\n]*\\.default\\(([\\d_.]+)\\)`).exec(triggers);
      if (!m) throw new Error(`rings.triggers.${field} not found in src/config/schema.ts`);
      return Number(m[1]!.replaceAll('_', ''));
    };
    const expr = (name: string) => alerts.find((a) => a.alert === name)!.expr;
    expect(expr('RingfenceCanaryErrorRate')).toContain(`${dflt('errorRateFactor')} * (`);
    expect(expr('RingfenceCanaryErrorRate')).toContain(`>= ${dflt('minErrorRate')}`);
    expect(expr('RingfenceCanaryErrorRate')).toContain(`>= ${dflt('minSamples')}`);
    expect(expr('RingfenceCanaryGuardrailSpike')).toContain(`${dflt('triggerSpikeFactor')} * (`);
    // The trigger window is the 1m of the recording rules the canary alerts read.
    expect(dflt('windowS')).toBe(60);
    expect(records.find((r) => r.record === 'ringfence:request_duration_over_sla:ratio1m')?.expr).toContain(
      `le="${dflt('latencyP95SlaMs') / 1000}"`,
    );
  });
});

describe('the dashboard', () => {
  it('is the rollout dashboard, on a templated Prometheus datasource the provisioning provides', () => {
    const d = dashboard as unknown as {
      uid: string;
      schemaVersion: number;
      templating: { list: Array<{ name: string; type: string; query: string; current?: { value: string } }> };
    };
    expect(d.uid).toBe('ringfence-rollout');
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    const ds = d.templating.list.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const provisioned = parse(read('grafana', 'provisioning', 'datasources', 'prometheus.yaml')) as {
      datasources: Array<{ uid: string; type: string }>;
    };
    expect(provisioned.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: ds?.current?.value }),
    ]);
    const provider = parse(read('grafana', 'provisioning', 'dashboards', 'ringfence.yaml')) as {
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(provider.providers[0]).toMatchObject({
      type: 'file',
      options: { path: '/var/lib/grafana/dashboards' },
    });
  });

  it('answers the six rollout questions, every panel described for the SRE on call', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    for (let q = 1; q <= 6; q++)
      expect(
        rows.some((t) => t.startsWith(`${q} · `)),
        `row ${q}`,
      ).toBe(true);
    for (const p of panels) {
      expect(p.description?.length ?? 0, p.title).toBeGreaterThan(100);
      expect((p as unknown as { datasource: { uid: string } }).datasource.uid, p.title).toBe(DATASOURCE);
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(panels.find((p) => p.type === 'table')?.targets?.[0]?.expr).toContain('ringfence_bundle_info');
  });

  it('lays its panels out on the 24-column grid without overlaps', () => {
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const key = `${i},${j}`;
          expect(cells.get(key), `${p.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.title);
        }
    }
  });
});

describe('metric names', () => {
  it('the dashboard and the rules read only metrics the gateway declares, or recording rules', () => {
    const declared = new Set(
      [...read('src', 'observability', 'metrics.ts').matchAll(/'(ringfence_[a-z0-9_]+)'/g)].map((m) => m[1]!),
    );
    expect(declared.size).toBeGreaterThan(20);
    const recorded = new Set(records.map((r) => r.record!));
    const exprs = [
      ...groups.flatMap((g) => g.rules.map((r) => r.expr)),
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ];
    const unknown = new Set<string>();
    for (const e of exprs)
      for (const [name] of e.matchAll(/\bringfence(?:_[a-z0-9_]+|:[a-z0-9_:]+)/g)) {
        const base = name.replace(/_(bucket|count|sum)$/, '');
        if (!declared.has(name) && !declared.has(base) && !recorded.has(name)) unknown.add(name);
      }
    expect([...unknown]).toEqual([]);
  });
});
