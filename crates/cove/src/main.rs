//! The `cove` binary: flags and subcommands, wired to the library crates. No logic lives here.
//!
//! Owns: the command line (flags, subcommands, their defaults and checks), logging, and
//! building the server's backend and sandbox settings from the flags.
//! Must not know: how any of it works (HTTP routes, the protocol, PTYs, namespaces); each
//! lives in its crate.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// cove: a self-hosted cloud development environment in one binary.
///
/// `cove serve` runs the server: the browser IDE, the REST API and the WebSocket protocol
/// that scripts and agents use. Every workspace gets its own runner process, which keeps
/// terminals and programs running when browser tabs close and even when the server restarts.
#[derive(Debug, Parser)]
#[command(name = "cove", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter, e.g. `info`, `debug`, `cove_server=debug` (or set RUST_LOG).
    #[arg(long, global = true, env = "COVE_LOG", default_value = "info")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (defaults: http://127.0.0.1:8080, data in ~/.local/share/cove).
    Serve(ServeArgs),
    /// Internal: the agent of one workspace, started by the server. Not for people.
    Runner(RunnerArgs),
    /// Internal: confines a runner (namespaces, new root, cgroups, its own uid). Not for people.
    SandboxInit(SandboxInitArgs),
    /// Internal: PID 1 inside a sandbox. Not for people.
    SandboxReap(SandboxReapArgs),
}

