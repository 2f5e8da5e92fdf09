//! The control plane: HTTP API, workspace registry and lifecycle, socket relays, health.
//!
//! Owns: the metadata store, which workspaces exist and who owns them, starting and stopping
//! them through a `Backend`, and relaying clients to runners.
//! Must not know: PTYs, processes or files of a workspace. Every effect on a workspace goes
//! through a runner link (`link.rs`); the server never opens a workspace file or spawns a
//! workspace program itself.

mod accounts;
mod admin;
mod api;
mod assets;
mod auth;
mod backup;
mod db;
mod error;
mod events;
mod handover;
mod health;
mod link;
mod listener;
mod observe;
mod perimeter;
mod preview;
mod realtime;
mod relay;
mod templates;
mod tls;
mod workspaces;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use cove_backend::SharedBackend;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accounts::{AccountSettings, AdminPassword, Auth};
pub use admin::AccountsAdmin;
pub use backup::{BackupError, BackupReport, backup, restore};
pub use db::{DbError, Store};
pub use error::ApiError;
pub use perimeter::Cidr;
pub use tls::TlsFiles;
pub use workspaces::Lifecycle;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the metadata lives: SQLite in the data dir by default (`--database-url`).
    pub store: Store,
    /// Where snapshots go: `objects` in the data dir by default (`--object-store`).
    pub objects: cove_objects::Place,
    /// When workspaces are stopped and hibernated by themselves (`--idle-stop`,
    /// `--hibernate-after`).
    pub lifecycle: Lifecycle,
    /// Who may sign in and how (`--auth`, the administrator's password, quotas).
    pub accounts: AccountSettings,
    /// Reverse proxies whose `X-Forwarded-For`/`-Host`/`-Proto` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Origins besides cove's own whose pages may open sockets and change state
    /// (`--allowed-origin`, e.g. `https://ide.example.com`).
    pub allowed_origins: Vec<String>,
    /// Largest file body accepted by `PUT .../files/...`.
    pub max_file_bytes: u64,
    /// Host names cove answers to besides loopback names and IP addresses (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Previews at `{port}-{id}.{domain}` besides `{port}-{id}.localhost` (`--preview-domain`).
    pub preview_domain: Option<String>,
    /// Longest time a client may take to send a request head.
    pub header_timeout: std::time::Duration,
    /// Most HTTP connections open at once.
    pub max_connections: usize,
    /// Serve HTTPS with this certificate (`--cert`); plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    manager: workspaces::Manager,
    /// Users, sessions, tokens, shares, quotas and the audit log.
    accounts: Arc<accounts::Accounts>,
    /// Which peers' forwarding headers are believed.
    proxies: perimeter::proxies::TrustedProxies,
    /// `--allowed-origin`.
    allowed_origins: Vec<String>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    metrics: health::Metrics,
    /// Prometheus metrics, runner figures and recent failures.
    observer: Arc<observe::Observer>,
    /// The Socket.IO namespaces.
    realtime: realtime::Realtime,
    /// Which names cove answers to, and where previews live.
    hosts: perimeter::Hosts,
    /// Who is signed in to which preview host.
    previews: preview::PreviewPasses,
    /// Whether cove serves TLS itself (origins are `https://`).
    tls: bool,
    /// Largest file body accepted through the API.
    max_file_bytes: u64,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The current time as RFC 3339 UTC, e.g. `2026-11-22T18:30:00.123Z`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(now_ms())
}

