// End-to-end test of the IDE's daily tools in a real browser against the real server, with
// real language servers (pyright and typescript-language-server, installed by .ci/run) and
// ripgrep in the workspace: completion, diagnostics and the Problems panel, go to definition
// across files, rename, servers resting while the page is hidden, a crashing or hostile
// server, the command palette, settings (Vim, fonts, format on save), the split editor,
// Markdown preview, and axe-core in both themes; search, Git and uploads are in
// e2e/ide-files.mjs. Prints "N passed, N failed" last (failures named again just before) and
// exits non-zero on failure. Screenshots: e2e/screenshots/ide-*.png.
//
//   COVE_BIN=../target/debug/cove node e2e/ide.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { Scenario, runCleanups, terminalText, typeInTerminal, waitFor, withTimeout } from './harness.mjs';
import { folderUpload, searchAndReplace, sourceControl } from './ide-files.mjs';
import { startServer } from './server.mjs';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shotsDir = path.join(webDir, 'e2e', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 300_000);

const cleanups = [];
const log = (...a) => console.log(...a);
const scenario = new Scenario(log);
const step = (name, fn, ms) => scenario.step(name, fn, ms);
/** Our own `cove serve`, for its log when something failed. */
let server = null;

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
  server = await startServer({ bin, args, cwd: webDir, dirPrefix: 'cove-e2e-ide-', log });
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

  // What the steps in e2e/ide-files.mjs use of this run.
  const ctx = { step, page, context, call, id, base, put, read, content, editorText, openFile, cleanups, shotsDir };

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
    const offered = async () => (await popup.locator('li').allTextContents().catch(() => [])).some((t) => /^path\b/.test(t));
    // A server still analysing can answer the first request with less; a person then asks
    // again (Ctrl+Space), and so does this test, every few seconds.
    let asked = Date.now();
    await waitFor(async () => {
      if (await offered()) return true;
      if (Date.now() - asked > 3000) {
        asked = Date.now();
        await page.keyboard.press('Control+Space');
      }
      return false;
    }, 30_000, 'path among the completions');
    await page.screenshot({ path: path.join(shotsDir, 'ide-completion.png') });
    await page.keyboard.press('Escape');
  }, 120_000);

  await step('a type error shows inline and in the Problems panel', async () => {
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Enter');
    await page.keyboard.insertText('count: int = "three"');
    // Line 2 (`os.pa`) is an error already: wait for the one on line 3.
    await page.locator('[data-testid="editor"] .cm-line').nth(2).locator('.cm-lintRange-error').waitFor({ timeout: 45_000 });
    await page.getByTestId('panel-tab-problems').click();
    const problem = page.getByTestId('problem').filter({ hasText: 'check.py:3' });
    await problem.first().waitFor({ timeout: 10_000 });
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
    // On the name of `def greet` (a newly opened file would show Ln 1, Col 1).
    await waitFor(async () => /Ln 1, Col 5\b/.test((await page.getByTestId('status-cursor').textContent()) ?? ''), 5000, 'the cursor on the definition').catch(async (e) => {
      throw new Error(`${e.message}; the status bar says ${await page.getByTestId('status-cursor').textContent()}`);
    });
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

  await step('go to definition into the standard library shows its file, read-only', async () => {
    await openFile('check.py');
    await content.click();
    await page.keyboard.press('Control+Home');
    for (let i = 0; i < 8; i++) await page.keyboard.press('ArrowRight');
    // On `os` of `import os`: its definition is Python's own os.py (or a stub of pyright's),
    // outside the workspace.
    const outside = page.getByTestId('outside-file');
    await waitFor(async () => {
      await page.keyboard.press('F12');
      return outside.isVisible();
    }, 30_000, 'the outside file shown', 1500);
    const title = (await outside.locator('header strong').textContent()) ?? '';
    if (!/^\/.*\/(os\.py|os\/__init__\.pyi)$/.test(title)) throw new Error(`not the os module's file: ${title}`);
    const text = async () => (await outside.locator('.cm-content').textContent()) ?? '';
    if (!/import sys/.test(await text())) throw new Error(`the file's text is not shown: ${(await text()).slice(0, 200)}`);
    await page.screenshot({ path: path.join(shotsDir, 'ide-outside-file.png') });
    await page.keyboard.type('zz');
    if ((await text()).includes('zz')) throw new Error('the outside file took typing');
    await page.keyboard.press('Escape');
    await outside.waitFor({ state: 'detached' });
  }, 60_000);

  await step('a page hidden for a while stops its language servers; shown again, they come back', async () => {
    await page.getByTestId('panel-tab-terminal').click();
    // The servers' processes in the workspace, counted once they settle (at most 10 s).
    const count = async (label, want) => {
      const settle = want === 0 ? 'pgrep -f langserver >/dev/null || break' : 'pgrep -f langserver >/dev/null && break';
      await typeInTerminal(page, `for i in $(seq 50); do ${settle}; sleep 0.2; done; echo "${label}=$(pgrep -c -f langserver)"\n`);
      const seen = await waitFor(async () => (await terminalText(page)).match(new RegExp(`^${label}=(\\d+)`, 'm')), 20_000, `${label} in the terminal`);
      return Number(seen[1]);
    };
    if ((await count('before', 1)) < 1) throw new Error('no language server runs before the page is hidden');
    // The page hidden, as when the person switches to another browser tab (a short wait here).
    await page.evaluate(() => {
      window.__coveLsp.restAfterMs = 200;
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(async () => (await page.getByTestId('lsp-status').getAttribute('data-state')) === 'resting', 10_000, 'the status bar to say the server rests');
    if ((await count('hidden', 0)) !== 0) throw new Error('the language server still runs while the page is hidden');
    await page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(async () => (await page.getByTestId('lsp-status').getAttribute('data-state')) === 'ready', 60_000, 'the server ready again');
    if ((await count('shown', 1)) < 1) throw new Error('no language server runs once the page is shown again');
  }, 90_000);

  await searchAndReplace(ctx);

  await step('a language server that crashes leaves the editor working, and says so', async () => {
    await put('.cove/languages.json', JSON.stringify({ go: ['sh', '-c', 'echo go server exploded >&2; exit 7'] }));
    await put('main.go', 'package main\n');
    await page.getByTestId('sidebar-files').click();
    await page.getByTestId('tree-item-main.go').waitFor().catch(async (e) => {
      await page.screenshot({ path: path.join(shotsDir, 'ide-debug.png') });
      throw e;
    });
    await openFile('main.go');
    // A server the workspace names runs only once the person allows that command.
    await page.getByRole('button', { name: 'Run it' }).click();
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

  await step("hover documentation with raw HTML is shown without its active parts", async () => {
    await page.evaluate(() => {
      window.__pwned = false;
    });
    // A language server of the workspace's own that answers every hover with hostile Markdown:
    // what a docstring could carry through a server that passes HTML on.
    const server = [
      'import json, sys',
      'def send(m):',
      '    b = json.dumps(m).encode()',
      '    sys.stdout.buffer.write(b"Content-Length: %d\\r\\n\\r\\n" % len(b) + b); sys.stdout.buffer.flush()',
      'while True:',
      '    n = None',
      '    while True:',
      '        line = sys.stdin.buffer.readline()',
      '        if not line: sys.exit(0)',
      '        if line.strip() == b"": break',
      '        if line.lower().startswith(b"content-length:"): n = int(line.split(b":")[1])',
      '    m = json.loads(sys.stdin.buffer.read(n))',
      '    if "id" not in m: continue',
      '    if m.get("method") == "initialize": send({"jsonrpc": "2.0", "id": m["id"], "result": {"capabilities": {"hoverProvider": True, "textDocumentSync": 1}}})',
      '    elif m.get("method") == "textDocument/hover": send({"jsonrpc": "2.0", "id": m["id"], "result": {"contents": {"kind": "markdown", "value": "<img src=x onerror=\\"window.__pwned=true\\"><script>window.__pwned=true</script><a href=\\"javascript:window.__pwned=true\\">link</a> <b>bold</b>"}}})',
      '    else: send({"jsonrpc": "2.0", "id": m["id"], "result": None})',
    ].join('\n');
    await put('.cove/hostile_lsp.py', server + '\n');
    await put('.cove/languages.json', JSON.stringify({ go: ['sh', '-c', 'echo go server exploded >&2; exit 7'], rust: ['python3', '.cove/hostile_lsp.py'] }));
    await put('trap.rs', 'fn trap() {}\n');
    await page.getByTestId('tree-item-trap.rs').waitFor();
    await openFile('trap.rs');
    const dialog = page.getByRole('dialog').filter({ hasText: 'hostile_lsp.py' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Run it' }).click();
    await waitFor(async () => (await page.getByTestId('lsp-status').getAttribute('data-state')) === 'ready', 30_000, 'the hostile server ready');
    const word = page.locator('.cm-line').first();
    await waitFor(async () => {
      await page.mouse.move(0, 0);
      await word.hover({ position: { x: 30, y: 5 } });
      return page.locator('.cm-tooltip-hover').waitFor({ timeout: 3000 }).then(() => true, () => false);
    }, 30_000, 'a hover tooltip', 200);
    const tooltip = page.locator('.cm-tooltip-hover').first();
    await waitFor(async () => /bold/.test((await tooltip.textContent()) ?? ''), 10_000, 'the documentation in the tooltip');
    const active = await tooltip.locator('img, script, [onerror], a[href^="javascript"]').count();
    if (active > 0) throw new Error(`active HTML reached the page: ${await tooltip.innerHTML()}`);
    if ((await tooltip.locator('b').count()) !== 1) throw new Error(`harmless markup is kept: ${await tooltip.innerHTML()}`);
    if (await page.evaluate(() => window.__pwned)) throw new Error('the documentation ran code');
    await page.screenshot({ path: path.join(shotsDir, 'ide-hover.png') });
  }, 60_000);

  await step('the command palette lists actions with their shortcuts and runs them', async () => {
    await page.keyboard.press('Control+Shift+P');
    const palette = page.getByTestId('command-palette');
    await palette.waitFor();
    await palette.locator('input').fill('go to file');
    const item = page.getByTestId('command-quick-open');
    if (!/Ctrl\+P|⌘P/.test((await item.textContent()) ?? '')) throw new Error('the palette shows no shortcut');
    await page.screenshot({ path: path.join(shotsDir, 'ide-palette.png') });
    await page.keyboard.press('Enter');
    await page.getByTestId('quick-open').waitFor();
    await page.keyboard.press('Escape');
  });

  await step('Vim mode, chosen in settings, is kept on the server and `dd` deletes a line', async () => {
    await page.getByTestId('open-settings').click();
    await page.getByTestId('settings-keymap').selectOption('vim');
    await page.getByTestId('settings-tab-size').selectOption('2');
    await page.screenshot({ path: path.join(shotsDir, 'ide-settings.png') });
    await page.keyboard.press('Escape');
    await waitFor(async () => (await call('GET', '/api/users/me/settings')).body?.keymap === 'vim', 10_000, 'the setting on the server');
    await put('vim.txt', 'first line\nsecond line\nthird line\n');
    await page.getByTestId('tree-item-vim.txt').waitFor();
    await openFile('vim.txt');
    await waitFor(async () => (await editorText()).includes('third line'), 10_000, 'vim.txt text');
    // The Vim keymap loads the first time it is chosen: its status line shows when it is on.
    await page.locator('[data-testid="editor"] .cm-vim-panel').waitFor({ timeout: 10_000 });
    await content.click();
    await page.keyboard.press('Escape');
    await page.keyboard.press('g');
    await page.keyboard.press('g');
    await page.keyboard.press('j');
    await page.keyboard.press('d');
    await page.keyboard.press('d');
    await waitFor(async () => !(await editorText()).includes('second line') && (await editorText()).includes('third line'), 5000, '`dd` to delete the second line');
    await page.screenshot({ path: path.join(shotsDir, 'ide-vim.png') });
    // Back to the default keymap for the steps that follow; the server keeps that too.
    await page.keyboard.press('u');
    await page.keyboard.press('Control+Shift+P');
    await page.getByTestId('command-palette').locator('input').fill('toggle vim');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await call('GET', '/api/users/me/settings')).body?.keymap === 'default', 10_000, 'the default keymap on the server');
  });

  await step("the terminal's font follows the settings, as the editor's does", async () => {
    await page.getByTestId('panel-tab-terminal').click();
    const termFont = () =>
      page.evaluate(() => {
        const t = [...(window.__coveTerminals?.values() ?? [])][0];
        return t ? { size: t.options.fontSize, family: t.options.fontFamily, cols: t.cols } : null;
      });
    await waitFor(async () => (await termFont())?.size === 13, 10_000, 'a terminal in the default font');
    const before = await termFont();
    await page.getByTestId('open-settings').click();
    await page.getByTestId('settings-font-size').fill('18');
    await page.getByTestId('settings-font-family').fill('DejaVu Sans Mono');
    await page.keyboard.press('Escape');
    await waitFor(async () => {
      const now = await termFont();
      return now.size === 18 && now.family.startsWith('DejaVu Sans Mono, ') && now.cols < before.cols;
    }, 10_000, 'the terminal in the chosen font, with fewer columns in the same space');
    await page.screenshot({ path: path.join(shotsDir, 'ide-terminal-font.png') });
    // Back to the defaults for the steps that follow; the server keeps that too.
    await page.getByTestId('open-settings').click();
    await page.getByTestId('settings-font-size').fill('13');
    await page.getByTestId('settings-font-family').fill('');
    await page.keyboard.press('Escape');
    await waitFor(async () => (await termFont()).size === 13 && (await call('GET', '/api/users/me/settings')).body?.fontFamily === undefined, 10_000, 'the default font back');
  });

  await step('format on save formats a TypeScript file with its language server', async () => {
    await page.getByTestId('open-settings').click();
    await page.getByTestId('settings-format-on-save').check();
    await page.keyboard.press('Escape');
    await waitFor(async () => (await call('GET', '/api/users/me/settings')).body?.formatOnSave === true, 10_000, 'the setting on the server');
    await put('fmt.ts', 'const   answer:number=42\n');
    await page.getByTestId('tree-item-fmt.ts').waitFor();
    await openFile('fmt.ts');
    await waitFor(async () => (await page.getByTestId('lsp-status').getAttribute('data-state')) === 'ready' && /typescript/.test((await page.getByTestId('lsp-status').textContent()) ?? ''), 60_000, 'the typescript language server ready').catch(async (e) => {
      throw new Error(`${e.message}; the status bar says ${await page.getByTestId('status-bar').textContent()}; the servers: ${(await call('GET', `/api/workspaces/${id}/lsp`)).text}`);
    });
    // tsserver loads the project on its first request (seconds on a 0.5-CPU workspace), and
    // a save waits at most 3 s for formatting: ask once before, as an editing person would have.
    // The file reaches the server just after it says it is ready: ask until it has the file.
    await waitFor(
      () =>
        page.evaluate(async () => {
          const lsp = window.__coveLsp;
          const asked = lsp.connections.get('typescript').client.request('textDocument/formatting', { textDocument: { uri: lsp.uriOf('fmt.ts') }, options: { tabSize: 2, insertSpaces: true } });
          return asked.then(() => true, () => false);
        }),
      60_000,
      'tsserver to format fmt.ts once',
      1000,
    );
    await content.click();
    // Each save waits at most 3 s for the formatting; on a loaded machine one may be saved as
    // typed, so save again (after a change, once the last save is over) as a person would.
    let saves = 0;
    await waitFor(async () => {
      if ((await read('fmt.ts')).startsWith('const answer: number = 42')) return true;
      if (saves++ < 4) {
        await page.keyboard.press('Control+End');
        await page.keyboard.insertText(`// save ${saves}\n`);
        await page.keyboard.press('Control+S');
      }
      return false;
    }, 40_000, 'fmt.ts formatted on disk', 5000);
    if (saves > 1) log(`  info formatting took ${saves} saves`);
  }, 90_000);

  await sourceControl(ctx);

  await folderUpload(ctx);

  await step('the split editor shows a second group; a save there reaches the first', async () => {
    await page.getByTestId('sidebar-files').click();
    await openFile('helpers.py');
    await page.keyboard.press('Control+Shift+P');
    await page.getByTestId('command-palette').locator('input').fill('split editor');
    await page.keyboard.press('Enter');
    const right = page.getByTestId('split-editor');
    await right.getByTestId('editor-tab-helpers.py').waitFor();
    const rightContent = right.locator('[data-testid="editor"] .cm-content');
    await waitFor(async () => ((await rightContent.textContent()) ?? '').includes('def welcome'), 10_000, 'helpers.py in the right group');
    await rightContent.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('# typed on the right\n');
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await read('helpers.py')).includes('typed on the right'), 10_000, 'the right group saved');
    const left = page.locator('.editor-split > .editor-area [data-testid="editor"] .cm-content').first();
    await waitFor(async () => ((await left.textContent()) ?? '').includes('typed on the right'), 10_000, 'the left group reloaded');
    await page.screenshot({ path: path.join(shotsDir, 'ide-split.png') });
    await page.keyboard.press('Control+\\');
    await right.waitFor({ state: 'detached' });
  }, 60_000);

  await step('a Markdown file previews beside its editor, and its HTML cannot run', async () => {
    await page.getByTestId('sidebar-files').click();
    // A 1x1 PNG beside the file and an SVG at the root, named relatively; a path above the
    // root stays as written and shows nothing, even where clamping it at the root would find
    // an image (etc/x.png).
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
    await put('notes/pic.png', png);
    await put('etc/x.png', png);
    await put('logo.svg', '<?xml version="1.0"?>\n<!-- drawn by hand -->\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><script>document.documentElement.dataset.pwned=1</script><rect width="40" height="20" fill="teal"/></svg>');
    // A "picture" that is a secret (a link named like an image to a credentials file, say):
    // its bytes are no image's, so it is not put into the page.
    await put('notes/secret.png', 'GITHUB_TOKEN=ghp_not_an_image\n');
    // The file's own scripts and styles: none may take effect (its CSS could read the page's
    // attributes out through background images).
    const hostile =
      '<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=1</script>' +
      '<style>body{background:rgb(255,0,0)!important}</style><p id="styled" style="color:rgb(255,0,0)">styled</p>';
    await put('notes/guide.md', `# Guide\n\nSome **bold** text.\n\n![pic](pic.png) ![logo](../logo.svg) ![out](../../etc/x.png) ![secret](secret.png)\n\n${hostile}\n`);
    await page.getByTestId('tree-item-notes').click();
    await page.getByTestId('tree-item-notes/guide.md').click();
    await page.getByTestId('markdown-preview-toggle').click();
    const frame = page.frameLocator('[data-testid="markdown-preview"]');
    await frame.locator('h1').waitFor({ timeout: 10_000 });
    if ((await frame.locator('strong').textContent()) !== 'bold') throw new Error('the Markdown is not rendered');
    const shown = async (alt) =>
      frame.locator(`img[alt="${alt}"]`).evaluate((img) => ({ src: img.getAttribute('src'), width: img.naturalWidth }));
    await waitFor(async () => (await shown('pic')).width === 1 && (await shown('logo')).width === 40, 10_000, 'the workspace images shown');
    if (!(await shown('pic')).src.startsWith('data:image/png;base64,')) throw new Error(`pic: ${(await shown('pic')).src}`);
    if ((await shown('out')).src !== '../../etc/x.png') throw new Error(`a path above the root was followed: ${(await shown('out')).src}`);
    if ((await shown('secret')).src !== 'secret.png') throw new Error(`a file that is no image was put into the page: ${(await shown('secret')).src}`);
    const styled = await frame.locator('#styled').evaluate((p) => [getComputedStyle(p).color, getComputedStyle(document.body).backgroundColor]);
    if (styled.some((c) => c === 'rgb(255, 0, 0)')) throw new Error(`the file's own styles took effect: ${styled}`);
    if (!/rgb\(255, 255, 255\)|rgb\(30, 33, 37\)/.test(styled[1])) throw new Error(`cove's own style for the preview is missing: ${styled[1]}`);
    await content.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('\n## Typed now\n');
    await frame.locator('h2').waitFor({ timeout: 10_000 });
    if ((await frame.locator('body[data-pwned]').count()) > 0) throw new Error('the preview ran code');
    await page.screenshot({ path: path.join(shotsDir, 'ide-markdown.png') });
    await page.getByTestId('markdown-preview-toggle').click();
    // Saved, so that leaving the IDE (the next step) is not held up by unsaved text.
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await read('notes/guide.md')).includes('## Typed now'), 10_000, 'guide.md saved');
  }, 60_000);

  await step('axe-core finds no serious or critical problem on the home page and in the IDE', async () => {
    const serious = async (what) => {
      const results = await new AxeBuilder({ page }).analyze();
      const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (bad.length) throw new Error(`${what}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`).join('\n')}`);
    };
    await serious('the IDE');
    await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('workspace-list').waitFor();
    await page.getByText('daily').first().waitFor();
    await serious('the home page');
    // And both again in the dark theme: its colours are other colours.
    await page.goto(`${base}/w/${id}`, { waitUntil: 'domcontentloaded' });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('open-settings').click();
    await page.getByTestId('settings-theme').selectOption('dark');
    await page.keyboard.press('Escape');
    await waitFor(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 5000, 'the dark theme');
    await page.getByTestId('sidebar-scm').click();
    await serious('the IDE, dark');
    // A question with its red button, as a delete asks it.
    await page.getByTestId('sidebar-files').click();
    await page.getByTestId('tree-item-vim.txt').focus();
    await page.keyboard.press('Delete');
    await page.getByTestId('ask-dialog').waitFor();
    await serious('a delete question, dark');
    await page.getByTestId('ask-cancel').click();
    await page.getByTestId('ask-dialog').waitFor({ state: 'detached' });
    await page.getByTestId('sidebar-scm').click();
    await page.screenshot({ path: path.join(shotsDir, 'ide-dark.png') });
    await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    await page.getByText('daily').first().waitFor();
    await serious('the home page, dark');
  }, 60_000);
}

const guard = setTimeout(async () => {
  scenario.fail('the whole run', `it took longer than ${TOTAL_TIMEOUT_MS} ms; stopping`);
  await runCleanups(cleanups, log, 10_000);
  scenario.summary();
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
guard.unref();

try {
  await main();
} catch (e) {
  scenario.fail('setup', e?.stack ?? e);
}
if (scenario.failed && server) log(`--- server log (tail) ---\n${server.logTail(3000)}\n---`);
await runCleanups(cleanups, log, 10_000);
scenario.summary();
process.exit(scenario.failed === 0 ? 0 : 1);
