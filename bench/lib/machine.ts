import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';

/** Where a run was measured: numbers are only comparable on the same machine. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  /** The checkout the bench ran from (`+dirty`: src/ or bin/ had uncommitted changes). */
  readonly gitSha: string;
  /** The ringfence that was measured: `working tree`, or the directory given with --ringfence-dir. */
  readonly ringfence: string;
  readonly date: string;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `git rev-parse --short HEAD`, with `+dirty` when src/ or bin/ have uncommitted changes. */
export function gitSha(cwd: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], {
      cwd,
      encoding: 'utf8',
    });
    return dirty.trim() ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** Describes this machine and checkout. */
export function machineInfo(repoDir: string, ringfence = 'working tree'): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    gitSha: gitSha(repoDir),
    ringfence,
    date: new Date().toISOString(),
  };
}
