//! Test harness: a real `cove serve` on an ephemeral port with a temp data dir, and clients
//! for its REST API, control socket and raw terminal socket. Dev-dependency only.
//!
//! Owns: starting and stopping the binary under test with a temp data dir, bounded waits,
//! clients that speak cove's HTTP and sockets as a test would, whether the sandbox can
//! run here, a throwaway PostgreSQL cluster for the store tests (`postgres`) and a real S3
//! server for the object store's (`s3`).
//! Must not know: cove's internals: it drives the real binary from outside, through the same
//! HTTP and sockets as any client, and links no cove crate.
//!
//! Every wait is bounded; a server and the runners it started are killed by pid on drop.

// Fallible twins of the server and the HTTP client below, for the benchmarks, which must
// report a failure rather than panic.
pub mod postgres;
pub mod request;
pub mod s3;
pub mod serve;
pub mod socketio;

mod clients;
pub use clients::{Control, RawTerminal};

/// A free TCP port on loopback (for a helper server that cannot take port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A tool a group of tests needs is not installed: fine outside CI (the tests are skipped,
/// saying so), a failure under CI, whose `.ci/run` installs it.
pub fn missing_tool(tool: &str, skipped: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install {tool} (see .ci/run)"
    );
    eprintln!("{tool} is not installed: {skipped} are skipped");
}

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Whether this process can run workspaces in cove's sandbox: namespaces, cgroups, loop
/// devices and a uid per workspace need root. CI runs as root.
pub fn can_sandbox() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Guards a test of what the sandbox does (isolation, limits, the uid, the capped log):
/// `true` when it can run here. Otherwise it prints `SKIPPED <test>: needs root to <why>` and
/// returns `false`, except under CI (`CI` set), which runs as root and where a skipped
/// sandbox test would be a silent hole in coverage: there it fails.
pub fn needs_sandbox(why: &str) -> bool {
    if can_sandbox() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root to {why}; CI must run the tests as root"
    );
    eprintln!("SKIPPED {test}: needs root to {why} (cove's sandbox runs only as root)");
    false
}

