//! The `cove` binary: flags and subcommands, wired to the library crates. No logic lives here.
//!
//! Owns: the command line (flags, subcommands, their defaults and checks), logging, and
//! building the server's backend and sandbox settings from the flags.
//! Must not know: how any of it works (HTTP routes, the protocol, PTYs, namespaces); each
//! lives in its crate.

mod accounts;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cove_protocol::launch::{RunnerLimits, SandboxLimits};
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
    Serve(Box<ServeArgs>),
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

impl From<NetworkMode> for cove_backend_local::NetworkChoice {
    fn from(mode: NetworkMode) -> Self {
        match mode {
            NetworkMode::Auto => cove_backend_local::NetworkChoice::Auto,
            NetworkMode::None => cove_backend_local::NetworkChoice::None,
            NetworkMode::Outbound => cove_backend_local::NetworkChoice::Outbound,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    /// Sign in with a password (sessions) or an API token.
    Password,
    /// Nobody signs in: every caller is the administrator. Loopback only.
    None,
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
    /// What to confine and how (JSON; see `cove_protocol::launch::SandboxSpec`).
    #[arg(long)]
    spec: String,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, env = "COVE_BIND_ADDR", default_value = "127.0.0.1:8080")]
    bind_addr: SocketAddr,
    /// Where the database, workspaces and logs live [default: $XDG_DATA_HOME/cove or ~/.local/share/cove].
    #[arg(long, env = "COVE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// How people sign in. `password`: each request needs a session (signed in at /login)
    /// or an API token; the administrator's password comes from --password, $PASSWORD,
    /// --hashed-password or $HASHED_PASSWORD, or is generated at first start and kept in
    /// `<data dir>/admin-password` (its path is printed). `none`: everyone who can reach
    /// cove is the administrator; keep it on loopback.
    #[arg(long, value_enum, env = "COVE_AUTH", default_value = "password")]
    auth: AuthMode,
    /// The administrator's password (at least 8 characters), applied at every start.
    #[arg(long, env = "PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The administrator's password as an Argon2 PHC string (`$argon2id$...`), as
    /// code-server accepts it, e.g. from `argon2 SALT -id -e`.
    #[arg(
        long,
        env = "HASHED_PASSWORD",
        hide_env_values = true,
        conflicts_with = "password"
    )]
    hashed_password: Option<String>,
    /// The first administrator's username (made at first start, when there is no user).
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    admin_username: String,
    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For, -Host and -Proto
    /// headers are believed, e.g. `127.0.0.1` or `10.0.0.0/8`. Repeatable; also
    /// COVE_TRUSTED_PROXIES, comma-separated. From any other peer they are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "COVE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<cove_server::Cidr>,
    /// An origin besides cove's own whose pages may open cove's sockets and change state,
    /// e.g. `https://ide.example.com`. Repeatable; also COVE_ALLOWED_ORIGINS.
    #[arg(
        long = "allowed-origin",
        env = "COVE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Workspaces each user may own (unless their own quota says otherwise).
    #[arg(long)]
    quota_workspaces: Option<u64>,
    /// Workspaces each user may have running at once.
    #[arg(long)]
    quota_running: Option<u64>,
    /// Sign-in sessions each user may have open.
    #[arg(long, default_value_t = 50)]
    quota_sessions: u64,
    /// Sockets each user may have open at once.
    #[arg(long, default_value_t = 500)]
    quota_connections: u64,
    /// TLS certificate (not available yet: put cove behind a TLS-terminating proxy).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS private key for --cert (not available yet).
    #[arg(long)]
    cert_key: Option<PathBuf>,
    /// Largest file read or written through the API, in bytes.
    #[arg(long, default_value_t = RunnerLimits::DEFAULT.max_file_bytes)]
    max_file_size: u64,
    /// Scrollback kept per terminal (and output kept per process), in bytes.
    #[arg(long, default_value_t = RunnerLimits::DEFAULT.scrollback_bytes)]
    scrollback: u64,
    /// Terminals per workspace.
    #[arg(long, default_value_t = RunnerLimits::DEFAULT.max_terminals)]
    max_terminals: u32,
    /// Running processes per workspace.
    #[arg(long, default_value_t = RunnerLimits::DEFAULT.max_processes)]
    max_processes: u32,
    /// How workspaces are isolated. `none` is for development on a trusted machine only.
    #[arg(long, value_enum, default_value = "namespaces")]
    sandbox: SandboxMode,
    /// Memory limit per workspace, in MiB (a process over it is killed). This and the other
    /// limits are defaults and ceilings: a workspace may ask for less when it is created.
    #[arg(long, default_value_t = SandboxLimits::DEFAULT.memory_bytes >> 20)]
    memory_limit_mib: u64,
    /// CPU limit per workspace, in cores (0.5 = half a core).
    #[arg(long, default_value_t = SandboxLimits::DEFAULT.cpu_millis as f64 / 1000.0)]
    cpu_limit: f64,
    /// Process limit per workspace (stops fork bombs).
    #[arg(long, default_value_t = SandboxLimits::DEFAULT.pids)]
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
    allow_egress: Vec<String>,
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
    /// What to serve and within which limits (JSON; see `cove_protocol::launch::RunnerSpec`):
    /// how the server starts runners.
    #[arg(long, conflicts_with_all = ["workspace_id", "root", "socket", "listen_tcp"])]
    spec: Option<String>,
    /// By hand (profiling, experiments): the workspace's id, with --root and --socket or
    /// --listen-tcp; every limit takes its default.
    #[arg(long, requires = "root")]
    workspace_id: Option<String>,
    /// The workspace's files.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Unix socket to listen on (mode 0600).
    #[arg(long, conflicts_with = "listen_tcp")]
    socket: Option<PathBuf>,
    /// TCP address to listen on instead; requires the token in $COVE_RUNNER_TOKEN.
    #[arg(long)]
    listen_tcp: Option<SocketAddr>,
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
            .block_on(serve(*args)),
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
    if args.auth == AuthMode::None && (args.password.is_some() || args.hashed_password.is_some()) {
        tracing::warn!("a password was given, but --auth none ignores it");
    }
    if args.cert.is_some() || args.cert_key.is_some() {
        anyhow::bail!("--cert is not available yet: put cove behind a TLS-terminating proxy");
    }
    let data_dir = match args.data_dir.clone() {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    // Only this user may read it: it holds the database (password hashes) and the password.
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
    }
    let data_dir = data_dir.canonicalize()?;
    let accounts = accounts::settings(&args, &data_dir)?;
    let disk_limit_bytes = mib(args.disk_limit_mib, "--disk-limit-mib")?;
    let sandbox = match args.sandbox {
        SandboxMode::Namespaces => {
            let network = cove_backend_local::choose_network(
                args.network.into(),
                args.bind_addr,
                cove_sandbox::network::find_slirp4netns(),
                &args.allow_egress,
            )?;
            let limits = SandboxLimits {
                memory_bytes: mib(args.memory_limit_mib, "--memory-limit-mib")?,
                cpu_millis: if args.cpu_limit.is_finite() && args.cpu_limit > 0.0 {
                    (args.cpu_limit * 1000.0).round() as u64
                } else {
                    0
                },
                pids: args.pids_limit,
            };
            Some(
                cove_backend_local::SandboxSettings::for_this_host(
                    limits,
                    mib(args.tmp_size_mib, "--tmp-size-mib")?,
                    disk_limit_bytes,
                    network,
                )
                .context(
                    "cannot sandbox workspaces on this host (use --sandbox none for development)",
                )?,
            )
        }
        SandboxMode::None => {
            tracing::warn!(
                "--sandbox none: workspaces are NOT isolated; their programs run as this user and can read and change anything it can. Use only on a trusted, single-user machine."
            );
            None
        }
    };
    let backend = cove_backend_local::LocalBackend::new(cove_backend_local::LocalConfig {
        data_dir: data_dir.clone(),
        runner_exe: std::env::current_exe()
            .context("cannot find the cove binary to start runners")?,
        runner_limits: RunnerLimits {
            scrollback_bytes: args.scrollback,
            max_file_bytes: args.max_file_size,
            max_terminals: args.max_terminals,
            max_processes: args.max_processes,
            ..RunnerLimits::DEFAULT
        },
        disk_limit_bytes,
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
        accounts,
        trusted_proxies: args.trusted_proxies,
        allowed_origins: args.allowed_origins,
        max_file_bytes: args.max_file_size,
        allowed_hosts: args.allowed_hosts,
        preview_domain: args.preview_domain,
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        max_connections: args.max_connections,
        tls: None,
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

/// `cove sandbox-init --spec`: the launch spec, converted into the sandbox's own terms.
fn sandbox_init(args: SandboxInitArgs) -> anyhow::Result<()> {
    use cove_protocol::launch::{NetworkSpec, SandboxSpec};
    let spec: SandboxSpec =
        serde_json::from_str(&args.spec).context("--spec is not a sandbox spec")?;
    let (network, allow) = match spec.network {
        NetworkSpec::Loopback => (cove_sandbox::network::Network::Loopback, Vec::new()),
        NetworkSpec::Outbound { slirp4netns, allow } => (
            cove_sandbox::network::Network::Outbound {
                slirp4netns: slirp4netns.into(),
            },
            allow,
        ),
    };
    let allow = allow
        .iter()
        .map(|range| range.parse())
        .collect::<Result<Vec<cove_sandbox::egress::Ipv4Net>, _>>()
        .context("an egress range of the spec")?;
    let runner = serde_json::to_string(&spec.runner)?;
    let spec = cove_sandbox::Spec {
        name: spec.name,
        workspace_dir: spec.workspace_dir.into(),
        workspace_image: spec.workspace_image.map(Into::into),
        disk_limit_bytes: spec.disk_limit_bytes,
        network,
        egress: cove_sandbox::egress::Egress { allow },
        log_file: spec.log_file.into(),
        inherited_fds: vec![spec.runner.listen_fd],
        root_dir: spec.root_dir.into(),
        program: std::env::current_exe().context("cannot find the cove binary")?,
        args: vec!["runner".into(), "--spec".into(), runner.into()],
        env: std::env::vars_os().collect(),
        uid: spec.uid,
        gid: spec.gid,
        limits: cove_sandbox::Limits {
            memory_bytes: spec.limits.memory_bytes,
            cpu_millis: spec.limits.cpu_millis,
            pids: spec.limits.pids,
        },
        tmp_bytes: spec.tmp_bytes,
    };
    let code = cove_sandbox::run(&spec)?;
    std::process::exit(code)
}

/// `cove runner`: from the launch spec the backend wrote, or by hand.
async fn runner(args: RunnerArgs) -> anyhow::Result<()> {
    use cove_protocol::launch::RunnerSpec;
    let (workspace_id, root, listen, limits, program_cgroup) = match args.spec {
        Some(spec) => {
            let spec: RunnerSpec =
                serde_json::from_str(&spec).context("--spec is not a runner spec")?;
            let listener = cove_runner::take_listen_fd(spec.listen_fd).with_context(|| {
                format!(
                    "descriptor {} is not a socket this runner can use",
                    spec.listen_fd
                )
            })?;
            (
                spec.workspace_id,
                PathBuf::from(spec.root),
                cove_runner::Listen::Inherited(listener),
                spec.limits,
                spec.program_cgroup.map(PathBuf::from),
            )
        }
        None => {
            let (Some(workspace_id), Some(root)) = (args.workspace_id, args.root) else {
                anyhow::bail!(
                    "give --spec, or --workspace-id with --root and --socket or --listen-tcp"
                );
            };
            let listen = match (args.socket, args.listen_tcp) {
                (Some(path), None) => cove_runner::Listen::Unix(path),
                (None, Some(addr)) => {
                    let token = std::env::var("COVE_RUNNER_TOKEN")
                        .context("--listen-tcp needs $COVE_RUNNER_TOKEN")?;
                    anyhow::ensure!(
                        token.len() >= 16,
                        "$COVE_RUNNER_TOKEN must be at least 16 characters"
                    );
                    cove_runner::Listen::Tcp { addr, token }
                }
                _ => anyhow::bail!("give --socket or --listen-tcp"),
            };
            (workspace_id, root, listen, RunnerLimits::DEFAULT, None)
        }
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("workspace root {}", root.display()))?;
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| std::path::Path::new(s).is_file())
        .unwrap_or_else(|| "/bin/bash".into());
    let config = cove_runner::Config {
        workspace_id,
        home: root.clone(),
        program_cgroup,
        root,
        listen,
        shell,
        limits: cove_runner::Limits {
            scrollback_bytes: usize::try_from(limits.scrollback_bytes)?,
            max_file_bytes: limits.max_file_bytes,
            max_message_bytes: usize::try_from(limits.max_message_bytes)?,
            max_terminals: limits.max_terminals as usize,
            max_processes: limits.max_processes as usize,
            disk_limit_bytes: limits.disk_limit_bytes,
            ..Default::default()
        },
    };
    tracing::info!(workspace = %config.workspace_id, root = %config.root.display(), "runner starting");
    cove_runner::run(config, CancellationToken::new()).await
}
