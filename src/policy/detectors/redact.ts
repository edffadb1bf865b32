import type { Match } from './types.ts';

/**
 * Replaces the matched spans of `text` with `replacement(m)`, everything else byte for byte. Matches may come
 * in any order and overlap: overlapping spans are merged into one (touching ones are not), and `replacement`
 * gets the merged span with the kind of the match that starts it (the longest one on a tie). Spans outside the
 * text are clipped, empty ones ignored, and a span edge that falls inside a surrogate pair is widened to the
 * whole code point, so the result never holds half an emoji.
 */
export function redact(text: string, matches: readonly Match[], replacement: (m: Match) => string): string {
  if (matches.length === 0) return text;
  const spans: Match[] = [];
  for (const m of matches) {
    let start = Math.max(0, Math.min(m.start, text.length));
    let end = Math.max(0, Math.min(m.end, text.length));
    if (!(end > start)) continue;
    if (isLow(text.charCodeAt(start)) && isHigh(text.charCodeAt(start - 1))) start--;
    if (isLow(text.charCodeAt(end)) && isHigh(text.charCodeAt(end - 1))) end++;
    spans.push(start === m.start && end === m.end ? m : { kind: m.kind, start, end });
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let cursor = 0;
  let current = spans[0]!;
  let currentEnd = current.end;
  for (let i = 1; i < spans.length; i++) {
    const s = spans[i]!;
    if (s.start < currentEnd) {
      if (s.end > currentEnd) currentEnd = s.end;
      continue;
    }
    out += text.slice(cursor, current.start) + replacement(merged(current, currentEnd));
    cursor = currentEnd;
    current = s;
    currentEnd = s.end;
  }
  out += text.slice(cursor, current.start) + replacement(merged(current, currentEnd));
  return out + text.slice(currentEnd);
}

function merged(first: Match, end: number): Match {
  return end === first.end ? first : { kind: first.kind, start: first.start, end };
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
