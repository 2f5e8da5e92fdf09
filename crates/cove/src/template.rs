//! `cove template list|publish|remove`: templates of a running cove, through its HTTP API
//! (publishing reads a workspace's files through its runner, which only the server reaches),
//! with an API token (`cove token create`) of an administrator.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub(crate) struct TemplateArgs {
    /// The cove server [default: http://127.0.0.1:8080].
    #[arg(
        long,
        env = "COVE_URL",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// An API token (`TOKEN=$(cove token create NAME)`); publishing and removing need an
    /// administrator's.
    #[arg(long, env = "COVE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    action: TemplateAction,
}

#[derive(Debug, Subcommand)]
enum TemplateAction {
    /// The templates new workspaces can start from.
    List,
    /// Publish a workspace's files as a template (replacing one of the same name). The
    /// workspace is started if it is stopped; regular files are taken with their execute
    /// bit, symlinks are left out; at most 64 MiB in 20,000 files.
    Publish {
        /// The workspace: its id, or a name of the token's user.
        workspace: String,
        /// The template's name: lowercase letters, digits and '-'.
        #[arg(long)]
        name: String,
        /// One line shown in the New project dialog.
        #[arg(long, default_value = "")]
        description: String,
        /// A short symbol beside the name (an emoji).
        #[arg(long)]
        icon: Option<String>,
        /// What the Processes panel offers to run, e.g. `npm start`.
        #[arg(long)]
        run_command: Option<String>,
        /// The port the run command serves, for the preview.
        #[arg(long)]
        preview_port: Option<u16>,
        /// A shell line run once, as the process `init`, when a workspace made from the
        /// template first starts, e.g. `npm ci`.
        #[arg(long)]
        init_command: Option<String>,
    },
    /// Remove a template (workspaces made from it keep their files).
    Remove { name: String },
}

pub(crate) async fn template(args: TemplateArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.url, args.token)?;
    match args.action {
        TemplateAction::List => {
            let list = api.call("GET", "/api/templates", None).await?;
            for t in list.as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<3} {:>5} files  {}  (by {})",
                    t["name"].as_str().unwrap_or(""),
                    t["icon"].as_str().unwrap_or(""),
                    t["files"],
                    t["description"].as_str().unwrap_or(""),
                    t["publishedBy"].as_str().unwrap_or("?"),
                );
            }
        }
        TemplateAction::Publish {
            workspace,
            name,
            description,
            icon,
            run_command,
            preview_port,
            init_command,
        } => {
            eprintln!("Publishing the files of {workspace:?} as template {name:?}...");
            let body = json!({
                "workspace": workspace,
                "name": name,
                "description": description,
                "icon": icon,
                "runCommand": run_command,
                "previewPort": preview_port,
                "initCommand": init_command,
            });
            let view = api.call("POST", "/api/templates", Some(body)).await?;
            println!(
                "Published template {} ({} files, {} bytes).",
                view["name"].as_str().unwrap_or(&name),
                view["files"],
                view["bytes"]
            );
        }
        TemplateAction::Remove { name } => {
            api.call("DELETE", &format!("/api/templates/{name}"), None)
                .await?;
            println!("Removed template {name}.");
        }
    }
    Ok(())
}

/// cove's HTTP API over plain HTTP or HTTPS (the system's CA certificates).
struct Api {
    base: String,
    token: Option<String>,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl Api {
    fn new(url: &str, token: Option<String>) -> anyhow::Result<Api> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url {url:?} is not an http:// or https:// address");
        }
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(std::sync::Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .context("cannot read the system's CA certificates")?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(tls);
        Ok(Api {
            base,
            token,
            client,
        })
    }

    /// One request; the JSON answer, or the server's error message as the error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header("Content-Type", "application/json");
                bytes::Bytes::from(body.to_string())
            }
            None => bytes::Bytes::new(),
        };
        let request = request.body(http_body_util::Full::new(bytes))?;
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(600),
            self.client.request(request),
        )
        .await
        .with_context(|| format!("{} did not answer in 10 minutes", self.base))?
        .with_context(|| format!("cannot reach cove at {}", self.base))?;
        let status = answer.status();
        let body = answer.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            let hint = match status.as_u16() {
                401 => " (give an API token with --token or $COVE_TOKEN)",
                _ => "",
            };
            bail!("{method} {path}: {status}: {message}{hint}");
        }
        Ok(value)
    }
}
