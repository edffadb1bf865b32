import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { AdminIdentity } from '../../config/load.ts';
import { ACTIONS, type ActionName } from '../../control/governance.ts';
import type { GateResult } from '../../rings/gates.ts';
import type { Slice } from '../../rings/state.ts';
import { CSS, JS } from '../assets.ts';
import { CSRF_FIELD } from '../csrf.ts';
import type { Flash } from '../session.ts';

export type H = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What every page of a logged-in session needs. */
export interface View {
  /** Where the console is mounted (`/console`). */
  readonly base: string;
  readonly who: AdminIdentity;
  readonly csrf: string;
  readonly flash: Flash | undefined;
  /** Pending approval requests (the nav badge). */
  readonly pending: number;
  readonly now: number;
}

export type Page = 'rollout' | 'divergence' | 'bundles' | 'approvals' | 'overrides' | 'audit';

/** Whether `who` may do `action` (the same table the admin API and Governance.authorize use). */
export function can(who: AdminIdentity, action: ActionName): boolean {
  const roles: readonly string[] = ACTIONS[action].roles;
  return who.roles.some((r) => roles.includes(r));
}

export const isApprover = (who: AdminIdentity) => who.roles.includes('approver');

/** The hidden CSRF field of a state-changing form. */
export function csrfField(v: { csrf: string }): H {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${v.csrf}">`;
}

/** `sha256:1a2b3c4d…` (the full id in the title). */
export function shortId(id: string): H {
  return html`<code title="${id}">${id.startsWith('sha256:') ? `${id.slice(0, 15)}…` : id}</code>`;
}

/** A duration in words: `4 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  const d = Math.floor(h / 24);
  return `${d} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** An instant: UTC date and time, with how long ago (or how far ahead) it is. */
export function when(iso: string | undefined | null, now: number): H {
  if (!iso) return html`<span class="note">—</span>`;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return html`${iso}`;
  const d = t - now;
  const rel = Math.abs(d) < 1000 ? 'just now' : d < 0 ? `${duration(-d)} ago` : `in ${duration(d)}`;
  return html`<time datetime="${iso}" title="${iso}">${iso.slice(0, 19).replace('T', ' ')}Z</time> <span class="note">(${rel})</span>`;
}

/** Who made a change: `olivia (requested) + alex (approved)` for a two-key change. */
export function by(actor: string): H {
  const [requester, approver, ...rest] = actor.split('+');
  if (approver === undefined || rest.length) return html`${actor}`;
  return html`${requester} <span class="note">(requested)</span> + ${approver} <span class="note">(approved)</span>`;
}

/** A canary slice in words. */
export function slice(s: Slice | null | undefined): H {
  if (!s) return html`<span class="note">—</span>`;
  return html`<strong>${s.percent}%</strong> of ${s.apps.length ? html`apps <code>${s.apps.join(', ')}</code>` : 'all apps'},
${s.classes.length ? html`classes <code>${s.classes.join(', ')}</code>` : 'all classes'}`;
}

const verdictText = { pass: 'pass', fail: 'FAIL', insufficient_data: 'insufficient data' } as const;

/** A gate figure in the gate's own unit (rates as percentages). */
export function figure(name: string, v: number | null): string {
  if (v === null) return '—';
  if (name.endsWith('_rate') || name.endsWith('_rate_delta')) return `${(v * 100).toFixed(2)}%`;
  if (name.endsWith('_ms')) return `${v.toFixed(1)} ms`;
  if (name.endsWith('_us')) return `${Math.round(v)} µs`;
  if (name.endsWith('_s')) return `${Math.round(v)} s`;
  return String(v);
}

/** The gate table: name, observed, threshold, verdict, sample size, window, replicas; coloured by verdict. */
export function gateTable(
  table: { transition: string | null; gates: readonly GateResult[]; replicas?: number } | null | undefined,
  covered?: (gate: string) => boolean,
): H {
  if (!table?.transition || table.gates.length === 0)
    return html`<p class="note">No candidate: no transition to gate.</p>`;
  const passing = table.gates.filter((g) => g.verdict === 'pass').length;
  return html`<table class="gates" data-transition="${table.transition}">
<thead><tr><th>gate</th><th class="num">observed</th><th>threshold</th><th>verdict</th><th class="num">sample size</th><th>window</th><th class="num">replicas</th></tr></thead>
<tbody>${table.gates.map((g) => {
    const over = g.verdict !== 'pass' && covered?.(g.name);
    const span = Date.parse(g.window.until) - Date.parse(g.window.since);
    return html`<tr class="${g.verdict}" data-gate="${g.name}">
<td><code>${g.name}</code></td>
<td class="num">${figure(g.name, g.observed)}</td>
<td><code>${g.threshold}</code></td>
<td class="verdict"><span class="badge ${g.verdict}">${verdictText[g.verdict]}</span>${over ? html` <span class="badge warn">overridden</span>` : ''}</td>
<td class="num">${g.sampleSize}</td>
<td>${duration(span)} <span class="note" title="${g.window.since} → ${g.window.until}">since ${g.window.since.slice(11, 19)}Z</span></td>
<td class="num">${table.replicas ?? 1}</td>
</tr>`;
  })}</tbody></table>
<p class="note">${table.transition.replaceAll('_', ' ')}: ${passing} of ${table.gates.length} gates pass. Too little data is never a pass.</p>`;
}

const NAV: ReadonlyArray<[Page, string]> = [
  ['rollout', 'Rollout'],
  ['divergence', 'Divergence'],
  ['bundles', 'Bundles'],
  ['approvals', 'Approvals'],
  ['overrides', 'Overrides'],
  ['audit', 'Audit'],
];

/** The page around a view: header with navigation and identity, flash message, the body. */
export function layout(v: View, page: Page, title: string, body: H): H {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ringfence console</title>
<link rel="stylesheet" href="${v.base}/assets/${CSS.name}">
<script type="module" src="${v.base}/assets/${JS.name}"></script>
</head><body>
<header class="top"><span class="brand">ringfence<small>operator console</small></span>
<nav aria-label="console">${NAV.map(
    ([p, label]) =>
      html`<a href="${v.base}/${p}" class="${p === page ? 'on' : ''}"${p === page ? html` aria-current="page"` : ''}>${label}${p === 'approvals' && v.pending ? html`<span class="count" title="pending approval requests">${v.pending}</span>` : ''}</a>`,
  )}</nav>
<span class="who">signed in as <strong data-who>${v.who.id}</strong> <span class="note">(${v.who.roles.join(', ')})</span>
<form method="post" action="${v.base}/logout">${csrfField(v)}<button type="submit">Log out</button></form></span>
</header>
<main>
${v.flash ? html`<div class="flash ${v.flash.kind}" role="${v.flash.kind === 'error' ? 'alert' : 'status'}">${v.flash.text}</div>` : ''}
${body}
</main></body></html>`;
}

/** A page without a session (login, errors before login). */
export function bare(base: string, title: string, body: H): H {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ringfence console</title>
<link rel="stylesheet" href="${base}/assets/${CSS.name}">
</head><body><main>${body}</main></body></html>`;
}
