//! The template routes: `GET /api/templates` for everyone signed in, publishing and removing
//! for administrators only (a template is what every new workspace of every user may start
//! from, so it is the administrator's to change, and the audit log says who did).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cove_protocol::accounts::Outcome;
use cove_protocol::rest::PublishTemplate;

use super::{Shared, parse_json, start};
use crate::accounts::Caller;
use crate::error::ApiError;
use crate::templates::{Catalog, publish};

pub(crate) async fn list_templates(State(app): Shared, _caller: Caller) -> Response {
    axum::Json(app.manager.templates().list()).into_response()
}

fn require_admin(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only an administrator may {what} templates"
        )))
    }
}

/// `POST /api/templates`: the files of a workspace the caller may see become a template. A
/// stopped workspace is started to read them (through its runner, as the file API does).
pub(crate) async fn publish_template(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_admin(&caller, "publish")?;
    let request: PublishTemplate = parse_json(&headers, &body)?;
    let manifest = Catalog::manifest_of(&request)?;
    let found = app.manager.find(&caller, &request.workspace).await?;
    start(&app, &caller, &found.row).await?;
    let files = publish::workspace_files(app.manager.link(), &found.row.id).await?;
    let view = app
        .manager
        .templates()
        .publish(manifest, &files, &caller.user.username)
        .await?;
    tracing::info!(template = %view.name, workspace = %found.row.id, files = view.files, bytes = view.bytes, "template published");
    app.accounts
        .audit(
            &caller,
            "template.publish",
            &view.name,
            Outcome::Success,
            &format!("from workspace {} ({} files)", found.row.name, view.files),
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// `DELETE /api/templates/{name}`: workspaces made from it keep their files.
pub(crate) async fn delete_template(
    State(app): Shared,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller, "remove")?;
    app.manager.templates().delete(&name).await?;
    app.accounts
        .audit(&caller, "template.delete", &name, Outcome::Success, "")
        .await;
    Ok(StatusCode::NO_CONTENT)
}
