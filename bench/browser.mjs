#!/usr/bin/env node
// Browser benchmark of the cove IDE: time from navigation to an interactive
// terminal and to an open file, and the size of what the IDE loads.
//
//   node bench/browser.mjs --cove target/release/cove [--runs 10] [--out FILE]
//
// Starts `cove serve` itself (port 0, temp data dir, --auth none), creates a
// python workspace, drives Debian's headless Chromium through playwright-core
// (from web/node_modules), writes a markdown section to --out (default
// stdout) and prints progress to stderr. See bench/README-browser.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor as waitForEvery, withTimeout } from '../web/e2e/harness.mjs';
import { deleteWorkspaces, startServer } from '../web/e2e/server.mjs';

const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requireFromWeb = createRequire(path.join(repoDir, 'web', 'package.json'));

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) process.stderr.write(`browser.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node bench/browser.mjs --cove PATH [--runs N] [--out FILE] [--chromium PATH] [--timeout-s S]\n' +
      '  --cove       cove binary (default target/release/cove)\n' +
      '  --runs       runs per measurement (default 10)\n' +
      '  --out        write the markdown section there (default stdout)\n' +
      '  --chromium   browser binary (default /usr/bin/chromium or $CHROMIUM)\n' +
      '  --timeout-s  bound on the whole benchmark (default 900)\n',
  );
  process.exit(2);
}

const opts = { cove: 'target/release/cove', runs: 10, out: null, chromium: process.env.CHROMIUM ?? '/usr/bin/chromium', timeoutS: 900 };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const [k, inline] = a[i].startsWith('--') && a[i].includes('=') ? a[i].split(/=(.*)/s) : [a[i], undefined];
    const val = () => {
      const v = inline ?? a[++i];
      if (v === undefined) usage(`${k} needs a value`);
      return v;
    };
    switch (k) {
      case '--cove': opts.cove = val(); break;
      case '--runs': opts.runs = Number(val()); break;
      case '--out': opts.out = val(); break;
      case '--chromium': opts.chromium = val(); break;
      case '--timeout-s': opts.timeoutS = Number(val()); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${a[i]}`);
    }
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 1000) usage('--runs must be an integer from 1 to 1000');
  if (!(opts.timeoutS > 0)) usage('--timeout-s must be positive');
}

const GOAL_PROMPT_MS = 1000;
const GOAL_GZIP_KB = 500;
const VIEWPORT = { width: 1280, height: 800 };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const STEP_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- helpers