/// A running `cove serve`.
pub struct TestServer {
    bin: PathBuf,
    child: Option<tokio::process::Child>,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl TestServer {
    /// Starts `bin serve` on 127.0.0.1:0 with a fresh data dir: sandboxed when this process
    /// is root (as in CI), else with `--sandbox none`, so that what does not depend on the
    /// sandbox is tested by anyone. A test of the sandbox itself checks [`needs_sandbox`]
    /// first.
    pub async fn start(bin: &str) -> TestServer {
        Self::start_with(bin, &[]).await
    }

    /// Like [`TestServer::start`], with more flags for `cove serve`. A `--sandbox` or
    /// `--auth` among them is kept as it is (the default here is `--auth none`).
    pub async fn start_with(bin: &str, args: &[&str]) -> TestServer {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !can_sandbox() && !args.iter().any(|a| a == "--sandbox") {
            args.extend(["--sandbox".into(), "none".into()]);
        }
        // Sign-in is tested where it is the subject (`--auth password` among `args`);
        // elsewhere every caller is the administrator.
        if !args.iter().any(|a| a == "--auth") {
            args.extend(["--auth".into(), "none".into()]);
        }
        let data_dir = tempfile::Builder::new()
            .prefix("cove-it-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        // The config file is the data dir's own unless a test chooses one: the user's
        // ~/.config/cove/config.yaml must not change what is tested.
        if !args
            .iter()
            .any(|a| a == "--config" || a.starts_with("--config="))
        {
            let file = data_dir.path().join("config.yaml");
            args.push(format!("--config={}", file.display()));
        }
        let mut server = TestServer {
            bin: PathBuf::from(bin),
            child: None,
            port: 0,
            data_dir,
            extra_args: args,
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("server.log"))
            .expect("server log");
        let mut child = tokio::process::Command::new(&self.bin)
            .arg("serve")
            .arg("--bind-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.extra_args)
            .env("COVE_LOG", "info,cove_runner=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start cove serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("cove listening on http://") {
                    return addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .expect("cove serve announces its address in time")
        .expect("cove serve prints `cove listening on http://ADDR`");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.port = port;
        self.child = Some(child);
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("server running")
    }

    /// SIGKILLs the server (runners survive), then starts it again on a new port with the same
    /// data dir.
    pub async fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id().expect("pid"), libc::SIGKILL);
            let _ = tokio::time::timeout(WAIT, child.wait()).await;
        }
        self.launch().await;
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Pids of the runners this server started, from their pid files.
    pub fn runner_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.data_dir.path().join("run")) {
            for entry in dir.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid")
                    && let Some(pid) = std::fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The pids of the runner processes themselves: below a sandbox's outer process, or the
    /// pid-file process itself when there is no sandbox.
    pub fn runner_process_pids(&self) -> Vec<u32> {
        self.runner_pids().into_iter().map(find_runner).collect()
    }

    /// A workspace's directory on disk (for checking effects from outside).
    pub fn workspace_dir(&self, id: &str) -> PathBuf {
        self.data_dir.path().join("workspaces").join(id)
    }

    /// Sends one HTTP/1.1 request and returns (status, body).
    pub async fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        http(self.port, method, path, body, &[]).await
    }

    /// Sends a JSON request and parses a JSON answer (Null for an empty body).
    pub async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let (status, bytes) = http(
            self.port,
            method,
            path,
            body.as_deref().map(str::as_bytes),
            headers,
        )
        .await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    /// Creates a workspace and returns its id.
    pub async fn create_workspace(&self, name: &str, template: &str) -> String {
        let (status, body) = self
            .json(
                "POST",
                "/api/workspaces",
                Some(json!({"name": name, "template": template})),
            )
            .await;
        assert_eq!(status, 201, "create workspace: {body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Opens a WebSocket at `path` (with an `Origin` of the server itself, as a browser would).
    pub async fn websocket(&self, path: &str) -> Ws {
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connects in time")
            .expect("websocket connects");
        ws
    }

    /// Opens the control socket of a workspace and waits for `welcome`.
    pub async fn control(&self, id: &str) -> Control {
        self.control_with(id, "").await
    }

    /// Like [`TestServer::control`], with a query string (`"?mode=view"`).
    pub async fn control_with(&self, id: &str, query: &str) -> Control {
        let ws = self
            .websocket(&format!("/api/workspaces/{id}/ws{query}"))
            .await;
        let mut control = Control {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
        };
        let welcome = control.wait_for(|m| m["type"] == "welcome").await;
        assert_eq!(welcome["protocol"], 1);
        control
    }

    /// Opens a raw terminal socket; returns it with its `attached` message.
    pub async fn raw(&self, id: &str, terminal: &str, query: &str) -> (RawTerminal, Value) {
        let ws = self
            .websocket(&format!(
                "/api/workspaces/{id}/terminals/{terminal}/ws{query}"
            ))
            .await;
        let mut raw = RawTerminal {
            ws,
            output: Vec::new(),
            controls: Vec::new(),
        };
        let attached = raw.next_control().await;
        assert_eq!(attached["type"], "attached", "{attached}");
        (raw, attached)
    }
}

impl TestServer {
    /// The last lines of the server's and runners' logs, shown when a test fails.
    fn dump_logs(&self) {
        let mut logs = vec![self.data_dir.path().join("server.log")];
        if let Ok(dir) = std::fs::read_dir(self.data_dir.path().join("logs")) {
            logs.extend(dir.flatten().map(|e| e.path()));
        }
        for path in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- {} (last 60 lines) ---", path.display());
            for line in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for pid in self.runner_pids() {
            signal(pid, libc::SIGTERM);
        }
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            signal(pid, libc::SIGKILL);
        }
        // Runners get a moment to stop their programs, then are killed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for pid in self.runner_pids() {
            while Path::new(&format!("/proc/{pid}")).exists()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(pid, libc::SIGKILL);
        }
        // A sandbox that had to be killed could not unmount its workspace's disk image or
        // remove its cgroups.
        serve::clean_up_after_killed_sandboxes(self.data_dir.path());
    }
}

/// This host's first IPv4 address that is not loopback (traffic to it stays on the machine).
pub fn host_ipv4() -> Option<std::net::Ipv4Addr> {
    let mut found = None;
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below; every node is read while it lives.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return None;
        }
        let mut node = list;
        while !node.is_null() && found.is_none() {
            let addr = (*node).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let sin = &*(addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(ip);
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found
}

/// The `cove runner` process at or below `pid` (a sandbox puts two processes above it).
/// Every process below `pid` (children first), from `/proc/<pid>/task/<pid>/children`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    for _ in 0..16 {
        frontier = frontier
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        if frontier.is_empty() {
            break;
        }
        out.extend(&frontier);
    }
    out
}

