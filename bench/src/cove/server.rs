//! `cove serve` as the bench runs it: started on port 0 with a temp data dir (by
//! `cove_test_support::serve`), and stopped so that nothing it started outlives the bench,
//! with a note for everything that had to be killed.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use cove_test_support::serve::{Serve, ServeOptions};

use crate::procs::{descendants, read_stat};

/// The cove server, started by us. Killed (by pid) on drop if `shutdown` was
/// not called.
pub(crate) struct Server {
    serve: Serve,
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

impl Server {
    /// `cove serve --bind-addr 127.0.0.1:0 --data-dir <temp> --auth none` plus `extra`;
    /// without `--auth none` when `extra` has its own `--auth`.
    pub(crate) async fn start(bin: &Path, extra: &[String]) -> Result<Self> {
        let serve = Serve::start(
            bin,
            ServeOptions {
                args: extra,
                dir_prefix: "cove-bench-",
                ..ServeOptions::default()
            },
        )
        .await?;
        Ok(Self {
            pid: serve.pid(),
            port: serve.port(),
            serve,
        })
    }

    /// What the start showed that departs from PROTOCOL.md.
    pub(crate) fn start_notes(&self) -> Vec<String> {
        match self.serve.announced_on() {
            "stdout" => Vec::new(),
            stream => vec![format!(
                "the server printed its `cove listening on` line on {stream}, not stdout"
            )],
        }
    }

    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.serve.log_tail()
    }

    /// SIGTERM by pid, SIGKILL after 10 s; then ends (by pid, after checking
    /// their start time) any process the server started that outlived it,
    /// and removes the data directory.
    pub(crate) async fn shutdown(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let below = descendants(self.pid as i32);
        if !self.serve.stop(Duration::from_secs(10)).await {
            notes.push("the server did not exit within 10 s of SIGTERM; killed".into());
        }
        // Processes the server started (runners, shells) that are still
        // there after a grace period.
        let mut survivors = Vec::new();
        for _ in 0..20 {
            survivors = below
                .iter()
                .filter(|(p, _)| {
                    read_stat(p.pid)
                        .is_some_and(|now| now.starttime == p.starttime && now.state != 'Z')
                })
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>();
            if survivors.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !survivors.is_empty() {
            let mut list: Vec<String> = survivors
                .iter()
                .take(8)
                .map(|p| format!("{} ({})", p.pid, p.comm))
                .collect();
            if survivors.len() > 8 {
                list.push(format!("and {} more", survivors.len() - 8));
            }
            notes.push(format!(
                "{} process(es) started by the server were still running 2 s after it exited \
                 (expected for runners: PROTOCOL.md section 6 keeps them across server \
                 restarts); the bench killed them by pid: {}",
                survivors.len(),
                list.join(", ")
            ));
            for p in &survivors {
                if let Some(pid) = rustix::process::Pid::from_raw(p.pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Runners record their pids in <data-dir>/run/*.pid: end any that is
        // still there (a runner that was re-parented away from the server).
        let data_dir = self.serve.data_dir().to_path_buf();
        for pid in self.serve.runner_pids() {
            if let Some(p) = rustix::process::Pid::from_raw(pid)
                && read_stat(pid).is_some_and(|st| st.state != 'Z')
                && cmdline_mentions(pid, &data_dir)
            {
                notes.push(format!(
                    "runner pid {pid} (from run/*.pid) was still running; killed by pid"
                ));
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        drop(self.serve);
        if data_dir.exists() {
            notes.push(format!("could not remove {}", data_dir.display()));
        }
        notes
    }
}

/// Whether the command line of `pid` mentions `dir` (so that a recycled pid
/// of an unrelated process is never killed).
fn cmdline_mentions(pid: i32, dir: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = dir.as_os_str().as_encoded_bytes();
    memchr::memmem::find(&raw, needle).is_some()
}
