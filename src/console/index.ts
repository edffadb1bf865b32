import type { IncomingMessage } from 'node:http';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type AdminIdentity, hashKey } from '../config/load.ts';
import { rolloutStatus } from '../control/admin-api.ts';
import type { AuditLog } from '../control/audit.ts';
import { type ActionName, Governance, GovernanceError, type OverrideDraft } from '../control/governance.ts';
import { overrideReport } from '../control/override-report.ts';
import { overrideExpirySchema } from '../control/override-schema.ts';
import { GateBlockedError, type RingsController, type RollbackRecord } from '../control/rings-controller.ts';
import { type ControlStore, StoreConflictError } from '../control/store.ts';
import { diffBundles } from '../policy/diff.ts';
import { BundleError } from '../policy/load.ts';
import type { GateResult } from '../rings/gates.ts';
import { sliceSchema } from '../rings/state.ts';
import { TransitionError } from '../rings/transitions.ts';
import { ASSETS } from './assets.ts';
import { CSRF_FIELD, csrfOk, sameOrigin } from './csrf.ts';
import { LoginLimiter } from './rate-limit.ts';
import { type Session, type SessionOptions, Sessions } from './session.ts';
import type { ConsoleTelemetry } from './telemetry.ts';
import { approvalsPage } from './views/approvals.ts';
import { type BundleRow, bundlesPage } from './views/bundles.ts';
import { bare, gateTable, type H, layout, type Page, type View } from './views/common.ts';
import { divergencePage } from './views/divergence.ts';
import { overrideForm, rollbackConfirm, switchConfirm } from './views/forms.ts';
import { loginPage } from './views/login.ts';
import { auditPage, overridesPage } from './views/overrides.ts';
import { type RolloutData, rolloutLive, rolloutPage } from './views/rollout.ts';

export { ConsoleTelemetry } from './telemetry.ts';

/**
 * The operator console: server-rendered pages on the ADMIN listener (`/console`), over the same Governance and
 * RingsController calls and role rules as the admin API. Sessions are server-side (the cookie holds a random id,
 * never the token); every state-changing form carries a per-session CSRF token and must come from the console's
 * own origin; no inline script or style anywhere, so the CSP needs no 'unsafe-inline'.
 */
export interface ConsoleDeps {
  readonly rings: RingsController;
  readonly governance: Governance;
  /** The admin tokens (sha256 → identity and roles), as the admin API authenticates them. */
  readonly tokens: ReadonlyMap<string, AdminIdentity>;
  readonly logger: Logger;
  readonly audit?: AuditLog;
  /** The control-plane store: the rollbacks journal for the rollbacks chart. */
  readonly store?: ControlStore;
  /** The rolling aggregate the charts read (fed by the request observer). */
  readonly telemetry?: ConsoleTelemetry;
  /** The config's application ids (canary slice form) and kill-switch targets (`provider/model`). */
  readonly apps?: readonly string[];
  readonly targets?: readonly string[];
  /** Where the console is mounted (default `/console`): links, form actions and the cookie path. */
  readonly base?: string;
  readonly sessions?: SessionOptions;
  readonly loginLimit?: { readonly max?: number; readonly windowMs?: number };
  /** Other origins forms may come from (a console reached through a proxy under another origin). */
  readonly allowedOrigins?: readonly string[];
  readonly now?: () => number;
}

interface ConsoleEnv {
  Bindings: { incoming?: IncomingMessage };
  Variables: { session: Session; sid: string; form: Record<string, string | File | (string | File)[]> };
}

/** The session cookie: HttpOnly, SameSite=Strict, Path=<base>, Secure over https. */
export const COOKIE = 'rf_console';

/** Content-Security-Policy of every console response: nothing inline, nothing from elsewhere. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** A form that does not hold what the action needs (400, shown on the page). */
class FormError extends Error {}

type Form = ConsoleEnv['Variables']['form'];

const str = (f: Form, k: string): string => {
  const v = f[k];
  const one = Array.isArray(v) ? v[0] : v;
  return typeof one === 'string' ? one.trim() : '';
};
const list = (f: Form, k: string): string[] => {
  const v = f[k];
  return (Array.isArray(v) ? v : v === undefined ? [] : [v])
    .filter((x): x is string => typeof x === 'string' && x.trim() !== '')
    .map((x) => x.trim());
};
const num = (f: Form, k: string): number | undefined => {
  const s = str(f, k);
  if (s === '') return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new FormError(`${k}: not a number`);
  return n;
};
const reasonOf = (f: Form) => {
  const r = str(f, 'reason');
  if (r.length < 3) throw new FormError('a reason of at least 3 characters is required');
  return r;
};

