// The IDE's file tools in a real browser, steps of e2e/ide.mjs (which runs them in its order,
// on its page and workspace): search and replace across files, the Git view, and folders
// uploaded by drag and drop and downloaded as archives.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { terminalText, typeInTerminal, waitFor } from './harness.mjs';

/** Search finds across files, replace previews and applies, one undo takes it back. */
export async function searchAndReplace({ step, page, put, read, editorText, shotsDir }) {
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
}

/** The Git view: status, a diff that stages one hunk, a commit, and hunks discarded. */
export async function sourceControl({ step, page, call, id, put, read, content, editorText, openFile, shotsDir }) {
  await step('source control: an edit shows as modified, its diff stages one hunk, a commit lands in git log', async () => {
    // The repository, made as a script would make it.
    for (const op of [{ op: 'init' }, { op: 'stage', paths: ['app.py', 'helpers.py'] }, { op: 'commit', message: 'base' }]) {
      const r = await call('POST', `/api/workspaces/${id}/git`, op);
      if (r.status !== 200 || !r.body.ok) throw new Error(`${op.op}: ${r.text}`);
    }
    await page.getByTestId('sidebar-files').click();
    await openFile('app.py');
    await content.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('print("second hunk")\n');
    await page.keyboard.press('Control+Home');
    await page.keyboard.insertText('# first hunk\n');
    await page.keyboard.press('Control+S');
    await waitFor(async () => (await read('app.py')).includes('second hunk'), 10_000, 'app.py saved');
    await page.keyboard.press('Control+Shift+G');
    const row = page.getByTestId('scm-changes').getByTestId('scm-file-app.py');
    await row.waitFor({ timeout: 15_000 });
    if (!/M/.test((await row.locator('.scm-letter').textContent()) ?? '')) throw new Error('app.py is not marked modified');
    await row.locator('.scm-open').click();
    await page.locator('.diff-pane .cm-mergeView').waitFor();
    const hunks = page.locator('.diff-pane .diff-hunk-button:not(.diff-discard-button)');
    await waitFor(async () => (await hunks.count()) === 2, 10_000, 'two hunks in the diff');
    await page.screenshot({ path: path.join(shotsDir, 'ide-diff.png') });
    await hunks.first().click();
    await page.getByTestId('scm-staged').getByTestId('scm-file-app.py').waitFor({ timeout: 15_000 });
    await page.getByTestId('scm-changes').getByTestId('scm-file-app.py').waitFor();
    await page.getByTestId('diff-close').click();
    await page.getByTestId('scm-message').fill('Stage one hunk from cove');
    await page.getByTestId('scm-commit').click();
    await waitFor(async () => (await page.getByTestId('scm-staged').locator('li').count()) === 0, 15_000, 'the staged list empty after the commit');
    await page.screenshot({ path: path.join(shotsDir, 'ide-scm.png') });
    await page.getByTestId('panel-tab-terminal').click();
    await typeInTerminal(page, 'git log --oneline -2; git diff --stat\n');
    await waitFor(async () => /Stage one hunk from cove/.test(await terminalText(page)), 15_000, 'the commit in git log');
    // Only the staged hunk was committed: the other is still a change.
    await waitFor(async () => /app\.py \| 1 \+/.test(await terminalText(page)), 15_000, 'the other hunk still unstaged');
    // Discarded from the diff one hunk at a time, a changed line and then the added one: the
    // working file takes the committed text back, exactly.
    const committed = '# first hunk\nfrom helpers import welcome\n\nprint(welcome("cove"))\n';
    await put('app.py', (await read('app.py')).replace('import welcome\n', 'import welcome as hi\n'));
    await page.keyboard.press('Control+Shift+G');
    await page.getByTestId('scm-changes').getByTestId('scm-file-app.py').locator('.scm-open').click();
    const discard = page.locator('.diff-pane .diff-discard-button');
    await waitFor(async () => (await discard.count()) === 2, 10_000, 'two discard buttons in the diff');
    await discard.first().click();
    await waitFor(async () => (await read('app.py')) === committed + 'print("second hunk")\n', 10_000, 'the changed line discarded on disk, the other hunk kept');
    await waitFor(async () => (await discard.count()) === 1, 10_000, 'one discard button left');
    await discard.click();
    await waitFor(async () => (await read('app.py')) === committed, 10_000, 'the added line discarded on disk');
    await page.getByTestId('scm-changes').getByTestId('scm-file-app.py').waitFor({ state: 'detached', timeout: 15_000 });
    await page.getByTestId('diff-close').click();
    // A file with Windows line breaks keeps them: only the discarded hunk changes, byte for byte.
    const crlf = 'one\r\ntwo\r\nthree\r\n';
    await put('crlf.txt', crlf);
    for (const op of [{ op: 'stage', paths: ['crlf.txt'] }, { op: 'commit', message: 'crlf' }]) {
      const r = await call('POST', `/api/workspaces/${id}/git`, op);
      if (r.status !== 200 || !r.body.ok) throw new Error(`${op.op}: ${r.text}`);
    }
    await put('crlf.txt', 'one\r\nTWO\r\nthree\r\n');
    await page.getByTestId('scm-changes').getByTestId('scm-file-crlf.txt').locator('.scm-open').click();
    await waitFor(async () => (await discard.count()) === 1, 10_000, 'a discard button in the CRLF diff');
    await discard.click();
    await waitFor(async () => (await read('crlf.txt')) === crlf, 10_000, 'the CRLF file back byte for byte');
    await page.getByTestId('diff-close').click();
    await page.getByTestId('sidebar-files').click();
    await waitFor(async () => !(await editorText()).includes('second hunk'), 10_000, 'the open tab follows');
  }, 90_000);
}

