/**
 * A small Dockerfile reader for the deploy tests: enough of the syntax to state facts about our own Dockerfile,
 * not a general parser. It handles line continuations (`\` at the end of a line, comment lines inside them
 * dropped as BuildKit does), comments, `--flag=value` options, the exec (JSON array) and shell forms, and stages
 * (`FROM image AS name`). Heredocs and the `# escape=` directive are not supported: `parseDockerfile` throws on
 * them, so the tests cannot pass on a file this reader misunderstands.
 */

/** One instruction: its keyword (upper case), `--flags`, and what follows them. */
export interface Instruction {
  readonly keyword: string;
  readonly flags: Readonly<Record<string, string>>;
  /** The arguments after the flags, as written (continuations joined with a space). */
  readonly args: string;
  /** The 1-based line the instruction starts on. */
  readonly line: number;
}

/** A build stage: from its FROM to the next. */
export interface Stage {
  readonly index: number;
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

const FLAGGED = new Set(['FROM', 'COPY', 'ADD', 'RUN', 'HEALTHCHECK']);

/** Splits a Dockerfile into instructions. */
export function parseInstructions(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  if (lines.some((l) => /^#\s*escape\s*=/i.test(l)))
    throw new Error('the # escape= directive is not supported');
  const out: Instruction[] = [];
  let buf: string[] = [];
  let start = 0;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (buf.length === 0 && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (buf.length > 0 && trimmed.startsWith('#')) return; // a comment line inside a continuation
    if (buf.length === 0) start = i + 1;
    const continued = /\\\s*$/.test(raw);
    buf.push(continued ? raw.replace(/\\\s*$/, '') : raw);
    if (continued) return;
    out.push(instruction(buf.join(' ').trim(), start));
    buf = [];
  });
  if (buf.length > 0) out.push(instruction(buf.join(' ').trim(), start));
  return out;
}

function instruction(text: string, line: number): Instruction {
  const m = /^(\S+)\s*(.*)$/s.exec(text);
  if (!m) throw new Error(`line ${line}: cannot read "${text}"`);
  const keyword = m[1]!.toUpperCase();
  let rest = m[2]!;
  if (/<<-?\s*["']?\w+/.test(rest) && (keyword === 'RUN' || keyword === 'COPY'))
    throw new Error(`line ${line}: heredocs are not supported`);
  const flags: Record<string, string> = {};
  if (FLAGGED.has(keyword)) {
    for (;;) {
      const f = /^--([a-z][a-z0-9-]*)(?:=(\S*))?\s*/i.exec(rest);
      if (!f) break;
      flags[f[1]!] = f[2] ?? 'true';
      rest = rest.slice(f[0].length);
    }
  }
  return { keyword, flags, args: rest.trim(), line };
}

/** Groups the instructions into stages (instructions before the first FROM, ARGs only, are dropped). */
export function parseDockerfile(text: string): Stage[] {
  const stages: { index: number; from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const ins of parseInstructions(text)) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ index: stages.length, from: m[1]!, name: m[2]?.toLowerCase(), instructions: [] });
    } else if (stages.length > 0) stages.at(-1)!.instructions.push(ins);
    else if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
  }
  return stages;
}

/** The exec form (a JSON array) of an instruction's arguments, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const v: unknown = JSON.parse(args);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new Error(`not a string array: ${args}`);
  return v;
}

/** COPY/ADD: the sources and the destination (exec or shell form; whitespace-separated in the shell form). */
export function copyPaths(ins: Instruction): { sources: string[]; dest: string } {
  const parts = execForm(ins.args) ?? ins.args.split(/\s+/).filter(Boolean);
  if (parts.length < 2) throw new Error(`line ${ins.line}: ${ins.keyword} needs a source and a destination`);
  return { sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** `HEALTHCHECK [options] CMD …`: the command (exec form as an array, shell form as one string), or NONE. */
export function healthcheckCommand(ins: Instruction): string[] | string | 'NONE' {
  if (/^NONE$/i.test(ins.args)) return 'NONE';
  const m = /^CMD\s+(.*)$/is.exec(ins.args);
  if (!m) throw new Error(`line ${ins.line}: HEALTHCHECK without CMD`);
  return execForm(m[1]!) ?? m[1]!;
}

/** The patterns of a .dockerignore, comments and blank lines dropped, `/` prefixes and suffixes removed. */
export function dockerignorePatterns(text: string): { pattern: string; negated: boolean }[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const pattern = (negated ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { pattern, negated };
    });
}

function globRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches any number of directories, including none; a trailing `**` anything below.
      if (pattern[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern that matches a directory excludes everything under it.
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** Whether a context path (relative, `/`-separated) is excluded by the .dockerignore (the last match wins). */
export function isIgnored(path: string, patterns: readonly { pattern: string; negated: boolean }[]): boolean {
  let ignored = false;
  for (const p of patterns) if (globRegex(p.pattern).test(path)) ignored = !p.negated;
  return ignored;
}
