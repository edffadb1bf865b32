/**
 * The operator console in a real browser (Debian's headless Chromium driven by playwright-core), against a
 * gateway in this process: an operator requests canary and promotion through the forms, approvers in other
 * browser contexts approve them, the rollout page follows; the identity holding both roles cannot approve its own
 * request (no button, and a forged POST with a valid session and CSRF token is refused); CSRF-less and
 * cross-origin posts are refused; the security headers are there and the browser reports no CSP violation; the
 * pages read without JavaScript. Screenshots of every page land in test-output/console/ (with
 * RINGFENCE_UPDATE_SCREENSHOTS=1 the rollout and approvals ones are also copied to docs/).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP } from '../../src/console/index.ts';
import { type ConsoleStack, startConsoleStack, TOKENS } from './fixture.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'test-output', 'console');
const CHROMIUM = process.env.RINGFENCE_CHROMIUM ?? '/usr/bin/chromium';
/** Also refresh docs/console-*.png (then canary traffic is spread over a few chart buckets: ~40 s longer). */
const UPDATE_DOCS = process.env.RINGFENCE_UPDATE_SCREENSHOTS === '1';

let cs: ConsoleStack;
let browser: Browser;
let admin: string;
const contexts: BrowserContext[] = [];
/** Content-Security-Policy violations the browser reported, on any page. */
const violations: string[] = [];

async function context(opts: { javaScriptEnabled?: boolean } = {}): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  contexts.push(ctx);
  return ctx;
}

