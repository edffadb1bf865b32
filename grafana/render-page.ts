/**
 * The HTML page of grafana/render.ts: rows as headings, panels laid out by their grid position with their titles
 * and descriptions, each drawn by render-charts.ts. Self-contained (inline CSS and SVG), dark like Grafana.
 */
import type { Dashboard, Panel, PanelResult } from './render.ts';
import {
  esc,
  type PanelStyle,
  type SeriesOverride,
  stateTimelineSvg,
  statHtml,
  tableHtml,
  timeseriesSvg,
} from './render-charts.ts';

const PAGE_WIDTH = 1360;
const CELL_H = 30;

/** The panel's overrides that change how a series is drawn: a fixed colour, a dashed line. */
function overridesOf(p: Panel): SeriesOverride[] {
  return (p.fieldConfig?.overrides ?? []).map((o) => {
    const { id, options } = o.matcher;
    const re = id === 'byRegexp' ? new RegExp(`^(?:${options})$`) : undefined;
    const color = o.properties.find((x) => x.id === 'color')?.value as { fixedColor?: string } | undefined;
    const style = o.properties.find((x) => x.id === 'custom.lineStyle')?.value as
      | { fill?: string }
      | undefined;
    return {
      matches: (name: string) => (re ? re.test(name) : id === 'byName' && name === options),
      ...(color?.fixedColor ? { color: color.fixedColor } : {}),
      ...(style?.fill === 'dash' ? { dashed: true } : {}),
    };
  });
}

/** The column names of a table panel: its label columns in the dashboard's order, its value columns renamed. */
function tableColumns(p: Panel): { labels: string[]; names: Record<string, string> } {
  const organize = p.transformations?.find((t) => t.id === 'organize')?.options;
  const rename = organize?.renameByName ?? {};
  const refIds = (p.targets ?? []).map((t) => t.refId);
  const value = (id: string) => (refIds.length === 1 ? 'Value' : `Value #${id}`);
  const names = Object.fromEntries(refIds.map((id) => [id, rename[value(id)] ?? value(id)]));
  const labels = Object.entries(organize?.indexByName ?? {})
    .sort((a, b) => a[1] - b[1])
    .map(([k]) => k)
    .filter((k) => !k.startsWith('Value'));
  return { labels, names };
}

function panelBody(r: PanelResult, width: number, range: { start: number; end: number }): string {
  const p = r.panel;
  const d = p.fieldConfig?.defaults;
  const style: PanelStyle = {
    unit: d?.unit ?? 'short',
    decimals: d?.decimals,
    mappings: Object.assign(
      {},
      ...(d?.mappings ?? []).filter((m) => m.type === 'value').map((m) => m.options),
    ),
    overrides: overridesOf(p),
    steps: d?.custom?.lineInterpolation === 'stepAfter',
    stacked: d?.custom?.stacking?.mode === 'normal',
    width: width - 20,
    height: Math.max(120, p.gridPos.h * CELL_H - 90),
    from: range.start,
    to: range.end,
  };
  if (r.errors.length) return `<div class="error">${r.errors.map(esc).join('<br>')}</div>`;
  if (r.series.every((s) => s.points.length === 0)) return '<div class="nodata">No data</div>';
  switch (p.type) {
    case 'stat':
      return statHtml(r.series, style, d?.thresholds?.steps ?? []);
    case 'table': {
      const { labels, names } = tableColumns(p);
      return tableHtml(r.series, labels, names, style.unit, style.decimals);
    }
    case 'state-timeline':
      return stateTimelineSvg(r.series, style);
    default:
      return timeseriesSvg(r.series, style);
  }
}

/** The whole page: rows as headings, panels laid out by their grid position, descriptions under the titles. */
export function renderHtml(
  dashboard: Dashboard,
  results: readonly PanelResult[],
  meta: { prometheus: string; start: number; end: number },
): string {
  const byId = new Map(results.map((r) => [r.panel.id, r]));
  // Panels that share a grid row (y) form one line of the page; rows are headings.
  const lines = new Map<number, Panel[]>();
  for (const p of dashboard.panels) lines.set(p.gridPos.y, [...(lines.get(p.gridPos.y) ?? []), p]);
  const html: string[] = [];
  for (const [, panels] of [...lines].sort((a, b) => a[0] - b[0])) {
    const row = panels.find((p) => p.type === 'row');
    if (row) {
      html.push(`<h2>${esc(row.title)}</h2>`);
      continue;
    }
    html.push('<div class="line">');
    for (const p of [...panels].sort((a, b) => a.gridPos.x - b.gridPos.x)) {
      const width = Math.floor((PAGE_WIDTH * p.gridPos.w) / 24) - 8;
      const r = byId.get(p.id);
      html.push(
        `<section class="panel" style="width:${width}px"><h3>${esc(p.title)}</h3>`,
        p.description ? `<p class="desc">${esc(p.description)}</p>` : '',
        r ? panelBody(r, width, meta) : '<div class="nodata">not queried</div>',
        '</section>',
      );
    }
    html.push('</div>');
  }
  const when = (t: number) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(dashboard.title)}</title>
<style>
body { background:#111217; color:#ccccdc; font:13px/1.4 Inter, "Helvetica Neue", Arial, sans-serif; margin:16px; width:${PAGE_WIDTH}px; }
h1 { font-size:20px; margin:0 0 4px; color:#fff; } .sub { color:#8e8ea0; margin:0 0 12px; }
h2 { font-size:15px; color:#fff; border-bottom:1px solid #2c2d33; padding:10px 0 4px; margin:8px 0; }
.line { display:flex; gap:8px; margin-bottom:8px; align-items:stretch; }
.panel { background:#181b1f; border:1px solid #2c2d33; border-radius:4px; padding:8px 10px; box-sizing:border-box; }
h3 { font-size:14px; margin:0 0 2px; color:#fff; }
.desc { color:#8e8ea0; font-size:11px; margin:0 0 6px; }
.grid { stroke:#2c2d33; } .zero { stroke:#8e8ea0; stroke-dasharray:3 3; }
.axis { fill:#8e8ea0; font-size:10px; }
.legend { font-size:11px; border-collapse:collapse; width:100%; margin-top:4px; }
.legend td, .legend th { padding:1px 6px; text-align:right; color:#ccccdc; font-weight:normal; }
.legend td:first-child { text-align:left; } .legend th { color:#8e8ea0; }
.swatch { display:inline-block; width:12px; height:4px; margin:0 6px 2px 0; vertical-align:middle; }
.stats { display:flex; gap:12px; flex-wrap:wrap; } .stat { min-width:60px; }
.stat-value { font-size:28px; font-weight:600; } .stat-label { font-size:11px; color:#8e8ea0; }
.data { border-collapse:collapse; width:100%; font-size:12px; }
.data th, .data td { border-bottom:1px solid #2c2d33; padding:3px 8px; text-align:left; }
.data th { color:#8e8ea0; font-weight:normal; }
.key { font-size:11px; color:#8e8ea0; } .nodata { color:#8e8ea0; padding:20px; text-align:center; }
.error { color:#f2495c; font-size:12px; }
</style></head><body>
<h1>${esc(dashboard.title)}</h1>
<p class="sub">${esc(dashboard.description ?? '')}<br>${esc(meta.prometheus)} · ${when(meta.start)} – ${when(meta.end)} UTC</p>
${html.join('\n')}
</body></html>
`;
}
