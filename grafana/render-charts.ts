/**
 * Drawing for grafana/render.ts: one panel's query results as an inline SVG chart, a row of stat figures, a
 * state timeline or an HTML table, close enough to Grafana's rendering that an SRE reads it the same way.
 * No dependencies: the page must open anywhere, offline.
 */

/** One series a panel query returned: its legend, labels and [unix seconds, value] points (NaN: no value). */
export interface Series {
  readonly legend: string;
  /** The query (refId) it came from. */
  readonly refId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

/** A Grafana value mapping of the kind the dashboard uses: value → text and colour. */
export type ValueMappings = Readonly<Record<string, { readonly text: string; readonly color?: string }>>;

/** A Grafana field override as far as drawing goes: which series, and its colour or dashes. */
export interface SeriesOverride {
  readonly matches: (name: string) => boolean;
  readonly color?: string;
  readonly dashed?: boolean;
}

/** What a drawing needs to know about a panel besides its series. */
export interface PanelStyle {
  readonly unit: string;
  readonly decimals: number | undefined;
  readonly mappings: ValueMappings;
  /** The panel's field overrides that set a fixed colour or a dashed line, for the series whose name matches. */
  readonly overrides: ReadonlyArray<SeriesOverride>;
  /** Lines drawn as steps (Grafana's lineInterpolation stepAfter). */
  readonly steps: boolean;
  /** Series stacked on each other (Grafana's stacking mode normal), each filled down to the one below. */
  readonly stacked: boolean;
  /** Pixel size of the drawing area. */
  readonly width: number;
  readonly height: number;
  /** The time range shown (unix seconds), whether or not the series cover all of it. */
  readonly from: number;
  readonly to: number;
}

/** Grafana's classic palette, in its order: series without an override take the next colour. */
const PALETTE = [
  '#7eb26d',
  '#eab839',
  '#6ed0e0',
  '#ef843c',
  '#e24d42',
  '#1f78c1',
  '#ba43a9',
  '#705da0',
  '#508642',
  '#cca300',
  '#447ebc',
  '#c15c17',
];
const NAMED: Record<string, string> = {
  green: '#73bf69',
  yellow: '#fade2a',
  orange: '#ff9830',
  red: '#f2495c',
  purple: '#b877d9',
  blue: '#5794f2',
};

/** A named Grafana colour as CSS. */
const css = (c: string | undefined) => (c ? (NAMED[c] ?? c) : '#888');

/** A series' colour as Grafana picks it: a matching override's, else the palette by position. */
export function colorOf(legend: string, index: number, style: PanelStyle): string {
  const o = style.overrides.find((x) => x.color && x.matches(legend));
  return o ? css(o.color) : PALETTE[index % PALETTE.length]!;
}

export const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function trim(n: number, decimals: number | undefined): string {
  if (decimals !== undefined) return n.toFixed(decimals);
  const a = Math.abs(n);
  const d = a === 0 ? 0 : a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return Number(n.toFixed(d)).toString();
}

/** Formats a value in a Grafana unit (the handful the dashboard uses). */
export function formatValue(v: number, unit: string, decimals?: number): string {
  if (!Number.isFinite(v)) return '–';
  switch (unit) {
    case 'percentunit':
      return `${trim(v * 100, decimals)}%`;
    case 'percent':
      return `${trim(v, decimals)}%`;
    case 's': {
      const a = Math.abs(v);
      if (a === 0) return '0 s';
      if (a < 1e-3) return `${trim(v * 1e6, decimals)} µs`;
      if (a < 1) return `${trim(v * 1e3, decimals)} ms`;
      return `${trim(v, decimals)} s`;
    }
    case 'currencyUSD':
      return `$${v.toFixed(decimals ?? 4)}`;
    case 'reqps':
      return `${trim(v, decimals)} req/s`;
    case 'ops':
      return `${trim(v, decimals)}/s`;
    default:
      return trim(v, decimals);
  }
}

function lastValue(s: Series): number {
  for (let i = s.points.length - 1; i >= 0; i--) if (Number.isFinite(s.points[i]![1])) return s.points[i]![1];
  return Number.NaN;
}

function maxValue(s: Series): number {
  let m = Number.NaN;
  for (const [, v] of s.points) if (Number.isFinite(v) && !(v <= m)) m = v;
  return m;
}

const clock = (t: number) => new Date(t * 1000).toISOString().slice(11, 19);

/** Axis ticks at round values (1, 2, 2.5, 5 × 10^n; whole numbers for whole-number panels) covering lo..hi. */
export function niceTicks(lo: number, hi: number, integer: boolean): number[] {
  const raw = (hi - lo) / 4 || 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= raw * 0.999) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.ceil(step));
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function timeAxis(parts: string[], x: (t: number) => number, t0: number, t1: number, y: number): void {
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    parts.push(`<text x="${x(t)}" y="${y}" class="axis" text-anchor="${anchor}">${clock(t)}</text>`);
  }
}

