// Drop files or folders on the tree to upload them: one upload at a time, shown as a bar
// with its progress under the tree.
import { useCallback, useState } from 'react';
import { ask, notify } from '../app/feedback';
import { alreadyThere, droppedFiles, pickFiles, uploadAll, type Upload, type UploadProgress } from './upload';

function size(n: number): string {
  return n < 1024 * 1024 ? `${Math.ceil(n / 1024)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The uploads to send: when some would replace files, the person chooses (nothing is
 * replaced without asking). */
async function keepOrReplace(workspaceId: string, uploads: Upload[]): Promise<Upload[]> {
  if (uploads.length === 0) return uploads;
  let there: Upload[];
  try {
    there = await alreadyThere(workspaceId, uploads);
  } catch (e) {
    notify(`Nothing uploaded: could not check which files exist (${e instanceof Error ? e.message : String(e)}).`, 'error');
    return [];
  }
  if (there.length === 0) return uploads;
  const names = there.slice(0, 3).map((u) => u.path).join(', ') + (there.length > 3 ? ` and ${there.length - 3} more` : '');
  const choice = await ask(
    there.length === 1 ? 'Replace a file?' : `Replace ${there.length} files?`,
    `${names} ${there.length === 1 ? 'exists' : 'exist'} already. Replace ${there.length === 1 ? 'it' : 'them'} with the uploaded ${there.length === 1 ? 'file' : 'files'}, or upload only the new ones?`,
    [
      { id: 'cancel', label: 'Cancel', kind: 'secondary' },
      { id: 'skip', label: 'Upload only new files', kind: 'secondary' },
      { id: 'replace', label: 'Replace', kind: 'danger' },
    ],
  );
  if (choice === 'replace') return uploads;
  if (choice !== 'skip') return [];
  const fresh = uploads.filter((u) => !there.includes(u));
  if (fresh.length === 0) notify('Nothing uploaded: every file is there already.');
  return fresh;
}

export function useUploader(workspaceId: string): { onDropFiles: (dt: DataTransfer, dir: string) => void; onPick: (dir: string, folder: boolean) => void; bar: React.ReactNode } {
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const start = useCallback(
    (listed: Promise<Upload[]>, dir: string) => {
      if (progress) {
        notify('An upload is running; try again when it is done.', 'error');
        return;
      }
      setProgress({ done: 0, total: 0, bytes: 0, totalBytes: 0, current: 'reading the dropped files…' });
      void listed
        .then(async (listed) => {
          const uploads = await keepOrReplace(workspaceId, listed);
          if (uploads.length === 0) return;
          const result = await uploadAll(workspaceId, uploads, setProgress);
          if (result.error) notify(`Upload stopped after ${result.done} of ${uploads.length} files: ${result.error}`, 'error');
          else notify(`Uploaded ${uploads.length} ${uploads.length === 1 ? 'file' : 'files'}${dir ? ` to ${dir}` : ''}.`);
        })
        .catch((e) => notify(`Could not read the dropped files: ${e instanceof Error ? e.message : String(e)}`, 'error'))
        .finally(() => setProgress(null));
    },
    [workspaceId, progress],
  );
  // The drop's items are read at once (the browser takes them back after the event).
  const onDropFiles = useCallback((dt: DataTransfer, dir: string) => start(droppedFiles(dt, dir), dir), [start]);
  const onPick = useCallback((dir: string, folder: boolean) => start(pickFiles(dir, folder), dir), [start]);
  const percent = progress && progress.totalBytes > 0 ? Math.round((100 * progress.bytes) / progress.totalBytes) : 0;
  const bar = progress && (
    <div className="upload-bar" role="status" data-testid="upload-progress">
      <div className="upload-text">
        Uploading {progress.done}/{progress.total} · {size(progress.bytes)} of {size(progress.totalBytes)}
        <span className="muted upload-current">{progress.current}</span>
      </div>
      <div className="upload-track" role="progressbar" aria-label="Upload" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
        <div className="upload-fill" style={{ width: `${percent}%` }} />
      </div>
    </div>
  );
  return { onDropFiles, onPick, bar };
}
