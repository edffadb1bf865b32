import type { BundleChange } from './diff.ts';
import { byId, ch, fmt, minus, same } from './diff-common.ts';
import type { Budget, Bundle, ContentLogging, ToolRule } from './schema.ts';

/** Tool rules, budgets and content logging for `diffBundles`. */

const LOG_RANK: Record<ContentLogging, number> = { none: 0, redacted: 1, full: 2 };
const SCOPE_RANK: Record<Budget['scope'], number> = { class: 0, app: 1, end_user: 2 };

/** A duration in the unit it was most likely written in: `60s`, `1h`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function toolText(t: ToolRule): string {
  const parts = [t.deny && `may not call ${fmt(t.deny)}`, t.allow && `may only call ${fmt(t.allow)}`].filter(
    Boolean,
  );
  return `${t.classes ? `classes ${fmt(t.classes)}` : 'all classes'} ${parts.join(' and ')}`;
}

export function diffTools(a: Bundle, b: Bundle): BundleChange[] {
  const s = 'tools';
  return byId(
    a.tools,
    b.tools,
    (r) =>
      ch(
        s,
        'removed',
        r.id,
        undefined,
        r,
        undefined,
        `tool rule ${r.id} removed: ${toolText(r)} no longer holds (looser)`,
        true,
      ),
    (r, n) => {
      const c: BundleChange[] = [];
      const p = `tool rule ${r.id}`;
      const removedDeny = minus(r.deny ?? [], n.deny ?? []);
      const addedDeny = minus(n.deny ?? [], r.deny ?? []);
      if (removedDeny.length || addedDeny.length) {
        const parts = [
          addedDeny.length && `now denies ${fmt(addedDeny)} (stricter)`,
          removedDeny.length && `no longer denies ${fmt(removedDeny)} (looser)`,
        ];
        c.push(
          ch(
            s,
            'changed',
            r.id,
            'deny',
            r.deny,
            n.deny,
            `${p}: ${parts.filter(Boolean).join('; ')}`,
            removedDeny.length > 0,
          ),
        );
      }
      if (!same(r.allow, n.allow)) {
        let text: string;
        let loosened: boolean;
        if (!r.allow) [text, loosened] = [`now only allows ${fmt(n.allow!)} (stricter)`, false];
        else if (!n.allow)
          [text, loosened] = ['allow list removed: any tool not denied is allowed (looser)', true];
        else {
          const more = minus(n.allow, r.allow);
          const fewer = minus(r.allow, n.allow);
          text = [
            more.length && `now also allows ${fmt(more)} (looser)`,
            fewer.length && `no longer allows ${fmt(fewer)} (stricter)`,
          ]
            .filter(Boolean)
            .join('; ');
          loosened = more.length > 0;
        }
        c.push(ch(s, 'changed', r.id, 'allow', r.allow, n.allow, `${p}: ${text}`, loosened));
      }
      if (String(r.classes) !== String(n.classes)) {
        const universe = [...new Set([...a.classes, ...b.classes])];
        const lost = minus(r.classes ?? universe, n.classes ?? universe);
        const text = `${p}: classes ${r.classes ? fmt(r.classes) : 'all'} → ${n.classes ? fmt(n.classes) : 'all'}${lost.length ? ` (looser: no longer applies to ${fmt(lost)})` : ' (stricter)'}`;
        c.push(
          ch(s, 'changed', r.id, 'classes', r.classes ?? null, n.classes ?? null, text, lost.length > 0),
        );
      }
      if (r.description !== n.description)
        c.push(
          ch(
            s,
            'changed',
            r.id,
            'description',
            r.description,
            n.description,
            `${p}: description changed`,
            false,
          ),
        );
      return c;
    },
    (n) => ch(s, 'added', n.id, undefined, undefined, n, `tool rule ${n.id} added: ${toolText(n)}`, false),
  );
}

function budgetText(t: Budget): string {
  return `${t.maxTokens} tokens per ${formatDuration(t.window)} per ${t.scope.replace('_', ' ')}${t.classes ? ` (classes ${fmt(t.classes)})` : ''}`;
}

export function diffBudgets(a: Bundle, b: Bundle): BundleChange[] {
  const s = 'budgets';
  return byId(
    a.budgets,
    b.budgets,
    (r) =>
      ch(
        s,
        'removed',
        r.id,
        undefined,
        r,
        undefined,
        `budget ${r.id} removed: ${budgetText(r)} no longer enforced (looser)`,
        true,
      ),
    (r, n) => {
      const c: BundleChange[] = [];
      const p = `budget ${r.id}`;
      const num = (field: string, was: number, now: number, looser: boolean, show: (v: number) => string) =>
        c.push(
          ch(
            s,
            'changed',
            r.id,
            field,
            was,
            now,
            `${p}: ${field} ${show(was)} → ${show(now)} (${looser ? 'looser' : 'tighter'})`,
            looser,
          ),
        );
      if (r.maxTokens !== n.maxTokens)
        num('maxTokens', r.maxTokens, n.maxTokens, n.maxTokens > r.maxTokens, String);
      if (r.window !== n.window) num('window', r.window, n.window, n.window < r.window, formatDuration);
      if (r.scope !== n.scope) {
        const looser = SCOPE_RANK[n.scope] > SCOPE_RANK[r.scope];
        const text = `${p}: scope ${r.scope} → ${n.scope} (${looser ? 'looser: counted per smaller group, each with its own allowance' : 'tighter: one allowance shared by a larger group'})`;
        c.push(ch(s, 'changed', r.id, 'scope', r.scope, n.scope, text, looser));
      }
      if (String(r.classes) !== String(n.classes)) {
        const universe = [...new Set([...a.classes, ...b.classes])];
        const lost = minus(r.classes ?? universe, n.classes ?? universe);
        const text = `${p}: classes ${r.classes ? fmt(r.classes) : 'all'} → ${n.classes ? fmt(n.classes) : 'all'}${lost.length ? ` (looser: no longer charged for ${fmt(lost)})` : ' (tighter)'}`;
        c.push(
          ch(s, 'changed', r.id, 'classes', r.classes ?? null, n.classes ?? null, text, lost.length > 0),
        );
      }
      if (r.mode !== n.mode) {
        const looser = n.mode === 'failOpen';
        c.push(
          ch(
            s,
            'changed',
            r.id,
            'mode',
            r.mode,
            n.mode,
            `${p}: mode ${r.mode} → ${n.mode} (${looser ? 'looser: lets traffic through when the counter store is down' : 'tighter'})`,
            looser,
          ),
        );
      }
      return c;
    },
    (n) => ch(s, 'added', n.id, undefined, undefined, n, `budget ${n.id} added: ${budgetText(n)}`, false),
  );
}

export function diffLogging(a: Bundle, b: Bundle): BundleChange[] {
  const out: BundleChange[] = [];
  const wa = a.logging.content;
  const wb = b.logging.content;
  const effective = (c: Record<string, ContentLogging>, k: string): ContentLogging =>
    c[k] ?? c.default ?? 'none';
  for (const k of new Set([...Object.keys(wa), ...Object.keys(wb)])) {
    if (wa[k] === wb[k]) continue;
    const was = effective(wa, k);
    const now = effective(wb, k);
    const looser = LOG_RANK[now] > LOG_RANK[was];
    const who = k === 'default' ? 'classes without their own setting' : `class ${k}`;
    const show = (v: ContentLogging | undefined, e: ContentLogging) => v ?? `(default: ${e})`;
    const text = `logging for ${who}: ${show(wa[k], was)} → ${show(wb[k], now)}${was === now ? '' : looser ? ' (looser: more content logged)' : ' (stricter: less content logged)'}`;
    const op = wa[k] === undefined ? 'added' : wb[k] === undefined ? 'removed' : 'changed';
    out.push(ch('logging', op, k, op === 'changed' ? 'content' : undefined, wa[k], wb[k], text, looser));
  }
  return out;
}