/** A dropped folder uploads whole, downloads back identical, and asks before replacing. */
export async function folderUpload({ step, page, context, base, id, read, cleanups, shotsDir }) {
  await step('a folder dropped on the tree uploads whole, and downloads back identical', async () => {
    const local = fs.mkdtempSync(path.join(os.tmpdir(), 'cove-upload-'));
    cleanups.push(() => fs.rmSync(local, { recursive: true, force: true }));
    const folder = path.join(local, 'assets');
    fs.mkdirSync(path.join(folder, 'deep', 'er'), { recursive: true });
    fs.writeFileSync(path.join(folder, 'readme.txt'), 'uploaded by drag and drop\n');
    fs.writeFileSync(path.join(folder, 'deep', 'data.bin'), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)));
    fs.writeFileSync(path.join(folder, 'deep', 'er', 'note.md'), '# note\n');
    await page.getByTestId('sidebar-files').click();
    // A real drop of a real folder: Chromium's DevTools protocol drags files from disk.
    const target = page.getByTestId('file-tree');
    const box = await target.boundingBox();
    const cdp = await context.newCDPSession(page);
    const at = { x: box.x + box.width / 2, y: box.y + box.height - 20 };
    const data = { items: [], files: [folder], dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
    // Files go up one at a time in the order the browser lists them (the file system's own):
    // the whole folder is there when every file is, byte for byte.
    const files = ['readme.txt', 'deep/data.bin', 'deep/er/note.md'];
    const uploaded = async (file) => {
      const res = await fetch(`${base}/api/workspaces/${id}/files/assets/${file}`);
      return res.ok && Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(path.join(folder, file)));
    };
    await waitFor(async () => (await Promise.all(files.map(uploaded))).every(Boolean), 30_000, 'the whole folder uploaded');
    await page.getByTestId('tree-item-assets').waitFor();
    // Downloaded as the person would: the tree's menu.
    await page.getByTestId('tree-item-assets').click({ button: 'right' });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('menuitem', { name: 'Download as .tar.gz' }).click()]);
    const tarball = path.join(local, 'assets.tar.gz');
    await download.saveAs(tarball);
    const back = path.join(local, 'back');
    fs.mkdirSync(back);
    execFileSync('tar', ['-xzf', tarball, '-C', back]);
    for (const file of files) {
      if (!fs.readFileSync(path.join(back, 'assets', file)).equals(fs.readFileSync(path.join(folder, file)))) throw new Error(`${file} did not come back identical`);
    }
    await page.screenshot({ path: path.join(shotsDir, 'ide-upload.png') });

    // The same folder again, changed and with a new file: nothing is replaced without asking.
    fs.writeFileSync(path.join(folder, 'readme.txt'), 'changed on the laptop\n');
    fs.writeFileSync(path.join(folder, 'added.txt'), 'new\n');
    const dropAgain = async () => {
      for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
    };
    await dropAgain();
    const question = page.getByRole('dialog').filter({ hasText: 'Replace 3 files?' });
    await question.waitFor({ timeout: 15_000 });
    await page.screenshot({ path: path.join(shotsDir, 'ide-upload-replace.png') });
    await question.getByRole('button', { name: 'Upload only new files' }).click();
    await waitFor(async () => (await read('assets/added.txt')) === 'new\n', 15_000, 'only the new file uploaded');
    // Every upload of that drop is over (a wrongly replaced file might go after added.txt).
    await page.getByTestId('upload-progress').waitFor({ state: 'detached', timeout: 15_000 });
    if ((await read('assets/readme.txt')) !== 'uploaded by drag and drop\n') throw new Error('an existing file was replaced after "Upload only new files"');
    await dropAgain();
    await page.getByRole('dialog').filter({ hasText: 'Replace 4 files?' }).getByRole('button', { name: 'Replace' }).click();
    await waitFor(async () => (await read('assets/readme.txt')) === 'changed on the laptop\n', 15_000, 'the file replaced when asked to');
  }, 60_000);
}
