//! The flags of `cove serve`, each with its environment variable and default. Every long
//! flag is also a key of the config file (see [`crate::file`]).

use crate::password::Secret;
use cove_protocol::launch::{RunnerLimits, SandboxLimits};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where settings come from, shown after the flags by `cove serve --help`.
const SETTINGS_HELP: &str = "\
Settings come from four places; a later one wins over an earlier one:
  1. the built-in default,
  2. the config file (YAML; --config PATH or $COVE_CONFIG, default
     $XDG_CONFIG_HOME/cove/config.yaml, else ~/.config/cove/config.yaml; a missing
     file is fine), whose keys are the long flags without `--`, e.g.
         bind-addr: 0.0.0.0:8080
         cert: true
         allowed-host: [cove.example.com]
     (code-server's keys bind-addr, auth, password, hashed-password, cert and cert-key
     mean the same here; an unknown key is an error),
  3. the environment: the variable shown with each flag (COVE_*, and code-server's
     PASSWORD and HASHED_PASSWORD),
  4. the command line.
A list (allowed-host, allow-egress) is taken whole from the one place that wins.

With --auth password (the default), the password is the first of: --password,
$PASSWORD, --admin-password ($ADMIN_PASSWORD), hashed-password ($HASHED_PASSWORD or the file: an Argon2 PHC string),
the file's password. With none of them, cove generates one, writes it into the config
file (mode 0600) and prints where it is, never the password itself.

--print-config shows every setting and where it came from, with secrets masked.";