const t0 = Date.now();
function log(...a) {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${a.join(' ')}\n`);
}

/** The benchmark polls faster than the tests (50 ms): what it waits for is what it times. */
const waitFor = (fn, ms, what, every = 50) => waitForEvery(fn, ms, what, every);

/** Nearest-rank percentile (as bench/src/stats.rs). */
function percentile(values, p) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const rank = Math.ceil((p / 100) * v.length);
  return v[Math.min(Math.max(rank, 1), v.length) - 1];
}

function summary(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return { n: v.length, p50: percentile(v, 50), p90: percentile(v, 90), min: v.length ? Math.min(...v) : NaN, max: v.length ? Math.max(...v) : NaN };
}

const fmtMs = (x) => (Number.isFinite(x) ? String(Math.round(x)) : '–');
const kb = (bytes) => (Number.isFinite(bytes) ? (bytes / 1000).toFixed(1) : '–');

/** A plain HTTP request with node's http module (no automatic decompression). */
function httpRequest(method, url, { headers = {}, body, timeoutMs = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, { method, headers: { ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function api(method, base, p, body, timeoutMs) {
  const t = performance.now();
  const r = await httpRequest(method, base + p, { body, timeoutMs, headers: { accept: 'application/json' } });
  const ms = performance.now() - t;
  let json = null;
  try {
    json = r.body.length ? JSON.parse(r.body.toString('utf8')) : null;
  } catch {
    /* not JSON */
  }
  return { status: r.status, json, text: r.body.toString('utf8'), ms };
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return '';
  }
}

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown CPU';
  const memKb = Number(/^MemTotal:\s*(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return { nproc: sh('nproc', []) || String(os.availableParallelism()), model, memGiB: memKb / 1024 / 1024, kernel: `${os.type()} ${os.release()} (${os.arch()})` };
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------- cleanup

const cleanups = [];
let cleaning = null;
async function cleanup() {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const f = cleanups.pop();
      try {
        await withTimeout(Promise.resolve().then(f), 15_000, 'cleanup step');
      } catch (e) {
        log(`cleanup: ${e?.message ?? e}`);
      }
    }
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    log(`${sig}: cleaning up`);
    await cleanup();
    process.exit(130);
  });
}

const guard = setTimeout(async () => {
  log(`the whole benchmark exceeded ${opts.timeoutS} s; stopping`);
  await cleanup();
  process.exit(1);
}, opts.timeoutS * 1000);
guard.unref();

// ---------------------------------------------------------------- server

/** Our `cove serve` (web/e2e/server.mjs), once started. */
let server = null;
/** WARN and ERROR lines of its log, for the report's notes. */
const serverWarnings = [];

function collectWarnings(line) {
  // eslint-disable-next-line no-control-regex
  const clean = line.replace(/\x1b\[[0-9;]*m/g, '');
  if (/\b(WARN|ERROR)\b/.test(clean) && serverWarnings.length < 50) serverWarnings.push(clean.trim());
}

// ---------------------------------------------------------------- in-page probe

/**
 * Runs in the page before any of its scripts (addInitScript). Records
 * performance.now() (ms since navigation start) of each milestone on DOM
 * mutations and animation frames, instruments WebSocket, and in "editor" mode
 * clicks tree-item-main.py the moment it exists.
 */
function pageProbe(cfg) {
  if (!location.pathname.startsWith('/w/')) return;
  const B = (window.__bench = { cfg, marks: {}, info: {}, ws: [], expect: null });
  const now = () => performance.now();
  const mark = (k) => {
    if (B.marks[k] === undefined) B.marks[k] = now();
  };
  const NativeWS = window.WebSocket;
  window.WebSocket = class extends NativeWS {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url).replace(/^wss?:\/\/[^/]+/, ''), created: now() };
      B.ws.push(rec);
      this.addEventListener('open', () => (rec.open ??= now()));
      this.addEventListener('message', (e) => {
        rec.firstMessage ??= now();
        if (typeof e.data === 'string') {
          if (rec.welcome === undefined && e.data.includes('"type":"welcome"')) rec.welcome = now();
          if (rec.attached === undefined && e.data.includes('"type":"attached"')) rec.attached = now();
          if (e.data.includes('"type":"status"')) (rec.status ??= []).push([now(), e.data.slice(0, 120)]);
        } else {
          rec.firstBinary ??= now();
        }
      });
      this.addEventListener('close', (e) => {
        rec.closed ??= now();
        rec.closeCode ??= e.code;
      });
    }
  };
  // Main-thread work: long animation frames (with script attribution) and long tasks.
  B.loaf = [];
  B.longtasks = [];
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        B.loaf.push({
          start: e.startTime,
          duration: e.duration,
          blocking: e.blockingDuration,
          scripts: (e.scripts ?? []).map((s) => ({ src: (s.sourceURL || '').replace(/^https?:\/\/[^/]+/, ''), invoker: s.invoker, type: s.invokerType, duration: s.duration, layout: s.forcedStyleAndLayoutDuration })),
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch {
    /* not supported */
  }
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) B.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    /* not supported */
  }
  window.addEventListener(
    'keydown',
    (e) => {
      if (e.key === 'Enter' && B.expect && B.marks.enter === undefined) mark('enter');
    },
    true,
  );
  const rowsText = (host) => [...(host?.querySelectorAll('.xterm-rows > div') ?? [])].map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' '));
  const check = () => {
    if (document.querySelector('.page-loading')) mark('loadingFallback');
    if (document.querySelector('.ide')) mark('ideRendered');
    if (document.querySelector('[data-testid="connection-status"][data-state="connected"]')) mark('connected');
    const host = document.querySelector('.terminal-host[data-active="true"]');
    const id = host?.getAttribute('data-terminal-id');
    const term = id ? window.__coveTerminals?.get(id) : undefined;
    if (term) {
      mark('terminalCreated');
      const b = term.buffer.active;
      if (B.marks.promptBuffer === undefined) {
        // The prompt: the text before the cursor on the cursor's line ends in "$ " or "# ".
        const line = b.getLine(b.baseY + b.cursorY)?.translateToString(false) ?? '';
        const before = line.slice(0, b.cursorX);
        if (/[$#] $/.test(before)) {
          mark('promptBuffer');
          B.info.prompt = before;
          B.info.terminalId = id;
          B.info.promptRow = b.cursorY;
          B.info.bufferLength = b.length;
          const all = [];
          for (let i = 0; i < b.length; i++) all.push(b.getLine(i)?.translateToString(true) ?? '');
          B.info.bufferAtPrompt = all.join('\n').replace(/\n+$/, '');
        }
      }
      if (B.marks.promptBuffer !== undefined && B.marks.promptVisible === undefined) {
        const row = rowsText(host)[B.info.promptRow] ?? '';
        if (row.trimEnd().length && row.startsWith(B.info.prompt.trimEnd())) mark('promptVisible');
      }
      if (B.expect && B.marks.echoVisible === undefined) {
        if (B.marks.echoBuffer === undefined) {
          for (let i = 0; i < b.length; i++) {
            if ((b.getLine(i)?.translateToString(true) ?? '').trim() === B.expect) {
              mark('echoBuffer');
              break;
            }
          }
        }
        if (rowsText(host).some((r) => r.trim() === B.expect)) mark('echoVisible');
      }
    }
    if (cfg.mode === 'editor') {
      const item = document.querySelector('[data-testid="tree-item-main.py"]');
      if (item) {
        mark('tree');
        if (!B.clicked) {
          B.clicked = true;
          item.click();
          mark('click');
        }
      }
      const cm = document.querySelector('[data-testid="editor"] .cm-content');
      if (cm && (cm.textContent ?? '').includes('def greet')) {
        mark('fileOpen');
        if (B.marks.highlighted === undefined) {
          for (const s of cm.querySelectorAll('.cm-line span')) {
            if (s.textContent === 'def') {
              mark('highlighted');
              break;
            }
          }
        }
      }
    }
  };
  B.check = check;
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-state', 'data-active', 'data-terminal-id', 'class'] });
  const frame = () => {
    check();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/** Everything the probe and the Performance API know about the page. */
async function collectPage(page) {
  return page.evaluate(() => {
    const B = window.__bench ?? { marks: {}, info: {}, ws: [] };
    const nav = performance.getEntriesByType('navigation')[0];
    const paints = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
    const res = performance.getEntriesByType('resource').map((r) => ({
      url: r.name.replace(/^https?:\/\/[^/]+/, ''),
      initiatorType: r.initiatorType,
      start: r.startTime,
      end: r.responseEnd,
      transferSize: r.transferSize,
      encodedBodySize: r.encodedBodySize,
      decodedBodySize: r.decodedBodySize,
    }));
    return {
      marks: B.marks,
      info: B.info,
      ws: B.ws,
      loaf: B.loaf ?? [],
      longtasks: B.longtasks ?? [],
      nav: nav ? { responseStart: nav.responseStart, responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, transferSize: nav.transferSize, encodedBodySize: nav.encodedBodySize, decodedBodySize: nav.decodedBodySize } : null,
      paints,
      res,
    };
  });
}

async function terminalText(page, id) {
  return page.evaluate((tid) => {
    const term = window.__coveTerminals?.get(tid);
    if (!term) return null;
    const b = term.buffer.active;
    const lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    const cursorLine = b.getLine(b.baseY + b.cursorY)?.translateToString(false) ?? '';
    return { text: lines.join('\n').replace(/\n+$/, ''), beforeCursor: cursorLine.slice(0, b.cursorX) };
  }, id);
}

/**
 * The terminal socket without a browser: an HTTP upgrade from node, timed to
 * the 101 (the server reaches the runner, which starts the shell), to the
 * `attached` frame and to output ending in a prompt. No Origin header.
 */
function rawTerminalProbe(base, wsId, terminalId, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('base64');
    const req = http.request(`${base}/api/workspaces/${encodeURIComponent(wsId)}/terminals/${encodeURIComponent(terminalId)}/ws?cols=120&rows=30`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
    });
    const out = {};
    let sock = null;
    const timer = setTimeout(() => {
      sock?.destroy();
      req.destroy();
      reject(new Error(`raw terminal socket: no prompt within ${timeoutMs} ms (${JSON.stringify(out)})`));
    }, timeoutMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      reject(new Error(`raw terminal socket answered ${res.statusCode}`));
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('upgrade', (res, socket, head) => {
      sock = socket;
      out.upgradeMs = performance.now() - t;
      let buf = head;
      let text = '';
      const onData = (d) => {
        if (d) buf = Buffer.concat([buf, d]);
        for (;;) {
          if (buf.length < 2) return;
          const op = buf[0] & 0x0f;
          let len = buf[1] & 0x7f;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (op === 1 && payload.toString('utf8').includes('"attached"')) out.attachedMs ??= performance.now() - t;
          if (op === 2 || op === 0) {
            out.firstOutputMs ??= performance.now() - t;
            // eslint-disable-next-line no-control-regex
            text += payload.toString('utf8').replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07|\r/g, '');
            if (/[$#] $/.test(text)) {
              out.promptMs = performance.now() - t;
              out.prompt = text.split('\n').pop();
              clearTimeout(timer);
              socket.destroy();
              resolve(out);
              return;
            }
          }
          if (op === 8) {
            clearTimeout(timer);
            socket.destroy();
            reject(new Error(`raw terminal socket closed before a prompt (${JSON.stringify(out)})`));
            return;
          }
        }
      };
      socket.on('data', onData);
      socket.on('error', () => {});
      onData(null);
    });
    req.end();
  });
}

// ---------------------------------------------------------------- measurements

/** Closes every terminal of the workspace over a control socket opened from `adminPage` (same origin). */
async function closeAllTerminals(adminPage, wsId) {
  return withTimeout(
    adminPage.evaluate(
      async ({ id, timeoutMs }) => {
        const ws = new WebSocket(`ws://${location.host}/api/workspaces/${encodeURIComponent(id)}/ws`);
        const msgs = [];
        const waiters = new Set();
        ws.onmessage = (e) => {
          try {
            msgs.push(JSON.parse(e.data));
          } catch {
            return;
          }
          for (const w of [...waiters]) w();
        };
        const waitMsg = (pred, what) =>
          new Promise((res, rej) => {
            const t = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`no ${what} within ${timeoutMs} ms`));
            }, timeoutMs);
            const check = () => {
              const m = msgs.find(pred);
              if (m) {
                clearTimeout(t);
                waiters.delete(check);
                res(m);
              }
            };
            waiters.add(check);
            check();
          });
        let n = 0;
        const req = (type, payload) => {
          const requestId = `bench-${Date.now().toString(36)}-${++n}`;
          ws.send(JSON.stringify({ type, payload, requestId }));
          return waitMsg((m) => m.requestId === requestId, `${type} reply`);
        };
        try {
          await waitMsg((m) => m.type === 'welcome', 'welcome');
          const list = await req('list_terminals', {});
          const ids = (list.terminals ?? []).map((t) => t.terminalId);
          const closeMs = [];
          for (const tid of ids) {
            const t = performance.now();
            await req('close_terminal', { terminalId: tid });
            closeMs.push(performance.now() - t);
          }
          const after = await req('list_terminals', {});
          return { closed: ids.length, left: (after.terminals ?? []).length, closeMs };
        } finally {
          ws.close();
        }
      },
      { id: wsId, timeoutMs: 10_000 },
    ),
    25_000,
    'closing the terminals',
  );
}

