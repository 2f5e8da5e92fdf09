//! Port preview: `GET /ports/{port}/...` (HTTP and WebSocket) tunnelled to `127.0.0.1:{port}`
//! inside the workspace. The server has already checked who may see the workspace and
//! stripped its own credentials; this end only moves requests and bytes.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::{ErrorCode, ErrorReply, RestError};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

use crate::Workspace;

fn error(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (
        status,
        axum::Json(RestError {
            error: ErrorReply::new(code, message),
        }),
    )
        .into_response()
}

fn wants_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// `/ports/{port}` and `/ports/{port}/{*rest}`.
pub(crate) async fn proxy(
    State(ws): State<Arc<Workspace>>,
    Path(params): Path<Vec<(String, String)>>,
    mut request: Request,
) -> Response {
    let port = params
        .iter()
        .find(|(k, _)| k == "port")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let Ok(port) = port.parse::<u16>() else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("{port:?} is not a port number"),
        );
    };
    if port == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "port 0 is not a port".into(),
        );
    }
    // Everything after `/ports/{port}`, as the client encoded it.
    let original = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let prefix = format!("/ports/{port}");
    let mut target = original.strip_prefix(&prefix).unwrap_or("/").to_string();
    if !target.starts_with('/') {
        target.insert(0, '/');
    }
    let stream = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(_) => match tokio::net::TcpStream::connect(("::1", port)).await {
            Ok(s) => s,
            Err(_) => {
                let mut response = error(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::Unavailable,
                    format!("nothing in the workspace listens on port {port}"),
                );
                // Tells the server this is the port, not the runner, so it can say so.
                response
                    .headers_mut()
                    .insert("x-cove-port-closed", HeaderValue::from_static("1"));
                return response;
            }
        },
    };
    let _ = stream.set_nodelay(true);
    let client_upgrade = wants_upgrade(&request)
        .then(|| {
            request
                .extensions_mut()
                .remove::<hyper::upgrade::OnUpgrade>()
        })
        .flatten();
    let (mut parts, body) = request.into_parts();
    // The app sees the name the browser used (dev servers such as Vite check it); the server
    // passes it on, since its own request to the runner names the runner.
    if let Some(host) = parts.headers.remove("x-forwarded-host") {
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "bad path".into(),
            );
        }
    };
    let forwarded = hyper::Request::from_parts(parts, body);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::Unavailable,
                    format!("port {port}: {e}"),
                );
            }
        };
    // The connection future ends with the response (or, after an upgrade, hands the socket over).
    ws.tasks.spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let mut response = match sender.send_request(forwarded).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                ErrorCode::Unavailable,
                format!("port {port}: {e}"),
            );
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let server_upgrade = hyper::upgrade::on(&mut response);
        ws.tasks.spawn(async move {
            if let (Ok(client), Ok(server)) = (client_upgrade.await, server_upgrade.await) {
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(client),
                    &mut TokioIo::new(server),
                )
                .await;
            }
        });
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(body))
}
