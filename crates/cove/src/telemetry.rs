//! Logs, and traces exported over OpenTelemetry.
//!
//! Log lines go to stderr, filtered by `--log`/`RUST_LOG`. With the `otlp` feature and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set (the OpenTelemetry variable, e.g.
//! `http://127.0.0.1:4318`), the same spans (`workspace.start`, each socket's life, each
//! Socket.IO subscription, and everything inside them) are also sent to that collector as
//! OTLP/HTTP protobuf, batched on a thread of their own. Without either, nothing of it is
//! built or run.

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The OpenTelemetry variable that turns the export on.
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Flushes and stops the exporter when dropped (at the end of `main`).
pub(crate) struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("cove: the last traces could not be sent: {e}");
        }
    }
}

/// Installs the global subscriber: `filter` for log lines, and the exporter when configured
/// and `export` (the server exports; runners and one-shot commands only log).
pub(crate) fn init(filter: &str, export: bool) -> anyhow::Result<Telemetry> {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("bad --log filter")?;
    let lines = tracing_subscriber::fmt::layer()
        // Colour for people at a terminal; a log file (`cove serve > log`, a runner's log)
        // gets plain text that grep and less read as it is.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let endpoint = std::env::var(ENDPOINT)
        .ok()
        .filter(|e| export && !e.trim().is_empty());
    #[cfg(feature = "otlp")]
    {
        let (layer, provider) = match &endpoint {
            Some(endpoint) => {
                let (layer, provider) = otlp::layer(endpoint)?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(lines)
            .with(layer)
            .init();
        if let Some(endpoint) = endpoint {
            tracing::info!(%endpoint, "traces are sent over OTLP/HTTP");
        }
        Ok(Telemetry { provider })
    }
    #[cfg(not(feature = "otlp"))]
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(lines)
            .init();
        if endpoint.is_some() {
            tracing::warn!(
                "{ENDPOINT} is set, but this cove was built without the `otlp` feature: no traces are sent"
            );
        }
        Ok(Telemetry {})
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use anyhow::Context as _;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    /// Longest a collector may take to answer one batch.
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// The tracing layer that hands spans to a batch exporter posting to `endpoint`.
    pub(super) fn layer<S>(
        endpoint: &str,
    ) -> anyhow::Result<(
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        opentelemetry_sdk::trace::SdkTracerProvider,
    )>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let base = endpoint.trim_end_matches('/');
        anyhow::ensure!(
            base.starts_with("http://"),
            "{}={endpoint:?}: only http:// endpoints are supported (a collector or agent on this machine or network)",
            super::ENDPOINT
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(PlainHttp)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/traces"))
            .with_timeout(TIMEOUT)
            .build()
            .context("cannot set up the OTLP exporter")?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("cove")
            .build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("cove");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }

    /// HTTP/1.1 over a plain TCP connection, one request per connection. The batch
    /// exporter runs on a thread of its own and waits on each export, so blocking here
    /// holds up nothing else.
    #[derive(Debug)]
    struct PlainHttp;

    #[async_trait::async_trait]
    impl HttpClient for PlainHttp {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let uri = request.uri();
            let host = uri
                .host()
                .ok_or("no host in the OTLP endpoint")?
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?
                .next()
                .ok_or("the OTLP endpoint's host has no address")?;
            let mut stream = std::net::TcpStream::connect_timeout(&addr, super::otlp::TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            let mut head = format!(
                "{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
                request.method(),
                request.body().len()
            );
            for (name, value) in request.headers() {
                if let Ok(value) = value.to_str() {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes())?;
            stream.write_all(request.body())?;
            let mut answer = Vec::new();
            stream.take(4 * 1024 * 1024).read_to_end(&mut answer)?;
            let end = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or("the collector's answer has no end of head")?;
            let status: u16 = std::str::from_utf8(&answer[..end])?
                .split_whitespace()
                .nth(1)
                .ok_or("the collector's answer has no status")?
                .parse()?;
            Ok(Response::builder()
                .status(status)
                .body(Bytes::copy_from_slice(&answer[end + 4..]))?)
        }
    }
}