/** The corners of a line through `points`: straight from point to point, or stepping (flat, then up or down). */
function vertices(
  points: ReadonlyArray<readonly [number, number]>,
  steps: boolean,
): Array<readonly [number, number]> {
  if (!steps) return [...points];
  return points.flatMap((p, i) => (i === 0 ? [p] : [[p[0], points[i - 1]![1]] as const, p]));
}

/** Stacks series in order: each point raised by the ones below it at the same time, which it fills down to. */
function stack(series: readonly Series[]): Array<Series & { lower: Map<number, number> }> {
  const base = new Map<number, number>();
  return series.map((s) => {
    const lower = new Map<number, number>();
    const points = s.points.map(([t, v]) => {
      const b = base.get(t) ?? 0;
      lower.set(t, b);
      if (!Number.isFinite(v)) return [t, Number.NaN] as const;
      base.set(t, b + v);
      return [t, b + v] as const;
    });
    return { ...s, points, lower };
  });
}

/** A time series chart: axes at round values, grid, one line per series, and a legend table below. */
export function timeseriesSvg(series: readonly Series[], style: PanelStyle): string {
  const { width, height, unit, decimals } = style;
  const left = 70;
  const right = 10;
  const top = 8;
  const bottom = 22;
  const drawn = style.stacked ? stack(series) : series.map((s) => ({ ...s, lower: undefined }));
  const all = drawn.flatMap((s) => s.points);
  const times = all.map((p) => p[0]);
  const t0 = Math.min(style.from, ...times);
  const t1 = Math.max(style.to, ...times);
  const values = all.map((p) => p[1]).filter(Number.isFinite);
  const ticks = niceTicks(Math.min(0, ...values), Math.max(...values, 0), decimals === 0);
  const lo = ticks[0]!;
  const hi = ticks.at(-1)! > lo ? ticks.at(-1)! : lo + 1;
  const w = width - left - right;
  const h = height - top - bottom;
  const x = (t: number) => left + (t1 === t0 ? w / 2 : ((t - t0) / (t1 - t0)) * w);
  const y = (v: number) => top + h - ((v - lo) / (hi - lo)) * h;
  const parts: string[] = [];
  for (const v of ticks)
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" class="${v === 0 && lo < 0 ? 'zero' : 'grid'}"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" class="axis" text-anchor="end">${esc(formatValue(v, unit, decimals))}</text>`,
    );
  timeAxis(parts, x, t0, t1, height - 6);
  // The query step: the smallest gap between two sample times (a longer gap breaks a line).
  const distinct = [...new Set(times)].sort((a, b) => a - b);
  let step = Number.POSITIVE_INFINITY;
  for (let i = 1; i < distinct.length; i++) step = Math.min(step, distinct[i]! - distinct[i - 1]!);
  if (!Number.isFinite(step)) step = Math.max(1, t1 - t0);
  drawn.forEach((s, i) => {
    const color = colorOf(s.legend, i, style);
    // Gaps (NaN, missing steps) break the line into runs, as Grafana does with spanNulls off.
    const runs: Array<Array<readonly [number, number]>> = [];
    let prev: number | undefined;
    for (const p of s.points) {
      if (!Number.isFinite(p[1])) {
        prev = undefined;
        continue;
      }
      if (prev === undefined || p[0] - prev > step * 1.5) runs.push([]);
      runs.at(-1)!.push(p);
      prev = p[0];
    }
    const dashed = style.overrides.some((o) => o.dashed && o.matches(s.legend));
    for (const run of runs) {
      const top = vertices(run, style.steps).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      if (s.lower) {
        const lower = s.lower;
        const bottom = vertices(
          run.map(([t]) => [t, lower.get(t) ?? 0] as const),
          style.steps,
        ).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
        parts.push(
          `<polygon points="${[...top, ...bottom.reverse()].join(' ')}" fill="${color}" fill-opacity="0.35"/>`,
        );
      }
      parts.push(
        `<polyline points="${top.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
      // A lone point would be invisible as a line.
      if (run.length === 1)
        parts.push(`<circle cx="${x(run[0]![0])}" cy="${y(run[0]![1])}" r="3" fill="${color}"/>`);
    }
  });
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>${legendTable(series, style)}`;
}

function legendTable(series: readonly Series[], style: PanelStyle): string {
  const f = (v: number) => esc(formatValue(v, style.unit, style.decimals));
  const rows = series
    .map(
      (s, i) =>
        `<tr><td><span class="swatch" style="background:${colorOf(s.legend, i, style)}"></span>${esc(s.legend)}</td><td>${f(lastValue(s))}</td><td>${f(maxValue(s))}</td></tr>`,
    )
    .join('');
  return `<table class="legend"><tr><th></th><th>last</th><th>max</th></tr>${rows}</table>`;
}

/** Stat figures: the last value of each series, mapped (e.g. 2 → canary) and coloured as in the dashboard. */
export function statHtml(
  series: readonly Series[],
  style: PanelStyle,
  thresholds: ReadonlyArray<{ color: string; value: number | null }>,
): string {
  const cells = series.map((s) => {
    const v = lastValue(s);
    const m = style.mappings[String(v)];
    let color = m?.color;
    if (!color) for (const t of thresholds) if (t.value === null || v >= t.value) color = t.color;
    const text = m?.text ?? formatValue(v, style.unit, style.decimals);
    const label =
      series.length > 1 || s.legend !== '' ? `<div class="stat-label">${esc(s.legend)}</div>` : '';
    return `<div class="stat" style="color:${css(color ?? 'green')}">${label}<div class="stat-value">${esc(text)}</div></div>`;
  });
  return `<div class="stats">${cells.join('')}</div>`;
}

/** A state timeline: one band per series, coloured by the mapped state, a run of equal states as one block. */
export function stateTimelineSvg(series: readonly Series[], style: PanelStyle): string {
  const { width } = style;
  const label = 150;
  const band = 26;
  const height = series.length * (band + 6) + 24;
  const times = series.flatMap((s) => s.points.map((p) => p[0]));
  const t0 = Math.min(style.from, ...times);
  const t1 = Math.max(style.to, ...times);
  const x = (t: number) => label + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (width - label - 10));
  const parts: string[] = [];
  series.forEach((s, i) => {
    const top = i * (band + 6) + 4;
    parts.push(
      `<text x="${label - 8}" y="${top + band / 2 + 4}" class="axis" text-anchor="end">${esc(s.legend)}</text>`,
    );
    const points = s.points.filter((p) => Number.isFinite(p[1]));
    for (let j = 0; j < points.length; ) {
      const [from, v] = points[j]!;
      let k = j + 1;
      while (k < points.length && points[k]![1] === v) k++;
      const to = points[k]?.[0] ?? t1;
      const m = style.mappings[String(v)];
      parts.push(
        `<rect x="${x(from)}" y="${top}" width="${Math.max(1, x(to) - x(from))}" height="${band}" fill="${css(m?.color)}"><title>${esc(m?.text ?? String(v))}</title></rect>`,
      );
      j = k;
    }
  });
  timeAxis(parts, x, t0, t1, height - 4);
  const key = Object.values(style.mappings)
    .map((m) => `<span class="swatch" style="background:${css(m.color)}"></span>${esc(m.text)}`)
    .join(' ');
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg><div class="key">${key}</div>`;
}

