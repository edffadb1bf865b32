import type { BundleChange } from './diff.ts';
import { byId, ch, fmt, minus, orderChange, same } from './diff-common.ts';
import type { Bundle, Condition } from './schema.ts';

/**
 * Classification, routing and model allowlists for `diffBundles`. Moving traffic to another class loosens the
 * policy when the new class is not covered by guardrails or tool rules that covered the old one.
 */

/** A condition in words: `app.tags ∈ [external] and expr \`…\``. */
export function conditionText(w: Condition): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(w)) {
    if (v === undefined) continue;
    if (k === 'expr') parts.push(`expr \`${v}\``);
    else if (k === 'metadata')
      for (const [mk, mv] of Object.entries(v as Record<string, string[]>))
        parts.push(`metadata.${mk} ∈ [${fmt(mv)}]`);
    else if (k === 'tokens') {
      const t = v as { gt?: number; lte?: number };
      if (t.gt !== undefined) parts.push(`tokens > ${t.gt}`);
      if (t.lte !== undefined) parts.push(`tokens ≤ ${t.lte}`);
    } else if (Array.isArray(v)) parts.push(`${k} ∈ [${fmt(v)}]`);
    else parts.push(`${k} = ${String(v)}`);
  }
  return parts.length ? parts.join(' and ') : 'always';
}

