//! File watching: one recursive inotify watcher per workspace, alive only while some client
//! watches, with events debounced and coalesced into `file_changed`.
//!
//! Paths in events are relative to the workspace root, without a leading slash. The temp
//! files of the runner's own atomic writes are hidden: such a write shows as `modified`.

use cove_protocol::{ChangeKind, FileChanged};
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::files::TEMP_PREFIX;

/// Events that arrive within this window after the first one are sent together, coalesced.
const DEBOUNCE: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    active: Mutex<Option<Active>>,
    events: broadcast::Sender<FileChanged>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

#[derive(Debug)]
struct Active {
    _watcher: notify::RecommendedWatcher,
    subscribers: usize,
    stop: CancellationToken,
}

/// The workspace's watcher.
#[derive(Debug)]
pub(crate) struct Watcher {
    shared: Arc<Shared>,
}

/// A client's interest in changes; dropping it may stop the inotify watcher.
#[derive(Debug)]
pub(crate) struct Subscription {
    shared: Arc<Shared>,
    pub(crate) events: broadcast::Receiver<FileChanged>,
}

impl Watcher {
    pub(crate) fn new(root: PathBuf, tasks: TaskTracker, shutdown: CancellationToken) -> Watcher {
        Watcher {
            shared: Arc::new(Shared {
                root,
                active: Mutex::new(None),
                events: broadcast::channel(4096).0,
                tasks,
                shutdown,
            }),
        }
    }

    /// Starts watching (if nobody did) and returns a receiver of every change in the workspace.
    pub(crate) fn subscribe(&self) -> Result<Subscription, Error> {
        let mut active = self.shared.active.lock().unwrap();
        if let Some(active) = active.as_mut() {
            active.subscribers += 1;
        } else {
            let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>(4096);
            let mut watcher = notify::recommended_watcher(move |event| {
                // A full queue drops events rather than blocking inotify's reader thread.
                let _ = tx.try_send(event);
            })
            .map_err(|e| watcher_error("cannot start the file watcher", e))?;
            watcher
                .watch(&self.shared.root, RecursiveMode::Recursive)
                .map_err(|e| watcher_error("cannot watch the workspace", e))?;
            let stop = self.shared.shutdown.child_token();
            self.shared
                .tasks
                .spawn(debounce(rx, self.shared.clone(), stop.clone()));
            *active = Some(Active {
                _watcher: watcher,
                subscribers: 1,
                stop,
            });
            tracing::debug!("file watcher started");
        }
        Ok(Subscription {
            shared: self.shared.clone(),
            events: self.shared.events.subscribe(),
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut active = self.shared.active.lock().unwrap();
        if let Some(a) = active.as_mut() {
            a.subscribers -= 1;
            if a.subscribers == 0 {
                a.stop.cancel();
                *active = None;
                tracing::debug!("file watcher stopped: nobody watches");
            }
        }
    }
}

/// notify's error for a client: what failed and why, without the host paths notify names
/// (those go to the log).
fn watcher_error(what: &str, e: notify::Error) -> Error {
    tracing::warn!(error = %e, "{what}");
    Error::Watcher(format!("{what}: {}", notify::Error::new(e.kind)))
}

/// Whether `path` is `watched` or lies beneath it (both relative, `""` = the root).
pub(crate) fn is_under(path: &str, watched: &str) -> bool {
    watched.is_empty()
        || path == watched
        || path
            .strip_prefix(watched)
            .is_some_and(|rest| rest.starts_with('/'))
}

async fn debounce(
    mut rx: mpsc::Receiver<notify::Result<notify::Event>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            event = rx.recv() => match event { Some(e) => e, None => return },
        };
        let mut batch = Batch::default();
        batch.add(&shared.root, first);
        let deadline = tokio::time::sleep(DEBOUNCE);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                event = rx.recv() => match event {
                    Some(e) => batch.add(&shared.root, e),
                    None => break,
                },
            }
        }
        batch.expand_new_dirs(&shared.root);
        for change in batch.changes {
            tracing::debug!(
                path = %crate::clip(&change.path),
                kind = ?change.kind,
                to = %crate::clip(change.to.as_deref().unwrap_or("")),
                "file changed"
            );
            let _ = shared.events.send(change);
        }
    }
}

/// Changes of one debounce window, one per path, in the order first seen.
#[derive(Debug, Default)]
struct Batch {
    changes: Vec<FileChanged>,
}

/// At most this many entries of a new directory are reported by [`Batch::expand_new_dirs`].
const NEW_DIR_SCAN: usize = 1000;

