//! Short programs of the workspace whose output is read whole: `git` for the Git view, `head`
//! for a file a language server points at. Each runs as the workspace's programs do (its
//! sandbox, its user, its CPU group), bounded in output and in time; past either, its whole
//! process group is killed.

use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

use crate::Workspace;
use crate::stopping::{new_marker, signal_group};

/// Most of a program's error output kept.
const MAX_STDERR: usize = 64 * 1024;

/// What a program did.
pub(crate) struct Ran {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `program args...` at the workspace root, with `stdin` if given; at most `limit` bytes
/// of stdout are kept (more is an error: an answer too large to show). Errors are sentences
/// for the person.
pub(crate) async fn run_captured(
    ws: &Workspace,
    program: &str,
    args: &[String],
    stdin: Option<&[u8]>,
    env: &[(String, String)],
    wait: Duration,
    limit: usize,
) -> Result<Ran, String> {
    let marker = new_marker();
    let mut command = ws
        .launch
        .command(program, Some(args), None, env, program, &marker)
        .map_err(|e| e.to_string())?;
    command
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{program} is not installed in this workspace"),
        _ => format!("cannot run {program}: {e}"),
    })?;
    let pid = child.id().unwrap_or(0);
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        ws.tasks.spawn(async move {
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let read = async {
        use tokio::io::AsyncReadExt as _;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut out_pipe = (&mut stdout).take(limit as u64 + 1);
        let mut err_pipe = (&mut stderr).take(MAX_STDERR as u64);
        let (a, b) = tokio::join!(
            out_pipe.read_to_end(&mut out),
            err_pipe.read_to_end(&mut err)
        );
        a.and(b).map(|_| (out, err))
    };
    let outcome = tokio::time::timeout(wait, async {
        let (out, err) = read.await.map_err(|e| e.to_string())?;
        if out.len() > limit {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait().await;
            return Err(format!(
                "{program}'s answer is larger than {} KiB",
                limit / 1024
            ));
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        Ok(Ran {
            ok: status.success(),
            stdout: out,
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            Err(format!(
                "{program} took longer than {} s and was stopped",
                wait.as_secs()
            ))
        }
    }
}
