//! Every open socket (control, terminal, plain-text, events, Socket.IO) and preview relay, with who
//! opened it and how: so that revoking a session or token, disabling or deleting a user, or
//! removing a share closes that party's sockets at once; so that a user's open connections
//! can be held to their quota; and so that the people in a workspace can see each other.

use cove_protocol::accounts::{Presence, PresentUser, WorkspaceAccess};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use super::Credential;

/// What kind of connection it is (presence counts IDE control sockets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Control,
    Terminal,
    Plain,
    Events,
    /// A WebSocket to a workspace's own server, through a preview.
    Preview,
    /// A Socket.IO socket on a namespace, or one of its subscriptions.
    Realtime,
    /// The IDE's socket to a language server in a workspace.
    LanguageServer,
}

#[derive(Debug)]
struct Entry {
    user_id: String,
    username: String,
    credential: Credential,
    workspace: Option<(String, WorkspaceAccess)>,
    kind: Kind,
    closed: CancellationToken,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Connections {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    presence: tokio::sync::broadcast::Sender<Presence>,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            entries: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            presence: tokio::sync::broadcast::channel(256).0,
        }
    }
}

/// An open connection's place in the registry; dropping it removes the connection.
#[derive(Debug)]
pub(crate) struct Registered {
    id: u64,
    registry: Arc<Connections>,
    /// Cancelled when the connection must close (its credential or access went away).
    pub(crate) closed: CancellationToken,
}

impl Registered {
    /// Says which workspace the connection reached, once it is known (the plain socket finds
    /// or creates its workspace after the upgrade), so that losing access to it closes it.
    pub(crate) fn attach_to(&self, workspace: &str, access: WorkspaceAccess) {
        if let Some(entry) = self.registry.entries.lock().unwrap().get_mut(&self.id) {
            entry.workspace = Some((workspace.to_string(), access));
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let workspace = {
            let mut entries = self.registry.entries.lock().unwrap();
            entries
                .remove(&self.id)
                .filter(|e| e.kind == Kind::Control)
                .and_then(|e| e.workspace.map(|(id, _)| id))
        };
        if let Some(workspace) = workspace {
            self.registry.announce(&workspace);
        }
    }
}

/// Who opens a connection.
#[derive(Debug, Clone)]
pub(crate) struct Opener<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) username: &'a str,
    pub(crate) credential: &'a Credential,
}

