import { html } from 'hono/html';
import { type AuditVerification, describeBreak } from '../../control/audit.ts';
import type { OverrideRecord } from '../../control/governance.ts';
import {
  DEPRECATION_THRESHOLD,
  DEPRECATION_WINDOW_DAYS,
  type OverrideReport,
} from '../../control/override-report.ts';
import { duration, type H, layout, shortId, type View, when } from './common.ts';

function bounds(r: OverrideRecord, canaryRequests: number | undefined, v: View): H {
  const e = r.override.expiry;
  const parts: H[] = [];
  if (e.expiresAt) {
    const left = Date.parse(e.expiresAt) - v.now;
    parts.push(
      html`time box: ${left > 0 ? html`<strong>${duration(left)} left</strong>` : 'reached'} (${when(e.expiresAt, v.now)})`,
    );
  }
  if (e.maxRequests !== undefined)
    parts.push(
      html`traffic cap: ${canaryRequests === undefined ? '' : `${Math.max(0, canaryRequests - r.baseRequests)} of `}${e.maxRequests} canary requests`,
    );
  if (e.revertWhen)
    parts.push(html`auto-revert when <code>${e.revertWhen.gate}</code> &gt; ${e.revertWhen.above}`);
  if (e.reevaluateAt) parts.push(html`re-evaluation ${when(e.reevaluateAt, v.now)}`);
  return html`${parts.map((p) => html`${p}<br>`)}`;
}

export function overridesPage(
  records: readonly OverrideRecord[],
  report: OverrideReport,
  canary: { candidateBundleId: string | undefined; requests: number },
  v: View,
): H {
  const active = records.filter((r) => !r.ended);
  const ended = records
    .filter((r) => r.ended)
    .slice(-20)
    .reverse();
  return layout(
    v,
    'overrides',
    'Overrides',
    html`<h1>Overrides</h1>
<p class="lead">Logged exceptions to failed gates, each bound to one candidate, approved by a second key, and ended by its expiry.</p>
<div class="card"><h2>Active</h2>
${
  active.length
    ? html`<table><thead><tr><th>override</th><th>gates</th><th>candidate</th><th>requested / approved</th><th>ends</th><th>at expiry</th></tr></thead><tbody>
${active.map((r) => {
  const o = r.override;
  return html`<tr data-override="${o.id}"><td><code>${o.id}</code><br><span class="note">${o.transition.replaceAll('_', ' ')}</span></td>
<td>${o.gates.map((g) => html`<code>${g.name}</code> <span class="note">${g.observed ?? '—'} vs ${g.threshold}</span><br>`)}</td>
<td>${shortId(o.candidateBundleId)}</td><td>${o.requestedBy} + ${o.approvedBy}<br>${when(o.approvedAt, v.now)}</td>
<td>${bounds(r, canary.candidateBundleId === o.candidateBundleId ? canary.requests : undefined, v)}</td>
<td><span class="badge ${o.onExpiry === 'rollback' ? 'fail' : 'warn'}">${o.onExpiry === 'rollback' ? 'roll back' : 'block widening'}</span><br><span class="note">if a gate still fails</span></td></tr>`;
})}</tbody></table>`
    : html`<p class="note">No override is in force.</p>`
}</div>
<div class="card"><h2>Override report <span class="note">(last ${report.days} days: ${report.total} override${report.total === 1 ? '' : 's'})</span></h2>
${report.deprecated.map(
  (d) =>
    html`<div class="banner bad"><strong><code>${d.gate}</code> is effectively deprecated</strong>: overridden ${d.count} times in the last ${DEPRECATION_WINDOW_DAYS} days (${d.overrides.join(', ')}). Choose:<ol>${d.choices.map((c) => html`<li>${c}</li>`)}</ol></div>`,
)}
${
  report.gates.length
    ? html`<table><thead><tr><th>gate</th><th class="num">count</th><th class="num">last 30 d</th><th>last used</th><th>requested by</th><th>approved by</th><th>per week</th></tr></thead><tbody>
${report.gates.map(
  (g) =>
    html`<tr class="${g.deprecated ? 'fail' : ''}" data-report-gate="${g.gate}"><td><code>${g.gate}</code>${g.deprecated ? html` <span class="badge fail">≥${DEPRECATION_THRESHOLD} in ${DEPRECATION_WINDOW_DAYS} d</span>` : ''}</td><td class="num">${g.count}</td><td class="num">${g.last30Days}</td><td>${when(g.lastUsed, v.now)}</td><td>${g.requestedBy.join(', ')}</td><td>${g.approvedBy.join(', ')}</td><td>${g.weeks.map((w) => `${w.week}: ${w.count}`).join(', ')}</td></tr>`,
)}</tbody></table>`
    : html`<p class="note">No gate was overridden in that window.</p>`
}</div>
<div class="card"><h2>Ended</h2>
${
  ended.length
    ? html`<table><thead><tr><th>override</th><th>gates</th><th>ended</th><th>why</th><th>action run</th></tr></thead><tbody>
${ended.map((r) => html`<tr><td><code>${r.override.id}</code></td><td>${r.override.gates.map((g) => g.name).join(', ')}</td><td>${when(r.ended?.at, v.now)}</td><td>${r.ended?.reason}</td><td>${r.ended?.action}</td></tr>`)}</tbody></table>`
    : html`<p class="note">None.</p>`
}</div>`,
  );
}