/**
 * A table of instant queries, as Grafana's `merge` transformation builds it: one row per label set, one column
 * per label (in `columns` order first), then one value column per query, named by `names` (refId → name).
 */
export function tableHtml(
  series: readonly Series[],
  columns: readonly string[],
  names: Readonly<Record<string, string>>,
  unit: string,
  decimals?: number,
): string {
  const labels = [...new Set([...columns, ...series.flatMap((s) => Object.keys(s.labels))])].filter(
    (l) => l !== '__name__',
  );
  const refIds = [...new Set(series.map((s) => s.refId))].sort();
  const rows = new Map<string, { labels: Readonly<Record<string, string>>; values: Map<string, number> }>();
  for (const s of series) {
    const key = JSON.stringify(labels.map((l) => s.labels[l] ?? ''));
    const row = rows.get(key) ?? { labels: s.labels, values: new Map() };
    row.values.set(s.refId, lastValue(s));
    rows.set(key, row);
  }
  const head = [...labels, ...refIds.map((r) => names[r] ?? r)].map((c) => `<th>${esc(c)}</th>`).join('');
  const body = [...rows.values()]
    .map(
      (r) =>
        `<tr>${labels.map((l) => `<td>${esc(r.labels[l] ?? '')}</td>`).join('')}${refIds.map((id) => `<td>${esc(formatValue(r.values.get(id) ?? Number.NaN, unit, decimals))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table class="data"><tr>${head}</tr>${body}</table>`;
}
