/**
 * Renders the ringfence Grafana dashboard without Grafana: every panel's queries run against a Prometheus over
 * the last N minutes, drawn into one self-contained HTML page (inline SVG charts, stat figures, tables), laid out
 * and titled as in the dashboard. For looking at the dashboard where no Grafana runs (CI, a laptop, a review),
 * and for the end-to-end test that checks every panel shows data.
 *
 *   npx node grafana/render.ts --prometheus http://127.0.0.1:9090 --out dashboard.html [--minutes 30]
 *                              [--dashboard grafana/dashboards/ringfence.json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Series, ValueMappings } from './render-charts.ts';
import { renderHtml } from './render-page.ts';

export type { Series } from './render-charts.ts';

/** The dashboard JSON as far as the renderer reads it. */
export interface Dashboard {
  readonly title: string;
  readonly description?: string;
  readonly panels: readonly Panel[];
}

/** A dashboard panel (rows included) as far as the renderer reads it. */
export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly description?: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly targets?: readonly Target[];
  readonly fieldConfig?: {
    readonly defaults?: {
      readonly unit?: string;
      readonly decimals?: number;
      readonly mappings?: ReadonlyArray<{ readonly type: string; readonly options: ValueMappings }>;
      readonly thresholds?: { readonly steps: ReadonlyArray<{ color: string; value: number | null }> };
      readonly custom?: {
        readonly lineInterpolation?: string;
        readonly stacking?: { readonly mode?: string };
      };
    };
    readonly overrides?: ReadonlyArray<{
      readonly matcher: { readonly id: string; readonly options: string };
      readonly properties: ReadonlyArray<{ readonly id: string; readonly value: unknown }>;
    }>;
  };
  readonly transformations?: ReadonlyArray<{
    readonly id: string;
    readonly options: {
      readonly indexByName?: Readonly<Record<string, number>>;
      readonly renameByName?: Readonly<Record<string, string>>;
    };
  }>;
}

/** A Prometheus query of a panel. */
export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly legendFormat?: string;
  readonly instant?: boolean;
}

/** One panel's results: the series of all its queries, or the error a query got. */
export interface PanelResult {
  readonly panel: Panel;
  readonly series: readonly Series[];
  /** Per query (refId): how many series it returned. */
  readonly perTarget: Readonly<Record<string, number>>;
  readonly errors: readonly string[];
}

/** Where and over what time the panels are queried. */
export interface RenderOptions {
  readonly prometheus: string;
  readonly dashboard: Dashboard;
  /** Length of the time range, in seconds (Grafana's `$__range`). */
  readonly rangeS: number;
  /** End of the time range (unix seconds); now by default. */
  readonly end?: number;
  /** What `$__rate_interval` becomes (Grafana: 4 × the scrape interval at least); 1m by default. */
  readonly rateInterval?: string;
}

/** Reads the dashboard JSON (grafana/dashboards/ringfence.json by default). */
export function loadDashboard(file = join(import.meta.dirname, 'dashboards', 'ringfence.json')): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** The step of a range query over `rangeS` seconds: about 240 points, never under 1 s. */
export function stepFor(rangeS: number): number {
  return Math.max(1, Math.ceil(rangeS / 240));
}

/** Replaces Grafana's global variables in an expression with concrete durations. */
export function substitute(expr: string, v: { rangeS: number; stepS: number; rateInterval: string }): string {
  return expr
    .replaceAll('$__rate_interval', v.rateInterval)
    .replaceAll('$__interval', `${v.stepS}s`)
    .replaceAll('$__range', `${v.rangeS}s`);
}

/** The legend of a series: `{{label}}` placeholders filled, or the label set when there is no format. */
export function legendOf(format: string | undefined, labels: Readonly<Record<string, string>>): string {
  if (!format) {
    const inner = Object.entries(labels)
      .filter(([k]) => k !== '__name__')
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ');
    return labels.__name__ ? `${labels.__name__}{${inner}}` : `{${inner}}`;
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => labels[l] ?? '');
}

interface PromResponse {
  status: 'success' | 'error';
  error?: string;
  data?: {
    resultType: 'matrix' | 'vector' | 'scalar';
    result: Array<{ metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }>;
  };
}

