// End-to-end test of signing in (`cove serve --auth password`): a person is sent to the
// sign-in page, signs in through it, opens a workspace and types in its terminal; a second
// browser context, signed in as a viewer the workspace is shared with, sees that terminal's
// output live, is told it is read-only, and what it types never reaches the terminal; the
// first person signs out and is sent back to the sign-in page. Prints "N passed, N failed"
// last and exits non-zero on failure. Screenshots go to e2e/screenshots/accounts-*.png.
//
//   COVE_BIN=../target/debug/cove node e2e/accounts.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Scenario, runCleanups, terminalText, typeInTerminal, waitFor, withTimeout } from './harness.mjs';
import { startServer } from './server.mjs';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shotsDir = path.join(webDir, 'e2e', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 180_000);
const ADMIN_PASSWORD = 'e2e-admin-password';
const VIEWER_PASSWORD = 'e2e-viewer-password';

const cleanups = [];
const log = (...a) => console.log(...a);
const scenario = new Scenario(log);
// Each step needs the ones before it: the first failure ends the run.
const step = (name, fn, ms) => scenario.step(name, fn, ms, true);

/** A REST client of a signed-in user, as a script would be (no Origin; JSON bodies). */
async function restAs(base, username, password) {
  const r = await fetch(`${base}/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (r.status !== 200) throw new Error(`sign in as ${username}: ${r.status} ${await r.text()}`);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  return async (method, route, body) => {
    const res = await fetch(base + route, {
      method,
      headers: { Cookie: cookie, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/** Signs in through the page the browser was sent to. */
async function signInThroughPage(page, username, password) {
  await page.getByTestId('login-form').waitFor();
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
  fs.mkdirSync(shotsDir, { recursive: true });
  const bin = path.resolve(webDir, process.env.COVE_BIN ?? '../target/debug/cove');
  const args = ['--auth', 'password', '--password', ADMIN_PASSWORD, ...(process.getuid() === 0 ? [] : ['--sandbox', 'none'])];
  const server = await startServer({ bin, args, cwd: webDir, dirPrefix: 'cove-e2e-accounts-', log });
  cleanups.push(() => server.stop());
  const base = server.base;

  // The viewer and the shared workspace, made as scripts would make them.
  const admin = await restAs(base, 'admin', ADMIN_PASSWORD);
  const made = await admin('POST', '/api/users', { username: 'vic', password: VIEWER_PASSWORD, role: 'viewer' });
  if (made.status !== 201) throw new Error(`create the viewer: ${JSON.stringify(made)}`);
  const ws = await admin('POST', '/api/workspaces', { name: 'shared-demo', template: 'blank' });
  if (ws.status !== 201) throw new Error(`create the workspace: ${JSON.stringify(ws)}`);
  const id = ws.body.id;
  cleanups.push(async () => {
    await admin('POST', `/api/workspaces/${id}/stop`);
    await admin('DELETE', `/api/workspaces/${id}`);
  });
  const shared = await admin('PUT', `/api/workspaces/${id}/shares/vic`, { access: 'view' });
  if (shared.status !== 200) throw new Error(`share: ${JSON.stringify(shared)}`);

  const browser = await withTimeout(
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'] }),
    60_000,
    'chromium to start',
  );
  cleanups.push(() => browser.close());
  const consoleErrors = [];
  const newPage = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    return page;
  };
  const owner = await newPage();
  const viewer = await newPage();

  await step('a signed-out person is sent to the sign-in page, and back where they were going', async () => {
    await owner.goto(`${base}/w/${id}`, { waitUntil: 'domcontentloaded' });
    await owner.waitForURL(/\/login\?next=/);
    await owner.screenshot({ path: path.join(shotsDir, 'accounts-login.png') });
    await signInThroughPage(owner, 'admin', 'not-the-password');
    await waitFor(async () => /wrong username or password/i.test((await owner.getByTestId('login-error').textContent()) ?? ''), 10_000, 'the server\'s own words');
    await signInThroughPage(owner, 'admin', ADMIN_PASSWORD);
    await owner.waitForURL(new RegExp(`/w/${id}$`), { timeout: 20_000 });
  }, 45_000);

  await step('the owner\'s IDE connects and its terminal runs commands', async () => {
    await owner.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await waitFor(async () => (await owner.evaluate(() => window.__coveTerminals?.size ?? 0)) > 0, 30_000, 'a terminal');
    await typeInTerminal(owner, 'echo OWNER-$((6*7))\n');
    await waitFor(async () => (await terminalText(owner)).includes('OWNER-42'), 20_000, 'OWNER-42 in the terminal');
    await owner.screenshot({ path: path.join(shotsDir, 'accounts-owner-ide.png') });
  }, 90_000);

  await step('the viewer signs in, is told the workspace is read-only, and sees the terminal live', async () => {
    await viewer.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    await viewer.waitForURL(/\/login/);
    await signInThroughPage(viewer, 'vic', VIEWER_PASSWORD);
    await viewer.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 20_000 });
    await viewer.goto(`${base}/w/${id}`, { waitUntil: 'domcontentloaded' });
    await viewer.getByTestId('readonly-banner').waitFor({ timeout: 30_000 });
    // Each sees the other in the workspace's presence list.
    await owner.getByTestId('presence-vic').waitFor({ timeout: 20_000 });
    await viewer.getByTestId('presence-admin').waitFor({ timeout: 20_000 });
    await waitFor(async () => (await viewer.evaluate(() => window.__coveTerminals?.size ?? 0)) > 0, 30_000, 'the shared terminal');
    await typeInTerminal(owner, 'echo LIVE-$((7*7))\n');
    await waitFor(async () => (await terminalText(viewer)).includes('LIVE-49'), 20_000, 'LIVE-49 in the viewer\'s terminal');
    await viewer.screenshot({ path: path.join(shotsDir, 'accounts-viewer-ide.png') });
  }, 90_000);

  await step('what the viewer types never reaches the terminal', async () => {
    await typeInTerminal(viewer, 'echo NOPE-$((5*5))\n');
    // The owner's next command is answered after anything the viewer's could have been.
    await typeInTerminal(owner, 'echo AFTER-$((8*8))\n');
    await waitFor(async () => (await terminalText(owner)).includes('AFTER-64'), 20_000, 'AFTER-64');
    await waitFor(async () => (await terminalText(viewer)).includes('AFTER-64'), 20_000, 'AFTER-64 at the viewer');
    for (const [who, page] of [['owner', owner], ['viewer', viewer]]) {
      const text = await terminalText(page);
      if (text.includes('NOPE')) throw new Error(`the viewer's input reached the terminal (${who} sees it):\n${text}`);
    }
  }, 60_000);

  await step('a preview opened from the IDE reaches its own host signed in; a signed-out browser is sent to sign in', async () => {
    const port = 8124;
    await owner.getByTestId('panel-tab-processes').click();
    await owner.getByTestId('process-command').fill(`python3 -m http.server ${port} --bind 127.0.0.1`);
    await owner.getByTestId('process-run').click();
    await owner.getByTestId('panel-tab-ports').click();
    const row = owner.getByTestId(`port-${port}`);
    await row.waitFor({ timeout: 20_000 });
    const href = (await row.locator('a').getAttribute('href')) ?? '';
    if (href !== `/w/${id}/open/${port}`) throw new Error(`the preview link goes through cove's open route, got ${href}`);
    const previewHost = `${port}-${id}.localhost:${new URL(base).port}`;
    const tab = await owner.context().newPage();
    try {
      const r = await tab.goto(`${base}${href}`, { waitUntil: 'domcontentloaded' });
      const url = new URL(tab.url());
      if (url.host !== previewHost || url.pathname !== '/') throw new Error(`the tab ended at ${tab.url()}, not on ${previewHost}`);
      const body = await tab.content();
      if (r.status() !== 200 || !/Directory listing/i.test(body)) throw new Error(`${tab.url()} answered ${r.status()}: ${body.slice(0, 160)}`);
      await tab.screenshot({ path: path.join(shotsDir, 'accounts-preview-host.png') });
    } finally {
      await tab.close();
    }
    const stranger = await newPage();
    try {
      await stranger.goto(`http://${previewHost}/`, { waitUntil: 'domcontentloaded' });
      await stranger.waitForURL(/\/login\?next=/, { timeout: 20_000 });
      await stranger.screenshot({ path: path.join(shotsDir, 'accounts-preview-signed-out.png') });
    } finally {
      await stranger.context().close();
    }
  }, 60_000);

  await step("the administrator's System page shows the running workspace live; a viewer is refused it", async () => {
    await owner.getByTestId('user-menu-button').click();
    await owner.getByTestId('menu-system').click();
    await owner.waitForURL(/\/admin\/system$/);
    await waitFor(async () => (await owner.getByTestId('system-link').textContent()) === 'live', 15_000, 'the /system socket');
    const row = owner.getByTestId('system-workspace-shared-demo');
    await row.waitFor({ timeout: 15_000 });
    // The viewer's IDE is still open: its control socket is among the connections.
    await waitFor(async () => /control\s*\d/.test((await owner.getByTestId('system-connections').textContent()) ?? ''), 10_000, 'control sockets counted');
    const memory = await row.locator('td[data-label="Memory"]').textContent();
    if (!/\d/.test(memory ?? '')) throw new Error(`no memory figure: ${memory}`);
    await owner.screenshot({ path: path.join(shotsDir, 'accounts-system.png') });
    const refused = await newPage();
    try {
      await refused.goto(`${base}/login`, { waitUntil: 'domcontentloaded' });
      await signInThroughPage(refused, 'vic', VIEWER_PASSWORD);
      await refused.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 20_000 });
      await refused.goto(`${base}/admin/system`, { waitUntil: 'domcontentloaded' });
      await refused.screenshot({ path: path.join(shotsDir, 'accounts-system-refused.png') });
      await refused.getByTestId('page-refused').waitFor({ timeout: 15_000 });
    } finally {
      await refused.context().close();
    }
  }, 60_000);

  await step('signing out ends the session and shows the sign-in page', async () => {
    await owner.getByTestId('user-menu-button').click();
    await owner.getByTestId('menu-sign-out').click();
    await owner.waitForURL(/\/login/, { timeout: 20_000 });
    // The URL changes before the sign-in page has loaded; a screenshot in between fails.
    await owner.getByTestId('login-form').waitFor({ timeout: 20_000 });
    await owner.waitForLoadState('load');
    await owner.screenshot({ path: path.join(shotsDir, 'accounts-signed-out.png') });
    await owner.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    await owner.waitForURL(/\/login/, { timeout: 20_000 });
    const status = await owner.evaluate(async () => (await fetch('/api/users/me')).status);
    if (status !== 401) throw new Error(`after sign-out /api/users/me answered ${status}`);
  }, 45_000);

  await step("the pages run under their Content-Security-Policy without violations", async () => {
    const violations = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
    if (violations.length) throw new Error(violations.slice(0, 5).join('\n'));
  });
  if (scenario.failed && server) log(`--- server log (tail) ---\n${server.logTail(3000)}\n---`);
}

const guard = setTimeout(() => {
  scenario.fail('the whole run', `it took longer than ${TOTAL_TIMEOUT_MS} ms; stopping`);
  void finish();
}, TOTAL_TIMEOUT_MS);
guard.unref();

async function finish() {
  await runCleanups(cleanups, log, 15_000);
  scenario.summary();
  process.exit(scenario.failed ? 1 : 0);
}

try {
  await main();
} catch (e) {
  // A failed step is counted already; anything else failed outside the steps.
  if (!scenario.failed) scenario.fail('setup', e);
}
await finish();
