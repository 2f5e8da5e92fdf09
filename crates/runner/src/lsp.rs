//! Language servers for the IDE's editor: found on the workspace's PATH (or named in its
//! `.cove/languages.json`), started on demand, one per socket, and bridged between their
//! stdio (LSP's `Content-Length` framing) and a WebSocket (one JSON-RPC message per text
//! message), which is what `@codemirror/lsp-client`'s transport speaks.
//!
//! A server is a program of the workspace like any other: started as `run_command` starts
//! one (its environment, the workspace's CPU group, a session of its own), so the sandbox and
//! the workspace's limits hold it. It lives as long as its socket: when the editor goes, the
//! server is stopped with its whole process tree. Its messages are not trusted: a header
//! line or a message past the limits ends it.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use cove_protocol::ide::{LanguageServer, LanguageServers, valid_language};
use futures_util::{SinkExt as _, StreamExt as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::files::Files;
use crate::launch::Launch;
use crate::stopping::{Lifecycle, Sweeper, new_marker, signal_group};
use crate::{Exit, clip};

/// Language servers that may run at once in one workspace (each is an editor's socket).
pub(crate) const MAX_RUNNING: usize = 8;
/// Largest message a language server may send (pyright's answers on big files are megabytes).
const MAX_SERVER_MESSAGE: usize = 16 * 1024 * 1024;
/// Messages read from a server and not yet sent to its editor (at most 4 x 16 MiB held).
const INBOX: usize = 4;
/// Messages from the editor not yet written to its server; a server that lets this fill up
/// has stopped reading and is ended.
const OUTBOX: usize = 64;
/// Longest header line a language server may send.
const MAX_HEADER_LINE: u64 = 1024;
/// Most header lines one message may have (LSP defines two).
const MAX_HEADERS: usize = 16;
/// What is kept of a server's stderr, to say why it ended.
const STDERR_TAIL: usize = 2048;
/// How long a server gets between TERM and KILL once its editor is gone.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The largest `.cove/languages.json` read.
const MAX_WORKSPACE_FILE: usize = 64 * 1024;
/// Where a workspace names its own servers: `{"python": ["pylsp"], ...}`.
const WORKSPACE_FILE: &str = ".cove/languages.json";

/// The servers tried for each language, first found first used.
const KNOWN: &[(&str, &[&[&str]])] = &[
    (
        "python",
        &[
            &["pyright-langserver", "--stdio"],
            &["basedpyright-langserver", "--stdio"],
            &["pylsp"],
        ],
    ),
    ("typescript", &[&["typescript-language-server", "--stdio"]]),
    ("rust", &[&["rust-analyzer"]]),
    ("go", &[&["gopls"]]),
    ("c", &[&["clangd"]]),
];

/// The workspace's language servers: what it can run, and how many run.
#[derive(Debug)]
pub(crate) struct LanguageServersHost {
    launch: Arc<Launch>,
    tasks: TaskTracker,
    sweeper: Sweeper,
    running: Arc<AtomicUsize>,
    /// Every running server's stop, for the runner's shutdown.
    live: Arc<Mutex<BTreeMap<u32, Arc<Lifecycle>>>>,
}

impl LanguageServersHost {
    pub(crate) fn new(launch: Arc<Launch>, tasks: TaskTracker, sweeper: Sweeper) -> Self {
        LanguageServersHost {
            launch,
            tasks,
            sweeper,
            running: Arc::new(AtomicUsize::new(0)),
            live: Arc::default(),
        }
    }

    /// Every language this workspace has a server for.
    pub(crate) fn list(&self, files: &Files) -> LanguageServers {
        let mut servers: BTreeMap<String, LanguageServer> = BTreeMap::new();
        for (language, candidates) in KNOWN {
            if let Some(found) = candidates.iter().find(|c| on_path(c[0]).is_some()) {
                servers.insert(
                    language.to_string(),
                    LanguageServer {
                        language: language.to_string(),
                        command: found.iter().map(|s| s.to_string()).collect(),
                        source: "path".into(),
                        initialization_options: initialization_options(language, &self.launch.root),
                    },
                );
            }
        }
        for (language, command) in workspace_servers(files) {
            servers.insert(
                language.clone(),
                LanguageServer {
                    language,
                    command,
                    source: "workspace".into(),
                    initialization_options: None,
                },
            );
        }
        LanguageServers {
            root_uri: file_uri(&self.launch.root),
            servers: servers.into_values().collect(),
        }
    }

    /// The command that serves `language`, or why there is none.
    pub(crate) fn command_for(&self, language: &str, files: &Files) -> Result<Vec<String>, Error> {
        let list = self.list(files);
        match list.servers.into_iter().find(|s| s.language == language) {
            Some(server) => Ok(server.command),
            None => Err(Error::NoLanguageServer {
                language: language.to_string(),
            }),
        }
    }

    /// How many servers run now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Starts `command` for `language` (a place among the running ones first).
    pub(crate) fn start(&self, language: &str, command: &[String]) -> Result<Started, Error> {
        let slot = Slot::take(&self.running)?;
        let marker = new_marker();
        let id = format!("lsp-{language}");
        let mut cmd =
            self.launch
                .command(&command[0], Some(&command[1..]), None, &[], &id, &marker)?;
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.join(" "),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let life = Arc::new(Lifecycle::new(
            pid,
            marker,
            self.tasks.clone(),
            self.sweeper.clone(),
        ));
        tracing::info!(language = %clip(language), pid, command = %clip(&command.join(" ")), "language server started");
        self.live.lock().unwrap().insert(pid, life.clone());
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail = Arc::new(Mutex::new(String::new()));
        let (messages, inbox) = tokio::sync::mpsc::channel(INBOX);
        self.tasks.spawn(read_messages(
            tokio::io::BufReader::with_capacity(64 * 1024, stdout),
            messages,
        ));
        self.tasks.spawn(keep_tail(stderr, tail.clone()));
        let (watched, live) = (life.clone(), self.live.clone());
        let language_name = language.to_string();
        self.tasks.spawn(async move {
            let exit = Exit::from_status(child.wait().await.ok());
            watched.main_exited(exit);
            watched.output_done(exit);
            live.lock().unwrap().remove(&pid);
            drop(slot);
            tracing::info!(language = %clip(&language_name), pid, ?exit, "language server exited");
        });
        Ok(Started {
            language: language.to_string(),
            pid,
            life,
            stdin,
            inbox,
            tail,
            tasks: self.tasks.clone(),
        })
    }

    /// Stops every running server (runner shutdown).
    pub(crate) async fn stop_all(&self) {
        let all: Vec<Arc<Lifecycle>> = self.live.lock().unwrap().values().cloned().collect();
        let pids: Vec<u32> = self.live.lock().unwrap().keys().copied().collect();
        for pid in pids {
            signal_group(pid, libc::SIGTERM);
        }
        futures_util::future::join_all(all.iter().map(|l| l.stop(Some(STOP_GRACE)))).await;
    }
}

/// A place among the servers that may run; given back when the server has exited.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(running: &Arc<AtomicUsize>) -> Result<Slot, Error> {
        running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_RUNNING).then_some(n + 1)
            })
            .map_err(|running| Error::TooManyLanguageServers { running })?;
        Ok(Slot(running.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A server that runs, with its ends.
pub(crate) struct Started {
    language: String,
    pid: u32,
    life: Arc<Lifecycle>,
    stdin: tokio::process::ChildStdin,
    inbox: tokio::sync::mpsc::Receiver<Result<String, String>>,
    tail: Arc<Mutex<String>>,
    tasks: TaskTracker,
}

/// Carries messages both ways until the editor or the server goes, then ends the other side.
pub(crate) async fn bridge(server: Started, socket: WebSocket, shutdown: CancellationToken) {
    let Started {
        language,
        pid,
        life,
        mut stdin,
        mut inbox,
        tail,
        tasks,
    } = server;
    let (mut to_editor, mut from_editor) = socket.split();
    // Editor to server in a task of its own: a server that stops reading its input stalls
    // only that task, never the loop that notices the editor, the server or the runner going.
    let (to_server, mut outbox) =
        tokio::sync::mpsc::channel::<axum::extract::ws::Utf8Bytes>(OUTBOX);
    tasks.spawn(async move {
        while let Some(text) = outbox.recv().await {
            let header = format!("Content-Length: {}\r\n\r\n", text.len());
            let written = async {
                stdin.write_all(header.as_bytes()).await?;
                stdin.write_all(text.as_bytes()).await?;
                stdin.flush().await
            };
            if written.await.is_err() {
                return;
            }
        }
    });
    let exited = life.exited();
    tokio::pin!(exited);
    let ended: Option<String> = loop {
        tokio::select! {
            message = inbox.recv() => match message {
                Some(Ok(text)) => {
                    if to_editor.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(Err(problem)) => break Some(problem),
                None => break Some(String::new()),
            },
            message = from_editor.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if to_server.try_send(text).is_err() {
                        break Some("it stopped reading what the editor sends".into());
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let _ = to_editor.send(close(1003, "LSP messages are text")).await;
                    break None;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            _ = &mut exited => break Some(String::new()),
            _ = shutdown.cancelled() => {
                let _ = to_editor.send(close(1001, "the workspace is stopping")).await;
                break None;
            }
        }
    };
    drop(to_server);
    // Whoever ended first, the server goes with its whole tree.
    signal_group(pid, libc::SIGTERM);
    let exit = life.stop(Some(STOP_GRACE)).await;
    if let Some(problem) = ended {
        let tail = tail.lock().unwrap().clone();
        let last = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let why = if problem.is_empty() {
            describe_exit(exit)
        } else {
            problem
        };
        let reason = format!("the {language} language server stopped: {why}. {last}");
        tracing::warn!(language = %clip(&language), %reason, "language server ended");
        let _ = to_editor.send(close(1011, &reason)).await;
    }
}

fn describe_exit(exit: Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("it exited with status {code}"),
        (None, Some(signal)) => format!("it was killed by signal {signal}"),
        _ => "it exited".into(),
    }
}

/// A close frame; the reason is cut to what a close frame carries (123 bytes).
pub(crate) fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_string().into(),
    }))
}