/// A time in milliseconds since the epoch as RFC 3339 UTC with milliseconds: one width for
/// every time stored, so that they sort and compare as text.
pub(crate) fn rfc3339(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Counts every request, by route template (not path: ids would make a series each) and
/// status, and how long its answer (its head, for sockets and streams) took.
async fn track_activity(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    app.metrics.touch();
    let route = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(matched) => matched.as_str().to_string(),
        None if request.uri().path().starts_with("/socket.io") => "/socket.io/".to_string(),
        None => "fallback".to_string(),
    };
    // Known methods only: any token is a method to hyper, and each would be a series.
    let method = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    app.observer.request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn router(
    app: Arc<AppState>,
    max_file_bytes: u64,
    socket_io: socketioxide::layer::SocketIoLayer,
) -> Router {
    let files_root = axum::routing::get(api::files_root)
        .put(api::files_root)
        .delete(api::files_root);
    let files = axum::routing::get(api::files)
        .put(api::files)
        .delete(api::files);
    Router::new()
        .route(
            "/api/workspaces",
            post(api::create_workspace).get(api::list_workspaces),
        )
        .route(
            "/api/workspaces/{id}",
            get(api::get_workspace)
                .patch(api::update_workspace)
                .delete(api::delete_workspace),
        )
        .route("/api/workspaces/{id}/start", post(api::start_workspace))
        .route("/api/workspaces/{id}/stop", post(api::stop_workspace))
        .route(
            "/api/workspaces/{id}/hibernate",
            post(api::hibernate_workspace),
        )
        .route("/api/workspaces/{id}/ws", get(api::control_socket))
        .route("/api/workspaces/{id}/lsp", get(api::language_servers))
        .route("/api/workspaces/{id}/lsp/file", get(api::outside_file))
        .route(
            "/api/workspaces/{id}/lsp/{language}",
            get(api::language_server_socket),
        )
        .route("/api/workspaces/{id}/search", get(api::search))
        .route("/api/workspaces/{id}/archive", get(api::archive))
        .route("/api/workspaces/{id}/git", post(api::git))
        .route("/api/workspaces/{id}/git/status", get(api::git_status))
        .route("/api/workspaces/{id}/git/show", get(api::git_show))
        .route(
            "/api/workspaces/{id}/terminals/{terminal}/ws",
            get(api::terminal_socket),
        )
        .route("/api/workspaces/{id}/files", files_root.clone())
        .route("/api/workspaces/{id}/files/", files_root)
        .route(
            "/api/workspaces/{id}/files/{*path}",
            files.layer(DefaultBodyLimit::max(max_file_bytes as usize + 1)),
        )
        .route("/login", get(assets::serve).post(api::login))
        .route("/logout", post(api::logout))
        .route("/api/users", get(api::list_users).post(api::create_user))
        .route("/api/users/me", get(api::me).put(api::update_me))
        .route(
            "/api/users/me/settings",
            get(api::my_settings).put(api::update_my_settings),
        )
        .route("/api/users/me/sessions", get(api::list_sessions))
        .route(
            "/api/users/me/sessions/{session}",
            axum::routing::delete(api::revoke_session),
        )
        .route("/api/users/me/usage", get(api::usage))
        .route(
            "/api/users/{user}",
            axum::routing::put(api::update_user).delete(api::delete_user),
        )
        .route("/api/tokens", get(api::list_tokens).post(api::create_token))
        .route(
            "/api/tokens/{token}",
            axum::routing::delete(api::revoke_token),
        )
        .route("/api/workspaces/{id}/shares", get(api::list_shares))
        .route(
            "/api/workspaces/{id}/shares/{user}",
            axum::routing::put(api::put_share).delete(api::delete_share),
        )
        .route("/api/audit", get(api::audit))
        .route(
            "/api/templates",
            get(api::list_templates).post(api::publish_template),
        )
        .route("/api/templates/{name}", delete(api::delete_template))
        .route("/api/info", get(api::info))
        .route("/api/events", get(events::events))
        .route("/w/{id}/open/{port}", get(preview::open))
        .route(
            "/w/{id}/proxy/{port}",
            axum::routing::any(preview::add_slash),
        )
        .route(
            "/w/{id}/proxy/{port}/",
            axum::routing::any(preview::path_preview),
        )
        .route(
            "/w/{id}/proxy/{port}/{*rest}",
            axum::routing::any(preview::path_preview),
        )
        .route(
            "/w/{id}/absproxy/{port}",
            axum::routing::any(preview::add_slash),
        )
        .route(
            "/w/{id}/absproxy/{port}/",
            axum::routing::any(preview::path_preview),
        )
        .route(
            "/w/{id}/absproxy/{port}/{*rest}",
            axum::routing::any(preview::path_preview),
        )
        .route(
            "/api/terminal/ws/{session}",
            get(api::plain_terminal_socket),
        )
        .route("/healthz", get(health::healthz))
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/api/emit", post(realtime::emit))
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(64 * 1024))
        // Socket.IO answers `/socket.io/` itself, inside every check below.
        .layer(socket_io)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            realtime::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            track_activity,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::identify,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            perimeter::front_door,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            tls::strict_transport,
        ))
        .with_state(app)
}

