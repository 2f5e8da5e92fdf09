// A Markdown file rendered beside its editor, as it is typed. The file is the workspace's (an
// attacker's text): the HTML is shown in a sandboxed frame with no scripts, no same origin
// and no network but images over https, so nothing in it can reach the IDE or the person.
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { EditorModel } from './model';

const CSP = "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'";

export function MarkdownPreview({ editor, path }: { editor: EditorModel; path: string }) {
  // Re-rendered on every change of the text (the cursor snapshot changes with it).
  useSyncExternalStore(editor.subscribe, editor.getCursor);
  const text = editor.textOf(path) ?? '';
  const [html, setHtml] = useState('');
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      void import('marked').then(({ marked }) => {
        const body = marked.parse(text, { async: false }) as string;
        if (live) setHtml(body);
      });
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [text]);
  const dark = document.documentElement.dataset.theme === 'dark' || (!document.documentElement.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
  const doc = `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${CSP}"><style>
body{font:14px/1.6 system-ui,sans-serif;margin:16px 24px;color:${dark ? '#d5d8dd' : '#1f2328'};background:${dark ? '#1e2125' : '#fff'}}
pre,code{font-family:ui-monospace,monospace;background:${dark ? '#2b2e33' : '#f3f4f6'};border-radius:4px}pre{padding:8px;overflow:auto}code{padding:1px 4px}
img{max-width:100%}a{color:${dark ? '#82aaff' : '#2f5fc4'}}table{border-collapse:collapse}td,th{border:1px solid #8884;padding:4px 8px}
</style></head><body>${html}</body></html>`;
  return <iframe className="markdown-preview" title={`Preview of ${path}`} sandbox="" srcDoc={doc} data-testid="markdown-preview" />;
}