/// `cove serve`'s flags. [`crate::Settings::resolve`] fills them in from all four places.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = SETTINGS_HELP)]
pub struct ServeArgs {
    /// The config file [default: $XDG_CONFIG_HOME/cove/config.yaml or
    /// ~/.config/cove/config.yaml]. A missing file is fine.
    #[arg(long, env = "COVE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print every setting, its value (secrets masked) and where it came from, then exit.
    #[arg(long)]
    pub print_config: bool,
    /// Address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, env = "COVE_BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,
    /// Where the database, workspaces and logs live [default: $XDG_DATA_HOME/cove or
    /// ~/.local/share/cove].
    #[arg(long, env = "COVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where users, workspaces and the audit log are kept: `sqlite://PATH`, or
    /// `postgres://USER:PASSWORD@HOST:PORT/NAME` for a server several cove processes (or a
    /// managed database) can share [default: SQLite `cove.db` in the data dir].
    #[arg(
        long,
        env = "COVE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Stop a running workspace after this long with nobody connected (no IDE, terminal,
    /// socket or preview connection): `30m`, `90s`, `2h`; `0` never stops one. A workspace
    /// marked "keep running" (PATCH /api/workspaces/{id} {"keepRunning": true}) is passed by.
    #[arg(long, env = "COVE_IDLE_STOP", value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub idle_stop: std::time::Duration,
    /// Hibernate a workspace stopped this long: its files go to the object store (compressed,
    /// checked) and leave this disk until it starts again (`7d`, `12h`; `0` never).
    #[arg(long, env = "COVE_HIBERNATE_AFTER", value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub hibernate_after: std::time::Duration,
    /// Where snapshots of hibernated workspaces go: `s3://BUCKET[/PREFIX]` for any
    /// S3-compatible store (with --s3-endpoint for one that is not AWS's; credentials from
    /// --s3-access-key-id/--s3-secret-access-key or the usual AWS_* variables), or a
    /// directory [default: `objects` in the data dir].
    #[arg(long, env = "COVE_OBJECT_STORE", value_name = "URL")]
    pub object_store: Option<String>,
    /// The S3 endpoint, for a store that is not AWS's: `http://127.0.0.1:9000` (MinIO,
    /// Garage, Ceph, moto). Plain `http://` is used only when written here [default:
    /// $AWS_ENDPOINT, else AWS].
    #[arg(long, env = "COVE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 region [default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long, env = "COVE_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Address the bucket as `BUCKET.ENDPOINT/KEY` (virtual-hosted style) rather than
    /// `ENDPOINT/BUCKET/KEY` (path style, the default, which MinIO, Garage and Ceph expect).
    #[arg(long, env = "COVE_S3_VIRTUAL_HOSTED")]
    pub s3_virtual_hosted: bool,
    /// The S3 access key id [default: $AWS_ACCESS_KEY_ID].
    #[arg(long, env = "COVE_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// The S3 secret access key [default: $AWS_SECRET_ACCESS_KEY]; prefer the environment
    /// or the config file to a flag, which `ps` shows.
    #[arg(long, env = "COVE_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,
    /// How people sign in. `password`: each request needs a session (signed in at /login)
    /// or an API token. `none`: everyone who can reach cove is the administrator; keep it on
    /// loopback.
    #[arg(long, env = "COVE_AUTH", value_enum, default_value = "password")]
    pub auth: AuthMode,
    /// The administrator's password for --auth password, applied at every start (prefer
    /// $PASSWORD or the config file: a flag is visible to every user of this machine in `ps`).
    #[arg(long, env = "PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// The administrator's password, as --password (for deployments that set ADMIN_USERNAME
    /// and ADMIN_PASSWORD together); --password and $PASSWORD win over it.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// The password as an Argon2 hash in PHC form (`$argon2id$v=19$...`), as code-server
    /// takes it. Wins over the config file's password, not over --password or $PASSWORD.
    #[arg(long, env = "HASHED_PASSWORD", hide_env_values = true)]
    pub hashed_password: Option<Secret>,
    /// The first administrator's username (made at first start, when there is no user).
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For, -Host and -Proto
    /// headers are believed, e.g. `127.0.0.1` or `10.0.0.0/8`. Repeatable; in the environment
    /// comma-separated. From any other peer they are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "COVE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// An origin besides cove's own whose pages may open cove's sockets and change state,
    /// e.g. `https://ide.example.com`. Repeatable; in the environment comma-separated.
    #[arg(
        long = "allowed-origin",
        env = "COVE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Workspaces each user may own (unless their own quota says otherwise).
    #[arg(long, env = "COVE_QUOTA_WORKSPACES")]
    pub quota_workspaces: Option<u64>,
    /// Workspaces each user may have running at once.
    #[arg(long, env = "COVE_QUOTA_RUNNING")]
    pub quota_running: Option<u64>,
    /// Sign-in sessions each user may have open.
    #[arg(long, env = "COVE_QUOTA_SESSIONS", default_value_t = 50)]
    pub quota_sessions: u64,
    /// Sockets each user may have open at once.
    #[arg(long, env = "COVE_QUOTA_CONNECTIONS", default_value_t = 500)]
    pub quota_connections: u64,
    /// Serve HTTPS with this certificate (PEM, with its chain), and --cert-key. Without a
    /// path, cove makes a self-signed certificate for the bind address, localhost,
    /// 127.0.0.1 and ::1 (and each --allowed-host), kept in DATA_DIR/tls/.
    #[arg(
        long,
        env = "COVE_CERT",
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub cert: Option<CertArg>,
    /// The private key (PEM) of --cert PATH.
    #[arg(long, env = "COVE_CERT_KEY", value_name = "PATH")]
    pub cert_key: Option<PathBuf>,
    /// Largest file read or written through the API, in bytes.
    #[arg(long, env = "COVE_MAX_FILE_SIZE", default_value_t = RunnerLimits::DEFAULT.max_file_bytes)]
    pub max_file_size: u64,
    /// Scrollback kept per terminal (and output kept per process), in bytes.
    #[arg(long, env = "COVE_SCROLLBACK", default_value_t = RunnerLimits::DEFAULT.scrollback_bytes)]
    pub scrollback: u64,
    /// Terminals per workspace.
    #[arg(long, env = "COVE_MAX_TERMINALS", default_value_t = RunnerLimits::DEFAULT.max_terminals)]
    pub max_terminals: u32,
    /// Running processes per workspace.
    #[arg(long, env = "COVE_MAX_PROCESSES", default_value_t = RunnerLimits::DEFAULT.max_processes)]
    pub max_processes: u32,
    /// How workspaces are isolated. `none` is for development on a trusted machine only.
    #[arg(long, env = "COVE_SANDBOX", value_enum, default_value = "namespaces")]
    pub sandbox: SandboxMode,
    /// Memory limit per workspace, in MiB (a process over it is killed). This and the other
    /// limits are defaults and ceilings: a workspace may ask for less when it is created.
    #[arg(long, env = "COVE_MEMORY_LIMIT_MIB", default_value_t = SandboxLimits::DEFAULT.memory_bytes >> 20)]
    pub memory_limit_mib: u64,
    /// CPU limit per workspace, in cores (0.5 = half a core).
    #[arg(long, env = "COVE_CPU_LIMIT", default_value_t = SandboxLimits::DEFAULT.cpu_millis as f64 / 1000.0)]
    pub cpu_limit: f64,
    /// Process limit per workspace (stops fork bombs).
    #[arg(long, env = "COVE_PIDS_LIMIT", default_value_t = SandboxLimits::DEFAULT.pids)]
    pub pids_limit: u64,
    /// Network of each sandboxed workspace. Never inbound: the IDE reaches a workspace's
    /// ports through cove's preview proxy.
    #[arg(long, env = "COVE_NETWORK", value_enum, default_value = "auto")]
    pub network: NetworkMode,
    /// With outbound network, a range workspaces may reach although it is blocked by default
    /// (the host's own addresses, private, link-local and carrier-grade NAT ranges), e.g.
    /// `10.20.0.0/16` for a company registry, or `0.0.0.0/0` for everything. Repeatable;
    /// in the environment comma-separated.
    #[arg(long, env = "COVE_ALLOW_EGRESS", value_delimiter = ',')]
    pub allow_egress: Vec<String>,
    /// Size of each workspace's private /tmp, in MiB.
    #[arg(long, env = "COVE_TMP_SIZE_MIB", default_value_t = 256)]
    pub tmp_size_mib: u64,
    /// Storage per workspace, in MiB. Sandboxed, each new workspace gets an ext4 image of
    /// this size, so every write is held to it; 0 means no limit.
    #[arg(long, env = "COVE_DISK_LIMIT_MIB", default_value_t = 1024)]
    pub disk_limit_mib: u64,
    /// A host name cove is reached by (repeatable; in the environment comma-separated), e.g.
    /// `cove.example.com`. Loopback names and IP addresses always work; any other name in a
    /// request's Host is refused, which stops DNS-rebinding attacks from web pages.
    #[arg(
        long = "allowed-host",
        env = "COVE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Serve workspace previews at `{port}-{workspace id}.DOMAIN` (needs a wildcard DNS
    /// record, and a wildcard certificate behind TLS). Without it, previews of a cove reached
    /// on loopback live at `{port}-{id}.localhost`, and otherwise under
    /// `/w/{id}/proxy/{port}/` in a sandboxed page.
    #[arg(long, env = "COVE_PREVIEW_DOMAIN")]
    pub preview_domain: Option<String>,
    /// Most HTTP connections open at once (WebSockets leave the count once upgraded).
    #[arg(long, env = "COVE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's head (and to finish the TLS handshake)
    /// before it is disconnected; also the idle time of keep-alive connections.
    #[arg(long, env = "COVE_HEADER_TIMEOUT_SECS", default_value_t = 15)]
    pub header_timeout_secs: u64,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Sign in with a password (sessions) or an API token.
    Password,
    /// Nobody signs in: every caller is the administrator. Loopback only.
    None,
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
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

/// `--sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    /// Each workspace in its own namespaces, root filesystem, cgroups and uid (needs root).
    Namespaces,
    /// No isolation: workspaces run as the server's user and see the host. Development only.
    None,
}

/// `--cert`, as code-server reads it: a path, or `true` (no value) for a self-signed
/// certificate, or `false` for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertArg {
    /// `false`: plain HTTP.
    Off,
    /// `true`, or `--cert` without a value: a certificate cove makes and keeps.
    SelfSigned,
    /// The certificate's file (PEM).
    File(PathBuf),
}

impl std::str::FromStr for CertArg {
    type Err = std::convert::Infallible;

    /// A file named `true` or `false` is given as `./true`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "true" => CertArg::SelfSigned,
            "false" => CertArg::Off,
            path => CertArg::File(path.into()),
        })
    }
}

/// `30m`, `90s`, `2h`, `1d`, or a bare number of seconds; `0` is zero.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: a number and s, m, h or d (e.g. 30m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("{other:?} is not a unit of time: s, m, h or d")),
    };
    number
        .checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}
