import { html } from 'hono/html';
import type { rolloutStatus } from '../../control/admin-api.ts';
import type { ApprovalRequest } from '../../control/governance.ts';
import type { RollbackRecord } from '../../control/rings-controller.ts';
import { barChart, columnChart, lineChart } from '../charts.ts';
import { LANES, type TelemetryView } from '../telemetry.ts';
import {
  by,
  can,
  csrfField,
  duration,
  gateTable,
  type H,
  layout,
  shortId,
  slice,
  type View,
  when,
} from './common.ts';

export interface RolloutData {
  readonly status: ReturnType<typeof rolloutStatus>;
  /** Name and version of the most recent rollback target, when known. */
  readonly previous: { readonly name: string; readonly version: string } | undefined;
  readonly covered: ((gate: string) => boolean) | undefined;
  readonly telemetry: TelemetryView | undefined;
  readonly epoch: string;
  readonly rollbacks: readonly RollbackRecord[];
  readonly wideningBlocked: string | undefined;
  /** Classes the candidate bundle knows (slice form), apps of the config, kill-switch targets. */
  readonly classes: readonly string[];
  readonly apps: readonly string[];
  readonly targets: readonly string[];
  readonly pending: readonly ApprovalRequest[];
}

const pct = (v: number) => `${(v * 100).toFixed(v !== 0 && Math.abs(v) < 0.01 ? 2 : 1)}%`;
const ms = (v: number) => `${v.toFixed(Math.abs(v) < 10 ? 1 : 0)} ms`;
const usd = (v: number) => (v === 0 ? '$0' : v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(3)}`);

function rings(d: RolloutData, v: View): H {
  const s = d.status;
  const c = s.candidate;
  const prev = s.previous[0];
  const killedCandidate = s.killed.candidate;
  return html`<div class="card" id="rings"><h2>Rings</h2>
