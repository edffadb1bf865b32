import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type AdminIdentity, hashKey } from '../config/load.ts';
import { BundleError } from '../policy/load.ts';
import { sliceSchema } from '../rings/state.ts';
import { TransitionError } from '../rings/transitions.ts';
import type { ProbeResult } from '../upstream/probe.ts';
import { type AuditLog, rawAuditText } from './audit.ts';
import { runDrill } from './drill.ts';
import { type Ask, Governance, GovernanceError } from './governance.ts';
import { overrideExpirySchema } from './override-schema.ts';
import { GateBlockedError, type RingsController } from './rings-controller.ts';
import { type ControlStore, StoreConflictError } from './store.ts';

/** Admin roles. viewer reads; operator changes rings; sre rolls back and kills; approver is the second key. */
export type Role = AdminIdentity['roles'][number];

interface AdminEnv {
  Variables: { who: AdminIdentity };
}

function adminError(
  c: Context,
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return c.json({ error: { code, message, ...extra } }, status as 400);
}

/** Bearer-token authentication against the configured admin tokens (held as sha256 hashes). */
function authenticate(tokens: ReadonlyMap<string, AdminIdentity>): MiddlewareHandler<AdminEnv> {
  return async function authenticate(c, next) {
    const m = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
    const who = m ? tokens.get(hashKey(m[1]!.trim())) : undefined;
    if (!who) return adminError(c, 401, 'unauthenticated', 'missing or unknown admin token');
    c.set('who', who);
    await next();
  };
}

/** Refuses the call unless the identity holds one of `roles`. */
function requireRole(...roles: Role[]): MiddlewareHandler<AdminEnv> {
  return async function requireRole(c, next) {
    const who = c.get('who');
    if (!who.roles.some((r) => roles.includes(r)))
      return adminError(
        c,
        403,
        'forbidden',
        `${who.id} lacks the role for this action (needs one of: ${roles.join(', ')})`,
      );
    await next();
  };
}

const reasonBody = z.strictObject({ reason: z.string().min(3, 'a reason is required') });
const shadowBody = z.strictObject({ bundleId: z.string().regex(/^sha256:[a-f0-9]{64}$/) });
const overrideBody = z.strictObject({
  gates: z.array(z.strictObject({ name: z.string().min(1), confidenceNote: z.string().min(1) })).min(1),
  rationale: z.string().min(20, 'a rationale of at least 20 characters'),
  evidence: z.strictObject({
    sampleSize: z.number().int().nonnegative(),
    severityMix: z.record(z.string(), z.number().int().nonnegative()),
    mitigation: z.string().min(1),
    links: z.array(z.string()).default([]),
  }),
  expiry: overrideExpirySchema,
  onExpiry: z.enum(['block_widening', 'rollback']),
});
const ackBody = z.strictObject({
  group: z.string().min(1),
  reason: z.string().min(3, 'a reason is required'),
});

async function json<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new HTTPBadRequest('body must be JSON');
  }
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new HTTPBadRequest(
      r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '),
    );
  return r.data;
}

class HTTPBadRequest extends Error {}

/** The ring status as the admin API and the CLI show it. */
export function rolloutStatus(rings: RingsController) {
  const snap = rings.runtime.snapshot();
  const { state, stats } = snap;
  const label = (cb: { id: string; name: string; version: string }) => ({
    id: cb.id,
    name: cb.name,
    version: cb.version,
  });
  return {
    version: state.version,
    changeId: state.changeId,
    production: { ...label(snap.production), since: state.production.at, by: state.production.by },
    candidate:
      state.candidate && snap.candidate
        ? {
            ...label(snap.candidate),
            stage: state.candidate.stage,
            since: state.candidate.at,
            stageSince: state.candidate.stageSince,
            by: state.candidate.by,
            slice: state.candidate.slice,
          }
        : null,
    previous: state.previous.map((p) => ({ id: p.bundleId, since: p.at, by: p.by })),
    killed: state.killed ?? { targets: [] },
    stats: {
      since: new Date(stats.since).toISOString(),
      production: stats.counters.production,
      canary: stats.counters.canary,
      candidateEvaluations: stats.candidateEvaluations,
      candidatePolicyErrors: stats.candidatePolicyErrors,
      divergent: stats.divergent,
      divergenceKinds: stats.divergenceKinds,
    },
    gates: rings.gates() ?? null,
    lastRollback: rings.lastRollback ?? null,
  };
}

