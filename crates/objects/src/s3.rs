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
/// Longest wait for an answer's head after a request's body is sent; the body itself is
/// given time at [`SLOWEST_UPLOAD`] on top.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest upload (bytes per second) not taken for a stalled one.
const SLOWEST_UPLOAD: u64 = 64 * 1024;
/// Longest wait for the next part of an answer's body (a download that stalls ends, and
/// object_store retries it from where it was).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
        tcp.set_keepalive(Some(Duration::from_secs(30)));
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
        let upload = request.body().content_length() as u64 / SLOWEST_UPLOAD;
        let wait = ANSWER_TIMEOUT + Duration::from_secs(upload);
        let answer = tokio::time::timeout(wait, self.client.request(request))
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
        // Each frame within IDLE_TIMEOUT, else the body ends with a timeout.
        let frames = futures_util::stream::unfold(Some(body), |body| async move {
            let mut body = body?;
            match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                Err(elapsed) => Some((Err(HttpError::new(HttpErrorKind::Timeout, elapsed)), None)),
                Ok(None) => None,
                Ok(Some(Ok(frame))) => Some((Ok(frame), Some(body))),
                Ok(Some(Err(e))) => {
                    let kind = if e.is_incomplete_message() || e.is_closed() {
                        HttpErrorKind::Interrupted
                    } else {
                        HttpErrorKind::Decode
                    };
                    Some((Err(HttpError::new(kind, e)), None))
                }
            }
        });
        let body = http_body_util::StreamBody::new(frames);
        Ok(HttpResponse::from_parts(head, HttpResponseBody::new(body)))
    }
}
