import type { BundleChange } from './diff.ts';
import { fmt, minus } from './diff-common.ts';
import type { Bundle, Guardrail } from './schema.ts';

/**
 * Guardrail comparison for `diffBundles`. A change loosens the policy when some text that was caught before is
 * no longer caught as strictly; it does not when another guardrail of the new bundle still catches it at least
 * as strictly (a kind moved from a `redact` rule to a `block` rule is not a loosening).
 */

type Stage = 'input' | 'output';

const ACTION_RANK: Record<Guardrail['action'], number> = { flag: 1, redact: 2, block: 3 };
const VERB: Record<Guardrail['action'], string> = { flag: 'flagged', redact: 'redacted', block: 'blocked' };

/** `for class external` / `for all classes`. */
export function scopeText(classes: readonly string[] | undefined): string {
  if (!classes) return 'for all classes';
  return `for ${classes.length === 1 ? 'class' : 'classes'} ${fmt(classes)}`;
}

/** What a guardrail looks for, in words: `pii (pii.email, pii.phone)`. */
export function checkText(g: Guardrail): string {
  switch (g.detector) {
    case 'pii':
    case 'secrets':
      return `${g.detector} (${g.kinds ? fmt(g.kinds) : 'all kinds'})`;
    case 'prompt_injection':
      return `prompt injection${g.threshold !== undefined ? ` (threshold ${g.threshold})` : ''}`;
    case 'keywords':
      return `keywords (${fmt(g.keywords)})`;
    case 'regex':
      return `regex (${g.patterns.map((p) => `/${p}/${g.flags ?? ''}`).join(', ')})`;
    case 'max_tokens':
      return `more than ${g.max} tokens`;
  }
}

