//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` binaries, `initdb` into a
//! temporary directory, started on a free loopback port, one per test process, each test in
//! a database of its own. A guardian shell outside the test's process group waits for the
//! test process to end, then stops the cluster and removes its directory, so no cluster
//! outlives its tests (even when they panic or are interrupted).
//!
//! `initdb` refuses to run as root: as root the cluster runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    bin: PathBuf,
    /// The user the server runs as, when it is not this process's.
    run_as: Option<String>,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl Cluster {
    /// The cluster of this test process, started at first use; `None` when PostgreSQL is not
    /// installed (outside CI only: under CI, `.ci/run` installs it and its absence fails).
    pub fn shared() -> Option<&'static Cluster> {
        static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
        CLUSTER
            .get_or_init(|| {
                let Some(bin) = binaries() else {
                    crate::missing_tool("Debian's postgresql", "the PostgreSQL store tests");
                    return None;
                };
                Some(Cluster::start(bin))
            })
            .as_ref()
    }

    fn start(bin: PathBuf) -> Cluster {
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| "postgres".to_string());
        let dir = tempfile::Builder::new()
            .prefix("cove-test-pg-")
            .tempdir()
            .expect("a temp dir")
            .keep();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown the cluster dir to postgres");
        }
        let data = dir.join("data");
        let cluster = Cluster {
            port: crate::free_port(),
            bin,
            run_as,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            cluster.port,
            path(&dir)
        );
        let log = dir.join("log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-o",
                &options,
                "-l",
                path(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        cluster.guard(&dir, &data);
        cluster
    }

    /// Runs one of the cluster's programs (as its user), panicking with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let output = command
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the shell that stops the cluster when this process ends (polling twice a
    /// second: there is no portable way to wait for a process that is not one's child).
    fn guard(&self, dir: &Path, data: &Path) {
        use std::os::unix::process::CommandExt as _;
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!(
                "runuser -u {user} -- {} -D {} -m immediate stop",
                path(&pg_ctl),
                path(data)
            ),
            None => format!("{} -D {} -m immediate stop", path(&pg_ctl), path(data)),
        };
        // In the background of a shell that exits at once (and is waited for): the guardian
        // belongs to init, not to this process, and outlives it by design.
        let script = format!(
            "(while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}) &",
            pid = std::process::id(),
            dir = path(dir),
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .expect("the guardian shell starts");
        assert!(status.success(), "the guardian shell starts");
    }

    /// A new, empty database of this cluster; its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cove_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let port = self.port.to_string();
        let status = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name])
            .stdin(Stdio::null())
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name}");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