/** Response bookkeeping for one navigation: what the browser fetched, with sizes. */
function recordResponses(page) {
  const list = [];
  let stopped = false;
  page.on('response', (resp) => {
    if (stopped) return;
    const req = resp.request();
    const entry = { url: resp.url().replace(/^https?:\/\/[^/]+/, ''), type: req.resourceType(), status: resp.status(), headers: resp.headers(), resp, req };
    list.push(entry);
  });
  return {
    list,
    stop() {
      stopped = true;
    },
    /** Fill in sizes (content-length, or the body when it is absent). */
    async finish() {
      for (const e of list) {
        e.contentLength = e.headers['content-length'] !== undefined ? Number(e.headers['content-length']) : null;
        e.encoding = e.headers['content-encoding'] ?? '';
        e.cacheControl = e.headers['cache-control'] ?? '';
        try {
          e.acceptEncoding = (await withTimeout(e.req.allHeaders(), 5000, 'request headers'))['accept-encoding'] ?? '';
        } catch {
          e.acceptEncoding = '';
        }
        try {
          const body = await withTimeout(e.resp.body(), 5000, `body of ${e.url}`);
          e.decoded = body.length;
        } catch {
          e.decoded = null;
        }
        try {
          e.sizes = await withTimeout(e.req.sizes(), 5000, 'request sizes');
        } catch {
          e.sizes = null;
        }
        e.bytes = e.contentLength ?? e.sizes?.responseBodySize ?? e.decoded ?? 0;
        e.bytesFrom = e.contentLength !== null ? 'content-length' : e.sizes ? 'transfer' : 'body';
        delete e.resp;
        delete e.req;
      }
      return list;
    },
  };
}

/**
 * One page load of the IDE. mode "terminal": until the prompt is visible, then
 * types `echo ready-N` and waits for `ready-N`; mode "editor": the probe clicks
 * main.py as soon as the tree shows it, until the editor shows `def greet`.
 */
