//! A socket on one namespace (`Client`): who it is, what it follows (its subscriptions and
//! rooms), and how its events are handled (`on`: one at a time, in the order they came).

use cove_protocol::ErrorCode;
use cove_protocol::realtime::RealtimeError;
use socketioxide::extract::{SocketRef, TryData};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use super::{INBOX, Job, MAX_SUBSCRIPTIONS};
use crate::AppState;
use crate::accounts::{Caller, ConnectionKind, Registered};
use crate::error::ApiError;
use crate::workspaces::Found;

/// A socket on one namespace: who it is, and what it follows.
pub(super) struct Client {
    pub(super) app: Arc<AppState>,
    pub(super) caller: Caller,
    pub(super) namespace: &'static str,
    /// Cancelled when the socket goes, or its caller's credential does.
    pub(super) registered: Registered,
    /// Taken when the socket disconnects (handlers hold the client: no cycle outlives it).
    pub(super) socket: Mutex<Option<SocketRef>>,
    subscriptions: Mutex<HashMap<String, Subscription>>,
    next_id: AtomicU64,
    /// Set when the client was told it is connected.
    pub(super) started: std::sync::atomic::AtomicBool,
    /// The socket's events, queued in the order they arrived (socketioxide runs each
    /// handler on a task of its own, in no promised order): one worker handles them one
    /// after another, so an `unsubscribe` is never overtaken by the `subscribe` before it.
    pub(super) inbox: tokio::sync::mpsc::Sender<Job>,
    /// The worker's end of `inbox`, taken when the worker starts (after `connected`).
    pub(super) jobs: Mutex<Option<tokio::sync::mpsc::Receiver<Job>>>,
}

struct Subscription {
    pub(super) id: u64,
    pub(super) workspace: Option<String>,
    pub(super) stop: CancellationToken,
}

/// An `error` event from an API error.
pub(super) fn realtime_error(
    e: &ApiError,
    event: Option<&str>,
    workspace: Option<&str>,
) -> RealtimeError {
    RealtimeError {
        code: e.reply.code,
        message: e.reply.message.clone(),
        event: event.map(str::to_string),
        workspace_id: workspace.map(str::to_string),
    }
}

