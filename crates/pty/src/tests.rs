use super::*;
use std::time::Duration;

fn sh(script: &str, size: Size) -> Spawn {
    Spawn {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        arg0: None,
        cwd: std::env::temp_dir(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        size,
        cgroup_procs: None,
    }
}

async fn read_to_end(master: &Master) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), master.read(&mut buf))
            .await
            .expect("the PTY answers within 10 s")
            .unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn child_has_a_controlling_terminal_of_the_given_size() {
    let (master, mut child) = spawn(&sh(
        "tty; stty size",
        Size {
            cols: 100,
            rows: 30,
        },
    ))
    .unwrap();
    let out = String::from_utf8(read_to_end(&master).await).unwrap();
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("30 100"), "{out}");
    assert!(child.wait().await.unwrap().success());
}

#[tokio::test]
async fn input_reaches_the_program_and_resize_is_seen() {
    let (master, mut child) =
        spawn(&sh("read line; echo got:$line; stty size", Size::default())).unwrap();
    master
        .resize(Size {
            cols: 120,
            rows: 40,
        })
        .unwrap();
    master.write_all(b"hello\n").await.unwrap();
    let out = String::from_utf8(read_to_end(&master).await).unwrap();
    assert!(out.contains("got:hello"), "{out}");
    assert!(out.contains("40 120"), "{out}");
    child.wait().await.unwrap();
}

#[tokio::test]
async fn child_leads_its_own_session() {
    let (master, mut child) = spawn(&sh("ps -o sid= -p $$; echo pid:$$", Size::default())).unwrap();
    let out = String::from_utf8(read_to_end(&master).await).unwrap();
    let pid = child.id().unwrap();
    assert!(out.contains(&format!("pid:{pid}")), "{out}");
    assert!(
        out.trim_start().starts_with(&pid.to_string()),
        "session id is the pid: {out}"
    );
    child.wait().await.unwrap();
}

#[test]
fn spawning_a_missing_program_says_which() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut spec = sh("", Size::default());
    spec.program = "/nonexistent/program".into();
    let err = spawn(&spec).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/program"), "{err}");
}
