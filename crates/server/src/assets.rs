//! The web UI, embedded at build time (see `build.rs`): hashed assets with long-lived
//! caching and precompressed gzip; the app's own page routes (`/`, `/w/{id}`, `/login`, `/settings/...`, `/admin/...`)
//! answer `index.html` so that the browser app routes them itself. Every other path is a
//! 404: an app in a preview that asks cove for `/style.css` must not get the IDE's HTML
//! with status 200.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            e.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("gzip"))
        })
}

fn respond(asset: &'static Asset, headers: &HeaderMap, immutable: bool) -> Response {
    let mut response = match asset.gzip {
        Some(gzip) if accepts_gzip(headers) => {
            let mut r = gzip.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => asset.body.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// Serves an embedded file, or the app's `index.html` for page routes.
pub(crate) async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if let Some(asset) = find(path).filter(|_| path != "/index.html") {
        // Files under /assets/ carry a content hash in their names.
        return respond(asset, &headers, path.starts_with("/assets/"));
    }
    if !is_page(path) {
        return crate::ApiError::not_found(format!("no such page or route: {}", shorten(path)))
            .into_response();
    }
    match find("/index.html") {
        Some(index) => respond(index, &headers, false),
        None => (StatusCode::NOT_FOUND, "the web UI is not built").into_response(),
    }
}

/// The app's pages besides `/` and `/w/{id}` (web/src/app/router.ts).
const PAGES: &[&str] = &[
    "/login",
    "/settings/sessions",
    "/settings/tokens",
    "/admin/users",
    "/admin/audit",
    "/admin/system",
];

/// The browser app's own routes (web/src/app/router.ts).
pub(crate) fn is_page(path: &str) -> bool {
    if path == "/" || PAGES.contains(&path.trim_end_matches('/')) {
        return true;
    }
    path.strip_prefix("/w/")
        .map(|rest| rest.trim_end_matches('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn shorten(path: &str) -> String {
    path.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_apps_routes_are_pages() {
        for page in [
            "/",
            "/w/demo",
            "/w/demo/",
            "/w/my%20app",
            "/login",
            "/admin/audit",
            "/admin/system",
        ] {
            assert!(super::is_page(page), "{page}");
        }
        for other in [
            "/style.css",
            "/api/x",
            "/w/",
            "/w/a/b",
            "/data.json",
            "/favicon.ico",
        ] {
            assert!(!super::is_page(other), "{other}");
        }
    }
}
