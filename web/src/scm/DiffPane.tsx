// A changed file side by side (@codemirror/merge): the index against the working tree, where
// a chunk's arrow stages that hunk and its ↺ discards it; or HEAD against the index, where the
// arrow unstages it.
import { useEffect, useRef, useState } from 'react';
import { EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import type { Chunk } from '@codemirror/merge';
import { Icon, notify } from '../app/feedback';
import type { WorkspaceClient } from '../api/workspace';
import { editorHighlighting, editorTheme } from '../editor/theme';
import { loadLanguage } from '../editor/languages';
import type { GitStore } from './store';
import { discardChange, discardControls } from './discard';

export interface DiffTarget {
  path: string;
  /** `unstaged`: index ↔ working tree; `staged`: HEAD ↔ index. */
  side: 'unstaged' | 'staged';
}

export function DiffPane({ target, store, client, onClose }: { target: DiffTarget; store: GitStore; client: WorkspaceClient; onClose: () => void }) {
  const hostRef = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let view: { a: EditorView; destroy(): void } | null = null;
    let live = true;
    const staged = target.side === 'staged';
    (async () => {
      const [{ MergeView, getChunks }, language] = await Promise.all([import('@codemirror/merge'), loadLanguage(target.path) ?? Promise.resolve([])]);
      const left = (await store.show(target.path, staged ? 'head' : 'index')) ?? '';
      // The working file's version: a discard writes over that version only, never over a
      // change made meanwhile (in a terminal, another tab).
      let version: string | null = null;
      const right = staged
        ? ((await store.show(target.path, 'index')) ?? '')
        : await client.readFile(target.path).then(
            (f) => (f.encoding === 'utf8' ? ((version = f.version), f.content) : ''),
            () => '',
          );
      if (!live || !hostRef.current) return;
      // The side that is the index is written back to git whenever a chunk's arrow changes it.
      const writeIndex = EditorView.updateListener.of((u) => {
        if (!u.docChanged) return;
        void store.run({ op: 'setIndex', path: target.path, content: u.state.sliceDoc() }).then((r) => {
          if (!r.ok) notify(`git: ${r.output}`, 'error');
        });
      });
      const base = [editorTheme, editorHighlighting, language, EditorState.readOnly.of(true), EditorView.editable.of(false)];
      // Each side keeps its file's line breaks (CRLF stays CRLF): what is written back is the
      // file's bytes, never the editor's \n-joined lines.
      const breaks = (text: string) => EditorState.lineSeparator.of(text.includes('\r\n') ? '\r\n' : '\n');
      const named = (what: string) => EditorView.contentAttributes.of({ 'aria-label': `${target.path}, ${what}` });
      // One discard at a time: each writes over the version the one before it made.
      let writing = false;
      const discard = (working: EditorView, chunk: Chunk) => {
        if (!view || version === null || writing) return;
        const change = discardChange(view.a.state.doc, working.state.doc, chunk, view.a.state.lineBreak);
        const text = working.state.update({ changes: change }).state.sliceDoc();
        writing = true;
        client
          .writeFile(target.path, text, version)
          .then(
            (written) => {
              version = written.version;
              working.dispatch({ changes: change, userEvent: 'discard' });
            },
            (e) => notify(`Not discarded: ${e instanceof Error ? e.message : String(e)} (close and reopen the diff to see the file as it is)`, 'error'),
          )
          .finally(() => (writing = false));
      };
      // Only a text file read whole can take a chunk back.
      const discarding = !staged && version !== null ? discardControls(getChunks, discard) : [];
      view = new MergeView({
        a: { doc: left, extensions: [...base, breaks(left), named(staged ? 'as committed' : 'as staged'), staged ? [] : writeIndex] },
        b: { doc: right, extensions: [...base, breaks(right), named(staged ? 'as staged' : 'in the working tree'), staged ? writeIndex : discarding] },
        parent: hostRef.current,
        revertControls: staged ? 'a-to-b' : 'b-to-a',
        renderRevertControl: () => {
          const button = document.createElement('button');
          button.className = 'diff-hunk-button';
          button.textContent = staged ? '→' : '←';
          button.title = staged ? 'Unstage this hunk' : 'Stage this hunk';
          button.setAttribute('aria-label', button.title);
          return button;
        },
        collapseUnchanged: { margin: 3, minSize: 6 },
      });
    })().catch((e) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
      view?.destroy();
    };
  }, [target, store, client]);
  return (
    <section className="diff-pane" aria-label={`Changes in ${target.path}`} data-testid="diff-pane">
      <header className="diff-header">
        <Icon name="split" size={14} />
        <strong>{target.path}</strong>
        <span className="muted">{target.side === 'staged' ? 'HEAD ↔ staged (the arrows unstage a hunk)' : 'staged ↔ working tree (← stages a hunk, ↺ discards it)'}</span>
        <button type="button" className="icon-button" aria-label="Close the diff" onClick={onClose} data-testid="diff-close">
          <Icon name="close" />
        </button>
      </header>
      {error && <p className="error">{error}</p>}
      <div ref={hostRef} className="diff-host" />
    </section>
  );
}