<table><thead><tr><th>ring</th><th>bundle</th><th>id</th><th>since</th><th>by</th><th>slice</th></tr></thead><tbody>
<tr data-ring="production"><td><span class="badge production">production</span></td><td><strong>${s.production.name}</strong> v${s.production.version}</td><td>${shortId(s.production.id)}</td><td>${when(s.production.since, v.now)}</td><td>${by(s.production.by)}</td><td><span class="note">all traffic outside the canary slice</span></td></tr>
${
  c
    ? html`<tr data-ring="${c.stage}"><td><span class="badge ${c.stage}">${c.stage}</span>${killedCandidate ? html` <span class="badge fail">killed</span>` : ''}</td><td><strong>${c.name}</strong> v${c.version}</td><td>${shortId(c.id)}</td><td>${when(c.stageSince, v.now)}${c.since !== c.stageSince ? html`<br><span class="note">candidate since ${when(c.since, v.now)}</span>` : ''}</td><td>${by(c.by)}</td><td>${c.stage === 'canary' ? slice(c.slice) : html`<span class="note">observes every request, enforces nothing</span>`}</td></tr>`
    : html`<tr><td><span class="badge">candidate</span></td><td colspan="5" class="note">none — put a registered bundle in shadow from <a href="${v.base}/bundles">Bundles</a></td></tr>`
}
${
  prev
    ? html`<tr data-ring="previous"><td><span class="badge">rollback target</span></td><td>${d.previous ? html`<strong>${d.previous.name}</strong> v${d.previous.version}` : ''}</td><td>${shortId(prev.id)}</td><td>${when(prev.since, v.now)}</td><td>${by(prev.by)}</td><td><span class="note">a rollback without candidate restores it</span></td></tr>`
    : ''
}
</tbody></table>
${
  killedCandidate || s.killed.targets.length
    ? html`<div class="banner bad"><strong>Kill switches on:</strong> ${killedCandidate ? html`candidate ignored (by ${killedCandidate.by}, ${when(killedCandidate.at, v.now)}: ${killedCandidate.reason})` : ''}
${s.killed.targets.map((t) => html`<br>target <code>${t.target}</code> skipped (by ${t.by}, ${when(t.at, v.now)}: ${t.reason})`)}</div>`
    : ''
}
${d.wideningBlocked ? html`<div class="banner warn">Widening and promotion are blocked: override <code>${d.wideningBlocked}</code> expired while its gate still failed.</div>` : ''}
<p class="note">Ring state version ${s.version}, change <code>${s.changeId}</code>. Stage statistics since ${when(s.stats.since, v.now)}: ${s.stats.production.requests} production, ${s.stats.canary.requests} canary requests; ${s.stats.candidateEvaluations} candidate evaluations, ${s.stats.divergent} divergent.</p>
</div>`;
}

function charts(d: RolloutData, v: View): H {
  const t = d.telemetry;
  if (!t) return html`<p class="note">Charts need the console's request observer (not wired).</p>`;
  // A young stage (or a quiet gateway) fills only the last buckets: start the time axis at the first bucket with
  // traffic (at least a minute of buckets), so the lines are not squeezed against the right edge.
  const n = t.lanes.production.requests.length;
  const busy = LANES.map((l) => t.lanes[l].requests.findIndex((r) => r > 0)).filter((i) => i >= 0);
  const from = busy.length ? Math.max(0, Math.min(Math.min(...busy), n - Math.ceil(60_000 / t.bucketMs))) : 0;
  const cut = <T>(xs: readonly T[]) => xs.slice(from);
  const span = duration(t.end - t.start - from * t.bucketMs);
  const x: [string, string] = [`−${span}`, 'now'];
  const bucket = duration(t.bucketMs);
  const lanes = [
    { name: 'production', key: 'production' },
    { name: 'canary (candidate enforcing)', key: 'canary' },
    { name: 'candidate observing production traffic', key: 'shadow' },
  ] as const;
  const laneSeries = (pick: 'policyErrorRate' | 'triggerRate') =>
    lanes.map((l) => ({ ...l, values: cut(t.lanes[l.key][pick]) }));
  const sameStage = t.classes.epoch === d.epoch;
  const cls = sameStage ? t.classes : { compared: 0, moved: 0, production: {}, candidate: {} };
  const classNames = [...new Set([...Object.keys(cls.production), ...Object.keys(cls.candidate)])].sort();
  const share = (m: Readonly<Record<string, number>>, k: string) =>
    cls.compared ? (m[k] ?? 0) / cls.compared : 0;
  const DAY = 86_400_000;
  const today = Math.floor(v.now / DAY) * DAY;
  const days = Array.from({ length: 14 }, (_, i) => today - (13 - i) * DAY);
  const rb = days.map((day) => {
    const on = d.rollbacks.filter((r) => Date.parse(r.at) >= day && Date.parse(r.at) < day + DAY);
    return {
      label: new Date(day).toISOString().slice(0, 10),
      parts: {
        manual: on.filter((r) => !r.trigger).length,
        auto: on.filter((r) => r.trigger).length,
      },
    };
  });
  const last = d.rollbacks.at(-1);
  const lat = t.latency;
  return html`<div class="grid3 charts">
<div class="card"><h3>Policy error rate</h3>
${lineChart({ id: 'chart-policy-errors', title: 'Policy error rate by lane', series: laneSeries('policyErrorRate'), format: pct, xLabels: x, minMax: 0.01 })}
<p class="note">Evaluations that threw (denied as <code>policy_error</code>; in shadow, counted only). ${bucket} buckets, this replica.</p></div>
<div class="card"><h3>Classification shift</h3>
${barChart({
  id: 'chart-classes',
  title: 'Share of requests per class, production vs candidate',
  groups: classNames.map((k) => ({
    label: k,
    bars: [
      { key: 'production', value: share(cls.production, k), text: pct(share(cls.production, k)) },
      { key: 'candidate', value: share(cls.candidate, k), text: pct(share(cls.candidate, k)) },
    ],
  })),
  series: [
    { name: 'production', key: 'production' },
    { name: 'candidate', key: 'candidate' },
  ],
  empty: 'no request evaluated by both bundles in this stage',
})}
<p class="note">Same requests classified by both bundles since the stage began: ${cls.compared} compared, <strong>${cls.moved}</strong> changed class.</p></div>
<div class="card"><h3>Guardrail trigger rate by ring</h3>
${lineChart({ id: 'chart-triggers', title: 'Guardrail trigger rate by ring', series: laneSeries('triggerRate'), format: pct, xLabels: x, minMax: 0.05 })}
<p class="note">Requests on which any input or output guardrail did not pass. ${bucket} buckets.</p></div>
<div class="card"><h3>Latency delta (canary − production)</h3>
${lineChart({
  id: 'chart-latency',
  title: 'Latency delta canary minus production, p50 and p95',
  series: [
    { name: 'p50 delta', key: 'p50', values: cut(t.latencyDelta.p50) },
    { name: 'p95 delta', key: 'p95', values: cut(t.latencyDelta.p95) },
  ],
  format: ms,
  xLabels: x,
  minMax: 1,
  empty: t.latency.canary.n ? 'no bucket with both rings' : 'no canary traffic yet',
})}
<p class="note">Window: production p50 ${lat.production.p50 === null ? '—' : ms(lat.production.p50)}, p95 ${lat.production.p95 === null ? '—' : ms(lat.production.p95)} (${lat.production.n}); canary p50 ${lat.canary.p50 === null ? '—' : ms(lat.canary.p50)}, p95 ${lat.canary.p95 === null ? '—' : ms(lat.canary.p95)} (${lat.canary.n}).</p></div>
<div class="card"><h3>Cost per request by class</h3>
${barChart({
  id: 'chart-cost',
  title: 'Estimated cost per request by class',
  groups: t.cost.map((c) => ({
    label: c.cls,
    bars: [
      {
        key: 'cost',
        value: c.priced ? c.usd / c.priced : 0,
        text: c.priced ? `${usd(c.usd / c.priced)} · ${c.requests} req` : `unpriced · ${c.requests} req`,
      },
    ],
  })),
  series: [{ name: 'estimated US$ per request · requests', key: 'cost' }],
  empty: 'no request with token usage in the window',
  textWidth: 118,
})}
<p class="note">From provider token usage and <code>providers.&lt;id&gt;.pricing</code>; last ${duration(t.end - t.start)}.</p></div>
<div class="card"><h3>Rollbacks</h3>
${columnChart({
  id: 'chart-rollbacks',
  title: 'Rollbacks per day, last 14 days',
  columns: rb,
  series: [
    { name: 'manual', key: 'manual' },
    { name: 'automatic (trigger)', key: 'auto' },
  ],
  xLabels: [rb[0]!.label.slice(5), 'today'],
  empty: 'no rollback in 14 days',
})}
<p class="note">${last ? html`Last: ${when(last.at, v.now)} by ${last.by}${last.trigger ? html` (trigger <code>${last.trigger.trigger}</code>)` : ''}: ${last.reason}; restored in ${last.timeToRestoreMs} ms.` : 'No rollback recorded.'}</p></div>
</div>`;
}

