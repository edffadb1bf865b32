import { randomUUID } from 'node:crypto';
import type { RingState, Slice } from './state.ts';

/** A transition that does not apply to the current state (409 on the admin API). */
export class TransitionError extends Error {
  readonly code:
    | 'no_candidate'
    | 'wrong_stage'
    | 'candidate_exists'
    | 'no_previous'
    | 'same_bundle'
    | 'not_killed';
  constructor(code: TransitionError['code'], message: string) {
    super(message);
    this.name = 'TransitionError';
    this.code = code;
  }
}

/** Who asks for a change, and when. */
export interface Actor {
  readonly by: string;
  readonly at: Date;
}

const iso = (d: Date) => d.toISOString();
const next = (s: RingState): Pick<RingState, 'version' | 'changeId' | 'changedAt'> => ({
  version: s.version + 1,
  changeId: `chg_${randomUUID()}`,
  // When it was stored, so replicas can measure how long it took to reach them.
  changedAt: new Date().toISOString(),
});

/** The first state: a production bundle and nothing else. */
export function initialState(bundleId: string, actor: Actor): RingState {
  const changeId = `chg_${randomUUID()}`;
  return {
    version: 1,
    changeId,
    production: { bundleId, by: actor.by, at: iso(actor.at), changeId },
    previous: [],
  };
}

/** Puts a registered bundle in shadow: evaluated on every request, enforcing nothing. */
export function startShadow(s: RingState, bundleId: string, actor: Actor): RingState {
  if (s.candidate)
    throw new TransitionError(
      'candidate_exists',
      `a candidate is already in ${s.candidate.stage}; roll it back first`,
    );
  if (bundleId === s.production.bundleId)
    throw new TransitionError('same_bundle', 'that bundle is already in production');
  const n = next(s);
  const at = iso(actor.at);
  return {
    ...s,
    ...n,
    candidate: { bundleId, by: actor.by, at, changeId: n.changeId, stage: 'shadow', stageSince: at },
  };
}

/** Moves the shadow candidate to canary with a slice, or changes the slice of a running canary. */
export function setCanary(s: RingState, slice: Slice, actor: Actor): RingState {
  if (!s.candidate) throw new TransitionError('no_candidate', 'no candidate: start a shadow first');
  const n = next(s);
  const entering = s.candidate.stage === 'shadow';
  return {
    ...s,
    ...n,
    candidate: {
      ...s.candidate,
      stage: 'canary',
      slice,
      by: actor.by,
      changeId: n.changeId,
      // Widening restarts the measurement window of the gates: the new slice has to earn its figures.
      stageSince: iso(actor.at),
      at: entering ? iso(actor.at) : s.candidate.at,
    },
  };
}

/** Promotes the canary candidate to production; the old production becomes the first rollback target. */
export function promote(s: RingState, actor: Actor): RingState {
  if (!s.candidate) throw new TransitionError('no_candidate', 'no candidate to promote');
  if (s.candidate.stage !== 'canary')
    throw new TransitionError('wrong_stage', 'only a canary can be promoted; move it to canary first');
  const n = next(s);
  return {
    ...n,
    production: { bundleId: s.candidate.bundleId, by: actor.by, at: iso(actor.at), changeId: n.changeId },
    previous: [s.production, ...s.previous].slice(0, 20),
    ...(s.killed?.targets.length ? { killed: { targets: s.killed.targets } } : {}),
  };
}

/**
 * Rolls back one step: drops the candidate (shadow or canary) when there is one, else reverts production to the
 * previous bundle. Atomic: the result is one new state.
 */
export function rollback(s: RingState, actor: Actor): RingState {
  const n = next(s);
  if (s.candidate) {
    const { candidate: _dropped, ...rest } = s;
    return { ...rest, ...n, killed: { targets: s.killed?.targets ?? [] } };
  }
  const [prev, ...older] = s.previous;
  if (!prev)
    throw new TransitionError(
      'no_previous',
      'nothing to roll back to: no candidate and no previous production bundle',
    );
  return {
    ...n,
    production: { ...prev, by: actor.by, at: iso(actor.at), changeId: n.changeId },
    previous: older,
  };
}

/** Kills a target (`provider` or `provider/model`) or the candidate: effective on the next request. */
export function kill(
  s: RingState,
  what: { target: string } | { candidate: true },
  actor: Actor,
  reason: string,
): RingState {
  const at = iso(actor.at);
  const killed = { targets: s.killed?.targets ?? [], candidate: s.killed?.candidate };
  if ('candidate' in what) {
    if (!s.candidate) throw new TransitionError('no_candidate', 'no candidate to kill');
    killed.candidate = { by: actor.by, at, reason };
  } else
    killed.targets = [
      ...killed.targets.filter((k) => k.target !== what.target),
      { target: what.target, by: actor.by, at, reason },
    ];
  return { ...s, ...next(s), killed };
}

/** Lifts a kill switch. */
export function restore(s: RingState, what: { target: string } | { candidate: true }): RingState {
  const targets = s.killed?.targets ?? [];
  if ('candidate' in what) {
    if (!s.killed?.candidate) throw new TransitionError('not_killed', 'the candidate is not killed');
    return { ...s, ...next(s), killed: { targets } };
  }
  if (!targets.some((k) => k.target === what.target))
    throw new TransitionError('not_killed', `${what.target} is not killed`);
  return {
    ...s,
    ...next(s),
    killed: { targets: targets.filter((k) => k.target !== what.target), candidate: s.killed?.candidate },
  };
}
