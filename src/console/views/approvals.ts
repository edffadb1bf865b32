import { html } from 'hono/html';
import type { ApprovalRequest } from '../../control/governance.ts';
import type { BundleDiff } from '../../policy/diff.ts';
import {
  csrfField,
  duration,
  gateTable,
  type H,
  isApprover,
  layout,
  shortId,
  slice,
  type View,
  when,
} from './common.ts';

const same = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/** What each high-risk action is called on the page. */
export const ACTION_LABELS: Readonly<Record<string, string>> = {
  'canary.enter': 'Enter canary',
  'canary.widen': 'Widen the canary slice',
  promote: 'Promote to production',
  override: 'Override failed gates',
};

/** One sentence: what happens the moment this is approved. */
function effect(r: ApprovalRequest): H {
  const s = r.summary;
  const cand = html`<strong>${s.candidate.name} v${s.candidate.version}</strong>`;
  const a = r.ask;
  if (a.action === 'override')
    return html`Approving excepts ${a.override.gates.map((g) => html`<code>${g.name}</code> `)}of the ${s.gates.transition?.replaceAll('_', ' ') ?? ''} transition for ${cand}, until its expiry.`;
  if (a.action === 'promote')
    return html`Approving makes ${cand} production for all traffic; <strong>${s.production.name} v${s.production.version}</strong> becomes the rollback target.`;
  if (a.action === 'canary.enter')
    return html`Approving puts ${cand} in canary: it enforces for ${slice(s.slice)}.`;
  return html`Approving widens the canary of ${cand} from ${slice(s.currentSlice)} to ${slice(s.slice)}.`;
}

const MAX_CHANGES = 12;

function askDetail(r: ApprovalRequest, v: View): H {
  const a = r.ask;
  if (a.action !== 'override') return html``;
  const o = a.override;
  const e = o.expiry;
  return html`<h3>Override asked</h3><dl class="kv">
<dt>gates</dt><dd>${o.gates.map((g) => html`<code>${g.name}</code> <span class="note">— ${g.confidenceNote}</span><br>`)}</dd>
<dt>rationale</dt><dd>${o.rationale}</dd>
<dt>evidence</dt><dd>${o.evidence.sampleSize} samples; severity ${
    Object.entries(o.evidence.severityMix)
      .map(([k, n]) => `${k}=${n}`)
      .join(', ') || '—'
  }; mitigation: ${o.evidence.mitigation}${o.evidence.links.length ? html`; links: ${o.evidence.links.map((l) => html`<code>${l}</code> `)}` : ''}</dd>
<dt>expiry</dt><dd>${e.expiresAt ? html`time box until ${when(e.expiresAt, v.now)}; ` : ''}${e.maxRequests ? `after ${e.maxRequests} canary requests; ` : ''}${e.revertWhen ? `auto-revert when ${e.revertWhen.gate} > ${e.revertWhen.above}; ` : ''}${e.reevaluateAt ? html`re-evaluated at ${when(e.reevaluateAt, v.now)}` : ''}</dd>
<dt>at expiry</dt><dd><strong>${o.onExpiry === 'rollback' ? 'roll back' : 'block widening and promotion'}</strong> if a gate still fails</dd></dl>`;
}

