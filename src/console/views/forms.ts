import { html } from 'hono/html';
import type { rolloutStatus } from '../../control/admin-api.ts';
import { NON_OVERRIDABLE_GATES } from '../../control/override-schema.ts';
import { csrfField, figure, type H, layout, type View } from './common.ts';

type Status = ReturnType<typeof rolloutStatus>;

/** The second step of a rollback: what it will do, and a reason to type before confirming. */
export function rollbackConfirm(
  s: Status,
  previous: { name: string; version: string } | undefined,
  v: View,
): H {
  const c = s.candidate;
  const effect = c
    ? html`The candidate <strong>${c.name} v${c.version}</strong> (${c.stage}) is dropped: all traffic is decided by production <strong>${s.production.name} v${s.production.version}</strong> again.`
    : s.previous[0]
      ? html`Production reverts from <strong>${s.production.name} v${s.production.version}</strong> to the previous bundle${previous ? html` <strong>${previous.name} v${previous.version}</strong>` : ''}.`
      : html`There is nothing to roll back to.`;
  return layout(
    v,
    'rollout',
    'Confirm rollback',
    html`<h1>Roll back</h1>
<div class="card"><p>${effect}</p><p class="note">One atomic step, effective at once on this replica (the others follow within seconds), recorded in the audit trail with your reason.</p>
<form method="post" action="${v.base}/rollout/rollback">${csrfField(v)}<input type="hidden" name="confirm" value="yes">
<label for="reason">reason (required)</label><textarea id="reason" name="reason" required minlength="3" placeholder="what you saw, and why rolling back fixes it"></textarea>
<button type="submit" class="danger">Confirm rollback</button> <a class="button secondary" href="${v.base}/rollout">Cancel</a></form></div>`,
  );
}

/** The second step of a kill switch or its restore. */
export function switchConfirm(
  op: 'kill' | 'restore',
  what: { candidate: true } | { target: string },
  s: Status,
  v: View,
): H {
  const c = s.candidate;
  const effect =
    'candidate' in what
      ? op === 'kill'
        ? html`The candidate${c ? html` <strong>${c.name} v${c.version}</strong>` : ''} is ignored at once: production decides all traffic until the switch is restored.`
        : html`The candidate${c ? html` <strong>${c.name} v${c.version}</strong>` : ''} takes part again in its ${c?.stage ?? ''} stage.`
      : op === 'kill'
        ? html`Target <code>${what.target}</code> is skipped at once: its fallback chain serves instead.`
        : html`Target <code>${what.target}</code> serves again.`;
  const title = `${op === 'kill' ? 'Kill' : 'Restore'} ${'candidate' in what ? 'the candidate' : what.target}`;
  return layout(
    v,
    'rollout',
    title,
    html`<h1>${title}</h1>
<div class="card"><p>${effect}</p>
<form method="post" action="${v.base}/rollout/${op}">${csrfField(v)}<input type="hidden" name="confirm" value="yes">
${'candidate' in what ? html`<input type="hidden" name="candidate" value="true">` : html`<input type="hidden" name="target" value="${what.target}">`}
<label for="reason">reason (required)</label><textarea id="reason" name="reason" required minlength="3"></textarea>
<button type="submit" class="${op === 'kill' ? 'danger' : ''}">Confirm: ${op}</button> <a class="button secondary" href="${v.base}/rollout">Cancel</a></form></div>`,
  );
}

/** The override request form: the failing gates of the next transition, evidence, expiry. */
export function overrideForm(s: Status, v: View): H {
  const table = s.gates;
  const failing = table?.gates.filter((g) => g.verdict !== 'pass') ?? [];
  const samples = Math.max(0, ...failing.map((g) => g.sampleSize));
  return layout(
    v,
    'rollout',
    'Request override',
    html`<h1>Request an override</h1>
<p class="lead">An exception to failing gates of the ${table ? table.transition.replaceAll('_', ' ') : ''} transition for this candidate only, with evidence and an expiry. High-risk: a different approver must approve it.</p>
${
  failing.length === 0
    ? html`<div class="card"><p>Every gate passes: there is nothing to override.</p><a class="button secondary" href="${v.base}/rollout">Back</a></div>`
    : html`<form method="post" action="${v.base}/rollout/override" class="card">${csrfField(v)}
<h2>Gates</h2>
<table><thead><tr><th></th><th>gate</th><th class="num">observed</th><th>threshold</th><th>verdict</th><th>confidence note</th></tr></thead><tbody>
${failing.map((g) => {
  const locked = NON_OVERRIDABLE_GATES.includes(g.name);
  return html`<tr class="${g.verdict}"><td><input type="checkbox" name="gate" value="${g.name}" id="gate-${g.name}"${locked ? ' disabled' : ''}></td>
<td><label for="gate-${g.name}"><code>${g.name}</code></label>${locked ? html`<br><span class="note">never overridable: fix the candidate</span>` : ''}</td>
<td class="num">${figure(g.name, g.observed)}</td><td><code>${g.threshold}</code></td><td>${g.verdict}</td>
<td><input type="text" name="note:${g.name}" aria-label="confidence note for ${g.name}" placeholder="why the figure is (not) trustworthy"${locked ? ' disabled' : ''}></td></tr>`;
})}
</tbody></table>
<label for="rationale">rationale (at least 20 characters)</label><textarea id="rationale" name="rationale" required minlength="20"></textarea>
<div class="grid2"><div>
<label for="sampleSize">evidence: sample size</label><input type="number" id="sampleSize" name="sampleSize" min="0" value="${samples}" required>
<label for="severity">evidence: severity mix (e.g. <code>high=0, low=2</code>)</label><input type="text" id="severity" name="severity" value="high=0, low=0">
<label for="mitigation">evidence: mitigation</label><input type="text" id="mitigation" name="mitigation" required placeholder="what limits the damage meanwhile">
<label for="links">evidence: links (one per line)</label><textarea id="links" name="links"></textarea>
</div><div>
<label for="hours">expires after (hours)</label><input type="number" id="hours" name="hours" min="0.1" step="0.1" value="24">
<label for="maxRequests">or after this many canary requests (optional)</label><input type="number" id="maxRequests" name="maxRequests" min="1">
<label for="onExpiry">at expiry, if a gate still fails</label><select id="onExpiry" name="onExpiry"><option value="block_widening">block widening and promotion</option><option value="rollback">roll back</option></select>
</div></div>
<button type="submit">Request override</button> <a class="button secondary" href="${v.base}/rollout">Cancel</a></form>`
}`,
  );
}
