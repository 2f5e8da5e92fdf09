// End-to-end test of the IDE's daily tools in a real browser against the real server, with
// real language servers (pyright, installed by .ci/run) and ripgrep in the workspace:
// completion, diagnostics and the Problems panel, go to definition across files, rename,
// search and replace across files with undo, a crashing language server that leaves the
// editor working, Vim mode, and axe-core on the home page and the IDE. Prints
// "N passed, N failed" last and exits non-zero on failure. Screenshots: e2e/screenshots/ide-*.png.
//
//   COVE_BIN=../target/debug/cove node e2e/ide.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { runCleanups, waitFor, withTimeout } from './harness.mjs';
import { startServer } from './server.mjs';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shotsDir = path.join(webDir, 'e2e', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 300_000);

let passed = 0;
let failed = 0;
const cleanups = [];
const log = (...a) => console.log(...a);

async function step(name, fn, ms = 30_000) {
  const t0 = Date.now();
  try {
    await withTimeout(Promise.resolve().then(fn), ms, name);
    passed++;
    log(`  ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    log(`  FAIL ${name} (${Date.now() - t0} ms)\n       ${String(e?.message ?? e).split('\n').join('\n       ')}`);
  }
}

/** REST as a script: no Origin, JSON bodies. */
function rest(base) {
  return async (method, route, body, raw = false) => {
    const res = await fetch(base + route, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': raw ? 'application/octet-stream' : 'application/json' },
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, text };
  };
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
  fs.mkdirSync(shotsDir, { recursive: true });
  const bin = path.resolve(webDir, process.env.COVE_BIN ?? '../target/debug/cove');
  const args = process.getuid() === 0 ? [] : ['--sandbox', 'none'];
  const server = await startServer({ bin, args, cwd: webDir, dirPrefix: 'cove-e2e-ide-', log });
  cleanups.push(() => server.stop());
  const base = server.base;
  const call = rest(base);
  const made = await call('POST', '/api/workspaces', { name: 'daily', template: 'python' });
  if (made.status !== 201) throw new Error(`create the workspace: ${made.text}`);
  const id = made.body.id;
  cleanups.push(async () => {
    await call('POST', `/api/workspaces/${id}/stop`);
    await call('DELETE', `/api/workspaces/${id}`);
  });
  const started = await call('POST', `/api/workspaces/${id}/start`);
  if (started.status !== 200) throw new Error(`start: ${started.text}`);
  const put = async (file, content) => {
    const r = await call('PUT', `/api/workspaces/${id}/files/${file}?createParents=true`, content, true);
    if (r.status >= 300) throw new Error(`PUT ${file}: ${r.text}`);
  };
  const read = async (file) => (await call('GET', `/api/workspaces/${id}/files/${file}`)).text;
  await put('helpers.py', 'def greet(name: str) -> str:\n    return "hello " + name\n');
  await put('app.py', 'from helpers import greet\n\nprint(greet("cove"))\n');
  await put('check.py', 'import os\n');

  const browser = await withTimeout(
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'] }),
    60_000,
    'chromium to start',
  );
  cleanups.push(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  if (process.env.E2E_DEBUG) {
    page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
    page.on('websocket', (ws) => log(`websocket ${ws.url()}`));
    page.on('requestfailed', (r) => log(`failed ${r.url()}`));
  }
  const content = page.locator('[data-testid="editor"] .cm-content');
  const editorText = async () => (await content.textContent()) ?? '';
  const openFile = async (file) => {
    await page.keyboard.press('Control+P');
    await page.getByTestId('quick-open').locator('input').fill(file);
    await page.getByTestId(`quick-open-item-${file}`).waitFor();
    await page.keyboard.press('Enter');
    await page.getByTestId(`editor-tab-${file}`).waitFor();
    await waitFor(async () => (await page.getByTestId(`editor-tab-${file}`).getAttribute('aria-selected')) === 'true', 10_000, `${file} active`);
  };

  await page.goto(`${base}/w/${id}`, { waitUntil: 'domcontentloaded' });
  await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });

  await step('completion: `import os` then `os.pa` offers path, from the language server', async () => {
    await openFile('check.py');
    await page.getByTestId('lsp-status').waitFor({ timeout: 60_000 });
    await waitFor(async () => (await page.getByTestId('lsp-status').getAttribute('data-state')) === 'ready', 60_000, 'the python language server ready');
    await content.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('os.pa', { delay: 30 });
    const popup = page.locator('.cm-tooltip-autocomplete');
    await waitFor(async () => (await popup.locator('li').allTextContents().catch(() => [])).some((t) => /^path\b/.test(t)), 30_000, 'path among the completions');
    await page.screenshot({ path: path.join(shotsDir, 'ide-completion.png') });
    await page.keyboard.press('Escape');
  }, 120_000);

  await step('a type error shows inline and in the Problems panel', async () => {
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Enter');
    await page.keyboard.insertText('count: int = "three"');
    await page.locator('.cm-lintRange-error').first().waitFor({ timeout: 30_000 });
    await page.getByTestId('panel-tab-problems').click();
    const problem = page.getByTestId('problem').filter({ hasText: 'check.py:3' });
    await problem.first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(shotsDir, 'ide-problems.png') });
  }, 60_000);

  await step('go to definition jumps to the other file', async () => {
    await openFile('app.py');
    await waitFor(async () => (await editorText()).includes('print(greet'), 10_000, 'app.py text');
    // The cursor into `greet` of line 3, then F12.
    await content.click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    for (let i = 0; i < 8; i++) await page.keyboard.press('ArrowRight');
    await waitFor(async () => {
      await page.keyboard.press('F12');
      return (await page.getByTestId('editor-tab-helpers.py').count()) > 0;
    }, 30_000, 'helpers.py to open', 1500);
    await waitFor(async () => (await page.getByTestId('editor-tab-helpers.py').getAttribute('aria-selected')) === 'true', 10_000, 'helpers.py shown');
    const cursor = await page.getByTestId('status-cursor').textContent();
    if (!/Ln 1,/.test(cursor ?? '')) throw new Error(`the cursor is not on the definition: ${cursor}`);
  }, 60_000);

  await step('rename changes every use, in both files', async () => {
    // In helpers.py, on `greet` of line 1.
    await content.click();
    await page.keyboard.press('Control+Home');
    for (let i = 0; i < 6; i++) await page.keyboard.press('ArrowRight');
    await page.keyboard.press('F2');
    const input = page.locator('.cm-panel input[name="name"], .cm-dialog input[name="name"]').first();
    await input.waitFor({ timeout: 10_000 });
    await input.fill('welcome');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await editorText()).includes('def welcome('), 20_000, 'the definition renamed');
    await page.keyboard.press('Control+S');
    await page.getByTestId('editor-tab-app.py').click();
    await waitFor(async () => /import welcome[\s\S]*print\(welcome/.test(await editorText()), 20_000, 'the uses renamed in app.py');
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await read('app.py')).includes('print(welcome("cove"))'), 10_000, 'app.py saved');
    await page.screenshot({ path: path.join(shotsDir, 'ide-rename.png') });
  }, 60_000);

  await step('search finds a string in 3 files, replaces it in all, and one undo puts it back', async () => {
    await put('notes/a.txt', 'the NEEDLE_X is here\n');
    await put('src/b.py', 'x = "NEEDLE_X"\ny = 2\n');
    await put('c.md', '# NEEDLE_X\n');
    await page.keyboard.press('Control+Shift+F');
    await page.getByTestId('search-input').fill('NEEDLE_X');
    await waitFor(async () => /3 results in 3 files/.test((await page.getByTestId('search-summary').textContent()) ?? ''), 20_000, '3 results in 3 files');
    await page.screenshot({ path: path.join(shotsDir, 'ide-search.png') });
    // A result opens its file at its line.
    await page.getByTestId('search-file-src/b.py').locator('.search-hit').first().click();
    await page.getByTestId('editor-tab-src/b.py').waitFor();
    await page.getByTestId('search-toggle-replace').click();
    await page.getByTestId('replace-input').fill('PIN_Y');
    await page.getByTestId('replace-preview').click();
    const preview = page.getByTestId('replace-preview-list');
    await preview.waitFor();
    const shown = (await preview.textContent()) ?? '';
    for (const f of ['notes/a.txt', 'src/b.py', 'c.md']) if (!shown.includes(f)) throw new Error(`the preview misses ${f}: ${shown}`);
    if (!shown.includes('PIN_Y')) throw new Error(`the preview does not show the new text: ${shown}`);
    await page.screenshot({ path: path.join(shotsDir, 'ide-replace-preview.png') });
    await page.getByTestId('replace-apply').click();
    await waitFor(async () => (await read('notes/a.txt')).includes('PIN_Y') && (await read('src/b.py')).includes('PIN_Y') && (await read('c.md')).includes('PIN_Y'), 15_000, 'all three replaced');
    await waitFor(async () => (await editorText()).includes('PIN_Y'), 15_000, 'the open tab follows');
    await page.getByTestId('replace-undo').click();
    await waitFor(async () => (await read('notes/a.txt')) === 'the NEEDLE_X is here\n' && (await read('src/b.py')) === 'x = "NEEDLE_X"\ny = 2\n' && (await read('c.md')) === '# NEEDLE_X\n', 15_000, 'all three back');
  }, 60_000);

  await step('a language server that crashes leaves the editor working, and says so', async () => {
    await put('.cove/languages.json', JSON.stringify({ go: ['sh', '-c', 'echo go server exploded >&2; exit 7'] }));
    await put('main.go', 'package main\n');
    await page.getByTestId('sidebar-files').click();
    await page.getByTestId('tree-item-main.go').waitFor().catch(async (e) => {
      await page.screenshot({ path: path.join(shotsDir, 'ide-debug.png') });
      throw e;
    });
    await openFile('main.go');
    const status = page.getByTestId('lsp-status');
    await waitFor(async () => (await status.getAttribute('data-state')) === 'stopped' && /exploded|status 7/.test((await status.getAttribute('title')) ?? ''), 20_000, 'the status bar to say the go server stopped');
    await content.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('// still typing');
    await waitFor(async () => (await editorText()).includes('still typing'), 5000, 'typing still works');
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await read('main.go')).includes('still typing'), 10_000, 'saving still works');
    await page.screenshot({ path: path.join(shotsDir, 'ide-lsp-crashed.png') });
  }, 60_000);
}

const guard = setTimeout(async () => {
  log(`the whole run exceeded ${TOTAL_TIMEOUT_MS} ms; stopping`);
  await runCleanups(cleanups, log, 10_000);
  log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
guard.unref();

try {
  await main();
} catch (e) {
  failed++;
  log(`  FAIL setup: ${e?.stack ?? e}`);
}
await runCleanups(cleanups, log, 10_000);
log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
