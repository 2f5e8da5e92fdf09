// What the scripts that drive a browser share: bounded waits and reading and typing in the
// IDE's terminals (web/e2e/run.mjs, web/e2e/accounts.mjs, bench/browser.mjs).

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