#[derive(Debug, clap::Args)]
struct SandboxReapArgs {
    #[arg(long)]
    uid: u32,
    #[arg(long)]
    gid: u32,
    #[arg(last = true)]
    args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetworkMode {
    /// `outbound` when slirp4netns is installed and cove listens on loopback only; else `none`.
    Auto,
    /// Each workspace has only its own loopback: nothing in, nothing out.
    None,
    /// Also outbound connections (pip install, git clone) through slirp4netns, to public
    /// addresses: the host's own addresses, private ranges (10/8, 172.16/12, 192.168/16),
    /// link-local (cloud metadata) and carrier-grade NAT stay unreachable unless allowed with
    /// --allow-egress.
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SandboxMode {
    /// Each workspace in its own namespaces, root filesystem, cgroups and uid (needs root).
    Namespaces,
    /// No isolation: workspaces run as the server's user and see the host. Development only.
    None,
}

#[derive(Debug, clap::Args)]
struct SandboxInitArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    workspace: PathBuf,
    /// A disk image to mount at --workspace while the sandbox lives.
    #[arg(long)]
    workspace_image: Option<PathBuf>,
    /// Grow the image to hold this many bytes if it is smaller (0: keep its size).
    #[arg(long, default_value_t = 0)]
    disk_limit_bytes: u64,
    /// Give the sandbox outbound network through this slirp4netns.
    #[arg(long)]
    slirp4netns: Option<PathBuf>,
    /// A range the sandbox may reach although it is blocked by default (repeatable).
    #[arg(long = "allow-egress")]
    allow_egress: Vec<cove_sandbox::egress::Ipv4Net>,
    /// Where the program's output goes (capped and rotated).
    #[arg(long)]
    log_file: PathBuf,
    /// A descriptor the program inherits (the runner's socket); all others above 2 are closed.
    #[arg(long)]
    keep_fd: Vec<i32>,
    #[arg(long)]
    root_dir: PathBuf,
    #[arg(long)]
    uid: u32,
    #[arg(long)]
    gid: u32,
    #[arg(long)]
    memory_bytes: u64,
    #[arg(long)]
    cpu_millis: u64,
    #[arg(long)]
    pids: u64,
    #[arg(long)]
    tmp_bytes: u64,
    /// The runner's arguments.
    #[arg(last = true)]
    args: Vec<std::ffi::OsString>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, env = "COVE_BIND_ADDR", default_value = "127.0.0.1:8080")]
    bind_addr: SocketAddr,
    /// Where the database, workspaces and logs live [default: $XDG_DATA_HOME/cove or ~/.local/share/cove].
    #[arg(long, env = "COVE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Authentication: `none` (everyone is the admin; keep the server on loopback). Password
    /// sign-in arrives with accounts.
    #[arg(long, default_value = "none")]
    auth: String,
    /// Password for `--auth password` (not available yet).
    #[arg(long, env = "PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// TLS certificate (not available yet: put cove behind a TLS-terminating proxy).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS private key for --cert (not available yet).
    #[arg(long)]
    cert_key: Option<PathBuf>,
    /// Largest file read or written through the API, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_file_size: u64,
    /// Scrollback kept per terminal (and output kept per process), in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    scrollback: usize,
    /// Terminals per workspace.
    #[arg(long, default_value_t = 64)]
    max_terminals: usize,
    /// Running processes per workspace.
    #[arg(long, default_value_t = 64)]
    max_processes: usize,
    /// How workspaces are isolated. `none` is for development on a trusted machine only.
    #[arg(long, value_enum, default_value = "namespaces")]
    sandbox: SandboxMode,
    /// Memory limit per workspace, in MiB (a process over it is killed). This and the other
    /// limits are defaults and ceilings: a workspace may ask for less when it is created.
    #[arg(long, default_value_t = 512)]
    memory_limit_mib: u64,
    /// CPU limit per workspace, in cores (0.5 = half a core).
    #[arg(long, default_value_t = 0.5)]
    cpu_limit: f64,
    /// Process limit per workspace (stops fork bombs).
    #[arg(long, default_value_t = 512)]
    pids_limit: u64,
    /// Network of each sandboxed workspace. Never inbound: the IDE reaches a workspace's
    /// ports through cove's preview proxy.
    #[arg(long, value_enum, default_value = "auto")]
    network: NetworkMode,
    /// With outbound network, a range workspaces may reach although it is blocked by default
    /// (the host's own addresses, private, link-local and carrier-grade NAT ranges), e.g.
    /// `10.20.0.0/16` for a company registry, or `0.0.0.0/0` for everything. Repeatable;
    /// also COVE_ALLOW_EGRESS, comma-separated.
    #[arg(
        long = "allow-egress",
        env = "COVE_ALLOW_EGRESS",
        value_delimiter = ','
    )]
    allow_egress: Vec<cove_sandbox::egress::Ipv4Net>,
    /// Size of each workspace's private /tmp, in MiB.
    #[arg(long, default_value_t = 256)]
    tmp_size_mib: u64,
    /// Storage per workspace, in MiB. Sandboxed, each new workspace gets an ext4 image of
    /// this size, so every write is held to it; 0 means no limit.
    #[arg(long, default_value_t = 1024)]
    disk_limit_mib: u64,
    /// A host name cove is reached by (repeatable; also COVE_ALLOWED_HOSTS, comma-separated),
    /// e.g. `cove.example.com`. Loopback names and IP addresses always work; any other name
    /// in a request's Host is refused, which stops DNS-rebinding attacks from web pages.
    #[arg(
        long = "allowed-host",
        env = "COVE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Serve workspace previews at `{port}-{workspace id}.DOMAIN` (needs a wildcard DNS
    /// record, and a wildcard certificate behind TLS). Without it, previews of a cove reached
    /// on loopback live at `{port}-{id}.localhost`, and otherwise under
    /// `/w/{id}/proxy/{port}/` in a sandboxed page.
    #[arg(long, env = "COVE_PREVIEW_DOMAIN")]
    preview_domain: Option<String>,
    /// Most HTTP connections open at once (WebSockets leave the count once upgraded).
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a client may take to send a request's head before it is disconnected (also
    /// the idle time of keep-alive connections).
    #[arg(long, default_value_t = 15)]
    header_timeout_secs: u64,
}