async function loginAs(ctx: BrowserContext, token: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(`${admin}/console/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${admin}/console/rollout`), page.click('button[type=submit]')]);
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
const flash = async (page: Page) => (await page.textContent('.flash'))?.trim() ?? '';
const stage = () => cs.stack.gw.rings.runtime.snapshot().state.candidate?.stage;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)`);
  mkdirSync(OUT, { recursive: true });
  cs = await startConsoleStack();
  admin = cs.stack.gw.adminUrl;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 30_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await cs?.close();
});

describe('operator console in Chromium', { timeout: UPDATE_DOCS ? 120_000 : 60_000 }, () => {
  it('canary and promotion through the forms, two keys, refused forgeries, headers, no-JS reading', async () => {
    // --- 1. the operator requests canary ---
    const olivia = await loginAs(await context(), TOKENS.olivia);
    const first = await olivia.reload();
    const headers = first!.headers();
    expect(headers['content-security-policy']).toBe(CSP);
    expect(headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['cache-control']).toBe('no-store');
    expect(await olivia.locator('[data-ring="shadow"]').count()).toBe(1);
    expect(await olivia.locator('table.gates tr.fail, table.gates tr.insufficient_data').count()).toBe(0);
    await shot(olivia, 'rollout-shadow');
    await olivia.fill('#percent', '50');
    await Promise.all([
      olivia.waitForURL(`${admin}/console/rollout`),
      olivia.click('#slice-form button[type=submit]'),
    ]);
    expect(await flash(olivia)).toMatch(/canary\.enter requested as apr_/);
    expect(stage()).toBe('shadow');

    // --- 2. an approver in another browser sees it with its summary and approves it ---
    const alex = await loginAs(await context(), TOKENS.alex);
    await alex.click('nav a[href$="/approvals"]');
    const card = alex.locator('[data-approval]').first();
    expect(await card.textContent()).toContain('canary.enter');
    expect(await card.textContent()).toContain('olivia');
    expect(await card.textContent()).toMatch(/\+\d+ added/);
    expect(await card.locator('table.gates tr.pass').count()).toBeGreaterThan(3);
    await shot(alex, 'approvals');
    await card.locator('input[name="reason"]').first().fill('gates pass, divergence explained');
    await Promise.all([
      alex.waitForURL(`${admin}/console/approvals`),
      card.locator('button.approve').click(),
    ]);
    expect(await flash(alex)).toMatch(/Approved apr_.*canary\.enter ran as olivia\+alex/);
    expect(stage()).toBe('canary');
    // The operator's open rollout page follows by itself (progressive refresh), no reload.
    await olivia.waitForSelector('[data-ring="canary"]', { timeout: 12_000 });
    expect(await olivia.textContent('[data-ring="canary"]')).toMatch(
      /olivia\s*\(requested\)\s*\+\s*alex\s*\(approved\)/,
    );

    // --- 3. the identity holding both roles cannot approve its own request ---
    const pat = await loginAs(await context(), TOKENS.pat);
    await pat.fill('#percent', '100');
    await Promise.all([
      pat.waitForURL(`${admin}/console/rollout`),
      pat.click('#slice-form button[type=submit]'),
    ]);
    expect(await flash(pat)).toMatch(/canary\.widen requested as (apr_[\w-]+)/);
    const patId = /(apr_[\w-]+)/.exec(await flash(pat))![1]!;
    await pat.goto(`${admin}/console/approvals`);
    const own = pat.locator(`[data-approval="${patId}"]`);
    expect(await own.textContent()).toContain('Requested by you — another approver must decide.');
    expect(await own.locator('button.approve').count()).toBe(0);
    expect(await own.locator(`form[action$="/${patId}/approve"]`).count()).toBe(0);
    const patCsrf = await pat.getAttribute('input[name="_csrf"]', 'value');
    const forged = await pat.request.post(`${admin}/console/approvals/${patId}/approve`, {
      form: { _csrf: patCsrf!, reason: 'my own' },
      headers: { origin: admin, 'sec-fetch-site': 'same-origin' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('cannot also approve it');
    // Another approver rejects it, with a reason.
    await alex.goto(`${admin}/console/approvals`);
    const theirs = alex.locator(`[data-approval="${patId}"]`);
    await theirs.locator(`form[action$="/reject"] input[name="reason"]`).fill('100% is too wide for today');
    await Promise.all([
      alex.waitForURL(`${admin}/console/approvals`),
      theirs.locator('button.danger').click(),
    ]);
    expect(await flash(alex)).toContain(`Rejected ${patId}`);
    expect(cs.stack.gw.rings.runtime.snapshot().state.candidate?.slice?.percent).toBe(50);

    // --- 4. forms without the CSRF token, or from another origin, are refused ---
    const bare = await olivia.request.post(`${admin}/console/rollout/promote`, {
      form: { reason: 'x' },
      headers: { origin: admin },
      maxRedirects: 0,
    });
    expect(bare.status()).toBe(403);
    expect(await bare.text()).toContain('data-error="csrf"');
    // A page on another origin (same site: another port of 127.0.0.1, so the SameSite cookie IS sent) posts a
    // form carrying a leaked CSRF token: the Origin check still refuses it.
    const oliviaCsrf = await olivia.getAttribute('input[name="_csrf"]', 'value');
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id="f" method="post" action="${admin}/console/rollout/promote"><input name="_csrf" value="${oliviaCsrf}"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/`;
      const [res] = await Promise.all([
        olivia.waitForResponse((r) => r.url().endsWith('/console/rollout/promote')),
        olivia.goto(evilUrl),
      ]);
      expect(res.status()).toBe(403);
      expect(await res.text()).toContain('data-error="cross_origin"');
    } finally {
      evil.close();
    }
    expect(cs.stack.gw.governance.requests().filter((r) => r.ask.action === 'promote')).toHaveLength(0);

    // --- canary traffic, then promotion requested and approved the same way ---
    if (!UPDATE_DOCS) await cs.traffic(24, { bluebird: true });
    else
      for (let i = 0; i < 4; i++) {
        await cs.traffic(8, { bluebird: true });
        await new Promise((r) => setTimeout(r, 10_000));
      }
    await olivia.goto(`${admin}/console/rollout`);
    expect(await olivia.locator('table.gates[data-transition="canary_to_production"]').count()).toBe(1);
    expect(await olivia.locator('table.gates tr.fail, table.gates tr.insufficient_data').count()).toBe(0);
    await shot(olivia, 'rollout');
    await Promise.all([
      olivia.waitForURL(`${admin}/console/rollout`),
      olivia.click('form[action$="/rollout/promote"] button'),
    ]);
    expect(await flash(olivia)).toMatch(/Promotion requested as apr_/);
    const sam = await loginAs(await context(), TOKENS.sam);
    await sam.goto(`${admin}/console/approvals`);
    const promo = sam.locator('[data-approval]').filter({ hasText: 'promote' }).first();
    await Promise.all([
      sam.waitForURL(`${admin}/console/approvals`),
      promo.locator('button.approve').click(),
    ]);
    expect(await flash(sam)).toMatch(/promote ran as olivia\+sam/);
    await sam.goto(`${admin}/console/rollout`);
    const prod = await sam.textContent('[data-ring="production"]');
    expect(prod).toContain('v2');
    expect(prod).toMatch(/olivia\s*\(requested\)\s*\+\s*sam\s*\(approved\)/);
    expect(await sam.locator('[data-ring="canary"], [data-ring="shadow"]').count()).toBe(0);
    expect(stage()).toBeUndefined();

    // --- 6. without JavaScript the pages read (and the login form works) ---
    const vic = await loginAs(await context({ javaScriptEnabled: false }), TOKENS.vic);
    expect(await vic.textContent('[data-ring="production"]')).toContain('rings-e2e');
    expect(await vic.locator('svg.chart').count()).toBe(6);
    expect(await vic.locator('a[href="/console/rollout"]', { hasText: 'Refresh' }).count()).toBe(1);
    await shot(vic, 'rollout-no-js');

    // --- 7. every page, screenshotted ---
    await olivia.goto(`${admin}/console/divergence`);
    await shot(olivia, 'divergence');
    await olivia.goto(`${admin}/console/bundles`);
    const rows = await olivia.locator('[data-bundle]').count();
    expect(rows).toBe(2);
    await olivia.selectOption('#from', { index: 0 });
    await olivia.selectOption('#to', { index: 1 });
    await olivia.click('form[action$="/bundles"] button');
    expect(await olivia.locator('#diff ul.diff li').count()).toBeGreaterThan(0);
    await shot(olivia, 'bundles');
    await olivia.goto(`${admin}/console/overrides`);
    await shot(olivia, 'overrides');
    await olivia.goto(`${admin}/console/audit`);
    expect(await olivia.getAttribute('[data-audit]', 'data-audit')).toBe('ok');
    expect(await olivia.textContent('main')).toContain('promotion.decided');
    await shot(olivia, 'audit');
    await olivia.goto(`${admin}/console/rollout/rollback`);
    await shot(olivia, 'rollback-confirm');
    const anon = await (await context()).newPage();
    await anon.goto(`${admin}/console/rollout`);
    expect(anon.url()).toBe(`${admin}/console/login`);
    await shot(anon, 'login');

    // --- 5. the browser enforced the CSP on every page and found nothing to refuse ---
    expect(violations).toEqual([]);

    if (UPDATE_DOCS) {
      copyFileSync(join(OUT, 'rollout.png'), join(ROOT, 'docs', 'console-rollout.png'));
      copyFileSync(join(OUT, 'approvals.png'), join(ROOT, 'docs', 'console-approvals.png'));
    }
  });
});
