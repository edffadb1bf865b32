import type { ProbeResult } from '../upstream/probe.ts';
import type { RingsController } from './rings-controller.ts';

/** The outcome of a kill-switch drill: the rollback-readiness evidence gates can require. */
export interface DrillResult {
  readonly target: string;
  readonly by: string;
  readonly at: string;
  readonly passed: boolean;
  readonly steps: {
    readonly before: ProbeResult;
    readonly killed: ProbeResult;
    readonly restored: ProbeResult;
  };
  readonly durationMs: number;
  readonly note: string;
}

/**
 * Runs a kill-switch drill on a target: probe (the target answers), kill, probe (the fallback answers, not the
 * target), restore, probe (the target answers again). The kill is always restored, even when a step fails.
 */
export async function runDrill(
  rings: RingsController,
  target: string,
  by: string,
  probe: (target: string) => Promise<ProbeResult>,
): Promise<DrillResult> {
  const started = Date.now();
  const served = (r: ProbeResult) =>
    r.kind === 'upstream' && (r.servedBy === target || r.servedBy.startsWith(`${target}/`));
  const before = await probe(target);
  let killed: ProbeResult;
  await rings.kill({ target }, { by, at: new Date() }, 'kill-switch drill');
  try {
    killed = await probe(target);
  } finally {
    await rings.restore({ target }, { by, at: new Date() }, 'kill-switch drill: restore');
  }
  const restored = await probe(target);
  const moved = !served(killed) && killed.kind !== 'error';
  const passed = served(before) && moved && served(restored);
  const note = passed
    ? `traffic moved to ${killed.servedBy} while killed, and back to ${restored.servedBy} after restore`
    : !served(before)
      ? `the target did not answer before the drill (${before.servedBy})`
      : !moved
        ? `traffic did not move off the target while killed (${killed.servedBy})`
        : `the target did not answer after restore (${restored.servedBy})`;
  const result: DrillResult = {
    target,
    by,
    at: new Date(started).toISOString(),
    passed,
    steps: { before, killed, restored },
    durationMs: Date.now() - started,
    note,
  };
  await rings.recordDrill(result);
  return result;
}