/** Whether `now` may match less traffic than `was` (an added key, a dropped value, a changed expression). */
function narrowed(was: Condition, now: Condition): boolean {
  for (const [k, v] of Object.entries(now)) {
    const old = (was as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (old === undefined) return true;
    if (Array.isArray(v) && minus(old as string[], v).length) return true;
    if (k === 'metadata') {
      const o = old as Record<string, string[]>;
      for (const [mk, mv] of Object.entries(v as Record<string, string[]>))
        if (!o[mk] || minus(o[mk], mv).length) return true;
    }
    if (k === 'tokens') {
      const o = old as { gt?: number; lte?: number };
      const t = v as { gt?: number; lte?: number };
      if ((t.gt ?? -1) > (o.gt ?? -1) || (t.lte ?? Infinity) < (o.lte ?? Infinity)) return true;
    }
    if ((k === 'expr' || k === 'stream') && v !== old) return true;
  }
  return false;
}

/** Guardrails and tool rules that apply to a class: what protects its traffic. */
function protections(b: Bundle, cls: string): string[] {
  const applies = (classes: readonly string[] | undefined) => !classes || classes.includes(cls);
  return [
    ...b.guardrails.input.filter((g) => applies(g.classes)).map((g) => g.id),
    ...b.guardrails.output.filter((g) => applies(g.classes)).map((g) => g.id),
    ...b.tools.filter((t) => applies(t.classes)).map((t) => t.id),
  ];
}

/** Traffic moving from class `from` to class `to`: loosened when `to` lacks protections `from` has (in `b`). */
function classMove(b: Bundle, from: string, to: string): { loosened: boolean; note: string } {
  const lost = minus(protections(b, from), protections(b, to));
  return lost.length
    ? { loosened: true, note: ` (looser: no longer under ${fmt(lost)})` }
    : { loosened: false, note: '' };
}

export function diffClassification(a: Bundle, b: Bundle): BundleChange[] {
  const out: BundleChange[] = [];
  const s = 'classification';
  const wasDefault = a.classification.default;
  const nowDefault = b.classification.default;
  if (wasDefault !== nowDefault) {
    const { loosened, note } = classMove(b, wasDefault, nowDefault);
    const text = `classification.default: ${wasDefault} → ${nowDefault}: requests no rule matches now get class ${nowDefault}${note}`;
    out.push(ch(s, 'changed', 'default', 'default', wasDefault, nowDefault, text, loosened));
  }
  out.push(
    ...byId(
      a.classification.rules,
      b.classification.rules,
      (r) => {
        const { loosened, note } = classMove(b, r.class, nowDefault);
        const text = `classification rule ${r.id} removed: requests with ${conditionText(r.when)} no longer get class ${r.class} (they fall through to later rules or ${nowDefault})${note}`;
        return ch(s, 'removed', r.id, undefined, r, undefined, text, loosened);
      },
      (r, n) => {
        const c: BundleChange[] = [];
        const p = `classification rule ${r.id}`;
        if (r.class !== n.class) {
          const { loosened, note } = classMove(b, r.class, n.class);
          c.push(
            ch(
              s,
              'changed',
              r.id,
              'class',
              r.class,
              n.class,
              `${p}: class ${r.class} → ${n.class}${note}`,
              loosened,
            ),
          );
        }
        if (!same(r.when, n.when)) {
          const { loosened } = narrowed(r.when, n.when)
            ? classMove(b, n.class, nowDefault)
            : { loosened: false };
          const text = `${p}: now matches ${conditionText(n.when)} (was ${conditionText(r.when)})${loosened ? ' (looser: may match less traffic into a stricter class)' : ''}`;
          c.push(ch(s, 'changed', r.id, 'when', r.when, n.when, text, loosened));
        }
        if (r.confidence !== n.confidence)
          c.push(
            ch(
              s,
              'changed',
              r.id,
              'confidence',
              r.confidence,
              n.confidence,
              `${p}: confidence ${r.confidence} → ${n.confidence}`,
              false,
            ),
          );
        return c;
      },
      (n) =>
        ch(
          s,
          'added',
          n.id,
          undefined,
          undefined,
          n,
          `classification rule ${n.id} added: requests with ${conditionText(n.when)} get class ${n.class}`,
          false,
        ),
    ),
  );
  out.push(...orderChange(s, a.classification.rules, b.classification.rules, 'classification rule'));
  return out;
}

const routeText = (r: { provider?: string | undefined; model?: string | undefined }) =>
  [r.provider && `provider ${r.provider}`, r.model && `model ${r.model}`].filter(Boolean).join(', ');

export function diffRouting(a: Bundle, b: Bundle): BundleChange[] {
  const s = 'routing';
  const out = byId(
    a.routing,
    b.routing,
    (r) => {
      const pinned = r.route.provider !== undefined;
      const text = `route ${r.id} removed: requests with ${conditionText(r.when)} no longer go to ${routeText(r.route)}${pinned ? ` (looser: no longer pinned to provider ${r.route.provider})` : ''}`;
      return ch(s, 'removed', r.id, undefined, r, undefined, text, pinned);
    },
    (r, n) => {
      const c: BundleChange[] = [];
      const p = `route ${r.id}`;
      if (r.route.provider !== n.route.provider) {
        const looser = r.route.provider !== undefined;
        const text = `${p}: provider ${r.route.provider ?? '(as requested)'} → ${n.route.provider ?? '(as requested)'}${looser ? ` (looser: traffic pinned to ${r.route.provider} goes elsewhere)` : ''}`;
        c.push(ch(s, 'changed', r.id, 'provider', r.route.provider, n.route.provider, text, looser));
      }
      if (r.route.model !== n.route.model)
        c.push(
          ch(
            s,
            'changed',
            r.id,
            'model',
            r.route.model,
            n.route.model,
            `${p}: model ${r.route.model ?? '(as requested)'} → ${n.route.model ?? '(as requested)'}`,
            false,
          ),
        );
      if (!same(r.when, n.when)) {
        const loosened = r.route.provider !== undefined && narrowed(r.when, n.when);
        const text = `${p}: now matches ${conditionText(n.when)} (was ${conditionText(r.when)})${loosened ? ` (looser: may pin less traffic to ${r.route.provider})` : ''}`;
        c.push(ch(s, 'changed', r.id, 'when', r.when, n.when, text, loosened));
      }
      return c;
    },
    (n) =>
      ch(
        s,
        'added',
        n.id,
        undefined,
        undefined,
        n,
        `route ${n.id} added: requests with ${conditionText(n.when)} now go to ${routeText(n.route)}`,
        false,
      ),
  );
  return [...out, ...orderChange(s, a.routing, b.routing, 'route')];
}

export function diffModels(a: Bundle, b: Bundle): BundleChange[] {
  const out: BundleChange[] = [];
  for (const cls of new Set([...Object.keys(a.models), ...Object.keys(b.models)])) {
    const was = a.models[cls];
    const now = b.models[cls];
    if (same(was, now)) continue;
    if (!was)
      out.push(
        ch(
          'models',
          'added',
          cls,
          undefined,
          undefined,
          now,
          `models for class ${cls}: now limited to ${fmt(now!)} (stricter)`,
          false,
        ),
      );
    else if (!now)
      out.push(
        ch(
          'models',
          'removed',
          cls,
          undefined,
          was,
          undefined,
          `models for class ${cls}: allowlist removed, any model allowed (looser)`,
          true,
        ),
      );
    else {
      const added = minus(now, was);
      const removed = minus(was, now);
      const parts = [
        added.length && `now also allows ${fmt(added)} (looser)`,
        removed.length && `no longer allows ${fmt(removed)} (stricter)`,
      ];
      out.push(
        ch(
          'models',
          'changed',
          cls,
          'models',
          was,
          now,
          `models for class ${cls}: ${parts.filter(Boolean).join('; ')}`,
          added.length > 0,
        ),
      );
    }
  }
  return out;
}
