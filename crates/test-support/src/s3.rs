//! A real S3-compatible server for tests: moto (`moto_server` from PyPI's `moto[server]`),
//! started on a free loopback port, one per test process, each test in a bucket of its own.
//! It is a child of a guardian shell outside the test's process group that stops it when
//! the test process ends (even when a test panics or is interrupted).
//!
//! `$COVE_MOTO_SERVER` names the program; otherwise `moto_server` is looked up on `PATH`.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running S3 server.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
}

/// Credentials moto accepts (any), given as the AWS SDKs take them.
pub const ACCESS_KEY_ID: &str = "cove-test";
pub const SECRET_ACCESS_KEY: &str = "cove-test-secret";

fn program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("COVE_MOTO_SERVER") {
        return Some(path.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

impl S3Server {
    /// The server of this test process, started at first use; `None` when moto is not
    /// installed (outside CI only: under CI, `.ci/run` installs it and its absence fails).
    pub fn shared() -> Option<&'static S3Server> {
        static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();
        SERVER
            .get_or_init(|| {
                let Some(program) = program() else {
                    crate::missing_tool("moto_server (PyPI moto[server])", "the S3 tests");
                    return None;
                };
                Some(S3Server::start(program))
            })
            .as_ref()
    }

    fn start(program: PathBuf) -> S3Server {
        use std::os::unix::process::CommandExt as _;
        let port = crate::free_port();
        let log = std::env::temp_dir().join(format!("cove-test-moto-{port}.log"));
        // The guardian starts moto in the background, waits for this process to end, then
        // stops moto: it belongs to init, not to the test, and outlives it by design.
        let script = format!(
            "({program} -H 127.0.0.1 -p {port} >{log} 2>&1 & moto=$!; \
              while kill -0 {pid} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.5; done; \
              kill $moto 2>/dev/null; rm -f {log}) &",
            program = shell_quote(program.to_str().expect("a UTF-8 path")),
            log = shell_quote(log.to_str().expect("a UTF-8 path")),
            pid = std::process::id(),
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
        let server = S3Server { port };
        // moto imports a lot of Python before it listens: up to a minute on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server
                .request("GET", "/")
                .is_ok_and(|(code, _)| code == 200)
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 60 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `cove serve` flags that put its object store at `url` (`s3://BUCKET[/PREFIX]`)
    /// on this server.
    pub fn cove_args(&self, url: &str) -> Vec<String> {
        [
            "--object-store",
            url,
            "--s3-endpoint",
            &self.endpoint(),
            "--s3-access-key-id",
            ACCESS_KEY_ID,
            "--s3-secret-access-key",
            SECRET_ACCESS_KEY,
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// A new, empty bucket; its name.
    pub fn bucket(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cove-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (code, body) = self
            .request("PUT", &format!("/{name}"))
            .expect("moto answers");
        assert_eq!(code, 200, "create bucket {name}: {body}");
        name
    }

    /// Every key in `bucket` (moto accepts unsigned requests), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let (code, body) = self
            .request("GET", &format!("/{bucket}?list-type=2"))
            .expect("moto answers");
        assert_eq!(code, 200, "list {bucket}: {body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect();
        keys.sort();
        keys
    }

    /// One plain HTTP/1.0 request: the status code and the body.
    fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let code = answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
