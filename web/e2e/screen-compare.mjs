// Renders two byte streams in xterm.js (headless, the emulator the IDE uses, not the one the
// runner uses) and compares the screens cell by cell: characters, colours, attributes, the
// cursor, which buffer is active, and the input modes. Used by the Rust tests of terminal
// screen replay (crates/cove/tests/it/replay.rs).
//
// Usage: node e2e/screen-compare.mjs JOB.json
// JOB: {"expected": STREAM, "actual": STREAM}, a STREAM being
//   {"cols": C, "rows": R, "steps": [{"data": BASE64} | {"resize": [C, R]}]}
// Prints {"equal": bool, "differences": [...], "expected": TEXT, "actual": TEXT}.

import { readFileSync } from 'node:fs';
import headless from '@xterm/headless';

const { Terminal } = headless;

async function render(stream) {
  const term = new Terminal({ cols: stream.cols, rows: stream.rows, allowProposedApi: true, scrollback: 10000 });
  for (const step of stream.steps) {
    if (step.resize) {
      term.resize(step.resize[0], step.resize[1]);
    } else {
      await new Promise((resolve) => term.write(Buffer.from(step.data, 'base64'), resolve));
    }
  }
  return term;
}

// A blank shows only its background and the attributes drawn across a cell (inverse,
// underline, strikethrough): its foreground, boldness or italics cannot be seen. avt keeps the
// whole pen on erased cells where xterm.js keeps only the background, so they are compared
// as seen.
function cellOf(cell) {
  const chars = cell.getChars() || ' ';
  if (chars === ' ') {
    return {
      chars,
      width: cell.getWidth(),
      bg: `${cell.getBgColorMode()}:${cell.getBgColor()}`,
      attrs: [cell.isInverse() && 'inverse', cell.isUnderline() && 'underline', cell.isStrikethrough() && 'strike']
        .filter(Boolean)
        .join(','),
      ...(cell.isInverse() ? { fg: `${cell.getFgColorMode()}:${cell.getFgColor()}` } : {}),
    };
  }
  return {
    chars: cell.getChars() || ' ',
    width: cell.getWidth(),
    fg: `${cell.getFgColorMode()}:${cell.getFgColor()}`,
    bg: `${cell.getBgColorMode()}:${cell.getBgColor()}`,
    attrs: [
      cell.isBold() && 'bold',
      cell.isDim() && 'dim',
      cell.isItalic() && 'italic',
      cell.isUnderline() && 'underline',
      cell.isBlink() && 'blink',
      cell.isInverse() && 'inverse',
      cell.isInvisible() && 'invisible',
      cell.isStrikethrough() && 'strike',
    ]
      .filter(Boolean)
      .join(','),
  };
}

/** The rows on view of one buffer, as cells. */
function viewOf(term, buffer) {
  const rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    const cells = [];
    for (let x = 0; x < term.cols; x++) {
      const cell = line?.getCell(x);
      cells.push(cell ? cellOf(cell) : { chars: ' ', width: 1, bg: '0:-1', attrs: '' });
    }
    rows.push(cells);
  }
  return rows;
}

function textOf(term, buffer) {
  const lines = [];
  for (let y = 0; y < term.rows; y++) {
    lines.push(buffer.getLine(buffer.viewportY + y)?.translateToString(true) ?? '');
  }
  return lines.join('\n');
}

function stateOf(term) {
  const active = term.buffer.active;
  const core = term._core;
  return {
    buffer: active.type,
    cursor: [active.cursorX, active.cursorY],
    cursorHidden: core?.coreService?.isCursorHidden ?? null,
    modes: term.modes,
  };
}

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const expected = await render(job.expected);
const actual = await render(job.actual);
const differences = [];
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
if (expected.cols !== actual.cols || expected.rows !== actual.rows) {
  differences.push({ what: 'size', expected: [expected.cols, expected.rows], actual: [actual.cols, actual.rows] });
}
const [es, as] = [stateOf(expected), stateOf(actual)];
for (const key of Object.keys(es)) {
  if (!same(es[key], as[key])) differences.push({ what: key, expected: es[key], actual: as[key] });
}
// The active buffer, and the normal one beneath an alternate screen.
const buffers = [['active', (t) => t.buffer.active]];
if (es.buffer === 'alternate') buffers.push(['normal', (t) => t.buffer.normal]);
for (const [name, pick] of buffers) {
  const [ev, av] = [viewOf(expected, pick(expected)), viewOf(actual, pick(actual))];
  for (let y = 0; y < ev.length; y++) {
    for (let x = 0; x < (ev[y]?.length ?? 0); x++) {
      if (!same(ev[y][x], av[y]?.[x])) {
        differences.push({ what: `${name} cell`, x, y, expected: ev[y][x], actual: av[y]?.[x] });
      }
    }
  }
}
console.log(
  JSON.stringify({
    equal: differences.length === 0,
    differences: differences.slice(0, 20),
    count: differences.length,
    expected: textOf(expected, expected.buffer.active),
    actual: textOf(actual, actual.buffer.active),
  }),
);
