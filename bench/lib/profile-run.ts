import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode } from '../modes.ts';
import type { Payload } from '../payloads.ts';
import { type Child, REPO_DIR } from './children.ts';
import { type ProfileSummary, renderFrames, topSelfFrames } from './cpu-profile.ts';
import { saturate } from './load.ts';
import { HEADERS, PATH } from './measure.ts';
import { startMock, startTarget } from './servers.ts';

/** What `--profile MODE` found. */
export interface ProfileOutcome {
  readonly summary: ProfileSummary;
  readonly markdown: string;
  readonly profileFile: string;
  readonly exit: { code: number | null; signal: string | null };
  readonly errors: number;
}

/** How to load the profiled server. */
export interface ProfileOptions {
  readonly durationS: number;
  readonly connections: number;
  /** Sent in turn on each connection. */
  readonly payloads: readonly Payload[];
  readonly log: (line: string) => void;
  readonly ringfenceDir?: string | undefined;
}

/**
 * Starts MODE's server with `--cpu-prof` in front of a fresh mock, loads it for `durationS` at `connections`
 * (the payloads in turn on each connection), stops it with SIGTERM so V8 writes the profile, and summarises it.
 */
export async function profileMode(mode: Mode, tmpDir: string, opts: ProfileOptions): Promise<ProfileOutcome> {
  const { durationS, connections, payloads, log, ringfenceDir } = opts;
  const profDir = join(tmpDir, 'cpu-prof');
  mkdirSync(profDir, { recursive: true });
  const profArgs = ['--cpu-prof', '--cpu-prof-dir', profDir];
  const direct = mode.server.kind === 'mock';
  let mock: Child | undefined;
  let server: Child | undefined;
  try {
    mock = await startMock(direct ? profArgs : []);
    const target = await startTarget(mode, mock, tmpDir, {
      nodeArgs: direct ? [] : profArgs,
      ...(ringfenceDir ? { ringfenceDir } : {}),
    });
    server = target.child ?? mock;
    log(
      `profiling ${mode.name} (pid ${target.pid}) for ${durationS} s at ${connections} connections: ${payloads.map((p) => p.label).join(', ')}`,
    );
    const r = await saturate({
      url: `${target.url}${PATH}`,
      headers: HEADERS,
      payloads,
      connections,
      durationS,
    });
    log(`load: ${r.rps.toFixed(0)} req/s, ${r.errors} errors, ${r.non2xx} non-2xx; stopping with SIGTERM`);
    const exit = await server.stop(15_000);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file)
      throw new Error(`${mode.name} wrote no .cpuprofile (exit ${JSON.stringify(exit)})\n${server.output()}`);
    const summary = topSelfFrames(JSON.parse(readFileSync(join(profDir, file), 'utf8')), REPO_DIR, 15);
    const keep = join(
      REPO_DIR,
      'bench',
      'results',
      `profile-${mode.name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`,
    );
    copyFileSync(join(profDir, file), keep);
    return { summary, markdown: renderFrames(summary), profileFile: keep, exit, errors: r.errors + r.non2xx };
  } finally {
    await server?.stop(5000);
    await mock?.stop(5000);
  }
}