/// Reads the server's messages into `messages` until it ends or breaks the framing (then the
/// last item says how).
async fn read_messages(
    mut from: impl AsyncBufRead + Unpin,
    messages: tokio::sync::mpsc::Sender<Result<String, String>>,
) {
    loop {
        let item = match read_message(&mut from, MAX_SERVER_MESSAGE).await {
            Ok(Some(text)) => Ok(text),
            Ok(None) => return,
            Err(problem) => Err(problem),
        };
        let last = item.is_err();
        if messages.send(item).await.is_err() || last {
            return;
        }
    }
}

/// One LSP message: headers (`Content-Length` is the one that matters), a blank line, then
/// that many bytes of UTF-8 JSON. `None` at a clean end between messages.
pub(crate) async fn read_message(
    from: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> Result<Option<String>, String> {
    let mut length: Option<usize> = None;
    let mut line = String::new();
    let mut first = true;
    for count in 0.. {
        if count == MAX_HEADERS {
            return Err("it sent more header lines than a message has".into());
        }
        line.clear();
        let n = (&mut *from)
            .take(MAX_HEADER_LINE)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading its output failed: {e}"))?;
        if n == 0 {
            return if first {
                Ok(None)
            } else {
                Err("its output ended inside a message header".into())
            };
        }
        first = false;
        if !line.ends_with('\n') {
            return Err("it sent a header line that is too long".into());
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("it sent a bad Content-Length: {:?}", value.trim()))?,
            );
        }
    }
    let length = length.ok_or("it sent a message without Content-Length")?;
    if length > max {
        return Err(format!(
            "it sent a message of {length} bytes (the limit is {max})"
        ));
    }
    let mut body = vec![0u8; length];
    from.read_exact(&mut body)
        .await
        .map_err(|_| "its output ended inside a message".to_string())?;
    String::from_utf8(body)
        .map_err(|_| "it sent a message that is not UTF-8".into())
        .map(Some)
}

