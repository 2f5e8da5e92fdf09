//! Search across the workspace's files with ripgrep (`rg --json`), run as a program of the
//! workspace (its sandbox, its CPU group), answered as newline-delimited JSON
//! ([`SearchLine`]) while `rg` still looks: the first matches reach the IDE before the last
//! file is read. `.gitignore` is respected (in a repository or not), `.git` itself is never
//! searched, hidden files are.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use cove_protocol::ide::{SearchLine, SearchQuery};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncBufReadExt as _;

use crate::Workspace;
use crate::http::refuse;
use crate::stopping::{new_marker, signal_group};

/// The most matches one search returns (and the default).
pub(crate) const MAX_RESULTS: u32 = 10_000;
/// Longest line `rg` reports whole; longer ones (minified files) are cut around the match.
const MAX_LINE: usize = 400;
/// Longest query or glob list.
const MAX_QUERY: usize = 4096;

/// `GET /search?query=...`.
pub(crate) async fn search(
    State(ws): State<Arc<Workspace>>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |message: String| refuse(cove_protocol::ErrorCode::BadRequest, message);
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    if query.query.is_empty() {
        return bad("query must not be empty".into());
    }
    let long = [&Some(query.query.clone()), &query.include, &query.exclude]
        .iter()
        .any(|s| s.as_ref().is_some_and(|s| s.len() > MAX_QUERY));
    if long || query.query.contains('\0') {
        return bad(format!(
            "query and globs are at most {MAX_QUERY} bytes, without NUL"
        ));
    }
    let (lines, body) = tokio::sync::mpsc::channel::<String>(64);
    ws.tasks.spawn(run(ws.clone(), query, lines));
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        let line = body.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(line), body))
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .header("cache-control", "no-store")
        .body(Body::from_stream(stream))
        .expect("a response builds")
}

/// A comma-separated list of globs, split where a comma is not inside braces: `*.{ts,tsx},
/// docs/**` is two globs, the first of which ripgrep expands itself. As in the globs
/// themselves, a character after `\` is taken as it is, and a brace inside `[...]` is a
/// character, not a group.
fn split_globs(list: &str) -> Vec<&str> {
    let mut globs = Vec::new();
    let (mut depth, mut start, mut in_class, mut escaped) = (0usize, 0, false, false);
    for (i, c) in list.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                globs.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    globs.push(&list[start..]);
    globs
}

fn args(query: &SearchQuery) -> Vec<String> {
    let mut args: Vec<String> = ["--json", "--hidden", "--no-require-git", "--glob", "!.git"]
        .map(String::from)
        .to_vec();
    if !query.regex {
        args.push("--fixed-strings".into());
    }
    args.push(if query.case_sensitive {
        "--case-sensitive".into()
    } else {
        "--ignore-case".into()
    });
    if query.whole_word {
        args.push("--word-regexp".into());
    }
    let globs = |list: &Option<String>, negate: bool| -> Vec<String> {
        list.iter()
            .flat_map(|l| split_globs(l))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .flat_map(|g| {
                let g = if negate {
                    format!("!{g}")
                } else {
                    g.to_string()
                };
                ["--glob".to_string(), g]
            })
            .collect()
    };
    args.extend(globs(&query.include, false));
    args.extend(globs(&query.exclude, true));
    args.push("--regexp".into());
    args.push(query.query.clone());
    args.push("--".into());
    args.push(".".into());
    args
}

