//! Source control for the IDE: the real `git`, run as a program of the workspace (its sandbox,
//! its user, its environment and home, so its own config and credential store), at the
//! workspace root. Every path and branch a client names goes to git as one argument after
//! `--` (or after a checked name), never through a shell.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cove_protocol::ErrorCode;
use cove_protocol::ide::{GitFile, GitReply, GitRequest, GitShowQuery, GitShown, GitStatus};
use std::sync::Arc;
use std::time::Duration;

use crate::Workspace;
use crate::captured::{Ran, run_captured};
use crate::http::refuse;

/// Most output kept of one git run (a diff or a status of a huge tree is cut, and says so).
const MAX_OUTPUT: usize = 64 * 1024;
/// How long a local operation may take; pull and push talk to other machines and get longer.
const LOCAL: Duration = Duration::from_secs(30);
const REMOTE: Duration = Duration::from_secs(120);

/// Runs `git args...` at the workspace root (see [`run_captured`]), never waiting for a
/// person at a prompt no one sees: a missing credential is an answer.
async fn git(
    ws: &Workspace,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(String, String)],
    wait: Duration,
    limit: usize,
) -> Result<Ran, String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut env = env.to_vec();
    env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
    env.push(("GIT_ASKPASS".into(), "".into()));
    run_captured(ws, "git", &args, stdin, &env, wait, limit).await
}

/// A path a client names: relative, no `..`, no NUL, not an option.
fn checked_path(path: &str) -> Result<&str, String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path.split('/').any(|c| c == "..")
        || path.len() > 4096;
    if bad {
        Err(format!("{path:?} is not a path inside the workspace"))
    } else {
        Ok(path)
    }
}

/// `GET /git/status`.
pub(crate) async fn status(State(ws): State<Arc<Workspace>>) -> Response {
    match read_status(&ws).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => refuse(ErrorCode::Unavailable, e),
    }
}

async fn read_status(ws: &Workspace) -> Result<GitStatus, String> {
    let inside = git(
        ws,
        &["rev-parse", "--is-inside-work-tree"],
        None,
        &[],
        LOCAL,
        1024,
    )
    .await?;
    if !inside.ok {
        return Ok(GitStatus::default());
    }
    let ran = git(
        ws,
        &[
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
        ],
        None,
        &[],
        LOCAL,
        4 * 1024 * 1024,
    )
    .await?;
    if !ran.ok {
        return Err(ran.stderr.trim().to_string());
    }
    let mut status = parse_status(&ran.stdout);
    let branches = git(
        ws,
        &["branch", "--format=%(refname:short)"],
        None,
        &[],
        LOCAL,
        MAX_OUTPUT,
    )
    .await?;
    status.branches = String::from_utf8_lossy(&branches.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    Ok(status)
}

/// `git status --porcelain=v2 --branch -z`, read.
fn parse_status(out: &[u8]) -> GitStatus {
    let mut status = GitStatus {
        repository: true,
        ..GitStatus::default()
    };
    let text = String::from_utf8_lossy(out);
    let mut records = text.split('\0');
    while let Some(record) = records.next() {
        let mut fields = record.splitn(2, ' ');
        let (kind, rest) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        match kind {
            "#" => {
                let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                match key {
                    "branch.head" if value != "(detached)" => status.branch = Some(value.into()),
                    "branch.upstream" => status.upstream = Some(value.into()),
                    "branch.ab" => {
                        for part in value.split(' ') {
                            let n = part[1..].parse().unwrap_or(0);
                            if part.starts_with('+') {
                                status.ahead = n;
                            } else {
                                status.behind = n;
                            }
                        }
                    }
                    _ => {}
                }
            }
            // `1 XY sub mH mI mW hH hI path`, `2 XY ... Xscore path` then the old path.
            "1" | "2" => {
                let parts: Vec<&str> = rest.splitn(if kind == "1" { 8 } else { 9 }, ' ').collect();
                let Some(path) = parts.last() else { continue };
                let xy: Vec<char> = parts[0].chars().collect();
                let renamed_from = (kind == "2").then(|| records.next().unwrap_or("").to_string());
                status.files.push(GitFile {
                    path: path.to_string(),
                    index: xy.first().copied().unwrap_or('.').to_string(),
                    worktree: xy.get(1).copied().unwrap_or('.').to_string(),
                    renamed_from,
                });
            }
            "u" => {
                if let Some(path) = rest.splitn(10, ' ').nth(9) {
                    status.files.push(GitFile {
                        path: path.into(),
                        index: "U".into(),
                        worktree: "U".into(),
                        renamed_from: None,
                    });
                }
            }
            "?" => status.files.push(GitFile {
                path: rest.into(),
                index: "?".into(),
                worktree: "?".into(),
                renamed_from: None,
            }),
            _ => {}
        }
    }
    status
}

/// `GET /git/show?path=...&from=head|index`.
pub(crate) async fn show(
    State(ws): State<Arc<Workspace>>,
    query: Result<Query<GitShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return refuse(ErrorCode::BadRequest, e.body_text()),
    };
    let path = match checked_path(&query.path) {
        Ok(p) => p,
        Err(e) => return refuse(ErrorCode::BadRequest, e),
    };
    let object = match query.from.as_str() {
        "head" => format!("HEAD:{path}"),
        "index" => format!(":{path}"),
        other => {
            return refuse(
                ErrorCode::BadRequest,
                format!("from must be head or index, not {other:?}"),
            );
        }
    };
    let limit = ws.launch.limits.max_file_bytes as usize;
    match git(&ws, &["show", &object], None, &[], LOCAL, limit).await {
        Ok(ran) if ran.ok => match String::from_utf8(ran.stdout) {
            Ok(content) => Json(GitShown {
                content: Some(content),
            })
            .into_response(),
            Err(_) => refuse(ErrorCode::BadRequest, format!("{path} is not text")),
        },
        // Not in HEAD (new) or not in the index (deleted, untracked): nothing to show.
        Ok(_) => Json(GitShown { content: None }).into_response(),
        Err(e) => refuse(ErrorCode::Unavailable, e),
    }
}

