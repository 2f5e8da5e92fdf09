//! The IDE's routes beside the protocol (cove-protocol's `ide` module): the language servers
//! a workspace can run and the socket to one, search across its files, and a folder as an
//! archive, and source control with the workspace's own git. All go to the
//! workspace's runner, which runs the servers and `rg` as programs of the workspace.
//!
//! Who may call what: listing servers, searching, archives and git's status read the
//! workspace (any access); git operations change it (owner and editors); a
//! language server socket starts a program in it, so only its owner and editors open one
//! (language servers run build scripts and plugins: a viewer must not make code run), and
//! only they read files outside the workspace a server points at (as their terminal could).
//! None of them starts a stopped workspace: a page from anywhere can make a browser send a GET.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use cove_protocol::ErrorCode;
use cove_protocol::ide::{GitRequest, GitShowQuery, OutsideFileQuery, SearchQuery};
use hyper_util::rt::TokioIo;
use tracing::Instrument as _;

use super::Shared;
use super::sockets::admit;
use crate::AppState;
use crate::accounts::{Caller, ConnectionKind};
use crate::error::ApiError;
use crate::relay;
use crate::workspaces::Found;

/// The workspace of `id` for `caller`, which must be running.
async fn running(app: &AppState, caller: &Caller, id: &str) -> Result<Found, ApiError> {
    let found = app.manager.find(caller, id).await?;
    if !app.manager.is_running(&found.row).await {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("workspace {:?} is stopped; start it first", found.row.name),
        ));
    }
    Ok(found)
}

/// The query of `request`, parsed as `T` and encoded again: never passed on as it came.
fn requery<T: serde::de::DeserializeOwned + serde::Serialize>(
    request: &Request,
    what: &str,
) -> Result<String, ApiError> {
    let query: T = serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))?;
    Ok(serde_urlencoded::to_string(&query).expect("a query type encodes"))
}

/// Sends a GET to the runner and streams its answer back.
async fn forward_get(app: &AppState, id: &str, target: String) -> Result<Response, ApiError> {
    let request = hyper::Request::get(target)
        .body(Body::empty())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let response = app.manager.link().request(id, request).await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// `GET /api/workspaces/{id}/lsp`: the language servers the workspace can run.
pub(crate) async fn language_servers(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = running(&app, &caller, &id).await?;
    forward_get(&app, &found.row.id, "/lsp".into()).await
}

/// `GET /api/workspaces/{id}/lsp/file?path=/absolute/path`: a file outside the workspace that
/// a language server points at, read in the workspace's sandbox. Only its owner and editors:
/// they can read the same through a terminal, a viewer cannot.
pub(crate) async fn outside_file(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = requery::<OutsideFileQuery>(&request, "request")?;
    let found = running(&app, &caller, &id).await?;
    found.require_edit()?;
    forward_get(&app, &found.row.id, format!("/lsp/file?{query}")).await
}

/// `GET /api/workspaces/{id}/search?query=...`: ripgrep's matches as newline-delimited JSON,
/// streamed.
pub(crate) async fn search(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = requery::<SearchQuery>(&request, "search")?;
    let found = running(&app, &caller, &id).await?;
    forward_get(&app, &found.row.id, format!("/search?{query}")).await
}

/// The query of `GET /api/workspaces/{id}/archive`.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveQuery {
    #[serde(default)]
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
}

/// `GET /api/workspaces/{id}/archive?path=dir&format=tar.gz`: a folder (the whole workspace
/// without `path`) as an archive, streamed while the runner packs it.
pub(crate) async fn archive(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = requery::<ArchiveQuery>(&request, "archive request")?;
    let found = running(&app, &caller, &id).await?;
    forward_get(&app, &found.row.id, format!("/archive?{query}")).await
}

/// `GET /api/workspaces/{id}/git/status`: the workspace's repository.
pub(crate) async fn git_status(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = running(&app, &caller, &id).await?;
    forward_get(&app, &found.row.id, "/git/status".into()).await
}

/// `GET /api/workspaces/{id}/git/show?path=...&from=head|index`: a file as git keeps it.
pub(crate) async fn git_show(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = requery::<GitShowQuery>(&request, "request")?;
    let found = running(&app, &caller, &id).await?;
    forward_get(&app, &found.row.id, format!("/git/show?{query}")).await
}

/// `POST /api/workspaces/{id}/git`: one git operation (only its owner and editors); the
/// runner is told who asks, for commits in a repository without an identity of its own.
pub(crate) async fn git(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: GitRequest = super::parse_json(&headers, &body)?;
    let found = running(&app, &caller, &id).await?;
    found.require_edit()?;
    let body = serde_json::json!({ "author": caller.user.username, "request": request });
    let forwarded = hyper::Request::post("/git")
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let response = app.manager.link().request(&found.row.id, forwarded).await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// `GET /api/workspaces/{id}/lsp/{language}`: a WebSocket to a language server the runner
/// starts for it. The runner is asked first, so a language without a server is refused with
/// its reason before the upgrade; then bytes are relayed both ways.
pub(crate) async fn language_server_socket(
    State(app): Shared,
    caller: Caller,
    Path((id, language)): Path<(String, String)>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let accept = relay::accept_key(request.headers())?;
    if !cove_protocol::ide::valid_language(&language) {
        return Err(ApiError::bad_request(
            "a language is 1-32 letters, digits, - or _",
        ));
    }
    let found = running(&app, &caller, &id).await?;
    found.require_edit()?;
    let registered = admit(
        &app,
        &caller,
        &request,
        Some((&found.row.id, found.access)),
        ConnectionKind::LanguageServer,
    )
    .await?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(ApiError::upgrade_required)?;
    let runner = app
        .manager
        .link()
        .websocket(&found.row.id, &format!("/lsp/{language}"))
        .await?;
    let span = tracing::info_span!(
        "socket",
        kind = "lsp",
        workspace = %found.row.id,
        language = %language,
        user = %caller.user.username
    );
    let task_app = app.clone();
    let life = async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let counters = task_app.observer.relay_counters("lsp");
        relay::pipe(
            TokioIo::new(upgraded),
            runner,
            registered.closed.clone(),
            counters,
        )
        .await;
        drop(registered);
    };
    app.tasks.spawn(life.instrument(span));
    Ok(relay::switching_protocols(&accept))
}

#[cfg(test)]
mod tests {
    #[test]
    fn language_keys_cannot_reach_other_runner_routes() {
        for bad in ["", "../ws", "a/b", "a%2Fb", "ws?x=1", &"a".repeat(33)] {
            assert!(!cove_protocol::ide::valid_language(bad), "{bad:?}");
        }
        assert!(
            cove_protocol::ide::valid_language("python")
                && cove_protocol::ide::valid_language("c_sharp-2")
        );
    }
}
