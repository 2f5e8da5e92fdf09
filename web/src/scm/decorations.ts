// The tree's marks of what git sees changed: a letter per changed file, and a dot on the
// folders that hold one.
import { useMemo, useSyncExternalStore } from 'react';
import type { GitStore } from './store';

export function useGitDecorations(store: GitStore): Map<string, string> {
  const { status } = useSyncExternalStore(store.subscribe, store.get);
  return useMemo(() => {
    const marks = new Map<string, string>();
    for (const f of status?.files ?? []) {
      const letter = f.worktree === '?' ? 'U' : f.worktree !== '.' ? f.worktree : f.index;
      marks.set(f.path, letter);
      for (let i = f.path.lastIndexOf('/'); i > 0; i = f.path.lastIndexOf('/', i - 1)) {
        const dir = f.path.slice(0, i);
        if (!marks.has(dir)) marks.set(dir, '•');
      }
    }
    return marks;
  }, [status]);
}