/**
 * The admin API (its own listener, never the data plane's): bearer tokens with roles; every change names who
 * asked. Conflicts (wrong stage, gates failing, a concurrent change) are 409 with what stands in the way.
 */
export function adminApi(deps: {
  rings: RingsController;
  governance: Governance;
  audit?: { log: AuditLog; store: ControlStore; stateDir: string | undefined };
  tokens: ReadonlyMap<string, AdminIdentity>;
  logger: Logger;
  probe?: (target: string) => Promise<ProbeResult>;
}): Hono<AdminEnv> {
  const { rings, logger, governance } = deps;
  const api = new Hono<AdminEnv>();
  api.use('*', authenticate(deps.tokens));
  const read = requireRole('viewer', 'operator', 'sre', 'approver');
  const operate = requireRole('operator');
  const revert = requireRole('operator', 'sre');
  const actor = (c: Context<AdminEnv>) => ({ by: c.get('who').id, at: new Date() });

  api.get('/rollout', read, (c) => c.json(rolloutStatus(rings)));
  api.get('/rollout/gates', read, (c) => c.json(rings.gates() ?? { transition: null, gates: [] }));
  api.get('/rollout/divergence', read, (c) => {
    const snap = rings.runtime.snapshot();
    const groups = [...snap.stats.groups.values()].sort((a, b) => b.count - a.count);
    return c.json({
      epoch: snap.stats.epoch,
      total: snap.stats.total,
      divergent: snap.stats.divergent,
      kinds: snap.stats.divergenceKinds,
      groups,
    });
  });
  api.post('/rollout/divergence/ack', operate, async (c) => {
    const b = await json(c, ackBody);
    await rings.ack(b.group, actor(c), b.reason);
    return c.json({ acknowledged: b.group });
  });
  // The audit trail: raw journal bytes (for `ringfence audit verify --admin`), or records with their verification.
  api.get('/audit', read, async (c) => {
    const a = deps.audit;
    if (!a) return adminError(c, 501, 'not_available', 'no audit trail configured');
    const head = a.log.head();
    c.header('x-ringfence-audit-head', `${head.seq}:${head.hash}`);
    if (c.req.query('format') === 'raw')
      return c.body(await rawAuditText(a.store, a.stateDir), 200, {
        'content-type': 'text/plain; charset=utf-8',
      });
    const v = await a.log.verify();
    const kind = c.req.query('kind');
    const since = c.req.query('since');
    const records = v.records.filter(
      (r) => (!kind || r.kind === kind || r.kind.startsWith(`${kind}.`)) && (!since || r.at >= since),
    );
    return c.json({ ok: v.ok, head: v.head, firstBad: v.firstBad ?? null, records });
  });
  api.get('/bundles', read, async (c) => c.json({ bundles: await rings.listBundles() }));
  api.get('/bundles/:id', read, async (c) => {
    const cb = await rings.getBundle(c.req.param('id')).catch(() => undefined);
    if (!cb) return adminError(c, 404, 'not_found', 'no such bundle');
    return c.json({ id: cb.id, name: cb.name, version: cb.version, bundle: cb.loaded.bundle });
  });
  api.post('/bundles', operate, async (c) => {
    const text = await c.req.text();
    const r = await rings.registerBundle(text, 'upload', c.get('who').id);
    logger.info({ by: c.get('who').id, bundle: r }, 'bundle registered');
    return c.json(r, r.created ? 201 : 200);
  });
  api.post('/rollout/shadow', operate, async (c) => {
    const b = await json(c, shadowBody);
    return c.json(await rings.shadow(b.bundleId, actor(c)));
  });
  // High-risk actions are requests: 202 with the approval a different identity must grant (POST /approvals/:id/approve).
  const ask = async (c: Context<AdminEnv>, a: Ask) => {
    const req = await governance.ask(a, c.get('who'));
    return c.json(
      {
        approval: req,
        message: `${a.action} is high-risk: approval ${req.id} must be approved by a different identity with the approver role before ${req.expiresAt}`,
      },
      202,
    );
  };
  api.post('/rollout/canary', async (c) => {
    const slice = await json(c, sliceSchema);
    const action = governance.classifyCanary(slice);
    if (action !== 'canary.narrow') return ask(c, { action, slice });
    Governance.authorize(action, c.get('who'));
    return c.json(await rings.canary(slice, actor(c)));
  });
  api.post('/rollout/promote', async (c) => ask(c, { action: 'promote' }));
  api.post('/overrides', async (c) => {
    const b = await json(c, overrideBody);
    return ask(c, { action: 'override', override: b });
  });
  api.get('/overrides', read, async (c) => {
    await governance.refresh();
    return c.json({
      overrides: governance.allOverrides().map((r) => r.override),
      records: governance.allOverrides(),
      active: governance.active(),
      wideningBlockedBy: governance.wideningBlocked() ?? null,
    });
  });
  api.get('/approvals', read, async (c) => {
    await governance.refresh();
    const status = c.req.query('status');
    const all = governance.requests();
    return c.json({ approvals: status ? all.filter((r) => r.status === status) : all });
  });
  api.get('/approvals/:id', read, async (c) => {
    await governance.refresh();
    const r = governance.request(c.req.param('id'));
    return r ? c.json(r) : adminError(c, 404, 'not_found', `no approval request ${c.req.param('id')}`);
  });
  api.post('/approvals/:id/approve', async (c) => {
    const b = await json(c, z.strictObject({ reason: z.string().optional() }));
    const r = await governance.approve(c.req.param('id'), c.get('who'), b.reason);
    return c.json(r);
  });
  api.post('/approvals/:id/reject', async (c) => {
    const b = await json(c, reasonBody);
    return c.json(await governance.reject(c.req.param('id'), c.get('who'), b.reason));
  });
  api.post('/rollout/rollback', revert, async (c) => {
    const b = await json(c, reasonBody);
    return c.json(await rings.rollback(actor(c), b.reason));
  });

  const killBody = z.union([
    z.strictObject({ target: z.string().min(1), reason: z.string().min(3, 'a reason is required') }),
    z.strictObject({ candidate: z.literal(true), reason: z.string().min(3, 'a reason is required') }),
  ]);
  const switchOf = (b: z.infer<typeof killBody>) =>
    'target' in b ? { target: b.target } : { candidate: true as const };
  api.post('/kill', revert, async (c) => {
    const b = await json(c, killBody);
    const s = await rings.kill(switchOf(b), actor(c), b.reason);
    logger.warn({ by: c.get('who').id, kill: switchOf(b), reason: b.reason }, 'kill switch on');
    return c.json(s);
  });
  api.post('/restore', revert, async (c) => {
    const b = await json(c, killBody);
    const s = await rings.restore(switchOf(b), actor(c), b.reason);
    logger.warn({ by: c.get('who').id, restore: switchOf(b), reason: b.reason }, 'kill switch off');
    return c.json(s);
  });
  api.post('/drill', revert, async (c) => {
    const b = await json(c, z.strictObject({ target: z.string().min(1) }));
    if (!deps.probe) return adminError(c, 501, 'not_available', 'no probe configured');
    return c.json(await runDrill(rings, b.target, c.get('who').id, deps.probe));
  });
  api.get('/drills', read, async (c) => c.json({ drills: await rings.drills() }));

  api.onError((err, c) => {
    if (err instanceof GovernanceError) return adminError(c, err.status, err.code, err.message, err.details);
    // Fail static: the data plane keeps serving with the last state; control-plane writes wait for the store.
    if (err.name === 'StoreUnavailableError')
      return adminError(
        c,
        503,
        'store_unavailable',
        `${err.message}: the change was not made; retry once the store answers`,
      );
    if (err instanceof HTTPBadRequest) return adminError(c, 400, 'invalid_request', err.message);
    if (err instanceof BundleError)
      return adminError(c, 400, 'invalid_bundle', err.message, { issues: err.issues });
    if (err instanceof GateBlockedError)
      return adminError(c, 409, 'gates_failed', err.message, { gates: err.gates });
    if (err instanceof TransitionError) return adminError(c, 409, err.code, err.message);
    if (err instanceof StoreConflictError) return adminError(c, 409, 'conflict', err.message);
    if (err.message.startsWith('no divergence group')) return adminError(c, 404, 'not_found', err.message);
    logger.error({ err }, 'admin API error');
    return adminError(c, 500, 'internal_error', 'internal error');
  });
  api.notFound((c) => adminError(c, 404, 'route_not_found', `no route ${c.req.method} ${c.req.path}`));
  return api;
}