function pendingCard(r: ApprovalRequest, v: View, stateVersion: number, diff: BundleDiff | undefined): H {
  const s = r.summary;
  const mine = same(r.requestedBy, v.who.id);
  const loosened = s.diff.loosened;
  const stale = stateVersion !== r.stateVersion;
  const decide = mine
    ? html`<div class="yours" data-yours>Requested by you — another approver must decide.</div>`
    : isApprover(v.who)
      ? html`<div class="decide">
<form method="post" action="${v.base}/approvals/${r.id}/approve">${csrfField(v)}<label for="why-a-${r.id}">reason (optional)</label><input type="text" id="why-a-${r.id}" name="reason" placeholder="e.g. gates pass, divergence acknowledged"><button type="submit" class="approve">Approve</button></form>
<form method="post" action="${v.base}/approvals/${r.id}/reject">${csrfField(v)}<label for="why-r-${r.id}">reason (required to reject)</label><input type="text" id="why-r-${r.id}" name="reason" required minlength="3"><button type="submit" class="danger">Reject</button></form>
</div>`
      : html`<div class="yours">Only an identity holding the approver role (not the requester) can decide.</div>`;
  return html`<div class="card req${mine ? ' mine' : ''}" id="${r.id}" data-approval="${r.id}">
<h2>${ACTION_LABELS[r.ask.action] ?? r.ask.action} <code class="note">${r.ask.action}</code> <span class="badge ${s.risk}">${s.risk} risk</span> <span class="badge pending">pending</span></h2>
<p class="effect">${effect(r)}</p>
${stale ? html`<div class="banner warn">The ring state changed since this request (version ${r.stateVersion} → ${stateVersion}): approving it will be refused as stale; the requester must ask again.</div>` : ''}
<dl class="kv">
<dt>request</dt><dd><code>${r.id}</code></dd>
<dt>requested by</dt><dd><strong>${r.requestedBy}</strong> ${when(r.requestedAt, v.now)}</dd>
<dt>expires</dt><dd>${Date.parse(r.expiresAt) > v.now ? html`<strong>${duration(Date.parse(r.expiresAt) - v.now)} left</strong> <span class="note">(${r.expiresAt.slice(0, 19).replace('T', ' ')}Z)</span>` : when(r.expiresAt, v.now)}</dd>
<dt>production</dt><dd>${s.production.name} v${s.production.version} ${shortId(s.production.id)}</dd>
<dt>candidate</dt><dd>${s.candidate.name} v${s.candidate.version} ${shortId(s.candidate.id)} <span class="badge ${s.candidate.stage}">${s.candidate.stage}</span></dd>
<dt>diff</dt><dd><strong>+${s.diff.added}</strong> added, <strong>−${s.diff.removed}</strong> removed, <strong>~${s.diff.changed}</strong> changed${loosened.length ? html`, <span class="loosened">${loosened.length} loosening the policy</span>` : html` <span class="note">(nothing loosens the policy)</span>`} — <a href="${v.base}/bundles?from=${encodeURIComponent(s.production.id)}&amp;to=${encodeURIComponent(s.candidate.id)}#diff">full diff</a>
${
  diff
    ? html`<ul class="diff diffmore">${diff.changes
        .slice(0, MAX_CHANGES)
        .map(
          (c) =>
            html`<li class="${c.op}${c.loosened ? ' is-loosened' : ''}"><span class="op">${c.op === 'added' ? '+' : c.op === 'removed' ? '−' : '~'}</span>${c.explanation}${c.loosened ? html` <span class="badge loosened">LOOSENED</span>` : ''}</li>`,
        )}</ul>${diff.changes.length > MAX_CHANGES ? html`<span class="note">and ${diff.changes.length - MAX_CHANGES} more in the full diff</span>` : ''}`
    : loosened.length
      ? html`<ul class="diff">${loosened.map((l) => html`<li class="is-loosened">${l} <span class="badge loosened">LOOSENED</span></li>`)}</ul>`
      : ''
}</dd>
${s.slice || s.currentSlice ? html`<dt>slice asked</dt><dd>${slice(s.slice)}</dd><dt>slice now</dt><dd>${s.currentSlice ? slice(s.currentSlice) : html`<span class="note">none (not in canary)</span>`}</dd>` : ''}
</dl>
${askDetail(r, v)}
<h3>Gates when asked</h3>
${gateTable(s.gates)}
<p class="note">The gates are evaluated again when the approved action runs.</p>
${decide}
</div>`;
}

export function approvalsPage(
  requests: readonly ApprovalRequest[],
  stateVersion: number,
  diffs: ReadonlyMap<string, BundleDiff>,
  v: View,
): H {
  const pending = requests.filter((r) => r.status === 'pending');
  const done = requests.filter((r) => r.status !== 'pending').slice(0, 25);
  return layout(
    v,
    'approvals',
    'Approvals',
    html`<h1>Approvals</h1>
<p class="lead">High-risk actions (entering or widening canary, promotion, overrides) wait here for a second key: a different identity holding the approver role.</p>
${pending.length ? pending.map((r) => pendingCard(r, v, stateVersion, diffs.get(r.id))) : html`<div class="card"><p class="note">Nothing waits for approval.</p></div>`}
<div class="card"><h2>Recent decisions</h2>
${
  done.length
    ? html`<table><thead><tr><th>request</th><th>action</th><th>requested by</th><th>status</th><th>decided by</th><th>when</th><th>reason / error</th></tr></thead><tbody>
${done.map(
  (r) =>
    html`<tr data-approval="${r.id}"><td><code>${r.id}</code></td><td>${ACTION_LABELS[r.ask.action] ?? r.ask.action}</td><td>${r.requestedBy}</td><td><span class="badge ${r.status}">${r.status}</span></td><td>${r.decidedBy ?? '—'}</td><td>${when(r.decidedAt ?? r.expiresAt, v.now)}</td><td>${r.error ?? r.reason ?? ''}</td></tr>`,
)}</tbody></table>`
    : html`<p class="note">None yet.</p>`
}</div>`,
  );
}
