/** Compiles glob patterns (`*` any run, `?` one character) into one anchored RegExp, once at load. */
export function globsToRegExp(patterns: readonly string[]): RegExp {
  const alts = patterns.map((p) =>
    p
      .split('')
      .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join(''),
  );
  return new RegExp(`^(?:${alts.join('|')})$`);
}
