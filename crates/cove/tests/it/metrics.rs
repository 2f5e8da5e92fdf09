//! `/metrics` in the Prometheus text format, read by the official Prometheus Python
//! client's parser (`prometheus_client.parser`, Debian's python3-prometheus-client).

use cove_test_support::TestServer;
use cove_test_support::socketio::Bridge;
use serde_json::{Value, json};
use std::time::Duration;

/// `/metrics` in the Prometheus text format, read by the official Python client's parser:
/// counters move when sockets open and close and when a workspace starts.
#[tokio::test]
async fn metrics_parse_and_move() {
    let s = crate::server().await;
    let before = scrape(&s).await;
    assert_eq!(
        sample(&before, "cove_workspace_starts_total", &[]),
        Some(0.0)
    );
    let id = s.create_workspace("metered", "blank").await;
    let mut control = s.control(&id).await;
    control.request("ping", json!({})).await;
    let mut bridge = Bridge::start().await;
    bridge
        .connect("m", s.port, "/mcp", &["websocket"], json!({}))
        .await;
    let open = scrape(&s).await;
    assert_eq!(sample(&open, "cove_workspace_starts_total", &[]), Some(1.0));
    assert_eq!(
        sample(&open, "cove_workspace_start_duration_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&open, "cove_open_connections", &[("kind", "mcp")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&open, "cove_open_connections", &[("kind", "control")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&open, "cove_workspaces", &[("state", "running")]),
        Some(1.0)
    );
    let created = sample(
        &open,
        "cove_http_requests_total",
        &[
            ("route", "/api/workspaces"),
            ("method", "POST"),
            ("status", "201"),
        ],
    );
    assert_eq!(created, Some(1.0), "requests are counted by route template");
    assert!(
        sample(
            &open,
            "cove_relay_bytes_total",
            &[("kind", "control"), ("direction", "down")]
        )
        .unwrap_or(0.0)
            > 0.0
    );
    drop(bridge);
    drop(control);
    let mut closed = None;
    for _ in 0..100 {
        let now = scrape(&s).await;
        if sample(&now, "cove_open_connections", &[("kind", "mcp")]) == Some(0.0)
            && sample(&now, "cove_open_connections", &[("kind", "control")]) == Some(0.0)
        {
            closed = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = closed.expect("the gauges go back to 0 when the sockets close");
    // The collector reads the runner's figures in the background (every 10 s; the first
    // round runs at once, possibly before the start).
    let mut figures = None;
    for _ in 0..150 {
        let now = scrape(&s).await;
        if let Some(memory) = sample(&now, "cove_workspace_memory_bytes", &[("workspace", &id)]) {
            figures = Some(memory);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(figures.expect("the runner's figures") > 0.0);
    assert!(sample(&closed, "cove_server_resident_memory_bytes", &[]).unwrap() > 0.0);
}

/// Scrapes `/metrics` and parses it with `prometheus_client.parser`: the samples as
/// `[{name, labels, value}]`.
async fn scrape(s: &TestServer) -> Vec<Value> {
    let (status, body) = s.http("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    let parser = "import json, sys\nfrom prometheus_client.parser import text_string_to_metric_families\nout = []\nfor family in text_string_to_metric_families(sys.stdin.read()):\n    for s in family.samples:\n        out.append({'name': s.name, 'labels': s.labels, 'value': s.value})\nprint(json.dumps(out))\n";
    // Debian's Python: `.ci/run` installs the parser as python3-prometheus-client.
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics (install python3-prometheus-client): {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
}