export const AUDIT_PAGE_SIZE = 50;

/** The data of an audit record in one line: `key=value` pairs, ids shortened, nested values counted. */
function summary(data: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    if (v === null || v === undefined) continue;
    let s: string;
    if (typeof v === 'string')
      s = /^sha256:[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 15)}…` : v.length > 48 ? `${v.slice(0, 47)}…` : v;
    else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
    else if (Array.isArray(v)) s = `[${v.length}]`;
    else {
      const o = v as Record<string, unknown>;
      const ask = o.ask as { action?: unknown } | undefined;
      const action =
        typeof o.action === 'string' ? o.action : typeof ask?.action === 'string' ? ask.action : undefined;
      s = action ? `{action=${action}…}` : typeof o.id === 'string' ? `{id=${o.id}…}` : '{…}';
    }
    out.push(`${k}=${s}`);
  }
  const line = out.join(' · ');
  return line.length > 220 ? `${line.slice(0, 219)}…` : line;
}

export function auditPage(v0: AuditVerification | undefined, page: number, v: View): H {
  if (!v0)
    return layout(
      v,
      'audit',
      'Audit',
      html`<h1>Audit trail</h1><div class="card"><p class="note">No audit trail configured.</p></div>`,
    );
  const newest = [...v0.records].reverse();
  const pages = Math.max(1, Math.ceil(newest.length / AUDIT_PAGE_SIZE));
  const p = Math.min(Math.max(1, page), pages);
  const rows = newest.slice((p - 1) * AUDIT_PAGE_SIZE, p * AUDIT_PAGE_SIZE);
  return layout(
    v,
    'audit',
    'Audit',
    html`<h1>Audit trail</h1>
${
  v0.ok
    ? html`<div class="banner good" data-audit="ok"><strong>Chain verified</strong>: ${v0.records.length} record${v0.records.length === 1 ? '' : 's'}, every hash${v0.records.some((r) => r.sig) ? ' and signature' : ''} checks; head seq ${v0.head.seq} <code>${v0.head.hash.slice(0, 23)}…</code></div>`
    : html`<div class="banner bad" data-audit="broken"><strong>Chain broken</strong> at ${v0.firstBad ? describeBreak(v0.firstBad) : 'an unknown line'}. Only the ${v0.records.length} records before it are shown.</div>`
}
<div class="card"><table class="audit"><colgroup><col class="seq"><col class="at"><col class="kind"><col class="actor"><col class="change"><col></colgroup>
<thead><tr><th class="num">seq</th><th>at</th><th>kind</th><th>actor</th><th>change</th><th>data</th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr data-seq="${r.seq}"><td class="num">${r.seq}</td><td class="at">${when(r.at, v.now)}</td><td><code>${r.kind}</code></td><td>${r.actor.replace('+', ' + ')}</td><td>${r.changeId ? html`<code title="${r.changeId}">${r.changeId.slice(0, 12)}…</code>` : ''}</td>
<td class="data"><details><summary>${summary(r.data)}</summary><pre class="mono">${JSON.stringify(r.data, null, 2)}</pre></details></td></tr>`,
)}</tbody></table>
<div class="pager">${p > 1 ? html`<a href="${v.base}/audit?page=${p - 1}">← newer</a>` : ''}<span class="note">page ${p} of ${pages}</span>${p < pages ? html`<a href="${v.base}/audit?page=${p + 1}">older →</a>` : ''}</div></div>`,
  );
}
