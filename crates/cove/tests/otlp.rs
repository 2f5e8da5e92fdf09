//! Traces over OpenTelemetry: `cove serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans
//! as OTLP/HTTP protobuf, read here by the OpenTelemetry project's own Python messages
//! (`opentelemetry-proto` from PyPI, which `.ci/run` installs; `$COVE_OTLP_PYTHON` names
//! the Python that has it).
#![cfg(feature = "otlp")]

use cove_test_support::serve::{Serve, ServeOptions};
use futures_util::StreamExt;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A collector: answers every export, prints each span as a JSON line.
const COLLECTOR: &str = r#"
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

class Collector(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = [a.value.string_value for a in resource.resource.attributes
                       if a.key == 'service.name']
            for scope in resource.scope_spans:
                for span in scope.spans:
                    print(json.dumps({
                        'path': self.path,
                        'type': self.headers.get('Content-Type'),
                        'service': service[0] if service else None,
                        'name': span.name,
                        'trace': span.trace_id.hex(),
                        'parent': span.parent_span_id.hex(),
                        'attributes': {a.key: a.value.string_value for a in span.attributes},
                    }), flush=True)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-protobuf')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

server = HTTPServer(('127.0.0.1', 0), Collector)
print(json.dumps({'port': server.server_address[1]}), flush=True)
server.serve_forever()
"#;

#[tokio::test]
async fn a_workspace_start_and_a_socket_are_traced() {
    let Some(python) = std::env::var_os("COVE_OTLP_PYTHON") else {
        cove_test_support::missing_tool(
            "Python with opentelemetry-proto ($COVE_OTLP_PYTHON)",
            "the OTLP export tests",
        );
        return;
    };
    let mut collector = tokio::process::Command::new(python)
        .args(["-c", COLLECTOR])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the collector starts");
    let mut lines = BufReader::new(collector.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the collector says its port")
        .unwrap()
        .unwrap();
    let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
        .as_u64()
        .unwrap();

    let endpoint = format!("http://127.0.0.1:{port}");
    let mut args = vec!["--auth".to_string(), "none".to_string()];
    if !cove_test_support::can_sandbox() {
        args.extend(["--sandbox".to_string(), "none".to_string()]);
    }
    let mut server = Serve::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_cove")),
        ServeOptions {
            args: &args,
            env: &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
            dir_prefix: "cove-otlp-",
            wait: Duration::from_secs(30),
            ..ServeOptions::default()
        },
    )
    .await
    .expect("cove serve starts");
    let port = server.port();
    let created = cove_test_support::request::request(
        port,
        "POST",
        "/api/workspaces",
        &[("Content-Type", "application/json")],
        Some(br#"{"name":"traced","template":"blank"}"#),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json().unwrap()["id"].as_str().unwrap().to_string();
    // The control socket starts the workspace: a `workspace.start` span inside a `socket`.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/workspaces/{id}/ws"))
            .await
            .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.to_text().unwrap_or("").contains("\"welcome\"") {
                return;
            }
        }
        panic!("no welcome");
    })
    .await
    .expect("the workspace starts");
    drop(socket);
    let stopped = cove_test_support::request::request(
        port,
        "POST",
        &format!("/api/workspaces/{id}/stop"),
        &[],
        None,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(stopped.status, 200);
    // Stopping flushes what the exporter holds.
    assert!(
        server.stop(Duration::from_secs(15)).await,
        "cove stops on SIGTERM"
    );

    let mut spans = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let span: Value = serde_json::from_str(&line).unwrap();
            spans.push(span);
            let named = |name: &str| spans.iter().any(|s| s["name"] == name);
            if named("workspace.start") && named("socket") {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "spans received: {spans:#?}");
    let start = spans
        .iter()
        .find(|s| s["name"] == "workspace.start")
        .unwrap();
    assert_eq!(start["attributes"]["workspace"], id.as_str(), "{start}");
    assert_eq!(start["service"], "cove");
    assert_eq!(start["path"], "/v1/traces");
    assert_eq!(start["type"], "application/x-protobuf");
    let socket = spans
        .iter()
        .find(|s| s["name"] == "socket" && s["attributes"]["kind"] == "control")
        .unwrap_or_else(|| panic!("a control socket span: {spans:#?}"));
    assert_eq!(socket["attributes"]["workspace"], id.as_str());
    // The start happened inside the socket's life: one trace.
    assert_eq!(start["trace"], socket["trace"], "{start} {socket}");
}