/** Runs one query: a range query, or an instant one at the end of the range. Throws on a Prometheus error. */
export async function runQuery(
  prometheus: string,
  expr: string,
  r: { instant: boolean; start: number; end: number; stepS: number },
): Promise<Array<{ labels: Record<string, string>; points: Array<[number, number]> }>> {
  const params = new URLSearchParams({ query: expr });
  if (r.instant) params.set('time', String(r.end));
  else {
    params.set('start', String(r.start));
    params.set('end', String(r.end));
    params.set('step', String(r.stepS));
  }
  const res = await fetch(`${prometheus.replace(/\/+$/, '')}/api/v1/${r.instant ? 'query' : 'query_range'}`, {
    method: 'POST',
    body: params,
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as PromResponse;
  if (body.status !== 'success' || !body.data) throw new Error(`${body.error ?? res.status} in ${expr}`);
  const num = (s: string) => Number(s); // "NaN", "+Inf" become NaN / Infinity: the charts skip them
  return body.data.result.map((m) => ({
    labels: m.metric,
    points: m.values
      ? m.values.map(([t, v]) => [t, num(v)] as [number, number])
      : m.value
        ? [[m.value[0], num(m.value[1])]]
        : [],
  }));
}

/** Runs every query of every panel (rows excluded) over the time range. */
export async function queryDashboard(opts: RenderOptions): Promise<PanelResult[]> {
  const end = opts.end ?? Math.floor(Date.now() / 1000);
  const stepS = stepFor(opts.rangeS);
  const vars = { rangeS: opts.rangeS, stepS, rateInterval: opts.rateInterval ?? '1m' };
  const panels = opts.dashboard.panels.filter((p) => p.type !== 'row');
  return Promise.all(
    panels.map(async (panel) => {
      const series: Series[] = [];
      const perTarget: Record<string, number> = {};
      const errors: string[] = [];
      for (const t of panel.targets ?? []) {
        try {
          const got = await runQuery(opts.prometheus, substitute(t.expr, vars), {
            instant: t.instant === true,
            start: end - opts.rangeS,
            end,
            stepS,
          });
          perTarget[t.refId] = got.length;
          for (const g of got)
            series.push({ legend: legendOf(t.legendFormat, g.labels), refId: t.refId, ...g });
        } catch (err) {
          perTarget[t.refId] = 0;
          errors.push(`${t.refId}: ${(err as Error).message}`);
        }
      }
      series.sort((a, b) => a.legend.localeCompare(b.legend));
      return { panel, series, perTarget, errors };
    }),
  );
}

/** Queries every panel and renders the page. */
export async function renderDashboard(
  opts: RenderOptions,
): Promise<{ html: string; results: PanelResult[] }> {
  const end = opts.end ?? Math.floor(Date.now() / 1000);
  const results = await queryDashboard({ ...opts, end });
  const html = renderHtml(opts.dashboard, results, {
    prometheus: opts.prometheus,
    start: end - opts.rangeS,
    end,
  });
  return { html, results };
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      prometheus: { type: 'string', default: 'http://127.0.0.1:9090' },
      out: { type: 'string' },
      minutes: { type: 'string', default: '30' },
      dashboard: { type: 'string' },
      'rate-interval': { type: 'string', default: '1m' },
    },
  });
  const minutes = Number(values.minutes);
  if (!values.out || !(minutes > 0)) {
    process.stderr.write(
      'usage: node grafana/render.ts --prometheus URL --out FILE.html [--minutes N] [--dashboard FILE] [--rate-interval 1m]\n',
    );
    return 2;
  }
  const { html, results } = await renderDashboard({
    prometheus: values.prometheus,
    dashboard: loadDashboard(values.dashboard),
    rangeS: Math.round(minutes * 60),
    rateInterval: values['rate-interval'],
  });
  writeFileSync(values.out, html);
  const empty = results.filter((r) => r.errors.length || r.series.every((s) => s.points.length === 0));
  for (const r of empty)
    process.stderr.write(`no data: ${r.panel.title}${r.errors.length ? ` (${r.errors.join('; ')})` : ''}\n`);
  process.stdout.write(`${values.out}: ${results.length} panels, ${empty.length} without data\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await cli(process.argv.slice(2));
