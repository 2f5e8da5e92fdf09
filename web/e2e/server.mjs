// `cove serve` for the scripts that drive a browser against it: the browser
// tests (web/e2e/run.mjs) and the browser benchmark (bench/browser.mjs).
//
// startServer() runs `cove serve --bind-addr 127.0.0.1:0 --data-dir <fresh
// temp dir> --auth none [extra args]` (no `--auth none` when the extra args
// name an --auth), resolves once the server prints
// `cove listening on http://ADDR` (or fails after a bounded wait, with the
// tail of its output in the message) and keeps the tail of its output for
// later failure messages. server.stop() ends it: SIGTERM, SIGKILL after a
// bounded wait, then whatever it left running, then its data dir.
//
// Workspace runners outlive the server by design (a restart must not end
// anyone's shell), so a run deletes its workspaces with deleteWorkspaces()
// while the server is still up; stop() only kills what that missed.
//
// Requests follow the server's rules for clients that are not browsers: no
// Origin header, JSON bodies only with `Content-Type: application/json`, and
// the Host the server printed (127.0.0.1:PORT).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Characters of server output kept for failure messages. */
const OUTPUT_KEPT = 200_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `cove serve` on a free port with a fresh data dir.
 *
 * Options: `bin` (the cove binary, required), `args` (extra `serve`
 * arguments), `env` (added to the environment; RUST_LOG defaults to info),
 * `cwd`, `dirPrefix` (of the data dir's name), `timeoutMs` (for the
 * listening line), `log` (progress messages) and `onLine(line, stream)` (every
 * line of output, for callers that collect warnings).
 *
 * Resolves to `{ base, port, pid, child, dataDir, logTail(chars), stop() }`.
 */
export async function startServer({ bin, args = [], env = {}, cwd, dirPrefix = 'cove-data-', timeoutMs = 30_000, log = () => {}, onLine = () => {} }) {
  if (!bin || !fs.existsSync(bin)) throw new Error(`cove binary not found at ${bin}`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  // Every caller is the administrator unless the caller asks for sign-in (`--auth password`).
  const auth = args.includes('--auth') ? [] : ['--auth', 'none'];
  // A config file of the data dir's own (none is there): ~/.config/cove/config.yaml must not
  // change what is tested.
  const config = args.some((a) => a.startsWith('--config')) ? [] : [`--config=${path.join(dataDir, 'config.yaml')}`];
  const argv = ['serve', '--bind-addr', '127.0.0.1:0', '--data-dir', dataDir, ...auth, ...config, ...args];
  log(`starting ${bin} ${argv.join(' ')}`);
  const child = spawn(bin, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', ...env } });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ error }));
  });
  let output = '';
  const logTail = (chars = 3000) => output.slice(-chars);

  let announce;
  const listening = new Promise((resolve, reject) => {
    announce = resolve;
    exited.then(({ code, signal, error }) => reject(error ?? new Error(`the server exited early (code ${code}, signal ${signal})\n${logTail(2000)}`)));
  });
  // It may still fail after a timeout settled the race below.
  listening.catch(() => {});
  for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]]) {
    let partial = '';
    stream.on('data', (d) => {
      const s = d.toString();
      output += s;
      if (output.length > OUTPUT_KEPT) output = output.slice(-OUTPUT_KEPT / 2);
      const lines = (partial + s).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        const m = /cove listening on (http:\/\/[^\s/]+)/.exec(line);
        if (m) announce(m[1]);
        onLine(line, name);
      }
    });
  }

  let stopping = null;
  const server = {
    base: '',
    port: 0,
    pid: child.pid,
    child,
    dataDir,
    logTail,
    /** Ends the server and what it left running; removes the data dir. Idempotent. */
    stop: ({ graceMs = 5000 } = {}) => (stopping ??= stop(child, exited, dataDir, graceMs, log)),
  };
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no \`cove listening on http://ADDR\` line within ${timeoutMs} ms\n${logTail(2000)}`)), timeoutMs);
  });
  try {
    server.base = await Promise.race([listening, timeout]);
  } catch (e) {
    await server.stop({ graceMs: 1000 });
    throw e;
  } finally {
    clearTimeout(timer);
  }
  server.port = Number(new URL(server.base).port);
  return server;
}

/**
 * Deletes the workspaces for which `which(workspace)` is true, through the
 * API of the server at `base`, so that their runners end. Never throws:
 * returns the number deleted and reports failures through `log`.
 */
export async function deleteWorkspaces(base, which, { log = () => {}, timeoutMs = 15_000 } = {}) {
  const request = (method, p) => fetch(base + p, { method, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  let list;
  try {
    const r = await request('GET', '/api/workspaces');
    if (!r.ok) throw new Error(`GET /api/workspaces answered ${r.status}`);
    list = await r.json();
  } catch (e) {
    log(`cleanup: cannot list the workspaces: ${e?.message ?? e}`);
    return 0;
  }
  let deleted = 0;
  for (const w of Array.isArray(list) ? list.filter(which) : []) {
    try {
      const r = await request('DELETE', `/api/workspaces/${encodeURIComponent(w.id)}`);
      if (!r.ok && r.status !== 404) throw new Error(`answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
      deleted++;
    } catch (e) {
      log(`cleanup: DELETE workspace ${w.id} (${w.name}): ${e?.message ?? e}`);
    }
  }
  return deleted;
}

async function stop(child, exited, dataDir, graceMs, log) {
  // Runner pids first: their files are there while the server lives.
  const runners = runnerPids(dataDir);
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    log(`stopping the server (pid ${child.pid}, SIGTERM)`);
    signal(child.pid, 'SIGTERM');
    if (!(await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]))) {
      log(`the server ignored SIGTERM for ${graceMs} ms; SIGKILL`);
      signal(child.pid, 'SIGKILL');
      await Promise.race([exited, sleep(2000)]);
    }
  }
  // Only processes whose command line names this data dir: never a recycled pid.
  await end(runners.filter((pid) => isAlive(pid) && cmdlineOf(pid).includes(dataDir)), 5000, 'runner', log);
  const strays = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid && cmdlineOf(d).includes(dataDir))
    .map(Number);
  await end(strays, 3000, 'stray process', log);
  try {
    fs.rmSync(dataDir, { recursive: true, force: true });
  } catch (e) {
    log(`cannot remove ${dataDir}: ${e?.message ?? e}`);
  }
}

/** SIGTERM, then SIGKILL for those still alive after `ms`. */
async function end(pids, ms, what, log) {
  for (const pid of pids) {
    log(`${what} pid ${pid} (${cmdlineOf(pid).slice(0, 80)}) still running: SIGTERM`);
    signal(pid, 'SIGTERM');
  }
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(50);
  for (const pid of pids.filter(isAlive)) {
    log(`${what} pid ${pid} ignored SIGTERM for ${ms} ms; SIGKILL`);
    signal(pid, 'SIGKILL');
  }
}

function runnerPids(dataDir) {
  const runDir = path.join(dataDir, 'run');
  try {
    return fs
      .readdirSync(runDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(fs.readFileSync(path.join(runDir, f), 'utf8').trim()))
      .filter((pid) => Number.isInteger(pid) && pid > 1);
  } catch {
    return [];
  }
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function isAlive(pid) {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
