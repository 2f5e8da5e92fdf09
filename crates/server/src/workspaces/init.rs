//! What runs by itself when a workspace starts, as processes the Processes panel shows like
//! any other, started through the runner's own control socket:
//! - at the first start, its template's init command (process `init`) and the project's
//!   devcontainer `postCreateCommand` (`postCreate`, or `postCreate:<name>` for each of a
//!   named group);
//! - at every start, the devcontainer `postStartCommand` (`postStart...`), after the
//!   first start's processes (`init`, `postCreate...`) have exited, as the spec orders.
//!
//! Each runs once per occasion whatever its outcome: a failing install is for the person to
//! see and run again, not for every start to repeat. It all happens in a task of its own,
//! not in the request that started the workspace (a client that goes away must not cut it
//! short); the task ends when its processes are started, by its timeouts, or when the
//! runner closes its socket (the workspace stopped).

use super::devcontainer::{self, DevContainer};
use crate::db::Db;
use crate::link::RunnerLink;
use cove_protocol::{ClientMessage, Env, ErrorCode, Request, RunCommand};
use futures_util::{SinkExt as _, StreamExt as _};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The process id a template's init command runs as.
pub(crate) const INIT_PROCESS: &str = "init";
/// Longest wait for the runner to take the commands.
const TAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the first start's processes before postStartCommand is given up.
const CREATE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

type Socket = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// One process to start.
#[derive(Debug, Clone)]
struct Launch {
    process_id: String,
    command: String,
    args: Option<Vec<String>>,
    env: Option<Env>,
}

/// A process id from a devcontainer step's name (any JSON key): the runner takes letters,
/// digits and `_-.:@`, at most 128.
fn process_id(prefix: &str, name: Option<&str>) -> String {
    let Some(name) = name else {
        return prefix.to_string();
    };
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    format!("{prefix}:{name}")
}

fn launches(prefix: &str, command: &devcontainer::Command, env: &Env) -> Vec<Launch> {
    command
        .steps()
        .into_iter()
        .map(|step| Launch {
            process_id: process_id(prefix, step.name.as_deref()),
            command: step.command,
            args: step.args,
            env: (!env.is_empty()).then(|| env.clone()),
        })
        .collect()
}

/// Starts what runs by itself after a start (see the module docs), in a task of its own,
/// and waits until its processes are started (not finished), so that a client that opens
/// the workspace next sees them in its `welcome`. Called once the workspace is running;
/// problems are logged, never a failed start.
pub(super) async fn after_start(db: Db, link: RunnerLink, id: String) {
    let (started, wait) = tokio::sync::oneshot::channel();
    tokio::spawn(async move { AfterStart { db, link }.run(&id, started).await });
    // A dropped sender (the task ended early) ends the wait as well.
    let _ = wait.await;
}

struct AfterStart {
    db: Db,
    link: RunnerLink,
}