async function measureLoad(page, { url, mode, n, reload = false, record = null, timeoutMs = STEP_TIMEOUT_MS }) {
  const wall0 = performance.now();
  if (reload) await page.reload({ waitUntil: 'commit', timeout: timeoutMs });
  else await page.goto(url, { waitUntil: 'commit', timeout: timeoutMs });
  const done = mode === 'terminal' ? 'promptVisible' : 'fileOpen';
  await page.waitForFunction((k) => window.__bench?.marks?.[k] !== undefined, done, { timeout: timeoutMs, polling: 25 });
  const wallDone = performance.now() - wall0;
  record?.stop();
  const out = { mode, n, wallDoneMs: wallDone };
  if (mode === 'terminal') {
    const expect = `ready-${n}`;
    const pre = await collectPage(page);
    await page.evaluate((e) => {
      window.__bench.expect = e;
    }, expect);
    await page.locator('.terminal-host[data-active="true"] .xterm').first().click({ timeout: 10_000 });
    await page.keyboard.type(`echo ${expect}`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__bench?.marks?.echoVisible !== undefined, null, { timeout: 15_000, polling: 25 });
    // The line after the output is the shell's next prompt: it must be the
    // very prompt that was detected, else the detection saw something else.
    const after = await waitFor(async () => {
      const t = await terminalText(page, pre.info.terminalId);
      return t && t.text.split('\n').some((l) => l.trim() === expect) && /[$#] $/.test(t.beforeCursor) ? t : null;
    }, 10_000, 'the prompt after the echo', 25);
    out.promptAfterEcho = after.beforeCursor;
    out.promptConfirmed = after.beforeCursor === pre.info.prompt;
    out.echoLineCount = after.text.split('\n').filter((l) => l.trim() === expect).length;
  } else {
    // Give the language pack a moment to arrive (bounded) for the highlighting mark.
    await page.waitForFunction(() => window.__bench?.marks?.highlighted !== undefined, null, { timeout: 10_000, polling: 25 }).catch(() => {});
  }
  Object.assign(out, await collectPage(page));
  return out;
}

function describeRun(r) {
  const m = r.marks;
  if (r.mode === 'terminal') return `prompt ${fmtMs(m.promptVisible)} ms, echo ${fmtMs(m.echoVisible - m.enter)} ms${r.promptConfirmed ? '' : ' (PROMPT NOT CONFIRMED)'}`;
  return `tree ${fmtMs(m.tree)} ms, file open ${fmtMs(m.fileOpen)} ms, highlighted ${fmtMs(m.highlighted)} ms`;
}

// ---------------------------------------------------------------- main

async function main() {
  const coveBin = path.resolve(opts.cove);
  if (!fs.existsSync(coveBin)) throw new Error(`cove binary not found at ${coveBin}`);
  if (!fs.existsSync(opts.chromium)) throw new Error(`${opts.chromium} not found (apt-get install -y chromium)`);
  let chromium;
  try {
    ({ chromium } = requireFromWeb('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core not found in web/node_modules (run npm ci in web/): ${e.message}`);
  }
  const pwVersion = requireFromWeb('playwright-core/package.json').version;
  const machine = machineInfo();
  const loadBefore = loadavg();
  const startedAt = new Date();
  const command = `node ${path.relative(process.cwd(), fileURLToPath(import.meta.url)) || 'bench/browser.mjs'} ${process.argv.slice(2).join(' ')}`.trim();
  const chromiumVersion = sh(opts.chromium, ['--version']) || 'unknown';
  const coveStat = fs.statSync(coveBin);
  const gitHead = sh('git', ['-C', repoDir, 'rev-parse', '--short', 'HEAD']);
  const gitDirty = sh('git', ['-C', repoDir, 'status', '--porcelain', '--untracked-files=no']) !== '';

  server = await startServer({ bin: coveBin, dirPrefix: 'cove-browserbench-', log, onLine: collectWarnings });
  cleanups.push(() => server.stop());
  const { base } = server;
  log(`server at ${base} (pid ${server.pid})`);

  // ---- workspaces (deleted before the server stops: their runners outlive it)
  const suffix = Math.random().toString(36).slice(2, 7);
  cleanups.push(() => deleteWorkspaces(base, (w) => [`bench-browser-${suffix}`, `bench-cold-${suffix}`].includes(w.name), { log }));
  const created = await api('POST', base, '/api/workspaces', { name: `bench-browser-${suffix}`, template: 'python' }, 60_000);
  if (created.status !== 201 || !created.json?.id) throw new Error(`POST /api/workspaces answered ${created.status}: ${created.text.slice(0, 300)}`);
  const wsId = created.json.id;
  const stateAfterCreate = created.json.state ?? (await api('GET', base, `/api/workspaces/${wsId}`)).json?.state;
  log(`workspace ${wsId} created in ${created.ms.toFixed(1)} ms (state ${stateAfterCreate})`);
  const started = await api('POST', base, `/api/workspaces/${wsId}/start`, undefined, 120_000);
  if (started.status >= 300) throw new Error(`POST /start answered ${started.status}: ${started.text.slice(0, 300)}`);
  await waitFor(async () => (await api('GET', base, `/api/workspaces/${wsId}`)).json?.state === 'running', 60_000, 'the workspace to be running');
  log(`workspace started (cold runner start) in ${started.ms.toFixed(1)} ms`);
  const restart = await api('POST', base, `/api/workspaces/${wsId}/start`, undefined, 60_000);

  // A second workspace that stays stopped, for one load that includes the runner start.
  const coldWs = await api('POST', base, '/api/workspaces', { name: `bench-cold-${suffix}`, template: 'python' }, 60_000);
  if (coldWs.status !== 201 || !coldWs.json?.id) throw new Error(`POST /api/workspaces (second) answered ${coldWs.status}: ${coldWs.text.slice(0, 300)}`);
  const coldId = coldWs.json.id;
  let coldState = (await api('GET', base, `/api/workspaces/${coldId}`)).json?.state;
  if (coldState === 'running') {
    await api('POST', base, `/api/workspaces/${coldId}/stop`, undefined, 60_000);
    coldState = (await api('GET', base, `/api/workspaces/${coldId}`)).json?.state;
  }
  log(`second workspace ${coldId} (state ${coldState}) for the not-running load`);

  // ---- caching headers (as the browser asks: Accept-Encoding gzip)
  const idx = await httpRequest('GET', `${base}/w/${wsId}`, { headers: { 'accept-encoding': 'gzip, deflate' } });
  const idxBody = idx.headers['content-encoding'] === 'gzip' ? (await import('node:zlib')).gunzipSync(idx.body).toString('utf8') : idx.body.toString('utf8');
  const entryJs = /src="(\/assets\/[^"]+\.js)"/.exec(idxBody)?.[1];
  if (!entryJs) throw new Error(`index.html names no /assets/*.js:\n${idxBody.slice(0, 500)}`);
  const asset = await httpRequest('GET', base + entryJs, { headers: { 'accept-encoding': 'gzip, deflate' } });
  const assetNoGzip = await httpRequest('GET', base + entryJs, { headers: {} });
  const caching = [
    { what: 'index.html (`GET /w/{id}`)', res: idx, want: 'no-cache' },
    { what: `hashed asset \`${entryJs}\``, res: asset, want: 'public, max-age=31536000, immutable' },
  ].map((c) => ({ ...c, cacheControl: c.res.headers['cache-control'] ?? '(none)', ok: (c.res.headers['cache-control'] ?? '') === c.want }));
  for (const c of caching) log(`cache-control of ${c.what}: ${c.cacheControl} (${c.ok ? 'as expected' : `expected ${c.want}`})`);

  // ---- browser
  log(`launching ${opts.chromium}`);
  const browser = await withTimeout(chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS }), 60_000, 'chromium to start');
  cleanups.push(() => browser.close());
  const browserVersion = browser.version();
  const admin = await browser.newContext();
  const adminPage = await admin.newPage();
  // A page of cove's own: its CSP allows sockets to cove, and its origin is cove's (the
  // server refuses other origins' sockets; /healthz is sandboxed, an opaque origin).
  await adminPage.goto(`${base}/`, { timeout: STEP_TIMEOUT_MS });
  const closeTimes = [];
  const closeTerms = async () => {
    const r = await closeAllTerminals(adminPage, wsId);
    if (r.left) throw new Error(`${r.left} terminal(s) still listed after close_terminal`);
    closeTimes.push(...r.closeMs);
    return r;
  };
  await closeTerms();

  // The terminal socket from node, no browser: how much of the wait is the server and the shell.
  const rawTerm = [];
  log(`terminal socket without a browser: ${opts.runs} new terminals`);
  for (let i = 1; i <= opts.runs; i++) {
    rawTerm.push(await rawTerminalProbe(base, wsId, `bench-raw-${suffix}-${i}`));
    await closeTerms();
  }
  log(`  upgrade p50 ${fmtMs(percentile(rawTerm.map((r) => r.upgradeMs), 50))} ms, prompt p50 ${fmtMs(percentile(rawTerm.map((r) => r.promptMs), 50))} ms (prompt \`${rawTerm[0].prompt}\`)`);

  const wsUrl = `${base}/w/${wsId}`;
  const newCtxPage = async (mode) => {
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    ctx.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await ctx.newPage();
    const consoleErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    await page.addInitScript(pageProbe, { mode });
    return { ctx, page, consoleErrors };
  };
  const allConsole = new Set();

  // ---- 0. one load of a workspace that is not running (runner start included)
  log('cold: one load of the stopped workspace (the IDE starts it)');
  let coldRun = null;
  {
    const { ctx, page, consoleErrors } = await newCtxPage('terminal');
    try {
      coldRun = await measureLoad(page, { url: `${base}/w/${coldId}`, mode: 'terminal', n: 0, timeoutMs: 90_000 });
      log(`  ${describeRun(coldRun)}`);
    } catch (e) {
      log(`  FAILED: ${e.message}`);
      coldRun = { error: e.message };
    } finally {
      consoleErrors.forEach((c) => allConsole.add(c));
      await ctx.close();
    }
  }
  const coldRunnerState = (await api('GET', base, `/api/workspaces/${coldId}`)).json?.state;
  await api('POST', base, `/api/workspaces/${coldId}/stop`, undefined, 60_000).catch(() => {});

  // ---- a. terminal, cold cache (fresh context per run)
  const termCold = [];
  let sizesTerminal = null;
  log(`terminal, cold cache: ${opts.runs} runs (fresh browser context each)`);
  for (let i = 1; i <= opts.runs; i++) {
    const { ctx, page, consoleErrors } = await newCtxPage('terminal');
    const rec = i === 1 ? recordResponses(page) : null;
    try {
      const r = await measureLoad(page, { url: wsUrl, mode: 'terminal', n: i, record: rec });
      if (rec) sizesTerminal = await rec.finish();
      termCold.push(r);
      log(`  run ${i}: ${describeRun(r)}`);
    } finally {
      consoleErrors.forEach((c) => allConsole.add(c));
      await ctx.close();
      await closeTerms();
    }
  }

  // ---- b. editor, cold cache
  const editCold = [];
  let sizesEditor = null;
  log(`editor, cold cache: ${opts.runs} runs (fresh browser context each)`);
  for (let i = 1; i <= opts.runs; i++) {
    const { ctx, page, consoleErrors } = await newCtxPage('editor');
    const rec = i === 1 ? recordResponses(page) : null;
    try {
      const r = await measureLoad(page, { url: wsUrl, mode: 'editor', n: i });
      if (rec) {
        // Whatever arrives up to the highlighting belongs to opening the file.
        rec.stop();
        sizesEditor = await rec.finish();
      }
      editCold.push(r);
      log(`  run ${i}: ${describeRun(r)}`);
    } finally {
      consoleErrors.forEach((c) => allConsole.add(c));
      await ctx.close();
      await closeTerms();
    }
  }

  // ---- c. warm cache: one context, a first load to fill the cache, then reloads
  const termWarm = [];
  const editWarm = [];
  {
    log(`warm cache: one context, a first load, then ${opts.runs} reloads each for terminal and editor`);
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    ctx.setDefaultTimeout(STEP_TIMEOUT_MS);
    try {
      for (const [mode, into] of [['terminal', termWarm], ['editor', editWarm]]) {
        const page = await ctx.newPage();
        page.on('pageerror', (e) => allConsole.add(`pageerror: ${e.message}`));
        await page.addInitScript(pageProbe, { mode });
        await measureLoad(page, { url: wsUrl, mode, n: 100 });
        await closeTerms();
        for (let i = 1; i <= opts.runs; i++) {
          const r = await measureLoad(page, { url: wsUrl, mode, n: 100 + i, reload: true });
          into.push(r);
          log(`  ${mode} reload ${i}: ${describeRun(r)}; ${r.res.filter((x) => x.url.startsWith('/assets/') && x.transferSize === 0).length}/${r.res.filter((x) => x.url.startsWith('/assets/')).length} assets from cache`);
          await closeTerms();
        }
        await page.close();
      }
    } finally {
      await ctx.close();
    }
  }
  await admin.close();

  // ---- report
  const loadAfter = loadavg();
  const md = report({
    machine, loadBefore, loadAfter, startedAt, command, chromiumVersion, browserVersion, pwVersion, coveBin, coveStat, gitHead, gitDirty,
    base, serverPid: server.pid, wsId, coldId, created, stateAfterCreate, started, restart, coldState, coldRunnerState,
    caching, entryJs, assetNoGzip, rawTerm, closeTimes, coldRun, termCold, editCold, termWarm, editWarm, sizesTerminal, sizesEditor, allConsole,
  });
  return md;
}

