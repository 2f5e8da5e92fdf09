// A Markdown file rendered beside its editor, as it is typed. The file is the workspace's (an
// attacker's text): the HTML is shown in a sandboxed frame with no scripts, no same origin,
// no styles but cove's own (a nonce: the file's CSS could otherwise read attributes out to a
// server through background images) and no network but images over https, so nothing in it
// can reach the IDE or the person. Images the file names by a relative path are read from
// the workspace here and handed to the frame inline, as data: URLs, when their bytes are an
// image's (a link named logo.png to a credentials file is not shown); an image cannot run
// code, an SVG one included.
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { EditorModel } from './model';

/** The names of files the preview shows as images (their bytes must say so too). */
const IMAGE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'svg', 'bmp', 'ico']);
/** The image type `bytes` (the start of a file) are, whatever the file's name says. */
function imageTypeOf(bytes: string): string | null {
  const at = (offset: number, magic: string) => bytes.startsWith(magic, offset);
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'image/png';
  if (at(0, '\xff\xd8\xff')) return 'image/jpeg';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'image/gif';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'image/webp';
  if (at(4, 'ftypavif') || at(4, 'ftypavis')) return 'image/avif';
  if (at(0, 'BM')) return 'image/bmp';
  if (at(0, '\0\0\x01\0')) return 'image/x-icon';
  if (/^(\ufeff|\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!doctype svg[^>]*>\s*)?<svg[\s>]/i.test(bytes)) return 'image/svg+xml';
  return null;
}

/** Images larger than this (base64 characters, about 6 MiB) are left out. */
const MAX_IMAGE_BASE64 = 8 * 1024 * 1024;
const MAX_IMAGES = 50;
/** Images read at once (they share the workspace's socket with the editor). */
const READS_AT_ONCE = 4;

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
  const inline = async (img: Element) => {
    const path = workspaceImagePath(img.getAttribute('src') ?? '', from);
    if (!path || !IMAGE_EXTENSIONS.has(path.slice(path.lastIndexOf('.') + 1).toLowerCase())) return;
    const data = await load(path);
    // The first 768 bytes (1024 base64 characters) tell an image from anything else (an SVG
    // may start with an XML declaration and a comment).
    const type = data ? imageTypeOf(atob(data.slice(0, 1024))) : null;
    if (!data || !type) return;
    img.setAttribute('src', `data:${type};base64,${data}`);
    inlined++;
  };
  for (let i = 0; i < images.length; i += READS_AT_ONCE) await Promise.all(images.slice(i, i + READS_AT_ONCE).map(inline));
  return inlined ? doc.body.innerHTML : html;
}

const policy = (nonce: string) => `default-src 'none'; img-src https: data:; style-src 'nonce-${nonce}'`;

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
  // New for every render: the file's text cannot know it.
  const nonce = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const doc = `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${policy(nonce)}"><style nonce="${nonce}">
body{font:14px/1.6 system-ui,sans-serif;margin:16px 24px;color:${dark ? '#d5d8dd' : '#1f2328'};background:${dark ? '#1e2125' : '#fff'}}
pre,code{font-family:ui-monospace,monospace;background:${dark ? '#2b2e33' : '#f3f4f6'};border-radius:4px}pre{padding:8px;overflow:auto}code{padding:1px 4px}
img{max-width:100%}a{color:${dark ? '#82aaff' : '#2f5fc4'}}table{border-collapse:collapse}td,th{border:1px solid #8884;padding:4px 8px}
</style></head><body>${html}</body></html>`;
  return <iframe className="markdown-preview" title={`Preview of ${path}`} sandbox="" srcDoc={doc} data-testid="markdown-preview" />;
}