impl AfterStart {
    /// `started` is told once the processes to start now are started.
    async fn run(&self, id: &str, started: tokio::sync::oneshot::Sender<()>) {
        let Ok(Some(row)) = self.db.get(id).await else {
            return;
        };
        // A workspace's first start is recorded as done before anything runs.
        let first = row.init_command.is_some();
        if first && let Err(e) = self.db.clear_init_command(id).await {
            tracing::warn!(workspace = %id, "cannot record the first start: {e}");
            return;
        }
        let mut now = Vec::new();
        if let Some(command) = row.init_command.filter(|c| !c.trim().is_empty()) {
            now.push(Launch {
                process_id: INIT_PROCESS.to_string(),
                command,
                args: None,
                env: None,
            });
        }
        let mut later = Vec::new();
        if let Some(dev) = self.devcontainer(id).await {
            let env = dev.env();
            if !dev.forward_ports.is_empty() {
                tracing::debug!(workspace = %id, ports = ?dev.forward_ports, "forwardPorts: every listening port is previewable");
            }
            let created = match (&dev.post_create_command, first) {
                (Some(command), true) => launches("postCreate", command, &env),
                _ => Vec::new(),
            };
            let started = dev
                .post_start_command
                .as_ref()
                .map(|command| launches("postStart", command, &env))
                .unwrap_or_default();
            if created.is_empty() {
                now.extend(started);
            } else {
                now.extend(created);
                later = started;
            }
        }
        if now.is_empty() {
            return;
        }
        let mut socket = match tokio::time::timeout(TAKE_TIMEOUT, self.control(id)).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(why)) => {
                tracing::warn!(workspace = %id, "cannot start what runs after a start: {why}");
                return;
            }
            Err(_) => {
                tracing::warn!(workspace = %id, "the runner did not answer in time");
                return;
            }
        };
        let mut awaited: BTreeSet<String> = now
            .iter()
            .filter(|l| l.process_id == INIT_PROCESS || l.process_id.starts_with("postCreate"))
            .map(|l| l.process_id.clone())
            .collect();
        let mut exited = BTreeSet::new();
        if let Err(why) = tokio::time::timeout(TAKE_TIMEOUT, run(&mut socket, &now, &mut exited))
            .await
            .unwrap_or_else(|_| Err("the runner did not take them in time".into()))
        {
            tracing::warn!(workspace = %id, "cannot start what runs after a start: {why}");
            return;
        }
        // A quick one may have exited while the others were being started.
        awaited.retain(|id| !exited.contains(id));
        tracing::info!(workspace = %id, processes = ?now.iter().map(|l| &l.process_id).collect::<Vec<_>>(), "started what runs after a start");
        let _ = started.send(());
        if later.is_empty() {
            let _ = socket.close(None).await;
            return;
        }
        // postStart waits for the first start's processes (or the socket closes: the
        // workspace stopped).
        let waited = tokio::time::timeout(CREATE_TIMEOUT, wait_for_exits(&mut socket, awaited));
        if let Ok(true) = waited.await {
            let mut exited = BTreeSet::new();
            match tokio::time::timeout(TAKE_TIMEOUT, run(&mut socket, &later, &mut exited)).await {
                Ok(Ok(())) => tracing::info!(workspace = %id, "started postStartCommand"),
                _ => tracing::warn!(workspace = %id, "cannot start postStartCommand"),
            }
        } else {
            tracing::warn!(workspace = %id, "postStartCommand not started: the first start's processes did not end");
        }
        let _ = socket.close(None).await;
    }

    /// The project's devcontainer.json, if it has one that reads.
    async fn devcontainer(&self, id: &str) -> Option<DevContainer> {
        for place in devcontainer::PLACES {
            let bytes = match self
                .link
                .read_file(id, place, devcontainer::MAX_BYTES)
                .await
            {
                Ok(bytes) => bytes,
                Err(e) if e.reply.code == ErrorCode::NotFound => continue,
                Err(e) => {
                    tracing::warn!(workspace = %id, "{place} cannot be read: {}", e.reply.message);
                    return None;
                }
            };
            return match DevContainer::parse(&String::from_utf8_lossy(&bytes)) {
                Ok(dev) => Some(dev),
                Err(why) => {
                    tracing::warn!(workspace = %id, "{place} cannot be read: {why}");
                    None
                }
            };
        }
        None
    }

    /// A control socket on the workspace's runner.
    async fn control(&self, id: &str) -> Result<Socket, String> {
        let upgraded = self
            .link
            .websocket(id, "/ws")
            .await
            .map_err(|e| e.to_string())?;
        Ok(tokio_tungstenite::WebSocketStream::from_raw_socket(
            upgraded,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await)
    }
}

/// Sends `run_command` for each launch and waits until every one is `process_started`;
/// `exited` gets the processes that ended meanwhile.
async fn run(
    socket: &mut Socket,
    launches: &[Launch],
    exited: &mut BTreeSet<String>,
) -> Result<(), String> {
    let mut pending = BTreeSet::new();
    for launch in launches {
        let request = ClientMessage {
            request: Request::RunCommand(RunCommand {
                command: launch.command.clone(),
                args: launch.args.clone(),
                cwd: None,
                env: launch.env.clone(),
                process_id: Some(launch.process_id.clone()),
            }),
            request_id: Some(launch.process_id.clone()),
        };
        socket
            .send(Message::text(request.encode()))
            .await
            .map_err(|e| e.to_string())?;
        pending.insert(launch.process_id.clone());
    }
    while !pending.is_empty() {
        let Some(reply) = next_json(socket).await else {
            return Err("the runner closed the socket".into());
        };
        if reply["type"] == "process_exit"
            && let Some(process) = reply["processId"].as_str()
        {
            exited.insert(process.to_string());
        }
        let Some(request) = reply["requestId"].as_str() else {
            continue;
        };
        if pending.remove(request) && reply["type"] != "process_started" {
            return Err(format!(
                "{request}: {}",
                reply["message"].as_str().unwrap_or("refused")
            ));
        }
    }
    Ok(())
}

/// Waits for `process_exit` of every process in `ids`; false when the socket closed first.
async fn wait_for_exits(socket: &mut Socket, mut ids: BTreeSet<String>) -> bool {
    while !ids.is_empty() {
        let Some(message) = next_json(socket).await else {
            return false;
        };
        if message["type"] == "process_exit"
            && let Some(id) = message["processId"].as_str()
        {
            ids.remove(id);
        }
    }
    true
}

async fn next_json(socket: &mut Socket) -> Option<serde_json::Value> {
    while let Some(frame) = socket.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                if let Ok(value) = serde_json::from_str(&text) {
                    return Some(value);
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn step_names_become_process_ids_the_runner_takes() {
        assert_eq!(super::process_id("postStart", None), "postStart");
        assert_eq!(super::process_id("postStart", Some("web")), "postStart:web");
        assert_eq!(
            super::process_id("postCreate", Some("install deps/ü")),
            "postCreate:install-deps--"
        );
    }
}