// ---------------------------------------------------------------- report

function report(d) {
  const L = [];
  const p = (s = '') => L.push(s);
  const m = d.machine;
  const ts = d.startedAt.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  p('## Browser: time to an interactive IDE');
  p();
  p(`- date: ${ts}`);
  p(`- machine: ${m.nproc} CPUs (nproc), ${m.model}; ${m.memGiB.toFixed(1)} GiB RAM; ${m.kernel}`);
  p(`- load average (1/5/15 min): ${d.loadBefore} before, ${d.loadAfter} after (other work on the machine skews the numbers)`);
  p(`- browser: ${d.chromiumVersion} (\`${opts.chromium}\`, headless, protocol version ${d.browserVersion}), driven by playwright-core ${d.pwVersion}; viewport ${VIEWPORT.width}x${VIEWPORT.height}`);
  p(`- command: \`${d.command}\``);
  p(`- cove: \`${opts.cove}\` (file dated ${d.coveStat.mtime.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}; HEAD of ${repoDir} at run time: ${d.gitHead || '?'}${d.gitDirty ? ', with uncommitted changes' : ''}), \`serve --auth none\` on ${d.base} (pid ${d.serverPid})`);
  p(`- workspace: python template (\`${d.wsId}\`), created in ${d.created.ms.toFixed(1)} ms (state \`${d.stateAfterCreate}\`); started once before the runs: \`POST /start\` ${d.started.ms.toFixed(1)} ms cold, ${d.restart.ms.toFixed(1)} ms when already running`);
  p(`- every run: a new browser context (empty cache, no cookies), \`page.goto('/w/{id}')\`; all terminals of the workspace are closed between runs, so each run starts a fresh shell; times are \`performance.now()\` in the page (ms since navigation start), taken on DOM mutations and animation frames`);
  p();

  const rows = [];
  const row = (label, cache, vals, goal) => {
    const s = summary(vals);
    let g = '';
    if (goal !== undefined && s.n) g = `< ${goal} ms: ${s.p50 < goal ? 'met' : '**missed**'} at p50, ${s.p90 < goal ? 'met' : '**missed**'} at p90`;
    rows.push(`| ${label} | ${cache} | ${s.n} | ${fmtMs(s.p50)} | ${fmtMs(s.p90)} | ${fmtMs(s.min)} | ${fmtMs(s.max)} | ${g} |`);
  };
  const mk = (runs, f) => runs.map((r) => f(r.marks)).filter(Number.isFinite);
  const fcp = (runs) => runs.map((r) => r.paints?.['first-contentful-paint']).filter(Number.isFinite);
  for (const [cache, runs] of [['cold', d.termCold], ['warm', d.termWarm]]) {
    row('navigation → first contentful paint', cache, fcp(runs));
    row('navigation → "Loading the IDE…" fallback shown', cache, mk(runs, (x) => x.loadingFallback));
    row('navigation → last IDE script downloaded', cache, runs.map((r) => Math.max(...r.res.filter((x) => /\/assets\/.*\.js$/.test(x.url) && x.start < r.marks.ideRendered).map((x) => x.end))));
    row('navigation → IDE rendered (lazy `Ide` chunk)', cache, mk(runs, (x) => x.ideRendered));
    row('IDE rendered − fallback shown (React Suspense reveal)', cache, mk(runs, (x) => x.ideRendered - x.loadingFallback));
    row('navigation → control socket connected', cache, mk(runs, (x) => x.connected));
    row('**navigation → terminal prompt visible**', cache, mk(runs, (x) => x.promptVisible), GOAL_PROMPT_MS);
    row('script time in long animation frames (> 50 ms) before the prompt, sum', cache, runs.map((r) => (r.loaf ?? []).filter((f) => f.start < r.marks.promptVisible).reduce((a, f) => a + f.scripts.reduce((b, x) => b + x.duration, 0), 0)));
    row('echo round trip after the prompt (Enter → `ready-N` shown)', cache, mk(runs, (x) => x.echoVisible - x.enter));
  }
  for (const [cache, runs] of [['cold', d.editCold], ['warm', d.editWarm]]) {
    row('navigation → tree shows `main.py`', cache, mk(runs, (x) => x.tree));
    row('**navigation → `main.py` open** (`def greet` shown)', cache, mk(runs, (x) => x.fileOpen));
    row('navigation → python highlighting applied', cache, mk(runs, (x) => x.highlighted));
    row('click → `main.py` open', cache, mk(runs, (x) => x.fileOpen - x.click));
  }
  p(`### Timings (ms; ${opts.runs} runs each)`);
  p();
  p('| measurement | cache | runs | p50 | p90 | min | max | goal |');
  p('|---|---|---:|---:|---:|---:|---:|---|');
  rows.forEach((r) => p(r));
  const rawRow = (label, vals) => {
    const x = summary(vals);
    p(`| ${label} | – | ${x.n} | ${fmtMs(x.p50)} | ${fmtMs(x.p90)} | ${fmtMs(x.min)} | ${fmtMs(x.max)} | |`);
  };
  rawRow('no browser: terminal socket upgrade answered (server → runner → new shell)', d.rawTerm.map((r) => r.upgradeMs));
  rawRow('no browser: terminal socket → prompt bytes', d.rawTerm.map((r) => r.promptMs));
  rawRow('between runs: `close_terminal` → its `terminal_exit` reply (idle shell at a prompt)', d.closeTimes);
  if (d.coldRun && !d.coldRun.error) {
    const c = d.coldRun.marks;
    p(`| navigation → terminal prompt visible, workspace **not running** (the IDE starts the runner) | cold | 1 | ${fmtMs(c.promptVisible)} | | | | first load; state before \`${d.coldState}\`, after \`${d.coldRunnerState}\` |`);
    p(`| echo round trip, that first terminal | cold | 1 | ${fmtMs(c.echoVisible - c.enter)} | | | | |`);
  } else if (d.coldRun?.error) {
    p(`| navigation → prompt, workspace not running | cold | 0 | failed: ${d.coldRun.error.split('\n')[0]} | | | | |`);
  }
  p();
  p('Percentiles are nearest-rank. Cold: a new browser context per run (empty HTTP cache). Warm: one context, one load to fill the cache, then `page.reload()` per run. "Visible": the text is in xterm\'s rendered rows (DOM renderer), not just in its buffer. The echo is measured from the Enter keydown to the output line `ready-N` on screen; the bench then checks that the shell\'s next prompt is exactly the prompt it detected (' + `${[...d.termCold, ...d.termWarm].filter((r) => r.promptConfirmed).length}/${d.termCold.length + d.termWarm.length}` + ' runs confirmed). File open: the probe clicks `tree-item-main.py` in the page the moment it exists.');
  p();

  // Where the time goes: the median cold terminal run.
  const sorted = [...d.termCold].sort((a, b) => a.marks.promptVisible - b.marks.promptVisible);
  const med = sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)];
  if (med) {
    p(`### Timeline of the median cold terminal run (run ${med.n}, prompt at ${fmtMs(med.marks.promptVisible)} ms)`);
    p();
    const ev = [];
    if (med.nav) ev.push([med.nav.responseStart, `document: first byte (index.html)`], [med.nav.responseEnd, 'document: last byte']);
    for (const r of med.res) ev.push([r.start, `request ${r.url} (${r.initiatorType}) … done at ${fmtMs(r.end)} ms, ${r.encodedBodySize} B${r.transferSize === 0 ? ', from cache' : ''}`]);
    if (med.nav) ev.push([med.nav.domContentLoaded, 'DOMContentLoaded']);
    for (const [k, v] of Object.entries(med.paints ?? {})) ev.push([v, k]);
    const names = { loadingFallback: '"Loading the IDE…" fallback shown', ideRendered: 'IDE rendered', connected: 'status bar: connected', terminalCreated: 'xterm instance created', promptBuffer: 'prompt in the xterm buffer', promptVisible: '**prompt visible**' };
    for (const [k, label] of Object.entries(names)) if (med.marks[k] !== undefined) ev.push([med.marks[k], label]);
    for (const w of med.ws) {
      const kind = /\/terminals\//.test(w.url) ? 'terminal socket' : /\/ws$/.test(w.url.split('?')[0]) ? 'control socket' : `socket ${w.url}`;
      ev.push([w.created, `${kind}: new WebSocket`]);
      if (w.open !== undefined) ev.push([w.open, `${kind}: open`]);
      if (w.welcome !== undefined) ev.push([w.welcome, `${kind}: welcome`]);
      if (w.attached !== undefined) ev.push([w.attached, `${kind}: attached`]);
      if (w.firstBinary !== undefined) ev.push([w.firstBinary, `${kind}: first output bytes`]);
      if (w.closed !== undefined && w.closed < med.marks.promptVisible) ev.push([w.closed, `${kind}: closed (${w.closeCode})`]);
    }
    for (const f of med.loaf ?? []) {
      const top = [...f.scripts].sort((a, b) => b.duration - a.duration).slice(0, 3);
      const what = top.map((x) => `${x.src ? x.src.replace(/^.*\//, '') : '?'} ${x.type}${x.invoker ? ` \`${String(x.invoker).slice(0, 50)}\`` : ''} ${x.duration.toFixed(0)} ms`).join('; ');
      ev.push([f.start, `main thread busy: animation frame of ${f.duration.toFixed(0)} ms (until ${fmtMs(f.start + f.duration)})${what ? ` — ${what}` : ''}`]);
    }
    ev.sort((a, b) => a[0] - b[0]);
    p('| ms | event |');
    p('|---:|---|');
    for (const [t, what] of ev.filter(([t]) => Number.isFinite(t) && t <= (med.marks.promptVisible ?? Infinity) + 0.5)) p(`| ${t.toFixed(0)} | ${what} |`);
    p();
    p(`Prompt detected: \`${med.info.prompt}\` (row ${med.info.promptRow} of a ${med.info.bufferLength}-line buffer; the buffer then held ${JSON.stringify(med.info.bufferAtPrompt ?? '').slice(0, 200)}).`);
    p();
  }

  // Sizes
  if (d.sizesTerminal) {
    const S = d.sizesTerminal;
    const groups = { document: [], script: [], stylesheet: [], other: [] };
    for (const e of S) (groups[e.type] ?? groups.other).push(e);
    const sum = (l, f) => l.reduce((a, e) => a + (f(e) ?? 0), 0);
    p('### Sizes: a cold load of `/w/{id}` until the prompt is visible (kB = 1000 bytes)');
    p();
    p(`Transferred = the response's \`content-length\` (gzip when the browser asked with \`Accept-Encoding: ${S.find((e) => e.type === 'document')?.acceptEncoding ?? '?'}\`); uncompressed = the decoded body.`);
    p();
    p('| resource type | requests | transferred kB | uncompressed kB |');
    p('|---|---:|---:|---:|');
    for (const [k, l] of Object.entries(groups)) p(`| ${k} | ${l.length} | ${kb(sum(l, (e) => e.bytes))} | ${kb(sum(l, (e) => e.decoded))} |`);
    p(`| **total** | ${S.length} | **${kb(sum(S, (e) => e.bytes))}** | ${kb(sum(S, (e) => e.decoded))} |`);
    const jsCss = [...groups.script, ...groups.stylesheet];
    const jsCssBytes = sum(jsCss, (e) => e.bytes);
    p();
    p(`- **JS + CSS, gzipped: ${kb(jsCssBytes)} kB** (goal < ${GOAL_GZIP_KB} kB: ${jsCssBytes / 1000 < GOAL_GZIP_KB ? 'met' : '**missed**'}); uncompressed ${kb(sum(jsCss, (e) => e.decoded))} kB`);
    if (d.sizesEditor) {
      const seen = new Set(S.map((e) => e.url));
      const lazy = d.sizesEditor.filter((e) => !seen.has(e.url) && e.url.startsWith('/assets/'));
      const ed = d.editCold[0];
      for (const e of lazy) {
        const t = ed?.res.find((r) => r.url === e.url);
        p(`- loaded when \`main.py\` is opened: \`${e.url}\` ${kb(e.bytes)} kB gzipped (${kb(e.decoded)} kB uncompressed)${t ? `, requested at ${fmtMs(t.start)} ms (click at ${fmtMs(ed.marks.click)} ms)` : ''}`);
      }
      if (!lazy.length) p('- opening `main.py` loaded no further asset');
      else p(`- JS + CSS with what opening \`main.py\` adds: ${kb(jsCssBytes + sum(lazy, (e) => e.bytes))} kB gzipped`);
      const extra = d.sizesEditor.filter((e) => !seen.has(e.url) && !e.url.startsWith('/assets/'));
      if (extra.length) p(`- other requests of the editor load not in the terminal load: ${extra.map((e) => `\`${e.url}\``).join(', ')}`);
    }
    p();
    p('| request | type | status | content-encoding | transferred B | uncompressed B | cache-control |');
    p('|---|---|---:|---|---:|---:|---|');
    for (const e of S) p(`| \`${e.url}\` | ${e.type} | ${e.status} | ${e.encoding || '–'} | ${e.bytes}${e.bytesFrom === 'content-length' ? '' : ` (${e.bytesFrom})`} | ${e.decoded ?? '–'} | ${e.cacheControl || '–'} |`);
    p();
  }

  // Caching headers
  p('### Caching headers');
  p();
  p('| resource | cache-control | expected | content-encoding | content-length | etag / last-modified |');
  p('|---|---|---|---|---:|---|');
  for (const c of d.caching) {
    const h = c.res.headers;
    p(`| ${c.what} | \`${c.cacheControl}\` | ${c.ok ? 'as expected' : `**expected \`${c.want}\`**`} | ${h['content-encoding'] ?? '–'} | ${h['content-length'] ?? '–'} | ${[h.etag, h['last-modified']].filter(Boolean).join(' / ') || 'none'} |`);
  }
  const warmAssets = [...d.termWarm, ...d.editWarm].flatMap((r) => r.res.filter((x) => x.url.startsWith('/assets/')));
  p();
  p(`Warm reloads: ${warmAssets.filter((x) => x.transferSize === 0).length} of ${warmAssets.length} asset loads came from the browser cache without a request to the server (transferSize 0).`);
  p();

  // Per-run values
  p('### Per-run values (ms)');
  p();
  p('| run | cold: prompt | cold: echo | warm: prompt | warm: echo | cold: tree | cold: file open | warm: tree | warm: file open |');
  p('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (let i = 0; i < opts.runs; i++) {
    const a = d.termCold[i]?.marks ?? {};
    const b = d.termWarm[i]?.marks ?? {};
    const c = d.editCold[i]?.marks ?? {};
    const e = d.editWarm[i]?.marks ?? {};
    p(`| ${i + 1} | ${fmtMs(a.promptVisible)} | ${fmtMs(a.echoVisible - a.enter)} | ${fmtMs(b.promptVisible)} | ${fmtMs(b.echoVisible - b.enter)} | ${fmtMs(c.tree)} | ${fmtMs(c.fileOpen)} | ${fmtMs(e.tree)} | ${fmtMs(e.fileOpen)} |`);
  }
  p();

  const notes = [];
  {
    const all = [...d.termCold, ...d.termWarm, ...d.editCold, ...d.editWarm].filter((r) => Number.isFinite(r.marks.ideRendered - r.marks.loadingFallback));
    const gaps = all.map((r) => r.marks.ideRendered - r.marks.loadingFallback);
    const idle = d.termCold.map((r) => r.marks.ideRendered - Math.max(...r.res.filter((x) => /\/assets\/.*\.js$/.test(x.url) && x.start < r.marks.ideRendered).map((x) => x.end)));
    const busy = d.termCold.filter((r) => {
      const from = r.marks.loadingFallback + 20;
      return (r.loaf ?? []).some((f) => f.start + f.duration > from && f.start < r.marks.ideRendered - 20);
    }).length;
    const near = gaps.filter((g) => g >= 290 && g <= 330).length;
    if (gaps.length && near >= gaps.length * 0.8) {
      notes.push(`in ${near} of ${gaps.length} loads (terminal and editor, cold and warm) the IDE appeared 290–330 ms (all: ${fmtMs(Math.min(...gaps))}–${fmtMs(Math.max(...gaps))} ms, p50 ${fmtMs(percentile(gaps, 50))}) after the "Loading the IDE…" fallback, although its scripts were downloaded ${fmtMs(percentile(idle, 50))} ms (p50, cold) before it rendered, and ${busy} of ${d.termCold.length} cold loads had a main-thread frame over 50 ms in that gap: React keeps a Suspense fallback it has committed on screen for at least 300 ms (FALLBACK_THROTTLE_MS), and \`App\` renders the IDE through \`lazy()\` + \`<Suspense>\``);
    }
  }
  const unconfirmed = [...d.termCold, ...d.termWarm].filter((r) => !r.promptConfirmed);
  if (unconfirmed.length) notes.push(`${unconfirmed.length} run(s) where the prompt after the echo differed from the detected one: ${unconfirmed.map((r) => `run ${r.n}: \`${r.promptAfterEcho}\``).join(', ')}`);
  const dupes = [...d.termCold, ...d.termWarm].filter((r) => r.echoLineCount !== 1);
  if (dupes.length) notes.push(`${dupes.length} run(s) where \`ready-N\` appeared ${dupes.map((r) => r.echoLineCount).join('/')} times`);
  if (d.sizesTerminal) {
    const big = d.sizesTerminal.filter((e) => e.decoded > 1024 && !e.encoding && (e.type === 'script' || e.type === 'stylesheet' || e.type === 'document'));
    if (big.length) notes.push(`served uncompressed although > 1 KB: ${big.map((e) => `\`${e.url}\` (${e.decoded} B)`).join(', ')}`);
    const mism = d.termCold[0]?.res.filter((r) => {
      const e = d.sizesTerminal.find((x) => x.url === r.url);
      return e && e.contentLength !== null && r.encodedBodySize && r.encodedBodySize !== e.contentLength;
    });
    if (mism?.length) notes.push(`content-length differs from the Resource Timing encodedBodySize for ${mism.map((r) => `\`${r.url}\``).join(', ')}`);
  }
  if (d.assetNoGzip.headers['content-encoding']) notes.push(`\`${d.entryJs}\` is gzip-encoded even without \`Accept-Encoding\``);
  if (d.allConsole.size) notes.push(`browser console: ${[...d.allConsole].slice(0, 8).map((c) => `\`${c.slice(0, 160)}\``).join('; ')}`);
  if (serverWarnings.length) notes.push(`server log warnings/errors (${serverWarnings.length}${serverWarnings.length >= 50 ? '+' : ''}): ${[...new Set(serverWarnings.map((w) => w.replace(/^\S+\s+/, '').slice(0, 200)))].slice(0, 6).map((w) => `\`${w}\``).join('; ')}`);
  if (notes.length) {
    p('### Notes');
    p();
    notes.forEach((n) => p(`- ${n}`));
    p();
  }
  return L.join('\n');
}

// ---------------------------------------------------------------- run

let exitCode = 0;
try {
  const md = await main();
  if (opts.out) {
    fs.writeFileSync(opts.out, md.endsWith('\n') ? md : md + '\n');
    log(`wrote ${opts.out}`);
  } else {
    process.stdout.write(md + '\n');
  }
} catch (e) {
  exitCode = 1;
  log(`FAILED: ${e?.stack ?? e}`);
  if (server) log(`--- server log (tail) ---\n${server.logTail(3000)}\n---`);
}
await cleanup();
clearTimeout(guard);
process.exit(exitCode);
