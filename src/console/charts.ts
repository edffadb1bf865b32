import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

/**
 * Small inline-SVG charts, drawn on the server. Colours come from CSS classes (`s-<series>`) in the console's
 * stylesheet, never from style attributes, so the Content-Security-Policy needs no 'unsafe-inline'. Each chart
 * carries a <title> and a text summary for screen readers and for pages read without images.
 */

type H = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface Series {
  /** Legend text. */
  readonly name: string;
  /** CSS class suffix: `s-${key}` colours it. */
  readonly key: string;
  /** One value per x step; null is a gap. */
  readonly values: readonly (number | null)[];
}

const W = 360;
const H_ = 140;
const PAD = { left: 46, right: 8, top: 10, bottom: 20 };

const r1 = (x: number) => Math.round(x * 10) / 10;

/** The legend under a chart: a swatch per series. */
export function legend(series: readonly { name: string; key: string }[]): H {
  return html`<ul class="legend">${series.map(
    (s) => html`<li><span class="sw s-${s.key}"></span>${s.name}</li>`,
  )}</ul>`;
}

/** A line chart of series over the same x steps (time buckets), with a zero line and its extremes labelled. */
export function lineChart(opts: {
  readonly id: string;
  readonly title: string;
  readonly series: readonly Series[];
  readonly format: (v: number) => string;
  readonly xLabels: readonly [string, string];
  /** The y range spans at least 0 … this. */
  readonly minMax?: number;
  readonly empty?: string;
}): H {
  const all = opts.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const steps = Math.max(1, ...opts.series.map((s) => s.values.length)) - 1;
  const lo = Math.min(0, ...all);
  const hi = Math.max(opts.minMax ?? 0, ...all, lo + 1e-9);
  const pw = W - PAD.left - PAD.right;
  const ph = H_ - PAD.top - PAD.bottom;
  const x = (i: number) => r1(PAD.left + (steps === 0 ? pw : (i / steps) * pw));
  const y = (v: number) => r1(PAD.top + ph - ((v - lo) / (hi - lo)) * ph);
  const runs = (values: readonly (number | null)[]) => {
    const out: string[][] = [];
    let cur: string[] = [];
    values.forEach((v, i) => {
      if (v === null) {
        if (cur.length) out.push(cur);
        cur = [];
      } else cur.push(`${x(i)},${y(v)}`);
    });
    if (cur.length) out.push(cur);
    return out;
  };
  // Axis labels: zero, then the larger extreme, then the other; one too close to a placed one is left out.
  const ticks: number[] = [];
  for (const v of [0, ...(Math.abs(lo) > hi ? [lo, hi] : [hi, lo])])
    if ((v !== lo || lo < 0) && ticks.every((t) => Math.abs(y(t) - y(v)) >= 12)) ticks.push(v);
  const titleId = `${opts.id}-t`;
  const summary = opts.series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v !== null);
      return `${s.name}: ${last === undefined || last === null ? 'no data' : opts.format(last)}`;
    })
    .join('; ');
  return html`<svg class="chart" id="${opts.id}" viewBox="0 0 ${W} ${H_}" role="img" aria-labelledby="${titleId}">
<title id="${titleId}">${opts.title} (latest: ${summary})</title>
<line class="axis" x1="${PAD.left}" y1="${y(0)}" x2="${W - PAD.right}" y2="${y(0)}"></line>
${[hi, ...(lo < 0 ? [lo] : [])].map((v) => html`<line class="grid" x1="${PAD.left}" y1="${y(v)}" x2="${W - PAD.right}" y2="${y(v)}"></line>`)}
${ticks.map((v) => html`<text class="tick" x="${PAD.left - 4}" y="${y(v) + 4}" text-anchor="end">${opts.format(v)}</text>`)}
<text class="tick" x="${PAD.left}" y="${H_ - 4}">${opts.xLabels[0]}</text>
<text class="tick" x="${W - PAD.right}" y="${H_ - 4}" text-anchor="end">${opts.xLabels[1]}</text>
${opts.series.map((s) =>
  runs(s.values).map((pts) =>
    pts.length === 1
      ? html`<circle class="s-${s.key}" cx="${pts[0]!.split(',')[0]}" cy="${pts[0]!.split(',')[1]}" r="2.5"></circle>`
      : html`<polyline class="s-${s.key}" points="${pts.join(' ')}"></polyline>`,
  ),
)}
${all.length === 0 ? html`<text class="empty" x="${PAD.left + pw / 2}" y="${PAD.top + ph / 2}" text-anchor="middle">${opts.empty ?? 'no data in the window'}</text>` : ''}
</svg>${legend(opts.series)}`;
}

