import type { GateOverride } from './override-schema.ts';

/**
 * How often each gate is overridden. A gate that is overridden again and again no longer gates anything: it is
 * effectively deprecated, and someone must choose between making it pass and changing what it demands.
 */

/** A gate overridden this many times within `DEPRECATION_WINDOW_DAYS` is flagged as effectively deprecated. */
export const DEPRECATION_THRESHOLD = 3;
export const DEPRECATION_WINDOW_DAYS = 30;

/** The two ways out for a gate that is overridden routinely, spelled out in the report. */
export const DEPRECATION_CHOICES: readonly string[] = Object.freeze([
  'tighten execution so the gate passes: fix what makes it fail (errors, latency, policy errors), or give the stage the traffic and time it needs for enough data',
  'change the policy or the threshold (rings.gates in the config, or the bundle) so the gate demands what you actually require, and stop overriding it',
]);

const DAY_MS = 86_400_000;

/** Overrides of one gate within the report window. */
export interface GateUsage {
  readonly gate: string;
  readonly count: number;
  /** Overrides per week (weeks start on Monday, UTC), oldest first; weeks without any are left out. */
  readonly weeks: readonly { readonly week: string; readonly count: number }[];
  /** When it was last overridden (the approval time) and by which override. */
  readonly lastUsed: string;
  readonly lastOverride: string;
  /** Who asked and who approved, each identity once, most recent first. */
  readonly requestedBy: readonly string[];
  readonly approvedBy: readonly string[];
  /** Overrides in the last `DEPRECATION_WINDOW_DAYS`, whatever the report window. */
  readonly last30Days: number;
  readonly deprecated: boolean;
}

/** A gate overridden at least `DEPRECATION_THRESHOLD` times in `DEPRECATION_WINDOW_DAYS`. */
export interface DeprecatedGate {
  readonly gate: string;
  readonly count: number;
  readonly overrides: readonly string[];
  readonly choices: readonly string[];
}

/** The report: per-gate usage in the window, and the gates flagged as effectively deprecated. */
export interface OverrideReport {
  readonly now: string;
  readonly days: number;
  readonly since: string;
  /** Distinct overrides approved in the window. */
  readonly total: number;
  /** Records left out because another record had the same id (the last one counts). */
  readonly duplicates: number;
  readonly gates: readonly GateUsage[];
  readonly deprecated: readonly DeprecatedGate[];
}

/** The Monday (UTC) of the week holding `t`, as YYYY-MM-DD. */
export function weekOf(t: number): string {
  const d = new Date(t);
  const monday =
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - ((d.getUTCDay() + 6) % 7) * DAY_MS;
  return new Date(monday).toISOString().slice(0, 10);
}

const distinct = (xs: readonly string[]) => [...new Set(xs.map((x) => x.trim()))];

/**
 * Counts overrides per gate over the last `days` days before `now` (an override counts at its `approvedAt`; one
 * naming several gates counts for each). Records sharing an id are one override, the last record winning (a
 * journal may hold an override more than once). Overrides approved after `now` are not counted.
 */
export function overrideReport(overrides: readonly GateOverride[], now: Date, days = 30): OverrideReport {
  const t = now.getTime();
  const byId = new Map<string, GateOverride>();
  for (const o of overrides) byId.set(o.id, o);
  const all = [...byId.values()]
    .map((o) => ({ o, at: Date.parse(o.approvedAt) }))
    .filter((x) => x.at <= t)
    .sort((a, b) => b.at - a.at);
  const since = t - days * DAY_MS;
  const recent = t - DEPRECATION_WINDOW_DAYS * DAY_MS;

  const perGate = new Map<string, { at: number; o: GateOverride }[]>();
  for (const x of all)
    for (const name of new Set(x.o.gates.map((g) => g.name))) {
      const list = perGate.get(name) ?? [];
      list.push(x);
      perGate.set(name, list);
    }

  const gates: GateUsage[] = [];
  const deprecated: DeprecatedGate[] = [];
  for (const [gate, list] of perGate) {
    const last30 = list.filter((x) => x.at > recent);
    const isDeprecated = last30.length >= DEPRECATION_THRESHOLD;
    if (isDeprecated)
      deprecated.push({
        gate,
        count: last30.length,
        overrides: last30.map((x) => x.o.id),
        choices: DEPRECATION_CHOICES,
      });
    const inWindow = list.filter((x) => x.at > since);
    if (inWindow.length === 0) continue;
    const weeks = new Map<string, number>();
    for (const x of [...inWindow].reverse()) weeks.set(weekOf(x.at), (weeks.get(weekOf(x.at)) ?? 0) + 1);
    gates.push({
      gate,
      count: inWindow.length,
      weeks: [...weeks].map(([week, count]) => ({ week, count })),
      lastUsed: new Date(inWindow[0]!.at).toISOString(),
      lastOverride: inWindow[0]!.o.id,
      requestedBy: distinct(inWindow.map((x) => x.o.requestedBy)),
      approvedBy: distinct(inWindow.map((x) => x.o.approvedBy)),
      last30Days: last30.length,
      deprecated: isDeprecated,
    });
  }
  gates.sort((a, b) => b.count - a.count || a.gate.localeCompare(b.gate));
  deprecated.sort((a, b) => b.count - a.count || a.gate.localeCompare(b.gate));
  return {
    now: now.toISOString(),
    days,
    since: new Date(since).toISOString(),
    total: all.filter((x) => x.at > since).length,
    duplicates: overrides.length - byId.size,
    gates,
    deprecated,
  };
}

/** Renders the report for a terminal. */
export function formatOverrideReport(r: OverrideReport): string {
  const out = [
    `overrides approved in the last ${r.days} days (${r.since.slice(0, 10)} → ${r.now.slice(0, 10)}): ${r.total}`,
  ];
  if (r.gates.length === 0) out.push('no gate was overridden in that window');
  else {
    const head = [
      'gate',
      'count',
      'last 30d',
      'last used',
      'last override',
      'requested by',
      'approved by',
      'per week (Mon)',
    ];
    const cells = r.gates.map((g) => [
      g.gate,
      String(g.count),
      String(g.last30Days),
      g.lastUsed.replace('.000Z', 'Z'),
      g.lastOverride,
      g.requestedBy.join(', '),
      g.approvedBy.join(', '),
      g.weeks.map((w) => `${w.week}: ${w.count}`).join(', '),
    ]);
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) =>
      c
        .map((v, i) => v.padEnd(w[i]!))
        .join('  ')
        .trimEnd();
    out.push('', line(head), ...cells.map(line));
  }
  for (const d of r.deprecated)
    out.push(
      '',
      `⚠ ${d.gate} is effectively deprecated: overridden ${d.count} times in the last ${DEPRECATION_WINDOW_DAYS} days (${d.overrides.join(', ')}). Choose:`,
      ...d.choices.map((c, i) => `    ${i + 1}. ${c}`),
    );
  if (r.duplicates)
    out.push(
      '',
      `(${r.duplicates} duplicate record${r.duplicates === 1 ? '' : 's'} of the same override id counted once)`,
    );
  return `${out.join('\n')}\n`;
}
