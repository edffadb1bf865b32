/**
 * The operator console through `app.request()`: sessions (idle and absolute expiry, logout), the CSRF and
 * same-origin checks of every form, the failed-login limit, security headers, and role gating of each form
 * (shown or not, and refused server-side whatever the page showed). The console runs over the real
 * RingsController and Governance of a gateway in this process.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfOk, sameOrigin } from '../../src/console/csrf.ts';
import { ConsoleTelemetry, CSP, consoleApp } from '../../src/console/index.ts';
import { Sessions } from '../../src/console/session.ts';
import { LogCapture } from '../helpers/stack.ts';
import { type ConsoleStack, startConsoleStack, TOKENS } from './fixture.ts';

const ORIGIN = 'http://localhost';
const HOUR = 3_600_000;
const telemetry = new ConsoleTelemetry({ cost: () => 0.001 });
let cs: ConsoleStack;
let app: ReturnType<typeof consoleApp>;
const logs = new LogCapture();

function build(opts: Partial<Parameters<typeof consoleApp>[0]> = {}) {
  const gw = cs.stack.gw;
  return consoleApp({
    rings: gw.rings,
    governance: gw.governance,
    tokens: gw.loaded.adminTokens,
    logger: pino({ level: 'debug' }, logs),
    telemetry,
    apps: ['jobs', 'storefront'],
    targets: ['a/mock-gpt', 'b/mock-gpt-b'],
    loginLimit: { max: 3, windowMs: 60_000 },
    ...opts,
  });
}

interface Who {
  cookie: string;
  csrf: string;
}

const env = (ip = '10.0.0.1') => ({ incoming: { socket: { remoteAddress: ip } } });

async function login(token: string, a = app, ip = '10.0.0.1'): Promise<Who> {
  const r = await a.request(
    '/login',
    {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    },
    env(ip),
  );
  expect(r.status).toBe(303);
  const cookie = /rf_console=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
  const page = await get(`rf_console=${cookie}`, '/rollout', a);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  return { cookie: `rf_console=${cookie}`, csrf };
}

function get(cookie: string, path: string, a = app) {
  return a.request(path, { headers: { cookie } }, env());
}

function post(
  who: Who | undefined,
  path: string,
  fields: Record<string, string | string[]> = {},
  headers: Record<string, string> = { origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
  a = app,
) {
  const body = new URLSearchParams();
  if (who) body.append('_csrf', who.csrf);
  for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) body.append(k, x);
  return a.request(
    path,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(who ? { cookie: who.cookie } : {}),
        ...headers,
      },
      body,
    },
    env(),
  );
}

const stage = () => cs.stack.gw.rings.runtime.snapshot().state.candidate?.stage;

beforeAll(async () => {
  cs = await startConsoleStack((r, s) => telemetry.observe(r, s));
  app = build();
});
afterAll(() => cs?.close());

describe('login and sessions', () => {
  it('logs in with a token: HttpOnly, SameSite=Strict, Path=/console cookie holding a random id, never the token', async () => {
    const r = await post(undefined, '/login', { token: TOKENS.olivia });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/console/rollout');
    const set = r.headers.get('set-cookie')!;
    expect(set).toMatch(/^rf_console=[A-Za-z0-9_-]{43};/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain('Path=/console');
    expect(set).not.toContain('Secure'); // plain http
    expect(set).not.toContain(TOKENS.olivia);
    // Behind a TLS proxy the cookie is Secure.
    const tls = await post(
      undefined,
      '/login',
      { token: TOKENS.olivia },
      {
        origin: 'https://localhost',
        'x-forwarded-proto': 'https',
      },
    );
    expect(tls.status).toBe(303);
    expect(tls.headers.get('set-cookie')).toContain('Secure');
  });

  it('refuses an unknown token, logs the failure without it, and rate-limits failures per address', async () => {
    const local = { t: Date.now() };
    const a = build({ now: () => local.t });
    const bad = 'rf-not-a-real-token-xyz-987';
    for (let i = 0; i < 3; i++) {
      const r = await a.request(
        '/login',
        {
          method: 'POST',
          headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: bad }),
        },
        env('10.9.9.9'),
      );
      expect(r.status).toBe(401);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    const limited = await a.request(
      '/login',
      {
        method: 'POST',
        headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: TOKENS.olivia }), // even the right token waits
      },
      env('10.9.9.9'),
    );
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected; a minute later the first may try again.
    await login(TOKENS.olivia, a, '10.9.9.10');
    local.t += 61_000;
    await login(TOKENS.olivia, a, '10.9.9.9');
    expect(logs.text).toContain('console login failed');
    expect(logs.text).toContain('10.9.9.9');
    expect(logs.text).not.toContain(bad);
  });

  it('a login form from another origin is refused', async () => {
    const r = await post(undefined, '/login', { token: TOKENS.olivia }, { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
    expect(r.headers.get('set-cookie')).toBeNull();
  });

  it('expires after the idle timeout, after the absolute timeout whatever the use, and at logout', async () => {
    const local = { t: Date.now() };
    const a = build({ now: () => local.t });
    const idle = await login(TOKENS.vic, a);
    local.t += 8 * HOUR - 1000;
    expect((await get(idle.cookie, '/rollout', a)).status).toBe(200); // used: the idle clock restarts
    local.t += 3 * HOUR;
    expect((await get(idle.cookie, '/rollout', a)).status).toBe(200); // 11 h after login, used 3 h ago
    const unused = await login(TOKENS.vic, a);
    local.t += 8 * HOUR; // 8 h unused, well within the 12 h absolute bound
    expect((await get(idle.cookie, '/rollout', a)).status).toBe(303);
    const gone = await get(unused.cookie, '/rollout', a);
    expect(gone.status).toBe(303);
    expect(gone.headers.get('location')).toBe('/console/login');

    const busy = await login(TOKENS.vic, a);
    for (let h = 0; h < 11; h++) {
      local.t += HOUR;
      expect((await get(busy.cookie, '/rollout', a)).status).toBe(200);
    }
    local.t += HOUR;
    expect((await get(busy.cookie, '/rollout', a)).status).toBe(303);

    const out = await login(TOKENS.vic, a);
    const r = await post(out, '/logout', {}, undefined, a);
    expect(r.status).toBe(303);
    expect(r.headers.get('set-cookie')).toMatch(/rf_console=;.*Max-Age=0/);
    expect((await get(out.cookie, '/rollout', a)).status).toBe(303);
    // A form posted with an ended session is refused.
    expect((await post(out, '/rollout/promote', {}, undefined, a)).status).toBe(401);
  });

  it('Sessions: ids are random, held only as hashes, bounded', () => {
    let t = 0;
    const s = new Sessions({ idleMs: 10, absoluteMs: 100, max: 2, now: () => t });
    const a = s.create({ id: 'a', roles: ['viewer'] });
    const b = s.create({ id: 'b', roles: ['viewer'] });
    expect(a.id).not.toBe(b.id);
    expect(a.session.csrf).not.toBe(b.session.csrf);
    expect(s.get(a.id)?.who.id).toBe('a');
    s.create({ id: 'c', roles: ['viewer'] }); // b is the least recently used
    expect(s.get(b.id)).toBeUndefined();
    t = 10;
    expect(s.get(a.id)).toBeUndefined();
    expect(s.get('x'.repeat(500))).toBeUndefined();
  });
});

describe('CSRF and origin', () => {
  it('csrfOk compares in constant time and refuses anything else', () => {
    expect(csrfOk('abc', 'abc')).toBe(true);
    expect(csrfOk('abc', 'abd')).toBe(false);
    expect(csrfOk('abc', 'ab')).toBe(false);
    expect(csrfOk('abc', '')).toBe(false);
    expect(csrfOk('abc', undefined)).toBe(false);
    expect(csrfOk('abc', ['abc'])).toBe(false);
  });

  it('sameOrigin wants the own origin and, when sent, Sec-Fetch-Site same-origin', () => {
    const own = 'http://127.0.0.1:8081';
    expect(sameOrigin({ origin: own, secFetchSite: 'same-origin' }, own)).toBe(true);
    expect(sameOrigin({ origin: own, secFetchSite: undefined }, own)).toBe(true);
    expect(sameOrigin({ origin: undefined, secFetchSite: 'same-origin' }, own)).toBe(true);
    expect(sameOrigin({ origin: undefined, secFetchSite: undefined }, own)).toBe(false);
    expect(sameOrigin({ origin: 'http://evil', secFetchSite: undefined }, own)).toBe(false);
    expect(sameOrigin({ origin: 'null', secFetchSite: undefined }, own)).toBe(false);
    // Referrer-Policy no-referrer: the browser's own form posts say Origin null, and Sec-Fetch-Site decides.
    expect(sameOrigin({ origin: 'null', secFetchSite: 'same-origin' }, own)).toBe(true);
    expect(sameOrigin({ origin: 'null', secFetchSite: 'cross-site' }, own)).toBe(false);
    expect(sameOrigin({ origin: own, secFetchSite: 'same-site' }, own)).toBe(false);
    expect(sameOrigin({ origin: own, secFetchSite: 'cross-site' }, own)).toBe(false);
    expect(sameOrigin({ origin: 'https://proxy', secFetchSite: undefined }, own, ['https://proxy'])).toBe(
      true,
    );
  });

  it('every form refuses a missing or foreign CSRF token and a cross-origin post, before doing anything', async () => {
    const olivia = await login(TOKENS.olivia);
    const other = await login(TOKENS.olivia);
    const version = cs.stack.gw.rings.runtime.snapshot().state.version;
    const forms = [
      '/rollout/canary',
      '/rollout/promote',
      '/rollout/rollback',
      '/rollout/kill',
      '/rollout/restore',
      '/rollout/override',
      '/divergence/ack',
      '/bundles/shadow',
      '/approvals/apr_x/approve',
      '/approvals/apr_x/reject',
      '/logout',
    ];
    for (const path of forms) {
      const none = await post({ cookie: olivia.cookie, csrf: '' }, path);
      expect(none.status, path).toBe(403);
      expect(await none.text()).toContain('data-error="csrf"');
      expect((await post({ cookie: olivia.cookie, csrf: other.csrf }, path)).status, path).toBe(403);
      expect((await post({ cookie: olivia.cookie, csrf: 'x'.repeat(43) }, path)).status, path).toBe(403);
      const cross = await post(olivia, path, {}, { origin: 'https://evil.example' });
      expect(cross.status, path).toBe(403);
      expect(await cross.text()).toContain('data-error="cross_origin"');
      expect((await post(olivia, path, {}, { origin: ORIGIN, 'sec-fetch-site': 'cross-site' })).status).toBe(
        403,
      );
      expect((await post(olivia, path, {}, {})).status, path).toBe(403); // neither Origin nor Sec-Fetch-Site
    }
    // A JSON body carries no form token either.
    const json = await app.request('/rollout/promote', {
      method: 'POST',
      headers: { cookie: olivia.cookie, origin: ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ _csrf: olivia.csrf }),
    });
    expect(json.status).toBe(403);
    expect(cs.stack.gw.rings.runtime.snapshot().state.version).toBe(version);
    expect(cs.stack.gw.governance.requests()).toHaveLength(0);
    // The session still works.
    expect((await get(olivia.cookie, '/rollout')).status).toBe(200);
  });
});

describe('charts', () => {
  it('draws gaps, single points, and no overlapping axis labels', async () => {
    const { lineChart } = await import('../../src/console/charts.ts');
    const svg = String(
      await lineChart({
        id: 'c',
        title: 'T <b>',
        series: [{ name: 'a', key: 'production', values: [null, 1, 2, null, 3, null] }],
        format: (v) => v.toFixed(1),
        xLabels: ['−1 min', 'now'],
        minMax: 0.1,
      }),
    );
    expect(svg.match(/<polyline/g)).toHaveLength(1);
    expect(svg.match(/<circle/g)).toHaveLength(1);
    expect(svg).toContain('T &lt;b&gt;'); // escaped
    const near = String(
      await lineChart({
        id: 'd',
        title: 'near',
        series: [{ name: 'a', key: 'p50', values: [-50, -40] }],
        format: (v) => v.toFixed(1),
        xLabels: ['a', 'b'],
        minMax: 1,
      }),
    );
    expect(near).toContain('>-50.0<');
    expect(near).toContain('>0.0<');
    expect(near).not.toContain('>1.0<'); // 1 is too close to 0 on a −50 … 1 axis
  });
});

describe('headers and assets', () => {
  it('every response carries the CSP without unsafe-inline, nosniff, no-referrer, no-store', async () => {
    const vic = await login(TOKENS.vic);
    for (const r of [
      await app.request('/login'),
      await get(vic.cookie, '/rollout'),
      await get(vic.cookie, '/approvals'),
      await get(vic.cookie, '/nowhere'),
    ]) {
      expect(r.headers.get('content-security-policy')).toBe(CSP);
      expect(r.headers.get('content-security-policy')).not.toContain('unsafe-inline');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
    }
    const page = await (await get(vic.cookie, '/rollout')).text();
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(page).not.toMatch(/\sstyle=/); // no inline style attribute
    expect(page).not.toMatch(/<style/);
    const css = /href="\/console\/assets\/(console\.[0-9a-f]{12}\.css)"/.exec(page)![1]!;
    const js = /src="\/console\/assets\/(console\.[0-9a-f]{12}\.js)"/.exec(page)![1]!;
    const a = await app.request(`/assets/${css}`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toContain('text/css');
    expect(a.headers.get('cache-control')).toContain('immutable');
    expect((await app.request(`/assets/${js}`)).headers.get('content-type')).toContain('javascript');
    expect((await app.request('/assets/console.000000000000.css')).status).toBe(404);
  });

  it('a page without a session redirects to the login form', async () => {
    const r = await app.request('/approvals');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/console/login');
  });
});

describe('roles', () => {
  const FORMS = [
    'action="/console/rollout/canary"',
    'action="/console/rollout/promote"',
    'href="/console/rollout/rollback"',
    'href="/console/rollout/kill?what=candidate"',
    'href="/console/rollout/override"',
  ];

  it('shows each identity only the buttons its roles allow', async () => {
    const page = async (token: string, path = '/rollout') =>
      (await get((await login(token)).cookie, path)).text();
    const viewer = await page(TOKENS.vic);
    for (const f of FORMS) expect(viewer).not.toContain(f);
    expect(viewer).toContain('Rings');
    expect(viewer).toContain('data-gate="min_samples"');
    const operator = await page(TOKENS.olivia);
    expect(operator).toContain('action="/console/rollout/canary"');
    expect(operator).toContain('href="/console/rollout/rollback"');
    expect(operator).not.toContain('href="/console/rollout/override"'); // every gate passes: nothing to override
    const sre = await page(TOKENS.rita);
    expect(sre).not.toContain('action="/console/rollout/canary"');
    expect(sre).not.toContain('href="/console/rollout/override"');
    expect(sre).toContain('href="/console/rollout/rollback"');
    expect(sre).toContain('href="/console/rollout/kill?what=candidate"');
    const approver = await page(TOKENS.alex);
    for (const f of FORMS) expect(approver).not.toContain(f);
    expect(await page(TOKENS.vic, '/bundles')).not.toContain('action="/console/bundles/shadow"');
  });

  it('refuses each form server-side to a role that may not use it, whatever the page showed', async () => {
    const vic = await login(TOKENS.vic);
    const alex = await login(TOKENS.alex);
    const rita = await login(TOKENS.rita);
    const group = [...cs.stack.gw.rings.runtime.snapshot().stats.groups.keys()][0] ?? 'x → y';
    const version = cs.stack.gw.rings.runtime.snapshot().state.version;
    const cases: Array<[Who, string, Record<string, string | string[]>]> = [];
    for (const who of [vic, alex, rita]) {
      cases.push([who, '/rollout/canary', { apps: 'jobs', percent: '10' }]);
      cases.push([who, '/rollout/promote', {}]);
      cases.push([
        who,
        '/rollout/override',
        {
          gate: 'min_samples',
          'note:min_samples': 'n',
          rationale: 'x'.repeat(30),
          mitigation: 'm',
          hours: '1',
        },
      ]);
      cases.push([who, '/divergence/ack', { group, reason: 'intended change' }]);
      cases.push([who, '/bundles/shadow', { bundleId: cs.candidateId }]);
    }
    for (const who of [vic, alex]) {
      cases.push([who, '/rollout/rollback', { confirm: 'yes', reason: 'testing roles' }]);
      cases.push([who, '/rollout/kill', { confirm: 'yes', candidate: 'true', reason: 'testing roles' }]);
      cases.push([
        who,
        '/rollout/restore',
        { confirm: 'yes', target: 'a/mock-gpt', reason: 'testing roles' },
      ]);
    }
    for (const [who, path, fields] of cases) {
      const r = await post(who, path, fields);
      expect(r.status, `${path} as ${who === vic ? 'vic' : who === alex ? 'alex' : 'rita'}`).toBe(403);
      expect(await r.text()).toContain('data-error="forbidden"');
    }
    // The confirmation pages are refused too.
    expect((await get(vic.cookie, '/rollout/rollback')).status).toBe(403);
    expect((await get(alex.cookie, '/rollout/kill?what=candidate')).status).toBe(403);
    expect((await get(rita.cookie, '/rollout/override')).status).toBe(403);
    expect((await get(rita.cookie, '/rollout/rollback')).status).toBe(200);
    expect(cs.stack.gw.rings.runtime.snapshot().state.version).toBe(version);
    expect(cs.stack.gw.governance.requests()).toHaveLength(0);
  });

  it('an operator acknowledges a divergence group with a reason', async () => {
    const olivia = await login(TOKENS.olivia);
    const groups = [...cs.stack.gw.rings.runtime.snapshot().stats.groups.values()];
    expect(groups.length).toBeGreaterThan(0);
    const g = groups[0]!;
    const page = await (await get(olivia.cookie, '/divergence')).text();
    expect(page).toContain(`data-group="${g.key}"`);
    expect(page).toContain('not acknowledged');
    expect((await post(olivia, '/divergence/ack', { group: g.key, reason: '' })).status).toBe(400);
    const r = await post(olivia, '/divergence/ack', {
      group: g.key,
      reason: 'external traffic moves to b on purpose',
    });
    expect(r.status).toBe(303);
    expect(g.ack).toMatchObject({ by: 'olivia', reason: 'external traffic moves to b on purpose' });
    expect(await (await get(olivia.cookie, '/divergence')).text()).toContain(
      'external traffic moves to b on purpose',
    );
  });

  it('two keys: the requester sees no approve button and a forged approval is refused; another approver decides', async () => {
    const pat = await login(TOKENS.pat);
    const asked = await post(pat, '/rollout/canary', { apps: 'jobs', percent: '50' });
    expect(asked.status).toBe(303);
    const [req] = cs.stack.gw.governance.requests();
    expect(req).toMatchObject({ requestedBy: 'pat', status: 'pending', ask: { action: 'canary.enter' } });
    const own = await (await get(pat.cookie, '/approvals')).text();
    expect(own).toContain('Requested by you — another approver must decide.');
    expect(own).toContain('canary.enter'); // with its flash on the way
    expect(own).not.toContain(`action="/console/approvals/${req!.id}/approve"`);
    const forged = await post(pat, `/approvals/${req!.id}/approve`, { reason: 'mine' });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('cannot also approve it');
    // A viewer cannot decide either; an approver sees the buttons and what they approve.
    const vic = await login(TOKENS.vic);
    expect((await post(vic, `/approvals/${req!.id}/approve`)).status).toBe(403);
    const alex = await login(TOKENS.alex);
    const shown = await (await get(alex.cookie, '/approvals')).text();
    expect(shown).toContain(`action="/console/approvals/${req!.id}/approve"`);
    expect(shown).toContain('rings-e2e v1');
    expect(shown).toContain('rings-e2e v2');
    expect(shown).toContain('data-transition="shadow_to_canary"');
    // Rejecting needs a reason.
    expect((await post(alex, `/approvals/${req!.id}/reject`, { reason: '' })).status).toBe(400);
    const ok = await post(alex, `/approvals/${req!.id}/approve`, { reason: 'gates pass' });
    expect(ok.status).toBe(303);
    expect(stage()).toBe('canary');
    expect(cs.stack.gw.rings.runtime.snapshot().state.candidate?.by).toBe('pat+alex');
    const after = await (await get(alex.cookie, '/approvals')).text();
    expect(after).toContain(`Approved ${req!.id}`);
  });

  it('an override is requested through its form and, approved by a second key, shows with its time left', async () => {
    // Just in canary: the canary → production gates have no data yet, so min_samples does not pass.
    const olivia = await login(TOKENS.olivia);
    const form = await (await get(olivia.cookie, '/rollout/override')).text();
    expect(form).toContain('value="min_samples"');
    expect(form).not.toContain('value="output_leak_blocks"'); // it passes: nothing to override
    expect(await (await get(olivia.cookie, '/rollout')).text()).toContain('href="/console/rollout/override"');
    const short = await post(olivia, '/rollout/override', { gate: 'min_samples', rationale: 'too short' });
    expect(short.status).toBe(400);
    const r = await post(olivia, '/rollout/override', {
      gate: 'min_samples',
      'note:min_samples': 'two requests are all this test sends',
      rationale: 'the canary is a test fixture: its sample is small by design',
      sampleSize: '0',
      severity: 'high=0, low=1',
      mitigation: 'rollback triggers stay armed',
      links: 'https://example.test/ticket/1',
      hours: '2',
      onExpiry: 'rollback',
    });
    expect(r.status).toBe(303);
    const req = cs.stack.gw.governance.requests().find((x) => x.ask.action === 'override')!;
    expect(req).toMatchObject({ requestedBy: 'olivia', status: 'pending' });
    const alex = await login(TOKENS.alex);
    const shown = await (await get(alex.cookie, '/approvals')).text();
    expect(shown).toContain('Override failed gates');
    expect(shown).toContain('the canary is a test fixture');
    expect((await post(alex, `/approvals/${req.id}/approve`)).status).toBe(303);
    const page = await (await get(alex.cookie, '/overrides')).text();
    expect(page).toMatch(/data-override="ovr_/);
    expect(page).toMatch(/1 h 59 min left|2 h left/);
    expect(page).toContain('roll back');
    expect(page).toContain('data-report-gate="min_samples"');
  });

  it('narrowing the slice is one key; rollback needs its confirmation step and a reason', async () => {
    const olivia = await login(TOKENS.olivia);
    const narrow = await post(olivia, '/rollout/canary', { apps: 'jobs', percent: '25' });
    expect(narrow.status).toBe(303);
    expect(cs.stack.gw.rings.runtime.snapshot().state.candidate?.slice?.percent).toBe(25);
    const rita = await login(TOKENS.rita);
    const skip = await post(rita, '/rollout/rollback', { reason: 'no confirmation step' });
    expect(skip.status).toBe(303);
    expect(skip.headers.get('location')).toBe('/console/rollout/rollback');
    expect(stage()).toBe('canary');
    expect((await post(rita, '/rollout/rollback', { confirm: 'yes', reason: '' })).status).toBe(400);
    expect(stage()).toBe('canary');
    const done = await post(rita, '/rollout/rollback', { confirm: 'yes', reason: 'console test rollback' });
    expect(done.status).toBe(303);
    expect(stage()).toBeUndefined();
    const page = await (await get(rita.cookie, '/rollout')).text();
    expect(page).toContain('Rolled back in');
    expect(page).toContain('console test rollback'); // the rollbacks chart's note
  });

  it('renders every page, and the live fragment alone', async () => {
    const vic = await login(TOKENS.vic);
    for (const path of [
      '/rollout',
      '/divergence',
      '/bundles',
      '/approvals',
      '/overrides',
      '/audit',
      '/audit?page=9',
    ]) {
      const r = await get(vic.cookie, path);
      expect(r.status, path).toBe(200);
      expect(await r.text(), path).toContain('signed in as <strong data-who>vic</strong>');
    }
    const rollout = await (await get(vic.cookie, '/rollout')).text();
    expect(rollout.match(/<svg class="chart"/g)).toHaveLength(6);
    // Fed by the request observer: classes both bundles gave, and cost per class from token usage.
    expect(rollout).toMatch(/Same requests classified by both bundles since the stage began: \d+ compared/);
    expect(rollout).toMatch(/\$0\.0010 · \d+ req/);
    const frag = await (await get(vic.cookie, '/rollout?fragment=live')).text();
    expect(frag.startsWith('<div id="live"')).toBe(true);
    const diff = await (
      await get(
        vic.cookie,
        `/bundles?from=${cs.stack.gw.rings.runtime.snapshot().state.production.bundleId}&to=${cs.candidateId}`,
      )
    ).text();
    expect(diff).toContain('external-to-b');
    expect((await get(vic.cookie, '/bundles?from=nope&to=nope')).status).toBe(400);
  });
});