/// Keeps the end of the server's stderr (and logs it at debug).
async fn keep_tail(mut from: impl AsyncRead + Unpin, tail: Arc<Mutex<String>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                tracing::debug!(stderr = %clip(&text), "language server");
                let mut tail = tail.lock().unwrap();
                tail.push_str(&text);
                if tail.len() > STDERR_TAIL {
                    let mut cut = tail.len() - STDERR_TAIL;
                    while !tail.is_char_boundary(cut) {
                        cut += 1;
                    }
                    tail.drain(..cut);
                }
            }
        }
    }
}

/// The first executable called `name` on the PATH programs get.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a server found on the PATH needs to be told in `initialize`: typescript-language-server
/// finds TypeScript only in the workspace's `node_modules`, so a workspace without one is
/// pointed at the TypeScript installed beside `tsserver` on the PATH.
fn initialization_options(language: &str, root: &Path) -> Option<serde_json::Value> {
    if language != "typescript" || root.join("node_modules/typescript/lib").is_dir() {
        return None;
    }
    // `tsserver` on the PATH is (a link to) `<typescript>/bin/tsserver`.
    let bin = std::fs::canonicalize(on_path("tsserver")?).ok()?;
    let lib = bin.parent()?.parent()?.join("lib");
    lib.join("tsserver.js")
        .is_file()
        .then(|| serde_json::json!({ "tsserver": { "path": lib.join("tsserver.js") } }))
}