export interface BarGroup {
  readonly label: string;
  readonly bars: ReadonlyArray<{ readonly key: string; readonly value: number; readonly text: string }>;
}

/** Horizontal bars, grouped (one row of bars per group label), scaled to the largest value. */
export function barChart(opts: {
  readonly id: string;
  readonly title: string;
  readonly groups: readonly BarGroup[];
  readonly series: readonly { name: string; key: string }[];
  readonly empty?: string;
  /** Room for the value text right of the longest bar. */
  readonly textWidth?: number;
}): H {
  const bar = 11;
  const gap = 8;
  const left = 96;
  const right = opts.textWidth ?? 70;
  const rows = opts.groups.reduce((n, g) => n + g.bars.length * bar + gap, 0);
  const height = Math.max(40, rows + 8);
  const max = Math.max(1e-12, ...opts.groups.flatMap((g) => g.bars.map((b) => b.value)));
  const pw = W - left - right;
  let yy = 4;
  const titleId = `${opts.id}-t`;
  const body = opts.groups.map((g) => {
    const top = yy;
    yy += g.bars.length * bar + gap;
    return html`<text class="label" x="${left - 6}" y="${top + (g.bars.length * bar) / 2 + 4}" text-anchor="end">${g.label.length > 14 ? `${g.label.slice(0, 13)}…` : g.label}</text>
${g.bars.map((b, i) => {
  const w = r1(Math.max(b.value > 0 ? 1 : 0, (b.value / max) * pw));
  return html`<rect class="s-${b.key}" x="${left}" y="${top + i * bar}" width="${w}" height="${bar - 2}"></rect><text class="tick" x="${left + w + 4}" y="${top + i * bar + bar - 3}">${b.text}</text>`;
})}`;
  });
  const summary = opts.groups.map((g) => `${g.label}: ${g.bars.map((b) => b.text).join(' / ')}`).join('; ');
  return html`<svg class="chart" id="${opts.id}" viewBox="0 0 ${W} ${height}" role="img" aria-labelledby="${titleId}">
<title id="${titleId}">${opts.title}${summary ? ` (${summary})` : ''}</title>
${opts.groups.length === 0 ? html`<text class="empty" x="${W / 2}" y="${height / 2 + 4}" text-anchor="middle">${opts.empty ?? 'no data'}</text>` : body}
</svg>${legend(opts.series)}`;
}

/** Stacked columns, one per x step (days), with the x extremes labelled and non-zero columns counted. */
export function columnChart(opts: {
  readonly id: string;
  readonly title: string;
  readonly columns: ReadonlyArray<{
    readonly label: string;
    readonly parts: Readonly<Record<string, number>>;
  }>;
  readonly series: readonly { name: string; key: string }[];
  readonly xLabels: readonly [string, string];
  readonly empty?: string;
}): H {
  const height = 110;
  const top = 12;
  const bottom = 20;
  const left = 20;
  const right = 8;
  const pw = W - left - right;
  const ph = height - top - bottom;
  const n = Math.max(1, opts.columns.length);
  const slot = pw / n;
  const totals = opts.columns.map((c) => Object.values(c.parts).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const titleId = `${opts.id}-t`;
  const cols = opts.columns.map((c, i) => {
    let base = top + ph;
    const x = r1(left + i * slot + slot * 0.15);
    const w = r1(slot * 0.7);
    const rects = opts.series.map((s) => {
      const v = c.parts[s.key] ?? 0;
      if (!v) return '';
      const h = r1((v / max) * ph);
      base -= h;
      return html`<rect class="s-${s.key}" x="${x}" y="${r1(base)}" width="${w}" height="${h}"><title>${c.label}: ${v} ${s.name}</title></rect>`;
    });
    const total = totals[i]!;
    return html`${rects}${total ? html`<text class="tick" x="${r1(x + w / 2)}" y="${r1(base - 2)}" text-anchor="middle">${total}</text>` : ''}`;
  });
  const sum = totals.reduce((a, b) => a + b, 0);
  return html`<svg class="chart" id="${opts.id}" viewBox="0 0 ${W} ${height}" role="img" aria-labelledby="${titleId}">
<title id="${titleId}">${opts.title} (${sum} in the period)</title>
<line class="axis" x1="${left}" y1="${top + ph}" x2="${W - right}" y2="${top + ph}"></line>
${cols}
<text class="tick" x="${left}" y="${height - 4}">${opts.xLabels[0]}</text>
<text class="tick" x="${W - right}" y="${height - 4}" text-anchor="end">${opts.xLabels[1]}</text>
${sum === 0 ? html`<text class="empty" x="${W / 2}" y="${top + ph / 2}" text-anchor="middle">${opts.empty ?? 'none'}</text>` : ''}
</svg>${legend(opts.series)}`;
}
