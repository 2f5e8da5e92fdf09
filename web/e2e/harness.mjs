// What the scripts that drive a browser share: a scenario's steps, bounded waits and reading
// and typing in the IDE's terminals (web/e2e/run.mjs, accounts.mjs, ide.mjs, bench/browser.mjs).

/**
 * The steps of one browser scenario: each bounded in time and logged as it ends ("ok", or
 * "FAIL" with why), then summed up last with every failure again on a line of its own, so the
 * end of a long CI log names what failed (crates/cove/tests/browser.rs quotes those lines).
 */
export class Scenario {
  constructor(log) {
    this.log = log;
    this.passed = 0;
    this.failures = [];
  }

  get failed() {
    return this.failures.length;
  }

  /**
   * Runs step `name` for at most `ms`; true when it passed. With `stopOnFailure` a failure is
   * thrown on (for scenarios whose later steps need the earlier ones).
   */
  async step(name, fn, ms = 30_000, stopOnFailure = false) {
    const t0 = Date.now();
    try {
      await withTimeout(Promise.resolve().then(fn), ms, name);
      this.passed++;
      this.log(`  ok   ${name} (${Date.now() - t0} ms)`);
      return true;
    } catch (e) {
      this.fail(`${name} (${Date.now() - t0} ms)`, e);
      if (stopOnFailure) throw e;
      return false;
    }
  }

  /** Counts and logs a failure outside the steps (the setup, the whole run's time limit). */
  fail(name, e) {
    const why = String(e?.message ?? e);
    this.failures.push({ name, why });
    this.log(`  FAIL ${name}\n       ${why.split('\n').join('\n       ')}`);
  }

  /** The last lines of the run: each failure again, then "N passed, N failed". */
  summary() {
    for (const f of this.failures) this.log(`FAILED STEP: ${f.name}: ${f.why.split('\n')[0].slice(0, 400)}`);
    this.log(`${this.passed} passed, ${this.failed} failed`);
  }
}

/** `promise`, or an error naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(t)),
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Polls `fn` every `every` ms until it returns something truthy (returned), for at most `ms`. */
export async function waitFor(fn, ms, what, every = 150) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Text of a terminal's whole buffer (scrollback included); the first terminal without an id. */
export async function terminalText(page, terminalId) {
  return page.evaluate((id) => {
    const map = window.__coveTerminals;
    if (!map) return '';
    const term = id ? map.get(id) : [...map.values()][0];
    if (!term) return '';
    const buf = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }, terminalId ?? null);
}

/** Clicks the active terminal and types `text` into it. */
export async function typeInTerminal(page, text) {
  await page.locator('.terminal-host[data-active="true"] .xterm').first().click({ timeout: 10_000 });
  await page.keyboard.type(text, { delay: 5 });
}

/** Runs `cleanups` newest first, each bounded by `ms`; a failing one is logged, not thrown. */
export async function runCleanups(cleanups, log, ms) {
  for (const f of cleanups.reverse()) {
    try {
      await withTimeout(Promise.resolve().then(f), ms, 'cleanup');
    } catch (e) {
      log(`cleanup: ${e.message}`);
    }
  }
  cleanups.length = 0;
}
