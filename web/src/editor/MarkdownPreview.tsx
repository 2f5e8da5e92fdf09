// A Markdown file rendered beside its editor, as it is typed. The file is the workspace's (an
// attacker's text): the HTML is shown in a sandboxed frame with no scripts, no same origin
// and no network but images over https, so nothing in it can reach the IDE or the person.
// Images the file names by a relative path are read from the workspace here and handed to
// the frame inline, as data: URLs (an image cannot run code, an SVG one included).
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { EditorModel } from './model';

const IMAGE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  svg: 'image/svg+xml',
  bmp: 'image/bmp',
  ico: 'image/x-icon',
};
/** Images larger than this (base64 characters, about 6 MiB) are left out. */
const MAX_IMAGE_BASE64 = 8 * 1024 * 1024;
const MAX_IMAGES = 50;

/**
 * The workspace path an image `src` of the Markdown file `from` names: relative to the file's
 * folder, or to the workspace root when it starts with `/`. Null for URLs, and for paths that
 * climb above the root.
 */
function workspaceImagePath(src: string, from: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(src) || src.startsWith('//') || src.startsWith('#')) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(src.split(/[?#]/)[0]);
  } catch {
    return null;
  }
  const parts = decoded.startsWith('/') ? [] : from.split('/').slice(0, -1);
  for (const part of decoded.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') parts.push(part);
    else if (parts.pop() === undefined) return null;
  }
  return parts.length ? parts.join('/') : null;
}

/** `html` with its workspace images inline. DOMParser's document is inert: nothing in it loads or runs. */
async function withWorkspaceImages(html: string, from: string, load: (path: string) => Promise<string | null>): Promise<string> {
  if (!/<img/i.test(html)) return html;
  const doc = new DOMParser().parseFromString(html, 'text/html');
  let inlined = 0;
  const images = [...doc.querySelectorAll('img[src]')].slice(0, MAX_IMAGES);
  await Promise.all(
    images.map(async (img) => {
      const path = workspaceImagePath(img.getAttribute('src') ?? '', from);
      const type = path ? IMAGE_TYPES[path.slice(path.lastIndexOf('.') + 1).toLowerCase()] : undefined;
      if (!path || !type) return;
      const data = await load(path);
      if (!data) return;
      img.setAttribute('src', `data:${type};base64,${data}`);
      inlined++;
    }),
  );
  return inlined ? doc.body.innerHTML : html;
}

const CSP = "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'";

export function MarkdownPreview({ editor, path }: { editor: EditorModel; path: string }) {
  // Re-rendered on every change of the text (the cursor snapshot changes with it).
  useSyncExternalStore(editor.subscribe, editor.getCursor);
  const text = editor.textOf(path) ?? '';
  const [html, setHtml] = useState('');
  // Each image is read once while the preview is open (a changed image shows on reopening).
  const images = useRef(new Map<string, Promise<string | null>>());
  useEffect(() => {
    let live = true;
    const load = (image: string) => {
      let read = images.current.get(image);
      if (!read) {
        read = editor.readBase64(image).then(
          (data) => (data.length <= MAX_IMAGE_BASE64 ? data : null),
          () => null,
        );
        images.current.set(image, read);
      }
      return read;
    };
    const t = setTimeout(() => {
      void import('marked').then(async ({ marked }) => {
        const body = await withWorkspaceImages(marked.parse(text, { async: false }) as string, path, load);
        if (live) setHtml(body);
      });
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [text, path, editor]);
  const dark = document.documentElement.dataset.theme === 'dark' || (!document.documentElement.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
  const doc = `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${CSP}"><style>
body{font:14px/1.6 system-ui,sans-serif;margin:16px 24px;color:${dark ? '#d5d8dd' : '#1f2328'};background:${dark ? '#1e2125' : '#fff'}}
pre,code{font-family:ui-monospace,monospace;background:${dark ? '#2b2e33' : '#f3f4f6'};border-radius:4px}pre{padding:8px;overflow:auto}code{padding:1px 4px}
img{max-width:100%}a{color:${dark ? '#82aaff' : '#2f5fc4'}}table{border-collapse:collapse}td,th{border:1px solid #8884;padding:4px 8px}
</style></head><body>${html}</body></html>`;
  return <iframe className="markdown-preview" title={`Preview of ${path}`} sandbox="" srcDoc={doc} data-testid="markdown-preview" />;
}
