//! The `cove` binary: flags and subcommands, wired to the library crates. No logic lives here.
//!
//! Owns: the command line (flags, subcommands, their defaults and checks), logging, and
//! building the server's backend and sandbox settings from the flags.
//! Must not know: how any of it works (HTTP routes, the protocol, PTYs, namespaces); each
//! lives in its crate.

mod accounts;
mod admin;
mod backup;
mod telemetry;
mod template;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use cove_config::{AuthMode, NetworkMode, SandboxMode};
use cove_protocol::launch::{RunnerLimits, SandboxLimits};
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
    /// Run the server (defaults: http://127.0.0.1:8080, data in ~/.local/share/cove,
    /// settings in ~/.config/cove/config.yaml).
    Serve(Box<cove_config::ServeArgs>),
    /// Users of a data dir: add, list, remove, passwd, role, disable, enable (works while
    /// the server runs).
    User(admin::UserArgs),
    /// API tokens for scripts and agents: `cove token create NAME [--user U] [--days N]`.
    Token(admin::TokenArgs),
    /// The audit log, newest first.
    Audit(admin::AuditArgs),
    /// Templates of a running server: list, publish a workspace as one, remove (through its
    /// API, with an administrator's token in --token or $COVE_TOKEN).
    Template(template::TemplateArgs),
    /// Copy a data dir's database and object store (hibernated workspaces with their files)
    /// into an empty directory, while the server runs.
    Backup(backup::BackupArgs),
    /// Put a backup into a new data dir (no database yet, no server running).
    Restore(backup::RestoreArgs),
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

#[derive(Debug, clap::Args)]
struct SandboxInitArgs {
    /// What to confine and how (JSON; see `cove_protocol::launch::SandboxSpec`).
    #[arg(long)]
    spec: String,
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

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let filter = std::env::var("RUST_LOG").unwrap_or(cli.log.clone());
    // Traces leave only from the server; runners and commands just log.
    let _telemetry = telemetry::init(&filter, matches!(cli.command, Command::Serve(_)))?;
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
        Command::Serve(_) => {
            let serve_matches = matches
                .subcommand_matches("serve")
                .context("the serve command's flags")?;
            let settings =
                cove_config::Settings::resolve(serve_matches, cove_config::Dirs::from_env())?;
            if settings.args.print_config {
                print!("{}", settings.render());
                return Ok(());
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(settings))
        }
        Command::User(args) => one_shot()?.block_on(admin::user(args)),
        Command::Token(args) => one_shot()?.block_on(admin::token(args)),
        Command::Audit(args) => one_shot()?.block_on(admin::audit(args)),
        Command::Template(args) => one_shot()?.block_on(template::template(args)),
        Command::Backup(args) => one_shot()?.block_on(backup::backup(args)),
        Command::Restore(args) => one_shot()?.block_on(backup::restore(args)),
        // One runner serves one workspace: a single-threaded runtime keeps an idle runner
        // small (one thread, one malloc arena) and is fast enough for one workspace's I/O.
        Command::Runner(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(8)
            .build()?
            .block_on(runner(args)),
    }
}

/// The runtime of a command that does one thing and ends.
fn one_shot() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn serve(settings: cove_config::Settings) -> anyhow::Result<()> {
    let args = &settings.args;
    if args.auth == AuthMode::None && (args.password.is_some() || args.hashed_password.is_some()) {
        tracing::warn!("a password was given, but --auth none ignores it");
    }
    let data_dir = settings.data_dir()?;
    // Only this user may read it: it holds the database (password hashes) and the TLS key.
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
    }
    let data_dir = data_dir.canonicalize()?;
    let accounts = accounts::settings(&settings)?;
    let tls = settings
        .tls_files(&data_dir)?
        .map(|files| cove_server::TlsFiles {
            cert: files.cert,
            key: files.key,
        });
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .map(|range| {
            range.parse().map_err(|e| {
                anyhow::anyhow!(
                    "--trusted-proxy {range:?} (from {}): {e}",
                    settings.source("trusted_proxies")
                )
            })
        })
        .collect::<anyhow::Result<Vec<cove_server::Cidr>>>()?;
    let disk_limit_bytes = mib(args.disk_limit_mib, "--disk-limit-mib")?;
    let sandbox = match args.sandbox {
        SandboxMode::Namespaces => {
            let network = cove_backend_local::choose_network(
                network_choice(args.network),
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
    let store = match &args.database_url {
        Some(url) => cove_server::Store::parse(url)?,
        None => cove_server::Store::in_data_dir(&data_dir),
    };
    let objects = object_store_place(args, &data_dir)?;
    let config = cove_server::Config {
        bind: args.bind_addr,
        store,
        objects,
        lifecycle: cove_server::Lifecycle {
            idle_stop: Some(args.idle_stop).filter(|d| !d.is_zero()),
            hibernate_after: Some(args.hibernate_after).filter(|d| !d.is_zero()),
        },
        data_dir,
        accounts,
        trusted_proxies,
        allowed_origins: args.allowed_origins.clone(),
        max_file_bytes: args.max_file_size,
        allowed_hosts: args.allowed_hosts.clone(),
        preview_domain: args.preview_domain.clone(),
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        max_connections: args.max_connections,
        tls,
    };
    cove_server::serve(config, Arc::new(backend), shutdown).await
}

/// Where snapshots go: `--object-store` and the `--s3-*` flags, else the data dir's `objects`.
fn object_store_place(
    args: &cove_config::ServeArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<cove_objects::Place> {
    let Some(url) = &args.object_store else {
        let s3_flags = args.s3_endpoint.is_some()
            || args.s3_region.is_some()
            || args.s3_access_key_id.is_some()
            || args.s3_secret_access_key.is_some()
            || args.s3_virtual_hosted;
        anyhow::ensure!(
            !s3_flags,
            "an --s3-* setting is given but --object-store is not s3://BUCKET"
        );
        return Ok(cove_objects::Place::Local(data_dir.join("objects")));
    };
    let mut place = cove_objects::Place::parse(url)?;
    match &mut place {
        cove_objects::Place::S3(s3) => {
            s3.endpoint = args.s3_endpoint.clone();
            s3.region = args.s3_region.clone();
            s3.virtual_hosted = args.s3_virtual_hosted;
            s3.access_key_id = args.s3_access_key_id.clone();
            s3.secret_access_key = args
                .s3_secret_access_key
                .as_ref()
                .map(|secret| secret.expose().to_string());
        }
        cove_objects::Place::Local(_) => anyhow::ensure!(
            args.s3_endpoint.is_none() && args.s3_access_key_id.is_none(),
            "--s3-* settings need --object-store s3://BUCKET, not a directory"
        ),
    }
    Ok(place)
}

fn network_choice(mode: NetworkMode) -> cove_backend_local::NetworkChoice {
    match mode {
        NetworkMode::Auto => cove_backend_local::NetworkChoice::Auto,
        NetworkMode::None => cove_backend_local::NetworkChoice::None,
        NetworkMode::Outbound => cove_backend_local::NetworkChoice::Outbound,
    }
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
