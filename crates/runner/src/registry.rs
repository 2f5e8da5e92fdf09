//! The table of a workspace's terminals or processes: ids, the running limit, and how many
//! exited ones are kept for their output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Error;

/// What a table holds: terminals or processes. Errors and logs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Terminal,
    Process,
}

impl Kind {
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Terminal => "terminals",
            Kind::Process => "processes",
        }
    }

    /// Prefix of generated ids (`term_1`, `proc_1`).
    fn id_prefix(self) -> &'static str {
        match self {
            Kind::Terminal => "term",
            Kind::Process => "proc",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Terminal => "terminal",
            Kind::Process => "process",
        })
    }
}

/// Checks a client-chosen id: short, printable, no path characters (ids name log lines and
/// environment variables, and a client may pick them).
fn validate_id(id: &str, kind: Kind) -> Result<String, Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(Error::BadId { kind })
    }
}

/// What the registry needs to know of an entry.
pub(crate) trait Entry {
    /// Order of creation, for listing oldest first and evicting the oldest exited entry.
    fn created(&self) -> u64;
    fn has_exited(&self) -> bool;
}

/// Terminals or processes by id.
#[derive(Debug)]
pub(crate) struct Registry<T> {
    kind: Kind,
    /// How many exited entries are kept.
    keep_exited: usize,
    state: Mutex<(HashMap<String, Arc<T>>, u64)>,
}

impl<T: Entry> Registry<T> {
    pub(crate) fn new(kind: Kind, keep_exited: usize) -> Registry<T> {
        Registry {
            kind,
            keep_exited,
            state: Mutex::new((HashMap::new(), 0)),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Result<Arc<T>, Error> {
        self.state
            .lock()
            .unwrap()
            .0
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                kind: self.kind,
                id: id.to_string(),
            })
    }

    /// Every entry, oldest first.
    pub(crate) fn list(&self) -> Vec<Arc<T>> {
        let mut all: Vec<_> = self.state.lock().unwrap().0.values().cloned().collect();
        all.sort_by_key(|e| e.created());
        all
    }

    /// Forgets `entry`, unless a newer entry has taken its id meanwhile.
    pub(crate) fn remove_entry(&self, id: &str, entry: &Arc<T>) {
        let mut state = self.state.lock().unwrap();
        if state.0.get(id).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            state.0.remove(id);
        }
    }

    /// Adds an entry made by `start(id, created)`. An id in use by a running entry is a
    /// conflict (an exited one is replaced); at most `limit` may run; the oldest exited
    /// entries beyond `keep_exited` are forgotten. The table is locked while `start` runs, so
    /// two requests for one id cannot both start something.
    pub(crate) fn add(
        &self,
        requested: Option<String>,
        limit: usize,
        start: impl FnOnce(String, u64) -> Result<Arc<T>, Error>,
    ) -> Result<Arc<T>, Error> {
        let mut state = self.state.lock().unwrap();
        let (map, counter) = &mut *state;
        let kind = self.kind;
        let id = match requested {
            Some(id) => validate_id(&id, kind)?,
            None => format!("{}_{}", kind.id_prefix(), *counter + 1),
        };
        if map.get(&id).is_some_and(|e| !e.has_exited()) {
            return Err(Error::StillRunning { kind, id });
        }
        map.remove(&id);
        let running = map.values().filter(|e| !e.has_exited()).count();
        if running >= limit {
            return Err(Error::TooMany { kind, running });
        }
        let mut exited: Vec<_> = map
            .iter()
            .filter(|(_, e)| e.has_exited())
            .map(|(id, e)| (e.created(), id.clone()))
            .collect();
        exited.sort();
        for (_, old) in exited.iter().take(
            exited
                .len()
                .saturating_sub(self.keep_exited.saturating_sub(1)),
        ) {
            map.remove(old);
        }
        *counter += 1;
        let entry = start(id.clone(), *counter)?;
        map.insert(id, entry.clone());
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug)]
    struct Job {
        created: u64,
        exited: AtomicBool,
    }

    impl Entry for Job {
        fn created(&self) -> u64 {
            self.created
        }
        fn has_exited(&self) -> bool {
            self.exited.load(Ordering::SeqCst)
        }
    }

    fn job(_: String, created: u64) -> Result<Arc<Job>, Error> {
        Ok(Arc::new(Job {
            created,
            exited: AtomicBool::new(false),
        }))
    }

    #[test]
    fn ids_conflicts_limits_and_eviction() {
        let r: Registry<Job> = Registry::new(Kind::Process, 2);
        let a = r.add(None, 2, job).unwrap();
        assert_eq!(r.list().len(), 1);
        assert_eq!(r.get("proc_1").unwrap().created(), a.created());
        assert!(matches!(
            r.add(Some("proc_1".into()), 5, job),
            Err(Error::StillRunning { .. })
        ));
        r.add(Some("named".into()), 2, job).unwrap();
        let full = r.add(None, 2, job).unwrap_err();
        assert!(matches!(full, Error::TooMany { running: 2, .. }));
        assert!(full.to_string().contains("2 processes"), "{full}");
        assert!(matches!(
            r.add(Some("bad/id".into()), 9, job),
            Err(Error::BadId { .. })
        ));
        // An exited entry's id can be reused, and old exited entries are forgotten.
        a.exited.store(true, Ordering::SeqCst);
        r.add(Some("proc_1".into()), 2, job).unwrap();
        for entry in r.list() {
            entry.exited.store(true, Ordering::SeqCst);
        }
        r.add(None, 2, job).unwrap();
        assert!(
            r.list().iter().filter(|e| e.has_exited()).count() <= 1,
            "keeps at most keep_exited - 1 exited before adding"
        );
        assert!(r.get("nope").is_err());
    }
}