impl Batch {
    /// inotify watches a new directory only once its creation is seen, so files made in it
    /// right away (`mkdir -p a && touch a/f`, `git clone`, `tar x`) would go unreported. A new
    /// directory's contents are therefore reported as created too.
    fn expand_new_dirs(&mut self, root: &Path) {
        let new_dirs: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Created && root.join(&c.path).is_dir())
            .map(|c| c.path.clone())
            .collect();
        let mut budget = NEW_DIR_SCAN;
        let mut stack = new_dirs;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let path = format!("{dir}/{name}");
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path.clone());
                }
                if !self.changes.iter().any(|c| c.path == path) {
                    self.changes.push(FileChanged {
                        path,
                        kind: ChangeKind::Created,
                        to: None,
                    });
                }
            }
        }
    }

    fn set(&mut self, path: String, kind: ChangeKind, to: Option<String>, force: bool) {
        if let Some(existing) = self.changes.iter_mut().find(|c| c.path == path) {
            // A file created in this window and then written is still just "created".
            if !force && existing.kind == ChangeKind::Created && kind == ChangeKind::Modified {
                return;
            }
            existing.kind = kind;
            existing.to = to;
        } else {
            self.changes.push(FileChanged { path, kind, to });
        }
    }

    fn add(&mut self, root: &Path, event: notify::Result<notify::Event>) {
        let Ok(event) = event else { return };
        let rel = |p: &PathBuf| -> Option<String> {
            let rel = p.strip_prefix(root).ok()?.to_string_lossy().into_owned();
            (!rel.is_empty()).then_some(rel)
        };
        let is_temp = |p: &str| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        };
        let paths: Vec<String> = event.paths.iter().filter_map(rel).collect();
        let visible = || paths.iter().filter(|p| !is_temp(p));
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if paths.len() == 2 => {
                let (from, to) = (paths[0].clone(), paths[1].clone());
                if is_temp(&from) {
                    // The runner's own atomic write (temp file renamed over the target).
                    self.set(to, ChangeKind::Modified, None, true);
                } else {
                    self.changes.retain(|c| c.path != to);
                    self.set(from, ChangeKind::Renamed, Some(to), true);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                for p in visible().cloned().collect::<Vec<_>>() {
                    self.set(p, ChangeKind::Deleted, None, false);
                }
            }
            EventKind::Modify(ModifyKind::Name(_)) | EventKind::Create(_) => {
                for p in visible().cloned().collect::<Vec<_>>() {
                    self.set(p, ChangeKind::Created, None, false);
                }
            }
            EventKind::Modify(_) => {
                for p in visible().cloned().collect::<Vec<_>>() {
                    self.set(p, ChangeKind::Modified, None, false);
                }
            }
            EventKind::Remove(_) => {
                for p in visible().cloned().collect::<Vec<_>>() {
                    self.set(p, ChangeKind::Deleted, None, false);
                }
            }
            EventKind::Access(_) | EventKind::Any | EventKind::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(is_under("a/b", ""));
        assert!(is_under("a/b", "a"));
        assert!(is_under("a", "a"));
        assert!(!is_under("ab/c", "a"));
    }

    #[tokio::test]
    async fn touch_rename_and_atomic_write_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let watcher = Watcher::new(root.clone(), TaskTracker::new(), CancellationToken::new());
        let mut sub = watcher.subscribe().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/new.txt"), "x").unwrap();
        let files = crate::files::Files::open(&root, 1 << 20, None).unwrap();
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !seen.iter().any(|c: &FileChanged| c.path == "sub/new.txt") {
            let c = tokio::time::timeout_at(deadline, sub.events.recv())
                .await
                .unwrap()
                .unwrap();
            seen.push(c);
        }
        files.write("sub/new.txt", b"y", None).unwrap();
        std::fs::rename(root.join("sub/new.txt"), root.join("sub/renamed.txt")).unwrap();
        let mut kinds = Vec::new();
        while !kinds
            .iter()
            .any(|c: &FileChanged| c.kind == ChangeKind::Renamed)
        {
            let c = tokio::time::timeout_at(deadline, sub.events.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(
                !c.path.contains(TEMP_PREFIX),
                "temp files stay hidden: {c:?}"
            );
            kinds.push(c);
        }
        let renamed = kinds
            .iter()
            .find(|c| c.kind == ChangeKind::Renamed)
            .unwrap();
        assert_eq!(
            (renamed.path.as_str(), renamed.to.as_deref()),
            ("sub/new.txt", Some("sub/renamed.txt"))
        );
        drop(sub);
        assert!(
            watcher.shared.active.lock().unwrap().is_none(),
            "the last unsubscribe stops inotify"
        );
    }
}