#[derive(Debug, clap::Args)]
struct RunnerArgs {
    #[arg(long)]
    workspace_id: String,
    /// The workspace's files.
    #[arg(long)]
    root: PathBuf,
    /// Unix socket to listen on (mode 0600).
    #[arg(long, conflicts_with_all = ["listen_tcp", "listen_fd"])]
    socket: Option<PathBuf>,
    /// A Unix socket the server has bound for this runner, inherited as this descriptor: the
    /// runner listens on it (so the peer credentials the server checks are the runner's).
    #[arg(long, conflicts_with = "listen_tcp")]
    listen_fd: Option<i32>,
    /// TCP address to listen on instead; requires the token in $COVE_RUNNER_TOKEN.
    #[arg(long)]
    listen_tcp: Option<SocketAddr>,
    #[arg(long, default_value_t = 1024 * 1024)]
    scrollback_bytes: usize,
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_file_bytes: u64,
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    #[arg(long, default_value_t = 64)]
    max_terminals: usize,
    #[arg(long, default_value_t = 64)]
    max_processes: usize,
    /// Storage limit enforced on API writes, in bytes (0: none).
    #[arg(long, default_value_t = 0)]
    disk_limit_bytes: u64,
    /// A cgroup.procs file every program joins before it runs (the sandbox's CPU limit).
    #[arg(long)]
    program_cgroup: Option<PathBuf>,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("cove"));
    }
    let home =
        std::env::var_os("HOME").context("neither --data-dir, $XDG_DATA_HOME nor $HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/cove"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or(cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).context("bad --log filter")?,
        )
        // Colour for people at a terminal; a log file (`cove serve > log`, a runner's log)
        // gets plain text that grep and less read as it is.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    // No async runtime for these two: the sandbox's setup must run single-threaded.
    match cli.command {
        Command::SandboxInit(args) => return sandbox_init(args),
        Command::SandboxReap(args) => {
            std::process::exit(cove_sandbox::reap(args.uid, args.gid, &args.args)?)
        }
        _ => {}
    }
    match cli.command {
        Command::SandboxInit(_) | Command::SandboxReap(_) => unreachable!("handled above"),
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(args)),
        // One runner serves one workspace: a single-threaded runtime keeps an idle runner
        // small (one thread, one malloc arena) and is fast enough for one workspace's I/O.
        Command::Runner(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(8)
            .build()?
            .block_on(runner(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let auth = match args.auth.as_str() {
        "none" => cove_server::Auth::None,
        "password" => anyhow::bail!(
            "--auth password is not available yet: accounts and sign-in are a later milestone; run with --auth none on loopback"
        ),
        other => anyhow::bail!("unknown --auth {other:?}; use none"),
    };
    if args.password.is_some() && auth == cove_server::Auth::None {
        tracing::warn!("a password was given, but --auth none ignores it");
    }
    if args.cert.is_some() || args.cert_key.is_some() {
        anyhow::bail!("--cert is not available yet: put cove behind a TLS-terminating proxy");
    }
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let sandbox = match args.sandbox {
        SandboxMode::Namespaces => {
            let cgroups = cove_sandbox::check_host().context(
                "cannot sandbox workspaces on this host (use --sandbox none for development)",
            )?;
            anyhow::ensure!(
                args.cpu_limit.is_finite()
                    && args.cpu_limit > 0.0
                    && args.memory_limit_mib >= 16
                    && args.pids_limit >= 16,
                "limits must be at least 16 MiB of memory, 16 processes and a positive CPU share"
            );
            tracing::info!(
                ?cgroups,
                memory_mib = args.memory_limit_mib,
                cpu = args.cpu_limit,
                pids = args.pids_limit,
                "workspaces are sandboxed"
            );
            let disk_images = match cove_sandbox::disk::probe() {
                Ok(mke2fs) => {
                    tracing::info!(
                        disk_mib = args.disk_limit_mib,
                        mke2fs = %mke2fs.display(),
                        "each new workspace gets a disk image of its storage limit"
                    );
                    true
                }
                Err(why) => {
                    tracing::warn!(
                        "storage limits hold only for API writes, not for programs: {why}"
                    );
                    false
                }
            };
            Some(cove_backend::SandboxSettings {
                limits: cove_sandbox::Limits {
                    memory_bytes: mib(args.memory_limit_mib, "--memory-limit-mib")?,
                    cpu_millis: (args.cpu_limit * 1000.0).round() as u64,
                    pids: args.pids_limit,
                },
                tmp_bytes: mib(args.tmp_size_mib, "--tmp-size-mib")?,
                disk_images,
                network: workspace_network(args.network, args.bind_addr)?,
                egress: cove_sandbox::egress::Egress {
                    allow: args.allow_egress,
                },
            })
        }
        SandboxMode::None => {
            tracing::warn!(
                "--sandbox none: workspaces are NOT isolated; their programs run as this user and can read and change anything it can. Use only on a trusted, single-user machine."
            );
            None
        }
    };
    let backend = cove_backend::LocalBackend::new(cove_backend::LocalConfig {
        data_dir: data_dir.clone(),
        runner_exe: std::env::current_exe()
            .context("cannot find the cove binary to start runners")?,
        limits: cove_backend::RunnerLimits {
            scrollback_bytes: args.scrollback,
            max_file_bytes: args.max_file_size,
            max_terminals: args.max_terminals,
            max_processes: args.max_processes,
            disk_limit_bytes: mib(args.disk_limit_mib, "--disk-limit-mib")?,
            ..Default::default()
        },
        sandbox,
        start_timeout: Duration::from_secs(15),
        stop_timeout: Duration::from_secs(10),
    })?;
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
        signals.cancel();
    });
    let config = cove_server::Config {
        bind: args.bind_addr,
        data_dir,
        auth,
        max_file_bytes: args.max_file_size,
        allowed_hosts: args.allowed_hosts,
        preview_domain: args.preview_domain,
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        max_connections: args.max_connections,
    };
    cove_server::serve(config, Arc::new(backend), shutdown).await
}