/// Runs the server until `shutdown` is cancelled. Prints `cove listening on http://ADDR`
/// (`https://` under TLS) on stdout once it accepts connections (tests and tools wait for
/// that line).
pub async fn serve(
    config: Config,
    backend: SharedBackend,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data dir {}: {e}",
            config.data_dir.display()
        )
    })?;
    // Read before anything else, so that a bad certificate stops the start at once.
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let db = db::Db::connect(&config.store).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot open the database ({}): {e}",
            config.store.describe()
        )
    })?;
    tracing::info!(store = %config.store.describe(), "metadata store ready");
    let accounts = Arc::new(accounts::Accounts::new(db.clone(), config.accounts.clone()));
    let objects =
        cove_objects::Objects::open(&config.objects).map_err(|e| anyhow::anyhow!("{e}"))?;
    objects
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("cannot use the object store: {e}"))?;
    tracing::info!(objects = %objects.describe(), "object store ready");
    accounts
        .bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("cannot set up the administrator: {}", e.reply.message))?;
    let templates = Arc::new(
        templates::Catalog::load(db.clone(), objects.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the templates: {}", e.reply.message))?,
    );
    let observer = Arc::new(observe::Observer::new());
    let (socket_io, realtime) = realtime::build();
    let app = Arc::new(AppState {
        manager: workspaces::Manager::new(
            db.clone(),
            backend,
            accounts.clone(),
            objects,
            templates,
            observer.clone(),
        ),
        observer,
        realtime,
        accounts,
        proxies: perimeter::proxies::TrustedProxies::new(config.trusted_proxies.clone()),
        allowed_origins: config.allowed_origins.clone(),
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
        metrics: health::Metrics::default(),
        hosts: perimeter::Hosts::new(&config.allowed_hosts, config.preview_domain.as_deref()),
        previews: preview::PreviewPasses::default(),
        tls: acceptor.is_some(),
        max_file_bytes: config.max_file_bytes,
    });
    app.manager
        .reconcile()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reconcile workspaces: {}", e.reply.message))?;
    app.tasks
        .spawn(workspaces::watch(app.clone(), config.lifecycle));
    app.tasks.spawn(observe::collect(app.clone()));
    app.realtime.register(&app);
    app.metrics.touch();
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && config.accounts.auth == Auth::None {
        tracing::warn!(
            "--auth none on {local}: anyone who can reach this address controls every workspace"
        );
        eprintln!(
            "WARNING: --auth none on {local}, which is not a loopback address: anyone who can reach it controls every workspace on this machine. Use --auth password."
        );
    }
    tracing::info!(addr = %local, data_dir = %config.data_dir.display(), "cove listening");
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let _ = writeln!(stdout, "cove listening on {scheme}://{local}");
        let _ = stdout.flush();
    }
    let fd_limit = listener::raise_fd_limit();
    let limits = listener::Limits {
        header_timeout: config.header_timeout,
        // Leave descriptors for relays, runners and the database.
        max_connections: config
            .max_connections
            .min(usize::try_from(fd_limit / 2).unwrap_or(usize::MAX))
            .max(16),
    };
    tracing::debug!(?limits, fd_limit, "accepting connections");
    listener::serve(
        listener,
        router(app.clone(), config.max_file_bytes, socket_io),
        limits,
        acceptor,
        shutdown.clone(),
        app.tasks.clone(),
    )
    .await;
    // A client that takes nothing can hold socketioxide's close up: bounded.
    if tokio::time::timeout(std::time::Duration::from_secs(5), app.realtime.close())
        .await
        .is_err()
    {
        tracing::warn!("some Socket.IO clients did not close within 5 s");
    }
    app.tasks.close();
    if tokio::time::timeout(std::time::Duration::from_secs(5), app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some relays did not end within 5 s");
    }
    db.close().await;
    tracing::info!(
        "cove stopped; workspaces keep running and will be found again at the next start"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_has_the_right_shape() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), 24, "{now}");
        assert!(
            now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T',
            "{now}"
        );
    }
}
