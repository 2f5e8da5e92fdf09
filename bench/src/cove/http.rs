//! REST requests to cove (and to the peers' servers) from the bench: one HTTP/1.1 request per
//! connection, through `cove_test_support::request`, with a JSON `Accept` and, for a body, a
//! JSON `Content-Type` (the server answers 415 to a JSON body without it).

use anyhow::Result;
use serde_json::Value;

use super::REQUEST_TIMEOUT;

pub(crate) use cove_test_support::request::Response as HttpResponse;

/// One HTTP/1.1 request with `Connection: close`.
pub(crate) async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<HttpResponse> {
    http_with(port, method, path, &[], body).await
}

/// Like [`http`] with extra request headers.
pub(crate) async fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<HttpResponse> {
    let body = body.unwrap_or("");
    let mut all = vec![("Accept", "application/json")];
    if !body.is_empty() {
        all.push(("Content-Type", "application/json"));
    }
    all.extend_from_slice(headers);
    cove_test_support::request::request(
        port,
        method,
        path,
        &all,
        Some(body.as_bytes()),
        REQUEST_TIMEOUT,
    )
    .await
}

/// The `id` of a JSON object, a string or a number.
pub(crate) fn json_id(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(json_id(&serde_json::json!({"id": 1})).as_deref(), Some("1"));
        assert_eq!(
            json_id(&serde_json::json!({"id": "a"})).as_deref(),
            Some("a")
        );
        assert_eq!(json_id(&serde_json::json!({})), None);
    }
}
