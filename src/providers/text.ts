/** Flattens a content value (a string, or an array of parts with `text`) into text. Non-text parts are skipped. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (typeof part === 'string') out += out ? `\n${part}` : part;
    else if (part && typeof part === 'object') {
      const p = part as { text?: unknown; content?: unknown };
      const t = typeof p.text === 'string' ? p.text : p.content !== undefined ? contentText(p.content) : '';
      if (t) out += out ? `\n${t}` : t;
    }
  }
  return out;
}

/** A string field, or undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A finite number field, or undefined. */
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** String-valued entries of a metadata object (other values are dropped: policy matches on strings). */
export function stringRecord(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}