impl Client {
    /// A client of `socket`, registered as `registered`; its events wait until `start`.
    pub(super) fn new(
        app: Arc<AppState>,
        caller: Caller,
        namespace: &'static str,
        registered: Registered,
        socket: SocketRef,
    ) -> Arc<Client> {
        let (inbox, jobs) = tokio::sync::mpsc::channel(INBOX);
        Arc::new(Client {
            app,
            caller,
            namespace,
            registered,
            socket: Mutex::new(Some(socket)),
            subscriptions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            inbox,
            jobs: Mutex::new(Some(jobs)),
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Ends every subscription and forgets the socket.
    pub(super) fn close(&self) {
        if let Some(socket) = self.socket.lock().unwrap().take() {
            socket.leave_all();
        }
        for (_, sub) in self.subscriptions.lock().unwrap().drain() {
            sub.stop.cancel();
        }
        self.registered.closed.cancel();
    }

    /// Sends an `error` about `event` (and its workspace) to this socket.
    pub(super) fn error(
        &self,
        socket: &SocketRef,
        e: &ApiError,
        event: &str,
        workspace: Option<&str>,
    ) {
        if socket
            .emit("error", &realtime_error(e, Some(event), workspace))
            .is_err()
        {
            self.app.observer.dropped(self.namespace);
        }
    }

    /// The workspace `id` as this caller may see it.
    pub(super) async fn find(&self, id: &str) -> Result<Found, Refused> {
        self.app
            .manager
            .find(&self.caller, id)
            .await
            .map_err(|e| Refused::about(e, id))
    }

    /// The id of the workspace `id_or_name` names for this caller (as given when there is
    /// none: nothing will match it), for keys that must not depend on how it was named.
    pub(super) async fn id_of(&self, id_or_name: &str) -> String {
        match self.app.manager.find(&self.caller, id_or_name).await {
            Ok(found) => found.row.id,
            Err(_) => id_or_name.to_string(),
        }
    }

    /// The workspace `id`, which must be running (for what is read from its runner: `to`
    /// says what, for the refusal).
    pub(super) async fn running(&self, id: &str, to: &str) -> Result<Found, Refused> {
        let found = self.find(id).await?;
        if !self.app.manager.is_running(&found.row).await {
            return Err(Refused::about(
                ApiError::unavailable(format!(
                    "the workspace {:?} is not running; start it to {to}",
                    found.row.name
                )),
                id,
            ));
        }
        Ok(found)
    }

    /// Starts `task` as the subscription `key` (replacing an earlier one of that key), on
    /// `workspace` if any. The task gets a token that is cancelled on unsubscribe, on
    /// disconnect, and when the caller loses access to the workspace; it is registered as a
    /// connection of the caller for its whole life.
    pub(super) fn subscribe<F, Fut>(
        self: &Arc<Self>,
        key: String,
        workspace: Option<&Found>,
        task: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let registered = self.app.accounts.open_connection(
            &self.caller,
            workspace.map(|f| (f.row.id.as_str(), f.access)),
            ConnectionKind::Realtime,
            &self.registered.closed,
        )?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stop = registered.closed.clone();
        {
            let mut subscriptions = self.subscriptions.lock().unwrap();
            if !subscriptions.contains_key(&key) && subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return Err(ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("a socket may hold at most {MAX_SUBSCRIPTIONS} subscriptions"),
                ));
            }
            let workspace = workspace.map(|f| f.row.id.clone());
            if let (Some(ws), Some(socket)) = (&workspace, self.socket.lock().unwrap().as_ref()) {
                // Rooms are workspaces: `POST /api/emit` reaches the sockets that follow one.
                socket.join(ws.clone());
            }
            let old = subscriptions.insert(
                key.clone(),
                Subscription {
                    id,
                    workspace,
                    stop: stop.clone(),
                },
            );
            if let Some(old) = old {
                old.stop.cancel();
                self.leave_if_unused(&subscriptions, old.workspace.as_deref());
            }
        }
        let run = task(stop);
        let client = self.clone();
        let active = crate::relay::Gauge::enter(&self.app.realtime.active);
        let span = tracing::info_span!(
            "subscription",
            namespace = self.namespace,
            key = %key,
            user = %self.caller.user.username
        );
        let life = async move {
            run.await;
            drop(active);
            drop(registered);
            client.ended(&key, id);
        };
        self.app
            .tasks
            .spawn(tracing::Instrument::instrument(life, span));
        Ok(())
    }

    /// Ends the subscription `key`; whether there was one.
    pub(super) fn unsubscribe(&self, key: &str) -> bool {
        let mut subscriptions = self.subscriptions.lock().unwrap();
        match subscriptions.remove(key) {
            Some(sub) => {
                sub.stop.cancel();
                self.leave_if_unused(&subscriptions, sub.workspace.as_deref());
                true
            }
            None => false,
        }
    }

    /// A subscription's task finished: its entry goes, unless a newer one took the key.
    fn ended(&self, key: &str, id: u64) {
        let mut subscriptions = self.subscriptions.lock().unwrap();
        if subscriptions.get(key).is_some_and(|sub| sub.id == id)
            && let Some(sub) = subscriptions.remove(key)
        {
            self.leave_if_unused(&subscriptions, sub.workspace.as_deref());
        }
    }

    /// Leaves the workspace's room when no subscription follows it any more (called with
    /// the subscriptions locked, so that a new one cannot join in between).
    fn leave_if_unused(
        &self,
        subscriptions: &HashMap<String, Subscription>,
        workspace: Option<&str>,
    ) {
        let Some(workspace) = workspace else {
            return;
        };
        let used = subscriptions
            .values()
            .any(|s| s.workspace.as_deref() == Some(workspace));
        if !used && let Some(socket) = self.socket.lock().unwrap().as_ref() {
            socket.leave(workspace.to_string());
        }
    }
}

/// A refused request: why, and the workspace it was about when that is known.
pub(super) struct Refused(pub(super) ApiError, pub(super) Option<String>);

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused(e, None)
    }
}

impl Refused {
    pub(super) fn about(e: ApiError, workspace: &str) -> Refused {
        Refused(e, Some(workspace.to_string()))
    }
}

/// Handles `event` on `socket`: its payload goes to `handle`, and a refusal goes back to
/// the socket as an `error` about that event.
pub(super) fn on<H, Fut>(client: &Arc<Client>, socket: &SocketRef, event: &'static str, handle: H)
where
    H: Fn(Arc<Client>, SocketRef, serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Refused>> + Send + 'static,
{
    let client = client.clone();
    let handle = Arc::new(handle);
    socket.on(
        event,
        move |socket: SocketRef, TryData(value): TryData<serde_json::Value>| {
            // This part runs as the packet arrives, in order: the job joins the queue here.
            let (worker, handle) = (client.clone(), handle.clone());
            let job: Job = Box::new(move || {
                Box::pin(async move {
                    if worker.registered.closed.is_cancelled() {
                        return;
                    }
                    // An event sent with no argument at all has no payload: `null`.
                    let value = value.unwrap_or(serde_json::Value::Null);
                    if let Err(Refused(e, workspace)) =
                        handle(worker.clone(), socket.clone(), value).await
                    {
                        worker.error(&socket, &e, event, workspace.as_deref());
                    }
                })
            });
            if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = client.inbox.try_send(job)
            {
                let e = ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("more than {INBOX} events are waiting to be handled; this one was not"),
                );
                if let Some(socket) = client.socket.lock().unwrap().as_ref() {
                    client.error(socket, &e, event, None);
                }
            }
            async {}
        },
    );
}

/// Reads an event's payload as `T`, or says what is wrong with it.
pub(super) fn payload<T: serde::de::DeserializeOwned>(
    event: &str,
    value: serde_json::Value,
) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid {event} payload: {e}")))
}