/// `POST /git`: `{"author": "...", "request": GitRequest}` from the server, which names who
/// asks (for commits in a workspace whose git has no identity of its own).
pub(crate) async fn run(State(ws): State<Arc<Workspace>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Asked {
        author: String,
        request: GitRequest,
    }
    let asked: Asked = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return refuse(ErrorCode::BadRequest, format!("invalid git request: {e}")),
    };
    match operate(&ws, &asked.author, asked.request).await {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => refuse(ErrorCode::BadRequest, e),
    }
}

fn reply(ran: Ran) -> GitReply {
    let mut output = String::from_utf8_lossy(&ran.stdout).into_owned();
    output.push_str(&ran.stderr);
    let needs_credentials = !ran.ok
        && [
            "could not read Username",
            "Authentication failed",
            "terminal prompts disabled",
        ]
        .iter()
        .any(|s| ran.stderr.contains(s));
    let mut end = output.len().min(MAX_OUTPUT);
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    output.truncate(end);
    GitReply {
        ok: ran.ok,
        output,
        needs_credentials,
    }
}

async fn operate(ws: &Workspace, author: &str, request: GitRequest) -> Result<GitReply, String> {
    let paths = |paths: &[String]| -> Result<Vec<String>, String> {
        if paths.is_empty() {
            return Err("name at least one path".into());
        }
        paths
            .iter()
            .map(|p| checked_path(p).map(str::to_string))
            .collect()
    };
    let with_paths = |head: &[&str], paths: &[String]| -> Vec<String> {
        head.iter()
            .map(|s| s.to_string())
            .chain(std::iter::once("--".to_string()))
            .chain(paths.iter().cloned())
            .collect()
    };
    let run = |args: Vec<String>, stdin: Option<Vec<u8>>, env: Vec<(String, String)>, wait| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(ws, &args, stdin.as_deref(), &env, wait, MAX_OUTPUT)
            .await
            .map(reply)
    };
    match request {
        GitRequest::Init => run(vec!["init".into()], None, vec![], LOCAL).await,
        GitRequest::Stage { paths: p } => {
            run(
                with_paths(&["add", "--all"], &paths(&p)?),
                None,
                vec![],
                LOCAL,
            )
            .await
        }
        GitRequest::Unstage { paths: p } => {
            // Before the first commit there is no HEAD to restore from: `rm --cached` it is.
            let head = git(
                ws,
                &["rev-parse", "--verify", "-q", "HEAD"],
                None,
                &[],
                LOCAL,
                1024,
            )
            .await?;
            let args = if head.ok {
                with_paths(&["restore", "--staged"], &paths(&p)?)
            } else {
                with_paths(&["rm", "--cached", "-r", "-q"], &paths(&p)?)
            };
            run(args, None, vec![], LOCAL).await
        }
        GitRequest::Discard { paths: p } => {
            let p = paths(&p)?;
            let restored = run(with_paths(&["checkout"], &p), None, vec![], LOCAL).await?;
            // Untracked paths have nothing to go back to: they go.
            let cleaned = run(with_paths(&["clean", "-f", "-d"], &p), None, vec![], LOCAL).await?;
            Ok(GitReply {
                ok: restored.ok || cleaned.ok,
                output: format!("{}{}", restored.output, cleaned.output),
                needs_credentials: false,
            })
        }
        GitRequest::SetIndex { path, content } => {
            let path = checked_path(&path)?.to_string();
            let stored = git(
                ws,
                &["hash-object", "-w", "--stdin"],
                Some(content.as_bytes()),
                &[],
                LOCAL,
                1024,
            )
            .await?;
            if !stored.ok {
                return Ok(reply(stored));
            }
            let sha = String::from_utf8_lossy(&stored.stdout).trim().to_string();
            // Keep the file's mode (an executable stays one); a new file is a regular one.
            let listed = git(ws, &["ls-files", "-s", "--", &path], None, &[], LOCAL, 4096).await?;
            let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
            let mode = listed
                .split(' ')
                .next()
                .filter(|m| m.len() == 6)
                .unwrap_or("100644");
            run(
                vec![
                    "update-index".into(),
                    "--add".into(),
                    "--cacheinfo".into(),
                    format!("{mode},{sha},{path}"),
                ],
                None,
                vec![],
                LOCAL,
            )
            .await
        }
        GitRequest::Commit { message } => {
            if message.trim().is_empty() {
                return Err("a commit needs a message".into());
            }
            // The workspace's own identity wins; without one, the person's cove name.
            let named = git(ws, &["config", "user.name"], None, &[], LOCAL, 1024).await?;
            let env = if named.ok && !named.stdout.is_empty() {
                vec![]
            } else {
                let email = format!("{author}@cove.invalid");
                vec![
                    ("GIT_AUTHOR_NAME".to_string(), author.to_string()),
                    ("GIT_COMMITTER_NAME".to_string(), author.to_string()),
                    ("GIT_AUTHOR_EMAIL".to_string(), email.clone()),
                    ("GIT_COMMITTER_EMAIL".to_string(), email),
                ]
            };
            run(
                vec!["commit".into(), "-F".into(), "-".into()],
                Some(message.into_bytes()),
                env,
                LOCAL,
            )
            .await
        }
        GitRequest::Switch { branch, create } => {
            let valid = git(
                ws,
                &["check-ref-format", "--branch", &branch],
                None,
                &[],
                LOCAL,
                1024,
            )
            .await?;
            if !valid.ok || branch.starts_with('-') {
                return Err(format!("{branch:?} is not a valid branch name"));
            }
            let mut args = vec!["switch".to_string()];
            if create {
                args.push("-c".into());
            }
            args.push(branch);
            run(args, None, vec![], LOCAL).await
        }
        GitRequest::Pull => {
            run(
                vec!["pull".into(), "--ff-only".into()],
                None,
                vec![],
                REMOTE,
            )
            .await
        }
        GitRequest::Push => run(vec!["push".into()], None, vec![], REMOTE).await,
        GitRequest::Credentials {
            url,
            username,
            password,
        } => {
            let (scheme, rest) = url
                .split_once("://")
                .filter(|(scheme, _)| matches!(*scheme, "https" | "http"))
                .ok_or_else(|| format!("{url:?} is not an http(s) URL"))?;
            // The host (and port) of the remote, without any user name in the URL.
            let authority = rest.split('/').next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            let bad = |s: &str| s.is_empty() || s.contains(['\n', '\r', '\0']);
            if bad(host) || host.contains(char::is_whitespace) || bad(&username) || bad(&password) {
                return Err(
                    "credentials are a user name and a password for an http(s) remote".into(),
                );
            }
            let configured = run(
                vec![
                    "config".into(),
                    "--global".into(),
                    "credential.helper".into(),
                    "store".into(),
                ],
                None,
                vec![],
                LOCAL,
            )
            .await?;
            if !configured.ok {
                return Ok(configured);
            }
            let record = format!(
                "protocol={scheme}\nhost={host}\nusername={username}\npassword={password}\n\n"
            );
            let stored = run(
                vec!["credential-store".into(), "store".into()],
                Some(record.into_bytes()),
                vec![],
                LOCAL,
            )
            .await?;
            // Never echo a secret back.
            Ok(GitReply {
                ok: stored.ok,
                output: if stored.ok {
                    format!("saved in the workspace's credential store for {host}")
                } else {
                    "the credential store refused it".into()
                },
                needs_credentials: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_are_read() {
        let out = b"# branch.oid abc\0# branch.head main\0# branch.upstream origin/main\0# branch.ab +2 -1\0\
1 .M N... 100644 100644 100644 aaa bbb app.py\0\
1 A. N... 000000 100644 100644 000 ccc dir/new file.txt\0\
2 R. N... 100644 100644 100644 ddd eee R100 moved.py\0old.py\0\
? notes.md\0";
        let status = parse_status(out);
        assert_eq!(status.branch.as_deref(), Some("main"));
        assert_eq!(status.upstream.as_deref(), Some("origin/main"));
        assert_eq!((status.ahead, status.behind), (2, 1));
        let files: Vec<(&str, &str, &str)> = status
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.index.as_str(), f.worktree.as_str()))
            .collect();
        assert_eq!(
            files,
            vec![
                ("app.py", ".", "M"),
                ("dir/new file.txt", "A", "."),
                ("moved.py", "R", "."),
                ("notes.md", "?", "?")
            ]
        );
        assert_eq!(status.files[2].renamed_from.as_deref(), Some("old.py"));
    }

    #[test]
    fn paths_stay_inside() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\0b"] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
        assert!(
            checked_path("-rf").is_ok(),
            "passed after --, an option-like name is a name"
        );
    }
}
