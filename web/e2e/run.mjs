// End-to-end test of the cove IDE: starts `cove serve` on a free port with a
// fresh data dir, drives Debian Chromium through playwright-core, prints
// "N passed, N failed" last and exits non-zero on failure.
//
//   COVE_BIN=../target/debug/cove node e2e/run.mjs
//   COVE_URL=http://127.0.0.1:8080 ...  (against a server that is already up)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Scenario, runCleanups, terminalText, typeInTerminal, waitFor, withTimeout } from './harness.mjs';
import { deleteWorkspaces, startServer } from './server.mjs';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shotsDir = path.join(webDir, 'e2e', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 240_000);
const VIEWPORT = { width: 1280, height: 800 };

const cleanups = [];
/** Our own `cove serve`, unless COVE_URL names one. */
let server = null;
/** Workspaces this run created, deleted at the end whatever happens. */
const createdNames = new Set();

function log(...a) {
  console.log(...a);
}

const scenario = new Scenario(log);
const step = (name, fn, ms) => scenario.step(name, fn, ms);

async function cleanup() {
  await runCleanups(cleanups, log, 10_000);
}

function finish(code) {
  scenario.summary();
  process.exit(code);
}

const guard = setTimeout(async () => {
  scenario.fail('the whole run', `it took longer than ${TOTAL_TIMEOUT_MS} ms; stopping`);
  await cleanup();
  finish(1);
}, TOTAL_TIMEOUT_MS);
guard.unref();

/** The server's base URL: COVE_URL, or a `cove serve` of our own (stopped by the cleanups). */
async function startCove() {
  if (process.env.COVE_URL) return process.env.COVE_URL.replace(/\/$/, '');
  const bin = path.resolve(webDir, process.env.COVE_BIN ?? '../target/debug/cove');
  if (!fs.existsSync(bin)) throw new Error(`cove binary not found at ${bin} (set COVE_BIN)`);
  // The sandbox needs root (as in CI); elsewhere the IDE is tested with unconfined workspaces.
  const args = process.getuid() === 0 ? [] : ['--sandbox', 'none'];
  server = await startServer({ bin, args, cwd: webDir, dirPrefix: 'cove-e2e-data-', log });
  cleanups.push(() => server.stop());
  return server.base;
}

async function activeTerminalId(page) {
  return page.locator('.terminal-host[data-active="true"]').first().getAttribute('data-terminal-id', { timeout: 15_000 });
}