function actions(d: RolloutData, v: View): H {
  const c = d.status.candidate;
  const who = v.who;
  const out: H[] = [];
  if (c && can(who, 'canary.enter')) {
    const cur = c.slice;
    out.push(html`<div class="card" id="slice-form"><h2>${c.stage === 'shadow' ? 'Request canary' : 'Change the canary slice'}</h2>
<form method="post" action="${v.base}/rollout/canary">${csrfField(v)}
<fieldset><legend>apps (none checked: all)</legend>${d.apps.map((a) => html`<label class="check"><input type="checkbox" name="apps" value="${a}"${cur?.apps.includes(a) ? ' checked' : ''}> ${a}</label>`)}</fieldset>
<fieldset><legend>classes (none checked: all)</legend>${d.classes.map((k) => html`<label class="check"><input type="checkbox" name="classes" value="${k}"${cur?.classes.includes(k) ? ' checked' : ''}> ${k}</label>`)}</fieldset>
<label for="percent">percent of that traffic</label><input type="number" id="percent" name="percent" min="0" max="100" step="0.1" value="${cur?.percent ?? 5}" required>
<p class="note">${c.stage === 'shadow' ? 'Entering canary is high-risk: it waits for a second key (a different approver).' : 'Narrowing is fail-safe (applied at once); widening waits for a second key.'}</p>
<button type="submit">${c.stage === 'shadow' ? 'Request canary' : 'Change slice'}</button></form></div>`);
  }
  if (c?.stage === 'canary' && can(who, 'promote'))
    out.push(html`<div class="card"><h2>Request promotion</h2><p>Make <strong>${c.name} v${c.version}</strong> production for all traffic. High-risk: a different approver must approve; the gates are checked when asked and again when it runs.</p>
<form method="post" action="${v.base}/rollout/promote">${csrfField(v)}<button type="submit">Request promotion</button></form></div>`);
  const failing = d.status.gates?.gates.filter((g) => g.verdict !== 'pass') ?? [];
  if (c && can(who, 'override') && failing.length)
    out.push(html`<div class="card"><h2>Override a failed gate</h2><p>${failing.length} gate${failing.length === 1 ? '' : 's'} of the next transition do${failing.length === 1 ? 'es' : ''} not pass. An override is a logged exception with evidence and an expiry, approved by a second key.</p>
<a class="button secondary" href="${v.base}/rollout/override">Request override…</a></div>`);
  if (can(who, 'rollback') || can(who, 'kill')) {
    const killedCandidate = d.status.killed.candidate;
    out.push(html`<div class="card"><h2>Stop the damage</h2>
${can(who, 'rollback') && (c || d.status.previous.length) ? html`<a class="button danger" href="${v.base}/rollout/rollback">Roll back…</a> ` : ''}
${can(who, 'kill') && c && !killedCandidate ? html`<a class="button danger" href="${v.base}/rollout/kill?what=candidate">Kill the candidate…</a> ` : ''}
${can(who, 'restore') && killedCandidate ? html`<a class="button secondary" href="${v.base}/rollout/restore?what=candidate">Restore the candidate…</a> ` : ''}
${
  can(who, 'kill') && d.targets.length
    ? html`<form method="get" action="${v.base}/rollout/kill"><label for="kill-target">kill a target (its fallback serves)</label>
<select id="kill-target" name="target">${d.targets.map((t) => html`<option value="${t}">${t}</option>`)}</select><button type="submit" class="danger">Kill target…</button></form>`
    : ''
}
${d.status.killed.targets.map((t) => (can(who, 'restore') ? html`<p><a class="button secondary" href="${v.base}/rollout/restore?target=${encodeURIComponent(t.target)}">Restore ${t.target}…</a></p>` : ''))}
<p class="note">Fail-safe actions: one key, effective at once, each asks for a reason on the next page.</p></div>`);
  }
  const waiting = d.pending.length
    ? html`<div class="card"><h2>Waiting for a second key</h2><ul>${d.pending.map(
        (r) =>
          html`<li><a href="${v.base}/approvals#${r.id}"><code>${r.id}</code></a> ${r.ask.action} requested by ${r.requestedBy}, expires ${when(r.expiresAt, v.now)}</li>`,
      )}</ul></div>`
    : '';
  if (!out.length && !d.pending.length)
    return html`<p class="note">Your roles (${who.roles.join(', ')}) can read this page; changes need operator or sre, approvals need approver.</p>`;
  return html`${waiting}<div class="actions">${out}</div>`;
}

/** The live region: re-rendered on its own for the progressive refresh. */
export function rolloutLive(d: RolloutData, v: View): H {
  const s = d.status;
  return html`<div id="live" data-refresh="${v.base}/rollout?fragment=live" data-refresh-ms="5000">
${rings(d, v)}
<div class="card" id="gates"><h2>Gates${s.gates ? html` <span class="note">(${s.gates.transition.replaceAll('_', ' ')})</span>` : ''}</h2>
${gateTable(s.gates, d.covered)}</div>
${charts(d, v)}
<h2 class="section">Actions</h2>
${actions(d, v)}
</div>`;
}

export function rolloutPage(d: RolloutData, v: View): H {
  return layout(
    v,
    'rollout',
    'Rollout',
    html`<h1>Rollout</h1>
<div class="refresh">as of ${new Date(v.now).toISOString().slice(11, 19)}Z · <a href="${v.base}/rollout">Refresh</a> <span data-refresh-status></span></div>
${rolloutLive(d, v)}`,
  );
}