/** Classes a guardrail scope covers; undefined stands for every class. */
function coversClasses(outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean {
  if (!outer) return true;
  if (!inner) return false;
  return inner.every((c) => outer.includes(c));
}

/** Whether `h` catches everything `g` catches, at least as strictly. `allKinds` lists a detector's kinds. */
function covers(
  h: Guardrail,
  g: Guardrail,
  allKinds: (d: string) => readonly string[],
  anyAction = false,
): boolean {
  if (h.detector !== g.detector || (!anyAction && ACTION_RANK[h.action] < ACTION_RANK[g.action]))
    return false;
  if (!coversClasses(h.classes, g.classes)) return false;
  switch (g.detector) {
    case 'pii':
    case 'secrets': {
      const hk = (h as typeof g).kinds;
      return !hk || (g.kinds ?? allKinds(g.detector)).every((k) => hk.includes(k));
    }
    case 'prompt_injection':
      return ((h as typeof g).threshold ?? 1) <= (g.threshold ?? 1);
    case 'keywords': {
      const k = h as typeof g;
      // Matching case-insensitively, or not only whole words, catches more (wholeWord defaults to true).
      return (
        g.keywords.every((w) => k.keywords.includes(w)) &&
        (!k.caseSensitive || g.caseSensitive === true) &&
        (k.wholeWord === false || g.wholeWord !== false)
      );
    }
    case 'regex': {
      const r = h as typeof g;
      return (r.flags ?? '') === (g.flags ?? '') && g.patterns.every((p) => r.patterns.includes(p));
    }
    case 'max_tokens':
      return (h as typeof g).max <= g.max;
  }
}

/** The guardrail of the new bundle (other than `exceptId`) that still catches what `probe` caught, if any. */
function coveredBy(
  others: readonly Guardrail[],
  exceptId: string,
  probe: Guardrail,
  allKinds: (d: string) => readonly string[],
  anyAction = false,
) {
  return others.find((h) => h.id !== exceptId && covers(h, probe, allKinds, anyAction));
}

function change(
  stage: Stage,
  op: BundleChange['op'],
  id: string,
  field: string | undefined,
  before: unknown,
  after: unknown,
  explanation: string,
  loosened: boolean,
): BundleChange {
  return { section: `guardrails.${stage}`, op, id, field, before, after, explanation, loosened };
}

/** Compares the guardrails of one stage by id. */
export function diffGuardrails(
  a: Bundle,
  b: Bundle,
  stage: Stage,
  allKinds: (d: string) => readonly string[],
): BundleChange[] {
  const before = a.guardrails[stage];
  const after = b.guardrails[stage];
  const out: BundleChange[] = [];
  const lostUnless = (id: string, probe: Guardrail): { loosened: boolean; note: string } => {
    const h = coveredBy(after, id, probe, allKinds);
    if (h) return { loosened: false, note: `; still ${VERB[h.action]} by ${h.id}` };
    // Still caught, but less strictly: say by what.
    const weaker = coveredBy(after, id, probe, allKinds, true);
    return { loosened: true, note: weaker ? `; now only ${VERB[weaker.action]} by ${weaker.id}` : '' };
  };

  for (const g of before) {
    const n = after.find((x) => x.id === g.id);
    if (!n) {
      const { loosened, note } = lostUnless(g.id, g);
      const text = `guardrail ${g.id} removed: ${stage} no longer checked for ${checkText(g)} ${scopeText(g.classes)} (was ${g.action})${note}`;
      out.push(change(stage, 'removed', g.id, undefined, g, undefined, text, loosened));
      continue;
    }
    const p = `guardrail ${g.id}`;
    if (n.detector !== g.detector) {
      const { loosened, note } = lostUnless(g.id, g);
      const text = `${p}: detector ${g.detector} → ${n.detector}: now checks for ${checkText(n)} instead of ${checkText(g)}${note}`;
      out.push(change(stage, 'changed', g.id, 'detector', g.detector, n.detector, text, loosened));
      continue;
    }
    if (n.action !== g.action) {
      const weaker = ACTION_RANK[n.action] < ACTION_RANK[g.action];
      const { loosened, note } = weaker ? lostUnless(g.id, g) : { loosened: false, note: '' };
      const text = `${p}: action ${g.action} → ${n.action} (${weaker ? 'looser' : 'stricter'})${note}`;
      out.push(change(stage, 'changed', g.id, 'action', g.action, n.action, text, loosened));
    }
    if (String(n.classes) !== String(g.classes)) {
      const universe = [...new Set([...a.classes, ...b.classes])];
      const lost = minus(g.classes ?? universe, n.classes ?? universe);
      const gained = minus(n.classes ?? universe, g.classes ?? universe);
      const parts: string[] = [];
      if (gained.length) parts.push(`now also applies to ${fmt(gained)} (stricter)`);
      let loosened = false;
      if (lost.length) {
        const r = lostUnless(g.id, { ...g, classes: lost });
        loosened = r.loosened;
        parts.push(`no longer applies to ${fmt(lost)}${r.loosened ? ` (looser${r.note})` : r.note}`);
      }
      const text = `${p}: classes ${g.classes ? fmt(g.classes) : 'all'} → ${n.classes ? fmt(n.classes) : 'all'}: ${parts.join('; ')}`;
      out.push(
        change(stage, 'changed', g.id, 'classes', g.classes ?? null, n.classes ?? null, text, loosened),
      );
    }
    out.push(...detectorFieldChanges(stage, g, n, lostUnless, allKinds));
    if (n.description !== g.description)
      out.push(
        change(
          stage,
          'changed',
          g.id,
          'description',
          g.description,
          n.description,
          `${p}: description changed`,
          false,
        ),
      );
  }
  for (const n of after) {
    if (before.some((g) => g.id === n.id)) continue;
    const text = `guardrail ${n.id} added: ${stage} now checked for ${checkText(n)} ${scopeText(n.classes)} → ${n.action}`;
    out.push(change(stage, 'added', n.id, undefined, undefined, n, text, false));
  }
  return out;
}

type LostUnless = (id: string, probe: Guardrail) => { loosened: boolean; note: string };

/** Changes of the detector-specific fields (the detector is the same on both sides). */
function detectorFieldChanges(
  stage: Stage,
  g: Guardrail,
  n: Guardrail,
  lostUnless: LostUnless,
  allKinds: (d: string) => readonly string[],
): BundleChange[] {
  const out: BundleChange[] = [];
  const p = `guardrail ${g.id}`;
  /** A list of things looked for: additions are stricter; removals loosen unless another guardrail covers them. */
  const listField = (
    field: string,
    was: readonly string[],
    now: readonly string[],
    probe: (lost: string[]) => Guardrail,
  ) => {
    const added = minus(now, was);
    const removed = minus(was, now);
    if (!added.length && !removed.length) return;
    const parts: string[] = [];
    if (added.length) parts.push(`adds ${fmt(added)} (stricter)`);
    let loosened = false;
    if (removed.length) {
      const r = lostUnless(g.id, probe(removed));
      loosened = r.loosened;
      parts.push(`drops ${fmt(removed)}${r.loosened ? ` (looser${r.note})` : r.note}`);
    }
    out.push(change(stage, 'changed', g.id, field, was, now, `${p}: ${field} ${parts.join('; ')}`, loosened));
  };
  const flagField = (field: string, was: boolean, now: boolean, looserWhenOn: boolean) => {
    if (was === now) return;
    const loosened = now === looserWhenOn && lostUnless(g.id, g).loosened;
    const text = `${p}: ${field} ${was} → ${now} (${now === looserWhenOn ? 'looser: matches less' : 'stricter: matches more'})`;
    out.push(change(stage, 'changed', g.id, field, was, now, text, loosened));
  };
  const numField = (field: string, was: number, now: number, looserWhenHigher: boolean) => {
    if (was === now) return;
    const looser = now > was === looserWhenHigher;
    const loosened = looser && lostUnless(g.id, g).loosened;
    out.push(
      change(
        stage,
        'changed',
        g.id,
        field,
        was,
        now,
        `${p}: ${field} ${was} → ${now} (${looser ? 'looser' : 'stricter'})`,
        loosened,
      ),
    );
  };
  if ((g.detector === 'pii' || g.detector === 'secrets') && n.detector === g.detector) {
    const all = allKinds(g.detector);
    listField('kinds', g.kinds ?? all, n.kinds ?? all, (lost) => ({ ...g, kinds: lost }));
  } else if (g.detector === 'prompt_injection' && n.detector === g.detector) {
    numField('threshold', g.threshold ?? 1, n.threshold ?? 1, true);
  } else if (g.detector === 'keywords' && n.detector === g.detector) {
    listField('keywords', g.keywords, n.keywords, (lost) => ({ ...g, keywords: lost }));
    flagField('caseSensitive', g.caseSensitive ?? false, n.caseSensitive ?? false, true);
    flagField('wholeWord', g.wholeWord ?? true, n.wholeWord ?? true, true);
  } else if (g.detector === 'regex' && n.detector === g.detector) {
    listField('patterns', g.patterns, n.patterns, (lost) => ({ ...g, patterns: lost }));
    if ((g.flags ?? '') !== (n.flags ?? '')) {
      const droppedI = (g.flags ?? '').includes('i') && !(n.flags ?? '').includes('i');
      const loosened = droppedI && lostUnless(g.id, g).loosened;
      const text = `${p}: flags "${g.flags ?? ''}" → "${n.flags ?? ''}"${droppedI ? ' (looser: now case-sensitive)' : ''}`;
      out.push(change(stage, 'changed', g.id, 'flags', g.flags ?? '', n.flags ?? '', text, loosened));
    }
  } else if (g.detector === 'max_tokens' && n.detector === g.detector) {
    numField('max', g.max, n.max, true);
  }
  return out;
}
