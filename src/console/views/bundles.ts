import { html } from 'hono/html';
import { type BundleDiff, DIFF_SECTIONS } from '../../policy/diff.ts';
import { can, csrfField, type H, layout, shortId, type View } from './common.ts';

export interface BundleRow {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  /** Where it is now: production, shadow, canary, rollback target. */
  readonly rings: readonly string[];
}

const OP = { added: '+', removed: '−', changed: '~' } as const;

/** A readable diff: per section, each change in words; loosening changes flagged in red. */
export function diffView(d: BundleDiff): H {
  const loosened = d.changes.filter((c) => c.loosened).length;
  return html`<div class="card" id="diff"><h2>${d.from.name} v${d.from.version} → ${d.to.name} v${d.to.version}</h2>
<p class="note">from ${shortId(d.from.id)} to ${shortId(d.to.id)}</p>
${
  d.changes.length === 0
    ? html`<p>${d.identical ? 'No changes: the bundles are identical.' : 'No rule changes found, yet the ids differ.'}</p>`
    : html`<p><strong>${d.changes.filter((c) => c.op === 'added').length}</strong> added, <strong>${d.changes.filter((c) => c.op === 'removed').length}</strong> removed, <strong>${d.changes.filter((c) => c.op === 'changed').length}</strong> changed${loosened ? html`; <span class="loosened">${loosened} loosen${loosened === 1 ? 's' : ''} the policy</span>` : '; nothing loosens the policy'}.</p>
${DIFF_SECTIONS.map((section) => {
  const cs = d.changes.filter((c) => c.section === section);
  if (!cs.length) return '';
  return html`<h3>${section}</h3><ul class="diff">${cs.map(
    (c) =>
      html`<li class="${c.op}${c.loosened ? ' is-loosened' : ''}"><span class="op">${OP[c.op]}</span>${c.explanation}${c.loosened ? html` <span class="badge loosened">LOOSENED</span>` : ''}</li>`,
  )}</ul>`;
})}`
}</div>`;
}

export function bundlesPage(
  rows: readonly BundleRow[],
  pick: { from: string | undefined; to: string | undefined },
  diff: BundleDiff | undefined,
  candidatePresent: boolean,
  v: View,
): H {
  const mayShadow = can(v.who, 'shadow');
  const select = (name: 'from' | 'to', chosen: string | undefined) =>
    html`<select id="${name}" name="${name}">${rows.map(
      (r) =>
        html`<option value="${r.id}"${r.id === chosen ? ' selected' : ''}>${r.name} v${r.version} — ${r.id.slice(7, 19)}${r.rings.length ? ` (${r.rings.join(', ')})` : ''}</option>`,
    )}</select>`;
  return layout(
    v,
    'bundles',
    'Bundles',
    html`<h1>Bundles</h1>
<p class="lead">Registered policy bundles (content-addressed, immutable). Pick two to compare them rule by rule.</p>
<div class="card"><table><thead><tr><th>name</th><th>version</th><th>id</th><th>where</th>${mayShadow ? html`<th></th>` : ''}</tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr data-bundle="${r.id}"><td><strong>${r.name}</strong></td><td>v${r.version}</td><td>${shortId(r.id)}</td><td>${r.rings.map((x) => html`<span class="badge ${x.split(' ')[0]}">${x}</span> `)}</td>
${
  mayShadow
    ? html`<td>${
        r.rings.length === 0 && !candidatePresent
          ? html`<form method="post" action="${v.base}/bundles/shadow">${csrfField(v)}<input type="hidden" name="bundleId" value="${r.id}"><button type="submit" class="secondary">Put in shadow</button></form>`
          : ''
      }</td>`
    : ''
}</tr>`,
)}
</tbody></table>
${mayShadow && candidatePresent ? html`<p class="note">A candidate is in shadow or canary: roll it back before shadowing another bundle.</p>` : ''}
<p class="note">Register bundles with <code>ringfence bundle push FILE</code>.</p></div>
<form method="get" action="${v.base}/bundles" class="card"><h2>Compare</h2><div class="grid2">
<div><label for="from">from</label>${select('from', pick.from)}</div><div><label for="to">to</label>${select('to', pick.to)}</div></div>
<button type="submit">Show diff</button></form>
${diff ? diffView(diff) : ''}`,
  );
}