/// MiB from a flag in bytes, refusing values no filesystem or cgroup could hold.
fn mib(value: u64, flag: &str) -> anyhow::Result<u64> {
    value
        .checked_mul(1024 * 1024)
        .filter(|bytes| *bytes <= cove_backend::MAX_DISK_BYTES)
        .with_context(|| format!("{flag} {value} is too large (at most 16 TiB)"))
}

/// Decides the workspaces' network and says why in the log.
fn workspace_network(
    mode: NetworkMode,
    bind: SocketAddr,
) -> anyhow::Result<cove_sandbox::network::Network> {
    choose_network(mode, bind, cove_sandbox::network::find_slirp4netns())
}

fn choose_network(
    mode: NetworkMode,
    bind: SocketAddr,
    slirp: Option<PathBuf>,
) -> anyhow::Result<cove_sandbox::network::Network> {
    use cove_sandbox::network::Network;
    let network = match (mode, slirp) {
        (NetworkMode::None, _) => Network::Loopback,
        (NetworkMode::Outbound, None) => anyhow::bail!(
            "--network outbound needs slirp4netns, which is not installed (apt-get install slirp4netns)"
        ),
        (NetworkMode::Outbound, Some(slirp4netns)) => {
            if !bind.ip().is_loopback() {
                tracing::warn!(
                    %bind,
                    "--network outbound with a non-loopback listen address: workspaces can reach cove's port through the host's own addresses; listen on loopback behind a proxy to prevent it"
                );
            }
            Network::Outbound { slirp4netns }
        }
        (NetworkMode::Auto, None) => {
            tracing::info!(
                "workspaces have no outbound network: slirp4netns is not installed (apt-get install slirp4netns, or --network none to silence this)"
            );
            Network::Loopback
        }
        (NetworkMode::Auto, Some(_)) if !bind.ip().is_loopback() => {
            tracing::info!(
                %bind,
                "workspaces have no outbound network: cove listens beyond loopback, where outbound workspaces could reach it (--network outbound to choose otherwise)"
            );
            Network::Loopback
        }
        (NetworkMode::Auto, Some(slirp4netns)) => Network::Outbound { slirp4netns },
    };
    if let Network::Outbound { slirp4netns } = &network {
        tracing::info!(slirp4netns = %slirp4netns.display(), "workspaces have outbound network; the host's loopback is closed to them");
    }
    Ok(network)
}