/// The servers the workspace names in `.cove/languages.json` (a file it owns, read as the
/// API reads files: beneath the root, a regular file, no FIFO waited on; a large or bad one is
/// logged and ignored).
fn workspace_servers(files: &Files) -> Vec<(String, Vec<String>)> {
    let Ok(data) = files.read(WORKSPACE_FILE) else {
        return Vec::new();
    };
    if data.bytes.len() > MAX_WORKSPACE_FILE {
        tracing::info!(
            bytes = data.bytes.len(),
            "ignoring {WORKSPACE_FILE}: larger than 64 KiB"
        );
        return Vec::new();
    }
    match serde_json::from_slice::<BTreeMap<String, Vec<String>>>(&data.bytes) {
        Ok(map) => map
            .into_iter()
            .filter(|(language, command)| valid_language(language) && !command.is_empty())
            .collect(),
        Err(e) => {
            tracing::info!(error = %e, "ignoring {WORKSPACE_FILE}: not a map of language to command");
            Vec::new()
        }
    }
}

/// `file:///...` for a path, percent-encoding what a URI path may not hold as it is.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(*byte as char)
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<Result<Option<String>, String>> {
        let mut reader = tokio::io::BufReader::new(input);
        let mut out = Vec::new();
        for _ in 0..10 {
            let item = read_message(&mut reader, 100).await;
            let end = !matches!(item, Ok(Some(_)));
            out.push(item);
            if end {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_bad_ones_end_the_stream() {
        let two =
            b"Content-Length: 2\r\n\r\n{}Content-Type: x\r\ncontent-length:7\r\n\r\n{\"a\":1}";
        assert_eq!(
            read_all(two).await,
            vec![
                Ok(Some("{}".into())),
                Ok(Some("{\"a\":1}".into())),
                Ok(None)
            ]
        );
        let too_big = b"Content-Length: 101\r\n\r\n";
        assert!(
            read_all(too_big).await[0]
                .as_ref()
                .unwrap_err()
                .contains("101 bytes")
        );
        let no_length = b"X: 1\r\n\r\n{}";
        assert!(read_all(no_length).await[0].is_err());
        let cut = b"Content-Length: 9\r\n\r\n{}";
        assert!(read_all(cut).await[0].is_err());
        let many = b"X: 1\r\n".repeat(20);
        assert!(
            read_all(&many).await[0]
                .as_ref()
                .unwrap_err()
                .contains("header lines")
        );
        let long_line = [b'a'; 2000];
        assert!(
            read_all(&long_line).await[0]
                .as_ref()
                .unwrap_err()
                .contains("too long")
        );
        let not_utf8 = b"Content-Length: 2\r\n\r\n\xff\xfe";
        assert!(read_all(not_utf8).await[0].is_err());
    }

    #[test]
    fn uris_and_language_keys() {
        assert_eq!(file_uri(Path::new("/w/a b/ü")), "file:///w/a%20b/%C3%BC");
        assert!(valid_language("python") && valid_language("c_sharp-2"));
        assert!(!valid_language("") && !valid_language("../x") && !valid_language("a/b"));
    }
}