const overrideDraft = z.strictObject({
  gates: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        confidenceNote: z.string().min(1, 'a confidence note is required for each gate'),
      }),
    )
    .min(1, 'choose at least one gate'),
  rationale: z.string().min(20, 'a rationale of at least 20 characters'),
  evidence: z.strictObject({
    sampleSize: z.number().int().nonnegative(),
    severityMix: z.record(z.string(), z.number().int().nonnegative()),
    mitigation: z.string().min(1, 'a mitigation is required'),
    links: z.array(z.string()),
  }),
  expiry: overrideExpirySchema,
  onExpiry: z.enum(['block_widening', 'rollback']),
});

const BUNDLE_ID = /^sha256:[a-f0-9]{64}$/;

/** The client address of a request (the socket's peer; forwarded-for headers are not trusted). */
function clientIp(c: Context<ConsoleEnv>): string {
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}

/** The origins this request's own page could have: its URL's, and the forwarded scheme's behind a TLS proxy. */
function ownOrigins(c: Context<ConsoleEnv>): string[] {
  const url = new URL(c.req.url);
  const proto = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim();
  return proto === 'https' || proto === 'http' ? [url.origin, `${proto}://${url.host}`] : [url.origin];
}

const isHttps = (c: Context<ConsoleEnv>) => ownOrigins(c).some((o) => o.startsWith('https:'));

/** The page a path belongs to (navigation highlight on error pages). */
function pageOf(path: string): Page {
  for (const p of ['divergence', 'bundles', 'approvals', 'overrides', 'audit'] as const)
    if (path.includes(`/${p}`)) return p;
  return 'rollout';
}

