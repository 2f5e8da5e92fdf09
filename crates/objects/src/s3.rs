//! An S3-compatible store (`Place::S3`): object_store's S3 client over our own HTTP client,
//! hyper with rustls on ring and the system's CA certificates, so no C library beyond ring
//! (which cove's TLS already builds) is compiled for it.

use crate::{ObjectsError, S3Place};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::{ClientConfigKey, ClientOptions, ObjectStore};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a connection to the store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an answer's head once a request is sent (bodies stream at their pace).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The S3 store `place` describes; credentials the place leaves out come from the usual
/// `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT`...).
pub(crate) fn open(place: &S3Place) -> Result<Arc<dyn ObjectStore>, ObjectsError> {
    let setup = |why: String| ObjectsError::Setup(place.to_string(), why);
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&place.bucket)
        .with_virtual_hosted_style_request(place.virtual_hosted)
        .with_http_connector(HyperConnector);
    if let Some(endpoint) = &place.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(region) = &place.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &place.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &place.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let store = builder.build().map_err(|e| setup(e.to_string()))?;
    Ok(match place.prefix.as_deref() {
        Some(prefix) => Arc::new(object_store::prefix::PrefixStore::new(store, prefix)),
        None => Arc::new(store),
    })
}

/// Makes the [`HyperService`] object_store sends its requests through.
#[derive(Debug)]
struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        let tls = if allow_http {
            tls.https_or_http()
        } else {
            tls.https_only()
        };
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(tls.enable_http1().wrap_connector(tcp));
        Ok(HttpClient::new(HyperService { client }))
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    object_store::client::HttpRequestBody,
>;

#[derive(Debug)]
struct HyperService {
    client: Client,
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        use http_body_util::BodyExt as _;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request))
            .await
            .map_err(|elapsed| HttpError::new(HttpErrorKind::Timeout, elapsed))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (head, body) = answer.into_parts();
        let body = body.map_err(|e| {
            let kind = if e.is_incomplete_message() || e.is_closed() {
                HttpErrorKind::Interrupted
            } else {
                HttpErrorKind::Decode
            };
            HttpError::new(kind, e)
        });
        Ok(HttpResponse::from_parts(head, HttpResponseBody::new(body)))
    }
}