impl Connections {
    /// Records an open connection, to be closed when `parent` is (the server stops) or its
    /// credential or access goes. `Err(open)` when the user already has `limit` open.
    pub(crate) fn open(
        self: &Arc<Self>,
        opener: Opener<'_>,
        workspace: Option<(&str, WorkspaceAccess)>,
        kind: Kind,
        limit: Option<u64>,
        parent: &CancellationToken,
    ) -> Result<Registered, u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let closed = parent.child_token();
        {
            let mut entries = self.entries.lock().unwrap();
            let open = entries
                .values()
                .filter(|e| e.user_id == opener.user_id)
                .count() as u64;
            if limit.is_some_and(|limit| open >= limit) {
                return Err(open);
            }
            entries.insert(
                id,
                Entry {
                    user_id: opener.user_id.to_string(),
                    username: opener.username.to_string(),
                    credential: opener.credential.clone(),
                    workspace: workspace.map(|(w, a)| (w.to_string(), a)),
                    kind,
                    closed: closed.clone(),
                },
            );
        }
        if kind == Kind::Control
            && let Some((workspace, _)) = workspace
        {
            self.announce(workspace);
        }
        Ok(Registered {
            id,
            registry: self.clone(),
            closed,
        })
    }

    /// Open connections of a user.
    pub(crate) fn count_of(&self, user_id: &str) -> u64 {
        self.entries
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.user_id == user_id)
            .count() as u64
    }

    /// Closes every connection `which` picks; how many.
    fn close_where(&self, which: impl Fn(&Entry) -> bool) -> usize {
        let entries = self.entries.lock().unwrap();
        let mut closed = 0;
        for entry in entries.values().filter(|e| which(e)) {
            entry.closed.cancel();
            closed += 1;
        }
        closed
    }

    /// A session was ended: its connections close.
    pub(crate) fn close_session(&self, session_id: &str) -> usize {
        self.close_where(|e| matches!(&e.credential, Credential::Session(id) if id == session_id))
    }

    /// A token was revoked: its connections close.
    pub(crate) fn close_token(&self, token_id: &str) -> usize {
        self.close_where(|e| matches!(&e.credential, Credential::Token(id) if id == token_id))
    }

    /// A user was disabled or deleted: all their connections close.
    pub(crate) fn close_user(&self, user_id: &str) -> usize {
        self.close_where(|e| e.user_id == user_id)
    }

    /// A user's access to a workspace changed or ended: their connections to it close (and
    /// reconnect with what they may do now, if anything).
    pub(crate) fn close_user_on(&self, user_id: &str, workspace_id: &str) -> usize {
        self.close_where(|e| {
            e.user_id == user_id && e.workspace.as_ref().is_some_and(|(w, _)| w == workspace_id)
        })
    }

    /// A workspace was deleted: every connection to it closes.
    pub(crate) fn close_workspace(&self, workspace_id: &str) -> usize {
        self.close_where(|e| e.workspace.as_ref().is_some_and(|(w, _)| w == workspace_id))
    }

    /// Who has the IDE open on a workspace, each person once with their highest access.
    pub(crate) fn present(&self, workspace_id: &str) -> Presence {
        let mut users: HashMap<String, WorkspaceAccess> = HashMap::new();
        for entry in self.entries.lock().unwrap().values() {
            if entry.kind != Kind::Control {
                continue;
            }
            if let Some((w, access)) = &entry.workspace
                && w == workspace_id
            {
                let seen = users.entry(entry.username.clone()).or_insert(*access);
                *seen = (*seen).max(*access);
            }
        }
        let mut users: Vec<PresentUser> = users
            .into_iter()
            .map(|(username, access)| PresentUser { username, access })
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Presence {
            workspace_id: workspace_id.to_string(),
            users,
        }
    }

    /// How many connections of any kind reach a workspace (its idle stop waits for none).
    pub(crate) fn connected(&self, workspace_id: &str) -> usize {
        self.entries
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.workspace.as_ref().is_some_and(|(w, _)| w == workspace_id))
            .count()
    }

    /// Workspaces with someone present.
    pub(crate) fn occupied(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entries
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.kind == Kind::Control)
            .filter_map(|e| e.workspace.as_ref().map(|(w, _)| w.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Changes of presence, for the events feed.
    pub(crate) fn presence_changes(&self) -> tokio::sync::broadcast::Receiver<Presence> {
        self.presence.subscribe()
    }

    fn announce(&self, workspace_id: &str) {
        let _ = self.presence.send(self.present(workspace_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opener<'a>(user: &'a str, credential: &'a Credential) -> Opener<'a> {
        Opener {
            user_id: user,
            username: user,
            credential,
        }
    }

    #[test]
    fn revocations_close_exactly_their_connections() {
        let registry = Arc::new(Connections::default());
        let (s1, s2, t1) = (
            Credential::Session("s1".into()),
            Credential::Session("s2".into()),
            Credential::Token("t1".into()),
        );
        let a = registry
            .open(
                opener("ann", &s1),
                Some(("w1", WorkspaceAccess::Owner)),
                Kind::Control,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
        let b = registry
            .open(
                opener("bob", &s2),
                Some(("w1", WorkspaceAccess::View)),
                Kind::Terminal,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
        let c = registry
            .open(
                opener("bob", &t1),
                Some(("w2", WorkspaceAccess::Edit)),
                Kind::Control,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
        assert_eq!(registry.close_session("s2"), 1);
        assert!(b.closed.is_cancelled() && !a.closed.is_cancelled() && !c.closed.is_cancelled());
        assert_eq!(registry.close_user_on("bob", "w2"), 1);
        assert!(c.closed.is_cancelled());
        assert_eq!(registry.count_of("bob"), 2);
        drop(b);
        assert_eq!(registry.count_of("bob"), 1);
        assert_eq!(registry.present("w1").users.len(), 1);
    }

    #[test]
    fn the_connection_quota_holds() {
        let registry = Arc::new(Connections::default());
        let s = Credential::Session("s".into());
        let _one = registry
            .open(
                opener("ann", &s),
                None,
                Kind::Events,
                Some(2),
                &CancellationToken::new(),
            )
            .unwrap();
        let _two = registry
            .open(
                opener("ann", &s),
                None,
                Kind::Events,
                Some(2),
                &CancellationToken::new(),
            )
            .unwrap();
        assert_eq!(
            registry
                .open(
                    opener("ann", &s),
                    None,
                    Kind::Events,
                    Some(2),
                    &CancellationToken::new()
                )
                .unwrap_err(),
            2
        );
        assert!(
            registry
                .open(
                    opener("bob", &s),
                    None,
                    Kind::Events,
                    Some(2),
                    &CancellationToken::new()
                )
                .is_ok()
        );
    }

    #[test]
    fn presence_lists_each_person_once_with_their_highest_access() {
        let registry = Arc::new(Connections::default());
        let s = Credential::Session("s".into());
        let mut changes = registry.presence_changes();
        let _a = registry
            .open(
                opener("ann", &s),
                Some(("w", WorkspaceAccess::View)),
                Kind::Control,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
        let _b = registry
            .open(
                opener("ann", &s),
                Some(("w", WorkspaceAccess::Edit)),
                Kind::Control,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
        let present = registry.present("w");
        assert_eq!(present.users.len(), 1);
        assert_eq!(present.users[0].access, WorkspaceAccess::Edit);
        assert!(changes.try_recv().is_ok(), "opening announces");
    }
}
