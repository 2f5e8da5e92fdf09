// Upload of files and folders dropped on the file tree: each file is PUT to the workspace
// (the runner checks its size and the workspace's storage limit), one at a time, with the
// bytes sent so far reported for a progress bar. Folders are read through the browser's
// entry API, their structure kept.
import type { DirListing } from '../api/generated';
import { request } from '../api/rest';
import { ApiError } from '../api/types';

/** One file to upload and where it goes, relative to the workspace root. */
export interface Upload {
  path: string;
  file: File;
}

export interface UploadProgress {
  done: number;
  total: number;
  bytes: number;
  totalBytes: number;
  current: string;
}

/** Whether a drag carries files from outside the page. */
export function carriesFiles(dt: DataTransfer): boolean {
  return dt.types.includes('Files');
}

function readEntries(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  return new Promise((resolve, reject) => {
    // readEntries answers in batches (Chromium: 100) until an empty one.
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, prefix: string, out: Upload[], limit: number): Promise<void> {
  if (out.length >= limit) return;
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path, file });
  } else if (entry.isDirectory) {
    for (const child of await readEntries(entry as FileSystemDirectoryEntry)) await walk(child, path, out, limit);
  }
}

/** The files a drop carries (folders walked), to go under `dir`; at most `limit` of them. */
export async function droppedFiles(dt: DataTransfer, dir: string, limit = 10_000): Promise<Upload[]> {
  const out: Upload[] = [];
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length) {
    for (const e of entries) await walk(e, dir, out, limit);
  } else {
    for (const file of [...dt.files]) out.push({ path: dir ? `${dir}/${file.name}` : file.name, file });
  }
  return out;
}

/** The REST route of a workspace's file or folder (`path` '' is the root). */
const fileRoute = (workspaceId: string, path: string) => `/api/workspaces/${encodeURIComponent(workspaceId)}/files/${path.split('/').map(encodeURIComponent).join('/')}`;

/**
 * The uploads whose path holds a file already: each target folder is listed once (eight at a
 * time). A folder that does not exist yet holds nothing, nor does a path that is a file (the
 * upload then fails and says so); any other failure to list is thrown, since an upload over
 * a folder nobody could list would replace its files unasked.
 */
export async function alreadyThere(workspaceId: string, uploads: Upload[]): Promise<Upload[]> {
  const byFolder = new Map<string, Upload[]>();
  for (const u of uploads) {
    const folder = u.path.includes('/') ? u.path.slice(0, u.path.lastIndexOf('/')) : '';
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), u]);
  }
  const found: Upload[] = [];
  const folders = [...byFolder.keys()];
  const listOne = async (folder: string) => {
    try {
      const listing = await request<DirListing>('GET', fileRoute(workspaceId, folder));
      const names = new Set((listing?.entries ?? []).map((e) => e.name));
      for (const u of byFolder.get(folder) ?? []) if (names.has(u.path.slice(u.path.lastIndexOf('/') + 1))) found.push(u);
    } catch (e) {
      // Not there yet (404), or a file where the folder would be (its bytes are no listing).
      if ((e instanceof ApiError && e.status === 404) || e instanceof SyntaxError) return;
      throw new Error(`cannot list ${folder || 'the workspace'}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  for (let i = 0; i < folders.length; i += 8) await Promise.all(folders.slice(i, i + 8).map(listOne));
  return found;
}

function put(workspaceId: string, upload: Upload, onBytes: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `${fileRoute(workspaceId, upload.path)}?createParents=true`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 300) return resolve();
      let message = `${xhr.status}`;
      try {
        message = JSON.parse(xhr.responseText).error.message;
      } catch {
        /* the status says it */
      }
      reject(new Error(`${upload.path}: ${message}`));
    };
    xhr.onerror = () => reject(new Error(`${upload.path}: the connection failed`));
    xhr.send(upload.file);
  });
}

/** Uploads one file after another; stops at the first refusal (a full workspace stays full). */
export async function uploadAll(workspaceId: string, uploads: Upload[], progress: (p: UploadProgress) => void): Promise<{ done: number; error?: string }> {
  const totalBytes = uploads.reduce((n, u) => n + u.file.size, 0);
  let sent = 0;
  for (let i = 0; i < uploads.length; i++) {
    const u = uploads[i];
    progress({ done: i, total: uploads.length, bytes: sent, totalBytes, current: u.path });
    try {
      await put(workspaceId, u, (n) => progress({ done: i, total: uploads.length, bytes: sent + n, totalBytes, current: u.path }));
    } catch (e) {
      return { done: i, error: e instanceof Error ? e.message : String(e) };
    }
    sent += u.file.size;
  }
  progress({ done: uploads.length, total: uploads.length, bytes: totalBytes, totalBytes, current: '' });
  return { done: uploads.length };
}

/** Starts a download without leaving the page (an error answer is a failed download, not a
 * page that replaces the IDE). */
export function startDownload(url: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = '';
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}

/** Where a file downloads, or a folder as a .tar.gz (the whole workspace: path ''). */
export function downloadUrl(workspaceId: string, path: string, isDir: boolean): string {
  if (isDir) return `/api/workspaces/${encodeURIComponent(workspaceId)}/archive?path=${encodeURIComponent(path)}`;
  return fileRoute(workspaceId, path);
}

/** Asks the person for files (or a folder, kept whole) to upload under `dir`. */
export function pickFiles(dir: string, folder: boolean): Promise<Upload[]> {
  return new Promise((resolve) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.multiple = true;
    if (folder) input.webkitdirectory = true;
    input.onchange = () => {
      const files = [...(input.files ?? [])];
      // A folder's files carry their path inside it, the folder's own name first.
      resolve(files.map((file) => ({ file, path: [dir, file.webkitRelativePath || file.name].filter(Boolean).join('/') })));
    };
    input.oncancel = () => resolve([]);
    input.click();
  });
}