async fn run(ws: Arc<Workspace>, query: SearchQuery, out: tokio::sync::mpsc::Sender<String>) {
    let began = Instant::now();
    let send = |line: SearchLine| {
        let out = out.clone();
        async move {
            let mut text = serde_json::to_string(&line).expect("a search line encodes");
            text.push('\n');
            out.send(text).await.is_ok()
        }
    };
    let limit = query
        .max_results
        .unwrap_or(MAX_RESULTS)
        .clamp(1, MAX_RESULTS) as u64;
    let marker = new_marker();
    let command = ws
        .launch
        .command("rg", Some(&args(&query)), None, &[], "search", &marker);
    let spawned = command.and_then(|mut c| {
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c.spawn().map_err(|source| crate::error::Error::Spawn {
            command: "rg".into(),
            source,
        })
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let message = if matches!(&e, crate::error::Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
            {
                "search needs ripgrep (rg), which is not installed in this workspace".to_string()
            } else {
                e.to_string()
            };
            send(SearchLine::Error { message }).await;
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    // Read to the end (rg stops quietly when its stderr closes), keeping the first 4 KiB.
    let errors = ws.tasks.spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let room = 4096usize.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let mut reader = tokio::io::BufReader::new(stdout).lines();
    let (mut matches, mut files, mut truncated) = (0u64, 0u64, false);
    let mut gone = false;
    let mut last_path = String::new();
    loop {
        // A client that went, or a runner that stops, ends the search at once.
        let line = tokio::select! {
            line = reader.next_line() => match line {
                Ok(Some(line)) => line,
                _ => break,
            },
            _ = out.closed() => {
                gone = true;
                break;
            }
            _ = ws.shutdown.cancelled() => {
                gone = true;
                break;
            }
        };
        let Some(found) = parse_match(&line) else {
            continue;
        };
        if matches >= limit {
            truncated = true;
            break;
        }
        matches += 1;
        let SearchLine::Match { path, .. } = &found else {
            unreachable!("parse_match makes matches")
        };
        // rg reports one file's matches together.
        if *path != last_path {
            files += 1;
            last_path = path.clone();
        }
        if !send(found).await {
            gone = true;
            break;
        }
    }
    if truncated || gone {
        // rg and whatever it started (it starts nothing, but its group is its own).
        signal_group(pid, libc::SIGKILL);
    }
    let status = child.wait().await.ok();
    if gone {
        return;
    }
    let stderr = errors.await.unwrap_or_default();
    // rg: 0 found, 1 nothing found, 2 an error (a bad regex, unreadable files: it still
    // searched the rest, so the matches stand and the error is said).
    if status.and_then(|s| s.code()) == Some(2) && !truncated {
        let message = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(6)
            .collect::<Vec<_>>()
            .join("\n");
        if !message.is_empty() {
            send(SearchLine::Error { message }).await;
        }
    }
    send(SearchLine::Done {
        matches,
        files,
        truncated,
        elapsed_ms: began.elapsed().as_millis() as u64,
    })
    .await;
}

/// A `match` line of `rg --json` as a [`SearchLine::Match`]; `None` for other lines and for
/// paths or lines that are not UTF-8.
fn parse_match(line: &str) -> Option<SearchLine> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["type"] != "match" {
        return None;
    }
    let data = &value["data"];
    let path = data["path"]["text"].as_str()?;
    let path = path.strip_prefix("./").unwrap_or(path).to_string();
    let text = data["lines"]["text"].as_str()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let line_number = data["line_number"].as_u64()?;
    let bytes: Vec<(usize, usize)> = data["submatches"]
        .as_array()?
        .iter()
        .filter_map(|m| Some((m["start"].as_u64()? as usize, m["end"].as_u64()? as usize)))
        .filter(|(s, e)| s <= e && *e <= text.len())
        .collect();
    let first = bytes.first().map_or(0, |b| b.0);
    let column = text
        .get(..first)
        .map_or(0, |t| t.encode_utf16().count() as u32);
    let whole = text.len();
    let (text, shift) = clip_line(text, first);
    let utf16 = |byte: usize| -> Option<u32> {
        let byte = byte.checked_sub(shift)?;
        text.get(..byte).map(|t| t.encode_utf16().count() as u32)
    };
    let ranges = bytes
        .iter()
        .filter_map(|(s, e)| Some((utf16(*s)?, utf16(*e)?)))
        .collect();
    Some(SearchLine::Match {
        path,
        line: line_number,
        clipped: text.len() < whole,
        text: text.to_string(),
        ranges,
        column,
    })
}

/// A long line cut to [`MAX_LINE`] bytes around `focus`, and how many bytes were cut before.
fn clip_line(text: &str, focus: usize) -> (&str, usize) {
    if text.len() <= MAX_LINE {
        return (text, 0);
    }
    let mut start = focus.saturating_sub(MAX_LINE / 4);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + MAX_LINE).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[start..end], start)
}

#[cfg(test)]
mod tests {
    use super::split_globs;

    #[test]
    fn globs_split_on_commas_outside_braces() {
        assert_eq!(
            split_globs("*.{ts,tsx}, docs/**"),
            ["*.{ts,tsx}", " docs/**"]
        );
        assert_eq!(split_globs("a,b"), ["a", "b"]);
        assert_eq!(
            split_globs("src/{a,{b,c}}/*.rs,x"),
            ["src/{a,{b,c}}/*.rs", "x"]
        );
        // Unbalanced braces stay one glob; ripgrep then says what is wrong with it.
        assert_eq!(split_globs("*.{ts,tsx"), ["*.{ts,tsx"]);
        assert_eq!(split_globs("}a,b"), ["}a", "b"]);
        assert_eq!(split_globs(""), [""]);
        // An escaped brace and a brace in a class are characters: the comma splits.
        assert_eq!(split_globs(r"a\{b,c"), [r"a\{b", "c"]);
        assert_eq!(split_globs("*.[{]x,y"), ["*.[{]x", "y"]);
        assert_eq!(split_globs(r"a\,b,c"), [r"a\,b", "c"]);
    }
}
