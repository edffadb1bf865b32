import { html } from 'hono/html';
import type { DivergenceGroup } from '../../control/ring-stats.ts';
import { can, csrfField, type H, layout, type View, when } from './common.ts';

export interface DivergenceData {
  readonly epoch: string;
  readonly total: number;
  readonly divergent: number;
  readonly kinds: Readonly<Record<string, number | undefined>>;
  readonly groups: readonly DivergenceGroup[];
  readonly candidate: { readonly name: string; readonly version: string; readonly stage: string } | undefined;
}

export function divergencePage(d: DivergenceData, v: View): H {
  const mayAck = can(v.who, 'divergence.ack');
  const kinds = Object.entries(d.kinds).filter(([, n]) => n);
  return layout(
    v,
    'divergence',
    'Divergence',
    html`<h1>Divergence</h1>
<p class="lead">Requests on which the candidate decided differently from production, grouped by the deciding rules (production rule → candidate rule). Each group must be acknowledged with an explanation before the candidate may enter canary.</p>
<div class="card"><dl class="kv">
<dt>candidate</dt><dd>${d.candidate ? html`${d.candidate.name} v${d.candidate.version} <span class="badge ${d.candidate.stage}">${d.candidate.stage}</span>` : 'none'}</dd>
<dt>this stage</dt><dd>${d.divergent} of ${d.total} requests diverged${d.total ? ` (${((d.divergent / d.total) * 100).toFixed(1)}%)` : ''}</dd>
<dt>kinds</dt><dd>${kinds.length ? kinds.map(([k, n]) => html`<span class="badge">${k}: ${n}</span> `) : html`<span class="note">none</span>`}</dd>
</dl></div>
${
  d.groups.length === 0
    ? html`<div class="card"><p class="note">No divergence in this stage.</p></div>`
    : d.groups.map(
        (
          g,
        ) => html`<div class="card" data-group="${g.key}"><h2><code>${g.prodRule}</code> → <code>${g.candRule}</code> <span class="badge">${g.count} request${g.count === 1 ? '' : 's'}</span> ${g.ack ? html`<span class="badge ok">acknowledged</span>` : html`<span class="badge warn">not acknowledged</span>`}</h2>
<dl class="kv"><dt>kinds</dt><dd>${Object.entries(g.kinds).map(([k, n]) => html`<span class="badge">${k}: ${n}</span> `)}</dd>
<dt>sample request ids</dt><dd>${g.samples.map((id) => html`<code>${id}</code> `)}</dd>
${g.ack ? html`<dt>acknowledged</dt><dd>by ${g.ack.by} ${when(g.ack.at, v.now)}: ${g.ack.reason}</dd>` : ''}</dl>
${
  !g.ack && mayAck
    ? html`<form method="post" action="${v.base}/divergence/ack">${csrfField(v)}<input type="hidden" name="group" value="${g.key}">
<label for="reason-${g.key}">why this difference is intended (required)</label><textarea id="reason-${g.key}" name="reason" required minlength="3"></textarea>
<button type="submit">Acknowledge</button></form>`
    : ''
}</div>`,
      )
}
<p class="note">Stage <code>${d.epoch}</code>.</p>`,
  );
}