fn sandbox_init(args: SandboxInitArgs) -> anyhow::Result<()> {
    let spec = cove_sandbox::Spec {
        name: args.name,
        workspace_dir: args.workspace,
        workspace_image: args.workspace_image,
        disk_limit_bytes: args.disk_limit_bytes,
        network: match args.slirp4netns {
            Some(slirp4netns) => cove_sandbox::network::Network::Outbound { slirp4netns },
            None => cove_sandbox::network::Network::Loopback,
        },
        log_file: args.log_file,
        inherited_fds: args.keep_fd,
        egress: cove_sandbox::egress::Egress {
            allow: args.allow_egress,
        },
        root_dir: args.root_dir,
        program: std::env::current_exe().context("cannot find the cove binary")?,
        args: args.args,
        env: std::env::vars_os().collect(),
        uid: args.uid,
        gid: args.gid,
        limits: cove_sandbox::Limits {
            memory_bytes: args.memory_bytes,
            cpu_millis: args.cpu_millis,
            pids: args.pids,
        },
        tmp_bytes: args.tmp_bytes,
    };
    let code = cove_sandbox::run(&spec)?;
    std::process::exit(code)
}

async fn runner(args: RunnerArgs) -> anyhow::Result<()> {
    let listen = match (args.socket, args.listen_tcp, args.listen_fd) {
        (None, None, Some(fd)) => cove_runner::Listen::Inherited(
            cove_runner::take_listen_fd(fd)
                .with_context(|| format!("--listen-fd {fd} is not a socket this runner can use"))?,
        ),
        (Some(path), None, None) => cove_runner::Listen::Unix(path),
        (None, Some(addr), None) => {
            let token = std::env::var("COVE_RUNNER_TOKEN")
                .context("--listen-tcp needs $COVE_RUNNER_TOKEN")?;
            anyhow::ensure!(
                token.len() >= 16,
                "$COVE_RUNNER_TOKEN must be at least 16 characters"
            );
            cove_runner::Listen::Tcp { addr, token }
        }
        _ => anyhow::bail!("give one of --listen-fd, --socket or --listen-tcp"),
    };
    let root = args
        .root
        .canonicalize()
        .with_context(|| format!("workspace root {}", args.root.display()))?;
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| std::path::Path::new(s).is_file())
        .unwrap_or_else(|| "/bin/bash".into());
    let config = cove_runner::Config {
        workspace_id: args.workspace_id,
        home: root.clone(),
        program_cgroup: args.program_cgroup,
        root,
        listen,
        shell,
        limits: cove_runner::Limits {
            scrollback_bytes: args.scrollback_bytes,
            max_file_bytes: args.max_file_bytes,
            max_message_bytes: args.max_message_bytes,
            max_terminals: args.max_terminals,
            max_processes: args.max_processes,
            disk_limit_bytes: (args.disk_limit_bytes > 0).then_some(args.disk_limit_bytes),
            ..Default::default()
        },
    };
    tracing::info!(workspace = %config.workspace_id, root = %config.root.display(), "runner starting");
    cove_runner::run(config, CancellationToken::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_sandbox::network::Network;

    #[test]
    fn auto_gives_outbound_network_only_on_loopback_with_slirp4netns() {
        let slirp = Some(PathBuf::from("/usr/bin/slirp4netns"));
        let (lo, any): (SocketAddr, SocketAddr) = (
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:8080".parse().unwrap(),
        );
        let outbound = Network::Outbound {
            slirp4netns: PathBuf::from("/usr/bin/slirp4netns"),
        };
        let pick = |mode, bind, slirp: &Option<PathBuf>| choose_network(mode, bind, slirp.clone());
        assert_eq!(pick(NetworkMode::Auto, lo, &slirp).unwrap(), outbound);
        assert_eq!(
            pick(NetworkMode::Auto, any, &slirp).unwrap(),
            Network::Loopback
        );
        assert_eq!(
            pick(NetworkMode::Auto, lo, &None).unwrap(),
            Network::Loopback
        );
        assert_eq!(
            pick(NetworkMode::None, lo, &slirp).unwrap(),
            Network::Loopback
        );
        assert_eq!(pick(NetworkMode::Outbound, any, &slirp).unwrap(), outbound);
        let missing = pick(NetworkMode::Outbound, lo, &None).unwrap_err();
        assert!(missing.to_string().contains("apt-get install slirp4netns"));
    }
}