async function main() {
  if (!fs.existsSync(path.join(webDir, 'dist', 'index.html'))) log('note: web/dist is missing; run `npm run build` first if the server serves it from disk');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
  fs.mkdirSync(shotsDir, { recursive: true });

  const base = await startCove();
  log(`server at ${base}`);
  // Workspace runners outlive the server by design: delete what this run
  // created before the server goes away (cleanups run in reverse order).
  cleanups.push(() => deleteWorkspaces(base, (w) => createdNames.has(w.name), { log }));

  // The server must serve the UI itself (index.html for / and /w/*, hashed
  // assets under /assets/); without it there is nothing to test.
  let servesUi = false;
  await step('the server serves the IDE (index.html at / and /w/<id>, assets under /assets/)', async () => {
    const get = async (p) => {
      const r = await withTimeout(fetch(base + p), 10_000, `GET ${p}`);
      return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
    };
    const root = await get('/');
    const deep = await get('/w/some-workspace');
    const problems = [];
    if (root.status !== 200 || !/text\/html/.test(root.type)) problems.push(`GET / answered ${root.status} ${root.type}`);
    if (deep.status !== 200 || !/text\/html/.test(deep.type)) problems.push(`GET /w/some-workspace answered ${deep.status} ${deep.type}`);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(root.body)?.[1];
    if (root.status === 200) {
      if (!asset) problems.push('index.html names no /assets/*.js');
      else {
        const a = await get(asset);
        if (a.status !== 200 || !/javascript/.test(a.type)) problems.push(`GET ${asset} answered ${a.status} ${a.type}`);
      }
    }
    if (problems.length) throw new Error(problems.join('; '));
    servesUi = true;
  });
  if (!servesUi) throw new Error('the server does not serve the web UI; nothing to test');

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cove-e2e-chrome-'));
  cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const context = await withTimeout(
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: VIEWPORT,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    }),
    60_000,
    'chromium to start',
  );
  cleanups.push(() => context.close());
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

  const name = `e2e-${Date.now().toString(36).slice(-5)}`;
  createdNames.add(name);
  const marker = `edited-by-e2e-${Math.random().toString(36).slice(2, 8)}`;
  let workspacePath = '';

  await step('home page lists workspaces and offers "New project"', async () => {
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    await page.getByTestId('new-project').first().waitFor({ state: 'visible' });
  });

  await step('create a project from the python template through the dialog', async () => {
    await page.getByTestId('new-project').first().click();
    await page.getByTestId('new-project-dialog').waitFor({ state: 'visible' });
    await page.getByTestId('template-python').click();
    await page.getByTestId('project-name').fill(name);
    // A project asks for less memory than the server's default; the workspace records it.
    await page.getByTestId('project-limits').locator('summary').click();
    await page.getByTestId('limit-memory').fill('384');
    await page.screenshot({ path: path.join(shotsDir, 'new-project.png') });
    await page.getByTestId('create-project').click();
    await page.waitForURL(/\/w\/[^/]+$/, { timeout: 60_000 });
    workspacePath = new URL(page.url()).pathname;
    const id = workspacePath.split('/').pop();
    const view = await (await fetch(`${base}/api/workspaces/${id}`)).json();
    if (view.limits?.memoryMib !== 384) throw new Error(`limits not recorded: ${JSON.stringify(view)}`);
  }, 75_000);

  await step('IDE connects and the file tree shows main.py', async () => {
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await page.getByTestId('tree-item-main.py').waitFor({ timeout: 30_000 });
  }, 90_000);

  await step('open main.py, edit, save with Ctrl+S', async () => {
    await page.getByTestId('tree-item-main.py').click();
    const tab = page.getByTestId('editor-tab-main.py');
    await tab.waitFor();
    const content = page.locator('[data-testid="editor"] .cm-content');
    await waitFor(async () => ((await content.textContent()) ?? '').length > 0, 15_000, 'main.py content in the editor');
    await content.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Enter');
    await page.keyboard.type(`# ${marker}`);
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'true', 5000, 'the tab to be marked dirty');
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'false', 15_000, 'the tab to be saved (not dirty)');
  });

  let termId = null;
  await step('terminal: `cat main.py` shows the saved edit', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    termId = await activeTerminalId(page);
    await waitFor(async () => (await terminalText(page, termId)).trim().length > 0, 20_000, 'a shell prompt');
    await typeInTerminal(page, 'cat main.py\n');
    await waitFor(async () => {
      const t = await terminalText(page, termId);
      // the marker appears once in the typed command? no: it appears only in cat's output
      return t.includes(marker);
    }, 15_000, `"${marker}" in the terminal`);
  });

  await step('terminal: `touch new.txt` makes new.txt appear in the tree without reload', async () => {
    await typeInTerminal(page, 'touch new.txt\n');
    await page.getByTestId('tree-item-new.txt').waitFor({ timeout: 15_000 });
  });

  await step('file tree: new folder, drag a file into it, rename (F2), delete (with confirmation)', async () => {
    await page.getByTestId('tree-item-main.py').click();
    await page.getByTestId('tree-new-folder').click();
    await page.getByTestId('tree-edit-input').fill('src');
    await page.keyboard.press('Enter');
    await page.getByTestId('tree-item-src').waitFor();
    await page.getByTestId('tree-item-new.txt').dragTo(page.getByTestId('tree-item-src'));
    await page.getByTestId('tree-item-src/new.txt').waitFor({ timeout: 10_000 });
    await page.getByTestId('tree-item-new.txt').waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByTestId('tree-item-src/new.txt').click();
    await page.keyboard.press('F2');
    await page.getByTestId('tree-edit-input').fill('notes.md');
    await page.keyboard.press('Enter');
    await page.getByTestId('tree-item-src/notes.md').waitFor({ timeout: 10_000 });
    await page.getByTestId('tree-item-src/notes.md').focus();
    await page.keyboard.press('Delete');
    await page.getByTestId('ask-dialog').waitFor();
    await page.getByTestId('ask-ok').click();
    await page.getByTestId('tree-item-src/notes.md').waitFor({ state: 'detached', timeout: 10_000 });
  });

  const procCmd = 'for i in $(seq 1 900); do echo tick-$i; sleep 1; done';
  let runCommandPrefill = '';
  await step('processes: run a command and stream its output', async () => {
    await page.getByTestId('panel-tab-processes').click();
    const input = page.getByTestId('process-command');
    await input.waitFor();
    runCommandPrefill = await input.inputValue();
    await input.fill(procCmd);
    await page.getByTestId('process-run').click();
    await page.locator('[data-testid="process-list"] [data-running="true"]').first().waitFor({ timeout: 15_000 });
    await waitFor(async () => ((await page.getByTestId('process-output').textContent()) ?? '').includes('tick-2'), 15_000, 'tick-2 in the process output');
  });

  await step('reload: the process is still running with its output, the terminal keeps its scrollback', async () => {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('panel-tab-processes').click();
    const running = page.locator('[data-testid="process-list"] [data-running="true"]').first();
    await running.waitFor({ timeout: 15_000 });
    await running.locator('.process-select').click();
    await waitFor(async () => {
      const t = (await page.getByTestId('process-output').textContent()) ?? '';
      return t.includes('tick-1\n') && t.includes('tick-3');
    }, 15_000, 'the kept log (tick-1 ... tick-3) after reload');
    await page.screenshot({ path: path.join(shotsDir, 'processes.png') });
    await page.getByTestId('panel-tab-terminal').click();
    await waitFor(async () => {
      const ids = await page.evaluate(() => [...(window.__coveTerminals?.keys() ?? [])]);
      if (termId && !ids.includes(termId)) return false;
      return (await terminalText(page, termId)).includes(marker);
    }, 20_000, 'the terminal scrollback (with the cat output) after reload');
  }, 60_000);

  const port = 8123;
  let previewHref = '';
  let workspaceId = '';
  await step('ports: a server started from the processes panel appears with its preview link (its own origin)', async () => {
    await page.getByTestId('panel-tab-processes').click();
    await page.getByTestId('process-command').fill(`python3 -m http.server ${port} --bind 127.0.0.1`);
    await page.getByTestId('process-run').click();
    await page.getByTestId('panel-tab-ports').click();
    const row = page.getByTestId(`port-${port}`);
    await row.waitFor({ timeout: 20_000 });
    workspaceId = (await (await fetch(`${base}/api/workspaces/${workspacePath.split('/').pop()}`)).json()).id;
    const want = `http://${port}-${workspaceId}.localhost:${new URL(base).port}/`;
    await waitFor(async () => ((await row.locator('a').getAttribute('href')) ?? '') === want, 10_000, `the preview link ${want}`);
    previewHref = want;
    await page.screenshot({ path: path.join(shotsDir, 'ports.png') });
  }, 40_000);

  await step('preview: the link opens the workspace server on its own origin', async () => {
    if (!previewHref) throw new Error('no preview link');
    const preview = await context.newPage();
    try {
      const r = await preview.goto(previewHref, { waitUntil: 'domcontentloaded' });
      const body = await preview.content();
      if (r.status() !== 200 || !/Directory listing/i.test(body)) throw new Error(`${previewHref} answered ${r.status()}: ${body.slice(0, 160)}`);
    } finally {
      await preview.close();
    }
  });

  await step('preview: a page a workspace serves cannot read cove, drive another workspace, or take over cove with a service worker', async () => {
    // A second workspace, running: the target.
    const other = await (await fetch(`${base}/api/workspaces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: `${name}-victim`, template: 'blank' }) })).json();
    createdNames.add(`${name}-victim`);
    await fetch(`${base}/api/workspaces/${other.id}/start`, { method: 'POST' });
    const attack = `<!doctype html><title>attack</title><pre id="out"></pre><script src="attack.js"></script>`;
    const script = `
      const cove = ${JSON.stringify(base)};
      const out = [];
      (async () => {
        try { const r = await fetch(cove + '/api/workspaces', { credentials: 'include' }); out.push('api-read:' + r.status); } catch { out.push('api-blocked'); }
        try { const r = await fetch('/api/workspaces'); out.push('same-origin-api:' + r.status); } catch { out.push('same-origin-api-blocked'); }
        await new Promise((done) => {
          const ws = new WebSocket(cove.replace('http', 'ws') + '/api/workspaces/${other.id}/ws');
          let heard = false;
          ws.onmessage = () => { heard = true; out.push('ws-open'); ws.close(); done(); };
          ws.onclose = () => { if (!heard) out.push('ws-refused'); done(); };
          setTimeout(done, 5000);
        });
        try { await fetch(cove + '/api/workspaces/${other.id}/stop', { method: 'POST', mode: 'no-cors', credentials: 'include' }); } catch {}
        try { const reg = await navigator.serviceWorker.register('sw.js', { scope: '/' }); out.push('sw:' + new URL(reg.scope).origin); } catch (e) { out.push('sw-refused'); }
        document.getElementById('out').textContent = JSON.stringify(out);
        document.title = 'done';
      })();`;
    for (const [file, content] of [['attack.html', attack], ['attack.js', script], ['sw.js', "self.addEventListener('fetch', (e) => e.respondWith(new Response('<h1>owned</h1>', { headers: { 'Content-Type': 'text/html' } })));"]]) {
      const r = await fetch(`${base}/api/workspaces/${workspaceId}/files/${file}`, { method: 'PUT', body: content });
      if (!r.ok) throw new Error(`PUT ${file}: ${r.status}`);
    }
    const results = {};
    const pathPreview = `${base}/w/${workspaceId}/proxy/${port}/attack.html`;
    for (const [kind, url] of [['host', `${previewHref}attack.html`], ['path', pathPreview]]) {
      const p = await context.newPage();
      try {
        await p.goto(url, { waitUntil: 'domcontentloaded' });
        await waitFor(async () => (await p.title()) === 'done', 20_000, `the ${kind} preview's attack to finish`);
        results[kind] = JSON.parse((await p.locator('#out').textContent()) ?? '[]');
        await p.screenshot({ path: path.join(shotsDir, `preview-attack-${kind}.png`) });
      } finally {
        await p.close();
      }
    }
    log(`       (host preview: ${results.host.join(', ')}; path preview: ${results.path.join(', ')})`);
    const problems = [];
    for (const kind of ['host', 'path']) {
      const r = results[kind];
      if (!r.includes('api-blocked')) problems.push(`${kind}: cove's API was readable (${r})`);
      if (!r.includes('ws-refused')) problems.push(`${kind}: the other workspace's socket opened (${r})`);
    }
    if (!results.host.includes('same-origin-api:404')) problems.push(`host: /api/ should be the app's own (404), got ${results.host}`);
    if (!results.host.includes(`sw:${new URL(previewHref).origin}`)) problems.push(`host: a service worker stays in its preview origin, got ${results.host}`);
    if (!results.path.includes('sw-refused')) problems.push(`path: a service worker was registered under cove's origin (${results.path})`);
    if (!results.path.includes('same-origin-api-blocked')) problems.push(`path: a sandboxed page read cove's API (${results.path})`);
    const state = (await (await fetch(`${base}/api/workspaces/${other.id}`)).json()).state;
    if (state !== 'running') problems.push(`the other workspace was stopped (state ${state})`);
    // cove's own pages are untouched by whatever the previews registered.
    const home = await context.newPage();
    try {
      await home.goto(base + '/', { waitUntil: 'domcontentloaded' });
      await home.getByTestId('new-project').first().waitFor({ timeout: 15_000 });
    } finally {
      await home.close();
    }
    await fetch(`${base}/api/workspaces/${other.id}`, { method: 'DELETE' });
    if (problems.length) throw new Error(problems.join('\n'));
  }, 90_000);

  await step('ports: stopping the server removes the port (port_closed)', async () => {
    await page.getByTestId('panel-tab-processes').click();
    const item = page.locator('[data-testid="process-list"] li', { hasText: `http.server ${port}` }).first();
    await item.getByTestId('process-stop').click();
    await waitFor(async () => (await item.getAttribute('data-running')) === 'false', 15_000, 'the server process to exit');
    await page.getByTestId('panel-tab-ports').click();
    await page.getByTestId(`port-${port}`).waitFor({ state: 'detached', timeout: 20_000 });
  }, 40_000);

  await step('a second terminal tab is independent of the first', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    await page.getByTestId('new-terminal').click();
    await waitFor(async () => (await page.locator('.terminal-host').count()) === 2, 5000, 'two terminal hosts');
    const second = await activeTerminalId(page);
    if (second === termId) throw new Error('the new terminal is not the active one');
    await waitFor(async () => (await terminalText(page, second)).trim().length > 0, 20_000, 'a prompt in the second terminal');
    await typeInTerminal(page, `echo second-$((40+2))\n`);
    await waitFor(async () => (await terminalText(page, second)).includes('second-42'), 10_000, 'output in the second terminal');
    if ((await terminalText(page, termId)).includes('second-42')) throw new Error('output leaked into the first terminal');
    await page.getByTestId(`terminal-tab-${termId}`).click();
  });

  const editorText = () => page.locator('[data-testid="editor"] .cm-content').textContent();
  await step('a file changed in the terminal reloads in the editor when it has no unsaved edits', async () => {
    await page.getByTestId('tree-item-main.py').click();
    await page.getByTestId('editor-tab-main.py').waitFor();
    await waitFor(async () => ((await editorText()) ?? '').includes(marker), 10_000, 'main.py content');
    await page.getByTestId('panel-tab-terminal').click();
    await typeInTerminal(page, "echo '# appended-from-terminal' >> main.py\n");
    await waitFor(async () => ((await editorText()) ?? '').includes('appended-from-terminal'), 15_000, 'the editor to reload main.py');
  });

  await step('saving over a change made on disk asks: overwrite / reload / keep editing', async () => {
    const tab = page.getByTestId('editor-tab-main.py');
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n# mine-in-editor');
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'true', 5000, 'dirty tab');
    await typeInTerminal(page, "echo '# theirs-on-disk' >> main.py\n");
    await page.locator('.editor-banner').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+S');
    await page.getByTestId('ask-dialog').waitFor({ timeout: 10_000 });
    await page.getByTestId('ask-overwrite').waitFor();
    await page.getByTestId('ask-reload').waitFor();
    await page.getByTestId('ask-keep').waitFor();
    await page.getByTestId('ask-overwrite').click();
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'false', 15_000, 'the overwrite to be saved');
    await typeInTerminal(page, 'grep -c -e mine-in-editor -e theirs-on-disk main.py\n');
    await waitFor(async () => /\n1\s*\n/.test(await terminalText(page, termId)), 10_000, 'grep to count exactly one of the two lines (mine)');
  });

  await step('offline and back: the status bar shows it, unsaved text survives, saving works again', async () => {
    const tab = page.getByTestId('editor-tab-main.py');
    await context.setOffline(true);
    await page.locator('[data-testid="connection-status"]:not([data-state="connected"])').waitFor({ timeout: 10_000 });
    const shown = await page.getByTestId('connection-status').textContent();
    if (!/offline|reconnecting/i.test(shown ?? '')) throw new Error(`status bar says "${shown}"`);
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n# typed-while-offline');
    await context.setOffline(false);
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    if (!((await editorText()) ?? '').includes('typed-while-offline')) throw new Error('the unsaved text is gone');
    if ((await tab.getAttribute('data-dirty')) !== 'true') throw new Error('the tab is no longer marked dirty');
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'false', 15_000, 'the save after reconnecting');
    // The terminal dropped its socket too and resumed with ?offset=: nothing twice.
    await page.getByTestId('panel-tab-terminal').click();
    await page.locator(`[data-testid="terminal-tab-${termId}"] .conn-dot.attached, .terminal-host[data-terminal-id="${termId}"]`).first().waitFor();
    await typeInTerminal(page, 'echo after-$((6*7))-offline\n');
    await waitFor(async () => (await terminalText(page, termId)).includes('after-42-offline'), 15_000, 'the terminal to work after reconnecting');
    const text = await terminalText(page, termId);
    const n = text.split('touch new.txt').length - 1;
    if (n !== 1) throw new Error(`"touch new.txt" appears ${n} times in the terminal (output replayed twice?)`);
  }, 60_000);

  await step('quick open (Ctrl+P) finds and opens main.py', async () => {
    await page.getByTestId('editor-tab-main.py').hover();
    await page.getByTestId('editor-tab-main.py').locator('.tab-close').click();
    await page.getByTestId('editor-tab-main.py').waitFor({ state: 'detached' });
    await page.locator('.editor-area').click({ position: { x: 200, y: 200 } });
    await page.keyboard.press('Control+P');
    await page.getByTestId('quick-open').waitFor();
    await page.keyboard.type('mainpy');
    await page.getByTestId('quick-open-item-main.py').waitFor();
    await page.keyboard.press('Enter');
    await page.getByTestId('editor-tab-main.py').waitFor();
    await waitFor(async () => ((await page.locator('[data-testid="editor"] .cm-content').textContent()) ?? '').includes(marker), 10_000, 'the saved edit in the reopened file');
  });

  // ---- What a new user trips over (issue 10) ----
  const api = (p, init) => fetch(base + p, init);
  const putFile = async (file, body) => {
    const r = await api(`/api/workspaces/${workspaceId}/files/${file}`, { method: 'PUT', body });
    if (!r.ok) throw new Error(`PUT ${file}: ${r.status} ${await r.text()}`);
  };
  page.on('dialog', (d) => (d.type() === 'beforeunload' ? d.accept() : d.dismiss()).catch(() => {}));

  await step('a reload after vim types nothing into the shell (replayed queries get no answers)', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    await page.getByTestId(`terminal-tab-${termId}`).click();
    await typeInTerminal(page, 'vim -u NONE -N\n');
    await waitFor(async () => {
      const t = await page.evaluate((id) => window.__coveTerminals?.get(id)?.buffer.active.type, termId);
      return t === 'alternate';
    }, 15_000, 'vim on the alternate screen');
    await page.waitForTimeout(500);
    await typeInTerminal(page, ':q\n');
    await waitFor(async () => (await page.evaluate((id) => window.__coveTerminals?.get(id)?.buffer.active.type, termId)) === 'normal', 10_000, 'vim to exit');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('panel-tab-terminal').click();
    await waitFor(async () => (await terminalText(page, termId)).includes('vim -u NONE'), 20_000, 'the replayed scrollback');
    await page.waitForTimeout(1500);
    await typeInTerminal(page, 'echo clean-$((6*7)); history 2 | head -1\n');
    await waitFor(async () => /\nclean-42\s*\n/.test(await terminalText(page, termId)), 15_000, 'clean-42 on a line of its own');
    const text = await terminalText(page, termId);
    const after = text.slice(text.lastIndexOf('vim -u NONE'));
    if (/rgb:|command not found|\d;\d+R|0c/.test(after.replace(/vim -u NONE -N/, ''))) throw new Error(`the shell received answers:\n${after.slice(-600)}`);
    await page.screenshot({ path: path.join(shotsDir, 'terminal-after-vim-reload.png') });
  }, 90_000);

  await step('unsaved edits: in-app links ask first, and a reload brings them back with the open tabs and the active terminal', async () => {
    const second = [...(await page.evaluate(() => [...(window.__coveTerminals?.keys() ?? [])]))].find((id) => id !== termId);
    if (second) await page.getByTestId(`terminal-tab-${second}`).click();
    const activeBefore = await activeTerminalId(page);
    await page.getByTestId('tree-item-main.py').click();
    const tab = page.getByTestId('editor-tab-main.py');
    await tab.waitFor();
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n# unsaved-survives');
    await waitFor(async () => (await tab.getAttribute('data-dirty')) === 'true', 5000, 'a dirty tab');
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Workspaces' }).click();
    await page.getByTestId('ask-dialog').waitFor();
    await page.screenshot({ path: path.join(shotsDir, 'unsaved-leave.png') });
    await page.getByTestId('ask-stay').click();
    if (!/\/w\//.test(page.url())) throw new Error('"Stay" left the IDE');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.getByTestId('editor-tab-main.py').waitFor({ timeout: 20_000 });
    await waitFor(async () => (await page.getByTestId('editor-tab-main.py').getAttribute('data-dirty')) === 'true', 15_000, 'the restored tab to be dirty');
    await waitFor(async () => ((await editorText()) ?? '').includes('unsaved-survives'), 15_000, 'the unsaved text after a reload');
    await page.getByTestId('panel-tab-terminal').click();
    await waitFor(async () => (await activeTerminalId(page)) === activeBefore, 10_000, `the active terminal ${activeBefore} after the reload`);
    await page.screenshot({ path: path.join(shotsDir, 'unsaved-restored.png') });
    // Leaving anyway keeps them too; coming back shows them again.
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Workspaces' }).click();
    await page.getByTestId('ask-leave').click();
    await page.getByTestId('new-project').first().waitFor();
    await page.goto(base + workspacePath, { waitUntil: 'domcontentloaded' });
    await waitFor(async () => ((await editorText()) ?? '').includes('unsaved-survives'), 20_000, 'the unsaved text after leaving');
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await page.getByTestId('editor-tab-main.py').getAttribute('data-dirty')) === 'false', 15_000, 'saved');
  }, 90_000);

  await step('preview pane: an app with root-absolute URLs renders styled and fetches its own data', async () => {
    await putFile('site/index.html', '<!doctype html><html><head><link rel="stylesheet" href="/style.css"></head><body><h1 id="h">Styled</h1><p id="d">loading</p><script src="/app.js"></script></body></html>');
    await putFile('site/style.css', 'h1 { color: rgb(200, 30, 90); }');
    await putFile('site/app.js', "fetch('/data.json').then((r) => r.json()).then((d) => { document.getElementById('d').textContent = d.msg; });");
    await putFile('site/data.json', '{"msg": "own-data-ok"}');
    await page.getByTestId('panel-tab-processes').click();
    await page.getByTestId('process-command').fill('python3 -m http.server 8000 --bind 127.0.0.1 --directory site');
    await page.getByTestId('process-run').click();
    // Buffered output: the panel says it runs, and which port it opened.
    await page.getByTestId('process-no-output').waitFor({ timeout: 10_000 });
    await page.getByTestId('process-port-8000').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(shotsDir, 'process-no-output.png') });
    await page.getByTestId('panel-tab-ports').click();
    const row = page.getByTestId('port-8000');
    await row.waitFor();
    if (!/python3/.test((await row.textContent()) ?? '')) throw new Error(`the Process column is empty: ${await row.textContent()}`);
    await page.getByTestId('open-preview').click();
    await page.getByTestId('preview-pane').waitFor();
    const frame = page.frameLocator('[data-testid="preview-frame"]');
    await waitFor(async () => (await frame.locator('#d').textContent({ timeout: 2000 })) === 'own-data-ok', 20_000, 'the app to fetch /data.json');
    const color = await frame.locator('#h').evaluate((el) => getComputedStyle(el).color);
    if (color !== 'rgb(200, 30, 90)') throw new Error(`/style.css did not apply: color ${color}`);
    await page.screenshot({ path: path.join(shotsDir, 'preview-pane.png') });
    await page.getByTestId('preview-reload').click();
    await waitFor(async () => (await frame.locator('#d').textContent({ timeout: 2000 })) === 'own-data-ok', 20_000, 'the reloaded preview');
    await page.getByTestId('open-preview').click();
    await page.getByTestId('preview-pane').waitFor({ state: 'detached' });
    // A port nobody listens on: a page a person can read, not raw JSON.
    const p2 = await context.newPage();
    try {
      const url = `http://8999-${workspaceId}.localhost:${new URL(base).port}/`;
      const r = await p2.goto(url, { waitUntil: 'domcontentloaded' });
      const body = (await p2.locator('body').textContent()) ?? '';
      if (r.status() !== 502 || !/Nothing is listening on port 8999/.test(body)) throw new Error(`${url}: ${r.status()} ${body.slice(0, 200)}`);
      await p2.screenshot({ path: path.join(shotsDir, 'preview-port-closed.png') });
    } finally {
      await p2.close();
    }
  }, 90_000);

  await step('binary files offer a download and a hex view; same-named tabs show their folder', async () => {
    const bytes = new Uint8Array(300);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    await putFile('data/blob.bin', bytes);
    await putFile('a/index.js', 'export const a = 1;\n');
    await putFile('b/index.js', 'export const b = 2;\n');
    const openInTree = async (dir, file) => {
      await page.getByTestId(`tree-item-${dir}`).waitFor({ timeout: 10_000 });
      if (!(await page.getByTestId(`tree-item-${dir}/${file}`).isVisible())) await page.getByTestId(`tree-item-${dir}`).click();
      await page.getByTestId(`tree-item-${dir}/${file}`).click();
      await page.getByTestId(`editor-tab-${dir}/${file}`).waitFor();
    };
    await openInTree('data', 'blob.bin');
    await page.getByTestId('not-text').waitFor();
    const href = await page.getByTestId('download-file').getAttribute('href');
    const got = new Uint8Array(await (await api(href)).arrayBuffer());
    if (got.length !== 300 || got[1] !== 7) throw new Error(`the download is not the file (${got.length} bytes)`);
    await page.getByTestId('show-hex').click();
    await waitFor(async () => /00000000\s+00 07 0e 15/.test((await page.getByTestId('hex-view').textContent()) ?? ''), 10_000, 'the hex view');
    await page.screenshot({ path: path.join(shotsDir, 'binary-file.png') });
    await openInTree('a', 'index.js');
    await openInTree('b', 'index.js');
    for (const [f, dir] of [['a/index.js', 'a'], ['b/index.js', 'b']]) {
      const text = (await page.getByTestId(`editor-tab-${f}`).textContent()) ?? '';
      if (!text.includes(dir)) throw new Error(`the tab of ${f} does not show its folder: "${text}"`);
    }
    for (const f of ['data/blob.bin', 'a/index.js', 'b/index.js']) {
      await page.getByTestId(`editor-tab-${f}`).hover();
      await page.getByTestId(`editor-tab-${f}`).locator('.tab-close').click();
    }
  }, 60_000);

  await step('terminal tabs name the program in the foreground (vim while vim runs), and a reload brings vim back as it was', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    await page.getByTestId(`terminal-tab-${termId}`).click();
    await typeInTerminal(page, 'vim -u NONE -N\n');
    await waitFor(async () => /vim/.test((await page.getByTestId(`terminal-tab-${termId}`).textContent()) ?? ''), 15_000, 'the tab to read vim');
    await page.screenshot({ path: path.join(shotsDir, 'terminal-tab-vim.png') });
    // A reload while vim runs: the screen comes back as it was (a snapshot, not a replay of
    // bytes that may start mid-drawing), on the alternate screen, and vim still takes keys.
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('panel-tab-terminal').click();
    await page.getByTestId(`terminal-tab-${termId}`).click();
    await waitFor(async () => {
      const t = await page.evaluate((id) => window.__coveTerminals?.get(id)?.buffer.active.type, termId);
      // Vim's empty buffer: lines of "~" (its intro text goes with the redraw for the page's size).
      return t === 'alternate' && /^~\s*$/m.test(await terminalText(page, termId));
    }, 20_000, 'vim back on the alternate screen after the reload');
    await page.screenshot({ path: path.join(shotsDir, 'terminal-vim-after-reload.png') });
    await typeInTerminal(page, ':q\n');
    await waitFor(async () => /bash/.test((await page.getByTestId(`terminal-tab-${termId}`).textContent()) ?? ''), 15_000, 'the tab to read bash again');
  }, 90_000);

  await step('a stop from elsewhere is shown at once and not undone; the home page follows live', async () => {
    const home = await context.newPage();
    try {
      await home.goto(base + '/', { waitUntil: 'domcontentloaded' });
      const row = home.getByTestId(`workspace-${name}`);
      await row.waitFor();
      // Stopped by a script (no click on this page): both pages learn it from the server.
      const r = await api(`/api/workspaces/${workspaceId}/stop`, { method: 'POST' });
      if (!r.ok) throw new Error(`stop: ${r.status}`);
      await page.getByTestId('workspace-stopped').waitFor({ timeout: 10_000 });
      const banner = (await page.getByTestId('workspace-stopped').textContent()) ?? '';
      if (!/stopped by you/i.test(banner)) throw new Error(`the banner says: ${banner}`);
      await waitFor(async () => (await row.getByTestId('workspace-state').textContent())?.trim() === 'stopped', 10_000, 'the home page to show stopped');
      await page.waitForTimeout(3000);
      const state = (await (await api(`/api/workspaces/${workspaceId}`)).json()).state;
      if (state !== 'stopped') throw new Error(`the open IDE started it again (state ${state})`);
      if ((await page.getByTestId('status-bar').getAttribute('class'))?.includes('degraded')) throw new Error('a stopped workspace shows a red status bar');
      await page.screenshot({ path: path.join(shotsDir, 'ide-stopped.png') });
      await home.screenshot({ path: path.join(shotsDir, 'home-live-stopped.png') });
      await page.getByTestId('start-workspace').click();
      await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
      await page.getByTestId('workspace-stopped').waitFor({ state: 'detached' });
      await waitFor(async () => (await row.getByTestId('workspace-state').textContent())?.trim() === 'running', 10_000, 'the home page to show running');
    } finally {
      await home.close();
    }
  }, 120_000);

  await step('a deleted workspace\'s open IDE says so at once', async () => {
    const doomed = await (await api('/api/workspaces', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: `${name}-doomed`, template: 'blank' }) })).json();
    createdNames.add(`${name}-doomed`);
    const p2 = await context.newPage();
    try {
      await p2.goto(`${base}/w/${doomed.id}`, { waitUntil: 'domcontentloaded' });
      await p2.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
      const t0 = Date.now();
      await api(`/api/workspaces/${doomed.id}`, { method: 'DELETE' });
      await p2.getByTestId('workspace-deleted').waitFor({ timeout: 10_000 });
      log(`       (the IDE showed the deletion after ${Date.now() - t0} ms)`);
      await p2.screenshot({ path: path.join(shotsDir, 'ide-deleted.png') });
    } finally {
      await p2.close();
    }
  }, 90_000);

  await step('the theme follows a choice beside the OS setting', async () => {
    const toggle = page.getByTestId('theme-toggle');
    await toggle.click();
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'light') throw new Error('no light theme');
    await toggle.click();
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark') throw new Error('no dark theme');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: path.join(shotsDir, 'ide-dark-chosen.png') });
    await page.reload({ waitUntil: 'domcontentloaded' });
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark') throw new Error('the choice did not last');
    await page.getByTestId('theme-toggle').click();
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== undefined) throw new Error('back to the system setting failed');
    log(`       (dark background: ${bg})`);
  });

  await step('long names and a phone-width screen keep every control on screen', async () => {
    const long = `a-very-long-project-name-${'x'.repeat(30)}`.slice(0, 64);
    const w = await (await api('/api/workspaces', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: long }) })).json();
    createdNames.add(long);
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    const check = async (width, labels) => {
      const row = page.getByTestId(`workspace-${long}`);
      await row.waitFor();
      for (const label of labels) {
        const box = await row.getByRole('button', { name: label }).boundingBox();
        if (!box || box.x + box.width > width + 1) throw new Error(`"${label}" is off-screen at ${width}px (${JSON.stringify(box)})`);
      }
      const icon = await row.getByRole('button', { name: `Delete ${long}` }).locator('svg').boundingBox();
      if (!icon || icon.width < 10) throw new Error(`the delete button is cut at ${width}px`);
    };
    await check(VIEWPORT.width, [`Open ${long}`, `Start ${long}`, `Delete ${long}`]);
    await page.screenshot({ path: path.join(shotsDir, 'home-long-name.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    await check(390, [`Start ${long}`, `Delete ${long}`]);
    await page.screenshot({ path: path.join(shotsDir, 'home-phone.png') });
    await page.getByTestId(`workspace-${long}`).getByRole('button', { name: `Delete ${long}` }).click();
    await page.getByTestId('ask-dialog').waitFor();
    const dialog = await page.getByTestId('ask-dialog').boundingBox();
    if (!dialog || dialog.x < 0 || dialog.x + dialog.width > 391) throw new Error(`the delete dialog overflows: ${JSON.stringify(dialog)}`);
    await page.screenshot({ path: path.join(shotsDir, 'delete-dialog-phone.png') });
    await page.getByTestId('ask-cancel').click().catch(() => page.keyboard.press('Escape'));
    await page.goto(base + workspacePath, { waitUntil: 'domcontentloaded' });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    for (const id of ['editor', 'status-bar']) {
      const box = await page.getByTestId(id).first().boundingBox();
      if (!box || box.width < 200 || box.x + box.width > 391) throw new Error(`${id} does not fit a phone: ${JSON.stringify(box)}`);
    }
    await page.screenshot({ path: path.join(shotsDir, 'ide-phone.png') });
    await page.setViewportSize(VIEWPORT);
    await api(`/api/workspaces/${w.id}`, { method: 'DELETE' });
  }, 60_000);

  await step('screenshot of the IDE', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, 'ide.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, 'ide-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('IDE is usable at 1024x768 (tablet)', async () => {
    await page.setViewportSize({ width: 1024, height: 768 });
    await page.waitForTimeout(300);
    for (const id of ['file-tree', 'editor', 'terminal-panel', 'status-bar']) {
      const box = await page.getByTestId(id).first().boundingBox();
      if (!box || box.width < 100 || box.height < 20) throw new Error(`${id} is not laid out (${JSON.stringify(box)})`);
      if (box.x + box.width > 1024 + 1) throw new Error(`${id} overflows the viewport`);
    }
    await page.screenshot({ path: path.join(shotsDir, 'ide-1024.png') });
    await page.setViewportSize(VIEWPORT);
  });

  await step('home page lists the new workspace; "keep running" is a toggle the server keeps (screenshot)', async () => {
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    const row = page.getByTestId(`workspace-${name}`);
    await row.waitFor();
    const keep = row.getByTestId('keep-running');
    if ((await keep.getAttribute('aria-pressed')) !== 'false') throw new Error('a new workspace is not kept running');
    await keep.click();
    await waitFor(async () => (await keep.getAttribute('aria-pressed')) === 'true', 10_000, 'the toggle to show "kept running"');
    const kept = (await (await fetch(`${base}/api/workspaces/${encodeURIComponent(name)}`)).json()).keepRunning;
    if (kept !== true) throw new Error(`the server did not keep it: keepRunning=${kept}`);
    await page.waitForTimeout(200);
    await page.screenshot({ path: path.join(shotsDir, 'home.png') });
    await keep.click();
    await waitFor(async () => (await keep.getAttribute('aria-pressed')) === 'false', 10_000, 'the toggle to turn off again');
  });

  await step('creating a second project with the same name shows the server\'s error message', async () => {
    await page.getByTestId('new-project').first().click();
    await page.getByTestId('project-name').fill(name);
    await page.getByTestId('create-project').click();
    const err = page.getByTestId('form-error');
    await err.waitFor({ timeout: 15_000 });
    const text = (await err.textContent()) ?? '';
    if (!text.trim() || /^\d{3}\b/.test(text.trim())) throw new Error(`unhelpful error: "${text}"`);
    log(`       (the dialog says: ${text.trim()})`);
    // Asking for more than the server allows: its message, in the dialog; nothing created.
    await page.getByTestId('project-name').fill(`${name}-greedy`);
    await page.getByTestId('project-limits').locator('summary').click();
    await page.getByTestId('limit-memory').fill('999999');
    await page.getByTestId('create-project').click();
    await waitFor(async () => /memoryMib must be between/.test((await err.textContent()) ?? ''), 15_000, 'the limit error');
    log(`       (the dialog says: ${((await err.textContent()) ?? '').trim()})`);
    await page.keyboard.press('Escape');
    await page.getByTestId('new-project-dialog').waitFor({ state: 'detached' });
  });

  await step('stop from the home page, then open: the IDE starts the workspace again', async () => {
    const row = page.getByTestId(`workspace-${name}`);
    await row.getByRole('button', { name: `Stop ${name}` }).click();
    await waitFor(async () => (await row.getByTestId('workspace-state').textContent())?.trim().toLowerCase() === 'stopped', 30_000, 'the state "stopped"');
    await row.getByRole('button', { name: `Open ${name}` }).click();
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await page.getByTestId('tree-item-main.py').waitFor({ timeout: 30_000 });
    const id = await activeTerminalId(page);
    await waitFor(async () => (await terminalText(page, id)).trim().length > 0, 20_000, 'a prompt in a fresh terminal');
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    await page.getByTestId(`workspace-${name}`).waitFor();
  }, 120_000);

  await step('hibernated: the home page says so, and opening it brings the files back', async () => {
    const id = (await (await fetch(`${base}/api/workspaces/${encodeURIComponent(name)}`)).json()).id;
    const r = await fetch(`${base}/api/workspaces/${id}/hibernate`, { method: 'POST' });
    const view = await r.json();
    if (r.status !== 200 || view.state !== 'hibernated') throw new Error(`hibernate answered ${r.status}: ${JSON.stringify(view)}`);
    const row = page.getByTestId(`workspace-${name}`);
    await waitFor(async () => (await row.getByTestId('workspace-state').textContent())?.trim().toLowerCase() === 'hibernated', 15_000, 'the state "hibernated"');
    await page.screenshot({ path: path.join(shotsDir, 'home-hibernated.png') });
    // The IDE opens in this page (no reload): an observer notes whether the restore's
    // progress banner was ever shown, however briefly.
    // The restore's progress reaches the browser as the workspace's events (the banner is
    // drawn from them); a small project restores in milliseconds, so the banner itself may
    // never be painted, and is only reported.
    await page.evaluate(() => {
      window.__restoringSeen = '';
      window.__restoreEvents = [];
      const feed = new EventSource('/api/events');
      feed.onmessage = (e) => window.__restoreEvents.push(e.data);
      for (const type of ['workspace', 'workspace_changed', 'changed']) {
        feed.addEventListener(type, (e) => window.__restoreEvents.push(e.data));
      }
      window.__restoreFeed = feed;
      new MutationObserver(() => {
        const banner = document.querySelector('[data-testid="workspace-restoring"]');
        if (banner && !window.__restoringSeen) window.__restoringSeen = banner.textContent ?? 'shown';
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
      // Listening before the start, so the first step is not missed.
      return new Promise((resolve) => {
        feed.addEventListener('open', resolve, { once: true });
        setTimeout(resolve, 10_000);
      });
    });
    await row.getByRole('button', { name: `Open ${name}` }).click();
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await page.getByTestId('tree-item-main.py').waitFor({ timeout: 30_000 });
    const { banner, events } = await page.evaluate(() => {
      window.__restoreFeed.close();
      return { banner: window.__restoringSeen, events: window.__restoreEvents };
    });
    const progress = events.find((e) => /restoring its files/.test(e));
    if (!progress) throw new Error(`no restore progress reached the browser: ${JSON.stringify(events).slice(0, 600)}`);
    log(`  info the restore's progress as the browser got it: ${progress.slice(0, 200)}`);
    log(`  info the restore banner was ${banner ? `shown: ${banner.trim()}` : 'not painted (the restore was too quick)'}`);
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    await page.getByTestId(`workspace-${name}`).waitFor();
  }, 120_000);

  // Publishing a workspace as a template (the caller is the administrator with `--auth none`),
  // then a new project from it: its files, its description in the dialog, its init command run
  // once as the process `init`.
  const templateName = 'e2e-team';
  const templateDescription = `Python starter of the e2e team (${name})`;
  const fromTemplate = `${name}-from-template`;
  let fromTemplateId = '';
  await step('publish the workspace as a template from the home page; a project made from it has its files and runs its init command', async () => {
    cleanups.push(() => fetch(`${base}/api/templates/${templateName}`, { method: 'DELETE' }));
    const row = page.getByTestId(`workspace-${name}`);
    await row.getByRole('button', { name: `Publish ${name} as a template` }).click();
    const dialog = page.getByTestId('publish-template-dialog');
    await dialog.waitFor({ state: 'visible' });
    const prefilled = await page.getByTestId('publish-name').inputValue();
    if (prefilled !== name) throw new Error(`the name is prefilled with "${prefilled}", not "${name}"`);
    await page.getByTestId('publish-name').fill(templateName);
    await page.getByTestId('publish-description').fill(templateDescription);
    await page.getByTestId('publish-icon').fill('🧪');
    await page.getByTestId('publish-run-command').fill('python3 main.py');
    await page.getByTestId('publish-init-command').fill('printf init-ran > init.out');
    await page.screenshot({ path: path.join(shotsDir, 'publish-template.png') });
    await page.getByTestId('publish-template-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 60_000 });
    await page.locator('.toast', { hasText: `Published template ${templateName}` }).waitFor({ timeout: 10_000 });
    const published = ((await (await fetch(`${base}/api/templates`)).json()) ?? []).find((t) => t.name === templateName);
    if (!published || published.initCommand !== 'printf init-ran > init.out' || published.icon !== '🧪' || !(published.files > 0)) {
      throw new Error(`the server lists: ${JSON.stringify(published)}`);
    }

    await page.getByTestId('new-project').first().click();
    await page.getByTestId('new-project-dialog').waitFor({ state: 'visible' });
    const card = page.getByTestId(`template-${templateName}`);
    await card.waitFor({ timeout: 10_000 });
    const description = card.getByTestId('template-description');
    if (!(await description.isVisible()) || (await description.textContent())?.trim() !== templateDescription) {
      throw new Error(`the card shows: "${(await card.textContent())?.trim()}"`);
    }
    const by = ((await card.getByTestId('template-published-by').textContent()) ?? '').trim();
    if (by !== `by ${published.publishedBy}`) throw new Error(`the card says "${by}", the server says publishedBy=${published.publishedBy}`);
    // Its icon (drawn as letters where the browser has no emoji font, as here without one).
    if ((await card.getByTestId('template-glyph').getAttribute('data-icon')) !== '🧪') throw new Error('the card does not carry the icon');
    // The built-in ones keep their descriptions too, and say nothing of who published them.
    for (const t of ['blank', 'python', 'node', 'static-web']) {
      const d = ((await page.getByTestId(`template-${t}`).getByTestId('template-description').textContent()) ?? '').trim();
      if (!d || d === 'No description') throw new Error(`the ${t} template shows no description`);
      if ((await page.getByTestId(`template-${t}`).getByTestId('template-published-by').count()) !== 0) throw new Error(`the ${t} template names a publisher`);
    }
    await card.click();
    await page.getByTestId('project-name').fill(fromTemplate);
    createdNames.add(fromTemplate);
    await page.getByTestId('template-init-hint').waitFor();
    await page.screenshot({ path: path.join(shotsDir, 'new-project-templates.png') });
    await page.getByTestId('create-project').click();
    await page.waitForURL(/\/w\/[^/]+$/, { timeout: 60_000 });
    fromTemplateId = new URL(page.url()).pathname.split('/').pop();
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await page.getByTestId('tree-item-main.py').waitFor({ timeout: 30_000 });
    await page.getByTestId('panel-tab-processes').click();
    await page.getByTestId('process-init').waitFor({ timeout: 30_000 });
    await page.getByTestId('process-init').getByTestId('process-init-tag').waitFor();
    // It ran: what it wrote is there.
    await page.getByTestId('tree-item-init.out').waitFor({ timeout: 30_000 });
    await page.getByTestId('process-init').locator('.process-select').click();
    await page.screenshot({ path: path.join(shotsDir, 'template-init-process.png') });
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    await page.getByTestId(`workspace-${name}`).waitFor();
  }, 150_000);

  await step('the workspace made from the template and the template are deleted', async () => {
    if (fromTemplateId) {
      const r = await fetch(`${base}/api/workspaces/${fromTemplateId}`, { method: 'DELETE' });
      if (!r.ok) throw new Error(`DELETE workspace answered ${r.status}`);
    }
    const r = await fetch(`${base}/api/templates/${templateName}`, { method: 'DELETE' });
    if (r.status !== 204) throw new Error(`DELETE /api/templates/${templateName} answered ${r.status}: ${await r.text()}`);
    const left = ((await (await fetch(`${base}/api/templates`)).json()) ?? []).map((t) => t.name);
    if (left.includes(templateName)) throw new Error(`still listed: ${left.join(', ')}`);
    await page.getByTestId(`workspace-${fromTemplate}`).waitFor({ state: 'detached', timeout: 15_000 });
  }, 30_000);

  await step('delete the workspace from the home page (with confirmation)', async () => {
    await page.getByTestId(`workspace-${name}`).getByRole('button', { name: `Delete ${name}` }).click();
    await page.getByTestId('ask-dialog').waitFor();
    await page.getByTestId('ask-ok').click();
    await page.getByTestId(`workspace-${name}`).waitFor({ state: 'detached', timeout: 30_000 });
  }, 45_000);

  if (runCommandPrefill) log(`  info the run command input was prefilled with: ${runCommandPrefill}`);
  if (workspacePath) log(`  info workspace URL: ${workspacePath}`);
  const relevant = consoleErrors.filter((e) => !/favicon/.test(e));
  if (relevant.length) log(`  info browser console errors:\n    ${relevant.slice(0, 10).join('\n    ')}`);
  await step("cove's own pages run under their Content-Security-Policy without violations", async () => {
    const violations = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
    if (violations.length) throw new Error(violations.slice(0, 5).join('\n'));
  });
}

try {
  await main();
} catch (e) {
  scenario.fail('setup', e);
}
if (scenario.failed && server) log(`--- server log (tail) ---\n${server.logTail(3000)}\n---`);
await cleanup();
finish(scenario.failed ? 1 : 0);