fn find_runner(pid: u32) -> u32 {
    let is_runner = |pid: u32| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.get(1) == Some(&b"runner".as_slice())
    };
    let mut frontier = vec![pid];
    for _ in 0..4 {
        if let Some(found) = frontier.iter().copied().find(|p| is_runner(*p)) {
            return found;
        }
        frontier = frontier
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
    }
    panic!("no runner process below pid {pid}")
}

/// Sends a signal to one process we started.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One HTTP/1.1 request with `Connection: close`; understands chunked bodies.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let (status, _, body) = http_with_head(port, method, path, body, headers).await;
    (status, body)
}

/// Like [`http`], also returning the response's head (status line and headers, as text).
/// A `Host` among `headers` replaces the default `127.0.0.1:{port}`.
pub async fn http_with_head(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let response = request::request(port, method, path, headers, body, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (response.status, response.head, response.body)
}

/// A network namespace of the test's own, joined to the host by a veth pair, standing in for
/// a machine out there (nothing in a test may leave this host). Removed on drop.
pub struct TestNet {
    name: String,
    /// The address inside the namespace.
    pub addr: std::net::Ipv4Addr,
}

impl TestNet {
    /// `tag` keeps names apart (at most 6 characters); `subnet` is a /24 like `198.51.100`:
    /// the host side gets `.1`, the namespace `.2`. `None` (with the reason printed) when
    /// `ip` from iproute2 is missing or this process may not make namespaces.
    pub fn new(tag: &str, subnet: &str) -> Option<TestNet> {
        let name = format!("cove-{tag}-{}", std::process::id() % 100_000);
        let host_if = format!("cv{tag}h{}", std::process::id() % 10_000);
        let ns_if = format!("cv{tag}n{}", std::process::id() % 10_000);
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let net = TestNet {
            name: name.clone(),
            addr: format!("{subnet}.2")
                .parse()
                .expect("a /24 prefix like 198.51.100"),
        };
        let ok = ip(&["netns", "add", &name])
            && ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ])
            && ip(&["link", "set", &ns_if, "netns", &name])
            && ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", &host_if])
            && ip(&["link", "set", &host_if, "up"])
            && ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{subnet}.2/24"),
                "dev",
                &ns_if,
            ])
            && ip(&["-n", &name, "link", "set", &ns_if, "up"])
            && ip(&["-n", &name, "link", "set", "lo", "up"]);
        if !ok {
            eprintln!(
                "SKIPPED a network check: cannot make network namespaces here (ip netns, veth: needs root and iproute2)"
            );
            return None;
        }
        Some(net)
    }

    /// Starts a one-shot TCP listener inside the namespace; returns its port and a handle
    /// whose result is what the first client sent (or `None` if nobody came within `wait`).
    pub fn listen_once(&self, wait: Duration) -> (u16, std::thread::JoinHandle<Option<String>>) {
        let script = format!(
            "import socket,sys\ns=socket.socket()\ns.bind(('{}',0))\ns.listen(1)\nprint(s.getsockname()[1],flush=True)\ns.settimeout({})\ntry:\n c,_=s.accept(); c.settimeout(5); print(c.recv(4096).decode(errors='replace'),flush=True)\nexcept Exception: print('NOBODY',flush=True)\n",
            self.addr,
            wait.as_secs().max(1)
        );
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip netns exec python3");
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("piped")));
        let port = lines
            .next()
            .and_then(|l| l.ok())
            .and_then(|l| l.trim().parse().ok())
            .expect("the listener's port");
        let handle = std::thread::spawn(move || {
            let got = lines.next().and_then(|l| l.ok());
            let _ = child.wait();
            got.filter(|g| g != "NOBODY")
        });
        (port, handle)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it the host's.
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}