/** Builds the console app. Mount it on the admin app: `admin.route('/console', consoleApp({...}))`. */
export function consoleApp(deps: ConsoleDeps): Hono<ConsoleEnv> {
  const { rings, governance, logger } = deps;
  const base = deps.base ?? '/console';
  const now = deps.now ?? Date.now;
  const sessions = new Sessions({ now, ...deps.sessions });
  const limiter = new LoginLimiter({ now, ...deps.loginLimit });
  const app = new Hono<ConsoleEnv>();

  app.use('*', async function securityHeaders(c, next) {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
  });

  const view = (c: Context<ConsoleEnv>, consumeFlash = true): View => {
    const s = c.get('session');
    const flash = s.flash;
    if (consumeFlash) s.flash = undefined;
    return {
      base,
      who: s.who,
      csrf: s.csrf,
      flash: consumeFlash ? flash : undefined,
      pending: governance.requests().filter((r) => r.status === 'pending').length,
      now: now(),
    };
  };
  const done = (c: Context<ConsoleEnv>, to: string, text: string) => {
    c.get('session').flash = { kind: 'ok', text };
    return c.redirect(`${base}/${to}`, 303);
  };
  const actor = (c: Context<ConsoleEnv>) => ({ by: c.get('session').who.id, at: new Date(now()) });
  const refused = (
    c: Context<ConsoleEnv>,
    status: number,
    code: string,
    message: string,
    gates?: readonly GateResult[],
  ) => {
    const body = html`<h1>Refused: <code>${code}</code></h1><div class="flash error" role="alert" data-error="${code}">${message}</div>
${gates ? html`<div class="card"><h2>Gates</h2>${gateTable({ transition: 'measured_now', gates })}</div>` : ''}
<p><a href="${base}/${pageOf(c.req.path)}">Back</a></p>`;
    let page: H;
    try {
      page = c.get('session')
        ? layout(view(c), pageOf(c.req.path), `Refused: ${code}`, body)
        : bare(base, 'Refused', body);
    } catch {
      page = bare(base, 'Refused', body);
    }
    return c.html(page, status as 400);
  };

  // --- without a session: assets, login ---
  app.get('/assets/:name', (c) => {
    const a = ASSETS.get(c.req.param('name'));
    if (!a) return c.text('not found', 404);
    return c.body(new Uint8Array(a.body), 200, {
      'content-type': a.type,
      'cache-control': 'public, max-age=31536000, immutable',
    });
  });
  app.get('/login', (c) => {
    if (sessions.get(getCookie(c, COOKIE))) return c.redirect(`${base}/rollout`, 303);
    return c.html(loginPage(base));
  });
  app.post('/login', async (c) => {
    const ip = clientIp(c);
    if (
      !sameOrigin(
        { origin: c.req.header('origin'), secFetchSite: c.req.header('sec-fetch-site') },
        ownOrigins(c)[0]!,
        [...ownOrigins(c), ...(deps.allowedOrigins ?? [])],
      )
    ) {
      logger.warn({ ip, origin: c.req.header('origin') ?? null }, 'console login refused: cross-origin');
      return refused(c, 403, 'cross_origin', 'this form must be sent from the console itself');
    }
    const wait = limiter.retryAfter(ip);
    if (wait) {
      logger.warn({ ip, retryAfterS: wait }, 'console login refused: too many failed attempts');
      c.header('retry-after', String(wait));
      return c.html(
        loginPage(base, `Too many failed logins from your address: try again in ${wait} s.`),
        429,
      );
    }
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const who = token ? deps.tokens.get(hashKey(token)) : undefined;
    if (!who) {
      const failures = limiter.fail(ip);
      // Never the token itself: the address and the count only.
      logger.warn({ ip, failures }, 'console login failed: unknown token');
      return c.html(loginPage(base, 'That token is not a valid admin token.'), 401);
    }
    limiter.succeed(ip);
    sessions.delete(getCookie(c, COOKIE));
    const { id } = sessions.create(who);
    setCookie(c, COOKIE, id, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: isHttps(c),
      path: base,
      maxAge: Math.floor(sessions.absoluteMs / 1000),
    });
    logger.info({ who: who.id, roles: who.roles, ip }, 'console login');
    return c.redirect(`${base}/rollout`, 303);
  });

  // --- everything else needs a session; every POST a same-origin form with the session's CSRF token ---
  const authenticated: MiddlewareHandler<ConsoleEnv> = async function authenticated(c, next) {
    const sid = getCookie(c, COOKIE);
    const s = sessions.get(sid);
    if (!s || !sid) {
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return c.redirect(`${base}/login`, 303);
      return refused(c, 401, 'unauthenticated', 'no session, or it expired: log in again');
    }
    c.set('session', s);
    c.set('sid', sid);
    await next();
  };
  const forms: MiddlewareHandler<ConsoleEnv> = async function forms(c, next) {
    if (c.req.method !== 'POST') return next();
    const origin = c.req.header('origin');
    if (
      !sameOrigin({ origin, secFetchSite: c.req.header('sec-fetch-site') }, ownOrigins(c)[0]!, [
        ...ownOrigins(c),
        ...(deps.allowedOrigins ?? []),
      ])
    ) {
      logger.warn(
        { who: c.get('session').who.id, origin: origin ?? null, path: c.req.path },
        'console form refused: cross-origin',
      );
      return refused(c, 403, 'cross_origin', 'this form must be sent from the console itself');
    }
    const type = c.req.header('content-type') ?? '';
    const form: Form =
      type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data')
        ? await c.req.parseBody({ all: true })
        : {};
    if (!csrfOk(c.get('session').csrf, form[CSRF_FIELD])) {
      logger.warn({ who: c.get('session').who.id, path: c.req.path }, 'console form refused: CSRF token');
      return refused(
        c,
        403,
        'csrf',
        'the form is missing its CSRF token or it does not match your session: reload the page and try again',
      );
    }
    c.set('form', form);
    await next();
  };
  app.use('*', authenticated, forms);

  const can = (c: Context<ConsoleEnv>, action: ActionName) =>
    Governance.authorize(action, c.get('session').who);

  app.get('/', (c) => c.redirect(`${base}/rollout`, 303));
  app.post('/logout', (c) => {
    sessions.delete(c.get('sid'));
    deleteCookie(c, COOKIE, { path: base, httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    logger.info({ who: c.get('session').who.id }, 'console logout');
    return c.redirect(`${base}/login`, 303);
  });

  // --- rollout ---
  const previousOf = () => {
    const p = rings.placements().find((x) => x.ring === 'previous');
    return p ? { name: p.name, version: p.version } : undefined;
  };
  const rolloutData = async (): Promise<RolloutData> => {
    const snap = rings.runtime.snapshot();
    const status = rolloutStatus(rings);
    const rollbacks = deps.store
      ? ((await deps.store.readEvents('rollbacks')).events as RollbackRecord[])
      : rings.lastRollback
        ? [rings.lastRollback]
        : [];
    return {
      status,
      previous: previousOf(),
      covered: status.gates ? governance.covered(status.gates.transition) : undefined,
      telemetry: deps.telemetry?.view(now()),
      epoch: snap.stats.epoch,
      rollbacks,
      wideningBlocked: governance.wideningBlocked(),
      classes: snap.production.loaded.bundle.classes,
      apps: deps.apps ?? [],
      targets: deps.targets ?? [],
      pending: governance.requests().filter((r) => r.status === 'pending'),
    };
  };
  app.get('/rollout', async (c) => {
    await governance.refresh();
    const d = await rolloutData();
    if (c.req.query('fragment') === 'live') return c.html(rolloutLive(d, view(c, false)));
    return c.html(rolloutPage(d, view(c)));
  });
  app.post('/rollout/canary', async (c) => {
    const f = c.get('form');
    const parsed = sliceSchema.safeParse({
      apps: list(f, 'apps'),
      classes: list(f, 'classes'),
      percent: num(f, 'percent'),
    });
    if (!parsed.success)
      throw new FormError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const slice = parsed.data;
    const who = c.get('session').who;
    const action = governance.classifyCanary(slice);
    if (action === 'canary.narrow') {
      Governance.authorize(action, who);
      await rings.canary(slice, actor(c));
      return done(c, 'rollout', `Canary slice narrowed to ${slice.percent}% (fail-safe: applied at once).`);
    }
    const req = await governance.ask({ action, slice }, who);
    return done(
      c,
      'rollout',
      `${action} requested as ${req.id}: a different identity with the approver role must approve it before ${req.expiresAt}.`,
    );
  });
  app.post('/rollout/promote', async (c) => {
    const req = await governance.ask({ action: 'promote' }, c.get('session').who);
    return done(
      c,
      'rollout',
      `Promotion requested as ${req.id}: a different identity with the approver role must approve it before ${req.expiresAt}.`,
    );
  });
  app.get('/rollout/rollback', (c) => {
    can(c, 'rollback');
    return c.html(rollbackConfirm(rolloutStatus(rings), previousOf(), view(c)));
  });
  app.post('/rollout/rollback', async (c) => {
    can(c, 'rollback');
    const f = c.get('form');
    if (str(f, 'confirm') !== 'yes') return c.redirect(`${base}/rollout/rollback`, 303);
    const rec = await rings.rollback(actor(c), reasonOf(f));
    logger.warn({ by: c.get('session').who.id, changeId: rec.changeId }, 'console: rolled back');
    return done(
      c,
      'rollout',
      `Rolled back in ${rec.timeToRestoreMs} ms: production is ${rec.to.production}.`,
    );
  });
  const switchOf = (q: {
    candidate?: string | undefined;
    what?: string | undefined;
    target?: string | undefined;
  }) => {
    if (q.candidate === 'true' || q.what === 'candidate') return { candidate: true as const };
    if (q.target) return { target: q.target };
    throw new FormError('name a target or the candidate');
  };
  for (const op of ['kill', 'restore'] as const) {
    app.get(`/rollout/${op}`, (c) => {
      can(c, op);
      const what = switchOf({ what: c.req.query('what'), target: c.req.query('target') });
      return c.html(switchConfirm(op, what, rolloutStatus(rings), view(c)));
    });
    app.post(`/rollout/${op}`, async (c) => {
      can(c, op);
      const f = c.get('form');
      const what = switchOf({ candidate: str(f, 'candidate'), target: str(f, 'target') });
      if (str(f, 'confirm') !== 'yes') throw new FormError('confirm on the confirmation page');
      const reason = reasonOf(f);
      await (op === 'kill' ? rings.kill(what, actor(c), reason) : rings.restore(what, actor(c), reason));
      logger.warn(
        { by: c.get('session').who.id, [op]: what, reason },
        `console: kill switch ${op === 'kill' ? 'on' : 'off'}`,
      );
      const name = 'candidate' in what ? 'the candidate' : what.target;
      return done(c, 'rollout', op === 'kill' ? `Kill switch on: ${name}.` : `Restored: ${name}.`);
    });
  }
  app.get('/rollout/override', (c) => {
    can(c, 'override');
    return c.html(overrideForm(rolloutStatus(rings), view(c)));
  });
  app.post('/rollout/override', async (c) => {
    can(c, 'override');
    const f = c.get('form');
    const hours = num(f, 'hours');
    const maxRequests = num(f, 'maxRequests');
    const severityMix: Record<string, number> = {};
    for (const part of str(f, 'severity')
      .split(/[,\s]+/)
      .filter(Boolean)) {
      const m = /^([\w-]+)=(\d+)$/.exec(part);
      if (!m) throw new FormError(`severity mix: "${part}" is not name=count`);
      severityMix[m[1]!] = Number(m[2]);
    }
    const parsed = overrideDraft.safeParse({
      gates: list(f, 'gate').map((name) => ({ name, confidenceNote: str(f, `note:${name}`) })),
      rationale: str(f, 'rationale'),
      evidence: {
        sampleSize: num(f, 'sampleSize') ?? 0,
        severityMix,
        mitigation: str(f, 'mitigation'),
        links: str(f, 'links')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      },
      expiry: {
        ...(hours !== undefined && hours > 0
          ? { expiresAt: new Date(now() + hours * 3_600_000).toISOString() }
          : {}),
        ...(maxRequests !== undefined ? { maxRequests } : {}),
      },
      onExpiry: str(f, 'onExpiry') || 'block_widening',
    });
    if (!parsed.success)
      throw new FormError(
        parsed.error.issues.map((i) => `${i.path.join('.') || 'form'}: ${i.message}`).join('; '),
      );
    const req = await governance.ask(
      { action: 'override', override: parsed.data as OverrideDraft },
      c.get('session').who,
    );
    return done(
      c,
      'rollout',
      `Override requested as ${req.id}: a different identity with the approver role must approve it before ${req.expiresAt}.`,
    );
  });

  // --- divergence ---
  app.get('/divergence', (c) => {
    const snap = rings.runtime.snapshot();
    const s = snap.stats;
    return c.html(
      divergencePage(
        {
          epoch: s.epoch,
          total: s.total,
          divergent: s.divergent,
          kinds: s.divergenceKinds,
          groups: [...s.groups.values()].sort((a, b) => b.count - a.count),
          candidate:
            snap.candidate && snap.state.candidate
              ? {
                  name: snap.candidate.name,
                  version: snap.candidate.version,
                  stage: snap.state.candidate.stage,
                }
              : undefined,
        },
        view(c),
      ),
    );
  });
  app.post('/divergence/ack', async (c) => {
    can(c, 'divergence.ack');
    const f = c.get('form');
    const group = str(f, 'group');
    if (!group) throw new FormError('which group?');
    await rings.ack(group, actor(c), reasonOf(f));
    return done(c, 'divergence', `Acknowledged: ${group}.`);
  });

  // --- bundles ---
  app.get('/bundles', async (c) => {
    const snap = rings.runtime.snapshot();
    const where = new Map<string, string[]>();
    const put = (id: string, what: string) => where.set(id, [...(where.get(id) ?? []), what]);
    put(snap.state.production.bundleId, 'production');
    if (snap.state.candidate) put(snap.state.candidate.bundleId, snap.state.candidate.stage);
    const prev = snap.state.previous[0];
    if (prev) put(prev.bundleId, 'rollback target');
    const rows: BundleRow[] = (await rings.listBundles()).map((b) => ({
      ...b,
      rings: where.get(b.id) ?? [],
    }));
    const from = c.req.query('from') ?? snap.state.production.bundleId;
    const to = c.req.query('to') ?? snap.state.candidate?.bundleId;
    let diff: ReturnType<typeof diffBundles> | undefined;
    if (to !== undefined) {
      if (!BUNDLE_ID.test(from) || !BUNDLE_ID.test(to)) throw new FormError('bundle ids are sha256:<64 hex>');
      diff = await diffOf(from, to).catch(() => {
        throw new GovernanceError('not_found', 404, 'no such bundle');
      });
    }
    return c.html(bundlesPage(rows, { from, to }, diff, snap.state.candidate !== undefined, view(c)));
  });
  app.post('/bundles/shadow', async (c) => {
    can(c, 'shadow');
    const id = str(c.get('form'), 'bundleId');
    if (!BUNDLE_ID.test(id)) throw new FormError('bundle ids are sha256:<64 hex>');
    await rings.shadow(id, actor(c));
    return done(
      c,
      'rollout',
      `Bundle ${id.slice(0, 19)}… is in shadow: evaluated on every request, enforcing nothing.`,
    );
  });

  // --- approvals ---
  // Bundles are immutable: a diff between two ids never changes (bounded cache).
  const diffCache = new Map<string, ReturnType<typeof diffBundles>>();
  const diffOf = async (from: string, to: string) => {
    const key = `${from}>${to}`;
    const have = diffCache.get(key);
    if (have) return have;
    const [a, b] = await Promise.all([rings.getBundle(from), rings.getBundle(to)]);
    const d = diffBundles(a.loaded.bundle, b.loaded.bundle);
    if (diffCache.size >= 64) diffCache.delete(diffCache.keys().next().value!);
    diffCache.set(key, d);
    return d;
  };
  app.get('/approvals', async (c) => {
    await governance.refresh();
    const requests = governance.requests();
    const diffs = new Map<string, ReturnType<typeof diffBundles>>();
    for (const r of requests)
      if (r.status === 'pending') {
        const d = await diffOf(r.summary.production.id, r.summary.candidate.id).catch(() => undefined);
        if (d) diffs.set(r.id, d);
      }
    return c.html(approvalsPage(requests, rings.runtime.snapshot().state.version, diffs, view(c)));
  });
  app.post('/approvals/:id/approve', async (c) => {
    const reason = str(c.get('form'), 'reason');
    const { request: r } = await governance.approve(
      c.req.param('id'),
      c.get('session').who,
      reason || undefined,
    );
    return done(
      c,
      'approvals',
      `Approved ${r.id}: ${r.ask.action} ran as ${r.requestedBy}+${c.get('session').who.id}.`,
    );
  });
  app.post('/approvals/:id/reject', async (c) => {
    const r = await governance.reject(c.req.param('id'), c.get('session').who, reasonOf(c.get('form')));
    return done(c, 'approvals', `Rejected ${r.id} (${r.ask.action}).`);
  });

  // --- overrides and audit ---
  app.get('/overrides', async (c) => {
    await governance.refresh();
    const records = governance.allOverrides();
    const snap = rings.runtime.snapshot();
    return c.html(
      overridesPage(
        records,
        overrideReport(
          records.map((r) => r.override),
          new Date(now()),
        ),
        { candidateBundleId: snap.state.candidate?.bundleId, requests: snap.stats.counters.canary.requests },
        view(c),
      ),
    );
  });
  app.get('/audit', async (c) => {
    const v = deps.audit ? await deps.audit.verify() : undefined;
    const page = Math.max(1, Math.floor(Number(c.req.query('page') ?? '1')) || 1);
    return c.html(auditPage(v, page, view(c)));
  });

  app.all('*', (c) => refused(c, 404, 'not_found', `no page ${c.req.method} ${c.req.path}`));

  app.onError((err, c) => {
    if (err instanceof GovernanceError) return refused(c, err.status, err.code, err.message);
    if (err instanceof GateBlockedError) return refused(c, 409, 'gates_failed', err.message, err.gates);
    if (err instanceof TransitionError) return refused(c, 409, err.code, err.message);
    if (err instanceof StoreConflictError) return refused(c, 409, 'conflict', err.message);
    if (err instanceof FormError) return refused(c, 400, 'invalid_request', err.message);
    if (err instanceof BundleError) return refused(c, 400, 'invalid_bundle', err.message);
    if (err.name === 'StoreUnavailableError')
      return refused(
        c,
        503,
        'store_unavailable',
        `${err.message}: the change was not made; retry once the store answers`,
      );
    if (err.message.startsWith('no divergence group')) return refused(c, 404, 'not_found', err.message);
    logger.error({ err, path: c.req.path }, 'console error');
    return refused(c, 500, 'internal_error', 'internal error');
  });
  return app;
}
