//! Escapes from a sandboxed workspace, each tried as a real command in a real workspace while
//! a neighbour workspace serves on a port. All fail; the server and the neighbour keep
//! answering throughout.
//!
//! The sandbox needs root: run as another user, these tests say so and skip (but for the one
//! of `--sandbox none`); under CI, which runs as root, a skip is a failure.

use serde_json::{Value, json};

use cove_test_support::{Control, TestServer};

/// Runs `command` in the workspace as a process; returns (stdout + stderr, exit message).
async fn run(c: &mut Control, id: &str, command: &str) -> (String, Value) {
    let started = c
        .request("run_command", json!({"command": command, "processId": id}))
        .await;
    assert_eq!(started["type"], "process_started", "{started}");
    let (out, err, exit) = c.process_until_exit(id).await;
    (out + &err, exit)
}

async fn neighbour_answers(s: &TestServer, id: &str) {
    let (status, body) =
        cove_test_support::http(s.port, "GET", &format!("/w/{id}/proxy/3000/"), None, &[]).await;
    assert_eq!(
        status,
        200,
        "the neighbour's server answers: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        String::from_utf8_lossy(&body).contains("neighbour-file"),
        "and shows its own files"
    );
}

#[tokio::test]
async fn escapes_fail_and_neighbours_keep_answering() {
    if !cove_test_support::needs_sandbox(
        "try escapes from a sandboxed workspace and hit its limits",
    ) {
        return;
    }
    let args = [
        "--memory-limit-mib",
        "128",
        "--pids-limit",
        "64",
        "--disk-limit-mib",
        "4",
        // The attacker has the most a workspace can have: outbound network too.
        "--network",
        "outbound",
    ];
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await;
    let attacker = s.create_workspace("attacker", "blank").await;
    let neighbour = s.create_workspace("neighbour", "blank").await;
    let mut a = s.control(&attacker).await;
    let mut n = s.control(&neighbour).await;

    // Both workspaces serve on port 3000: separate network namespaces, no clash.
    for (c, name) in [(&mut a, "attacker-file"), (&mut n, "neighbour-file")] {
        c.request("write_file", json!({"path": name, "content": name}))
            .await;
        c.request(
            "run_command",
            json!({"command": "python3 -m http.server 3000 --bind 127.0.0.1", "processId": "web"}),
        )
        .await;
        c.wait_for(|m| m["type"] == "port_opened" && m["port"] == 3000)
            .await;
    }
    neighbour_answers(&s, &neighbour).await;
    let (_, body) = cove_test_support::http(
        s.port,
        "GET",
        &format!("/w/{attacker}/proxy/3000/"),
        None,
        &[],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&body).contains("attacker-file")
            && !String::from_utf8_lossy(&body).contains("neighbour-file")
    );

    // Outbound connections go to public addresses only: the host's own address is refused
    // (a listener there hears nothing), like its loopback.
    let host_ip = cove_test_support::host_ipv4().expect("a non-loopback IPv4 address");
    let listener = std::net::TcpListener::bind((host_ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let outside_port = listener.local_addr().unwrap().port();
    let (out, exit) = run(
        &mut a,
        "out",
        &format!("echo hello-from-the-workspace > /dev/tcp/{host_ip}/{outside_port}"),
    )
    .await;
    assert_ne!(
        exit["exitCode"], 0,
        "the host's own address is refused: {out}"
    );
    assert!(out.contains("Permission denied"), "{out}");
    assert!(listener.accept().is_err(), "nothing reached the host");
    let (out, _) = run(&mut a, "dns", "cat /etc/resolv.conf").await;
    assert!(out.contains("10.0.2.3"), "DNS goes to slirp4netns: {out}");

    let data_dir = s.data_dir.path().display().to_string();
    let server_pid = s.pid();
    let neighbour_files = s.workspace_dir(&neighbour).display().to_string();
    // (command, what must not appear in its output, must it fail)
    let attempts: Vec<(String, &str, bool)> = vec![
        ("cat /etc/shadow".into(), "root:", false),
        ("cat /etc/gshadow".into(), "root:", false),
        ("ls /root".into(), "", true),
        ("ls /home".into(), "", true),
        (format!("ls {data_dir}"), "cove.db", true),
        (format!("ls {neighbour_files}"), "neighbour-file", true),
        (format!("cat {data_dir}/cove.db"), "SQLite", true),
        ("ls /proc/1/root/".into(), "", true),
        (format!("ls /proc/{server_pid}/root/"), "", true),
        (format!("test -e /proc/{server_pid}"), "", true),
        (
            "cat /proc/*/cmdline | tr '\\0' ' '".into(),
            "cove serve",
            false,
        ),
        // No process in the workspace shows where cove keeps its data on the host.
        (
            "cat /proc/*/cmdline /proc/*/environ | tr '\\0' ' '".into(),
            &data_dir,
            false,
        ),
        (format!("kill -9 {server_pid}"), "", true),
        ("touch /usr/pwned".into(), "", true),
        ("touch /etc/pwned".into(), "", true),
        ("touch /pwned".into(), "", true),
        // Landlock, the second wall: the sandbox's own root holds files (the mask behind
        // /etc/shadow) that no rule grants.
        ("cat /.empty".into(), "", true),
        ("mount -t tmpfs none /tmp".into(), "", true),
        (format!("exec 3<>/dev/tcp/127.0.0.1/{}", s.port), "", true),
        // The host's loopback through slirp4netns's gateway, and the host's own address.
        (format!("exec 3<>/dev/tcp/10.0.2.2/{}", s.port), "", true),
        (format!("exec 3<>/dev/tcp/{host_ip}/{}", s.port), "", true),
        // The neighbour's port 3000 has no address outside its own namespace: whatever
        // answers elsewhere (if anything does on this host), it is not the neighbour.
        (
            "{ exec 3<>/dev/tcp/10.0.2.2/3000 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 2 cat <&3; } 2>&1; true".into(),
            "neighbour-file",
            false,
        ),
        (
            format!("{{ exec 3<>/dev/tcp/{host_ip}/3000 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 2 cat <&3; }} 2>&1; true"),
            "neighbour-file",
            false,
        ),
        (
            "test \"$(id -u)\" -ne 0 && ! grep -q 'CapEff:.*[1-9a-f]' /proc/self/status".into(),
            "",
            false,
        ),
    ];
    for (i, (command, forbidden, must_fail)) in attempts.iter().enumerate() {
        let (out, exit) = run(&mut a, &format!("try{i}"), command).await;
        if !forbidden.is_empty() {
            assert!(
                !out.contains(forbidden),
                "{command}: output shows {forbidden:?}: {out}"
            );
        }
        let failed = exit["exitCode"] != 0;
        assert_eq!(failed, *must_fail, "{command}: exit {exit}, output {out}");
    }
    assert!(
        !std::path::Path::new("/usr/pwned").exists()
            && !std::path::Path::new("/etc/pwned").exists()
    );
    neighbour_answers(&s, &neighbour).await;

    // Memory: the allocation is killed inside the workspace, and the clients are told why.
    let (_, exit) = run(
        &mut a,
        "hog",
        "python3 -c 'a = bytearray(400 * 1024 * 1024); print(len(a))'",
    )
    .await;
    assert_eq!(exit["signal"], 9, "{exit}");
    let why = a
        .wait_for(|m| {
            m["type"] == "error"
                && m["message"]
                    .as_str()
                    .is_some_and(|t| t.contains("out of memory"))
        })
        .await;
    assert_eq!(why["code"], "limit_exceeded");
    assert_eq!(
        a.request("ping", json!({})).await["type"],
        "pong",
        "the runner survived"
    );
    neighbour_answers(&s, &neighbour).await;

    // A fork bomb stops at the process limit; everyone else keeps answering.
    a.request(
        "run_command",
        json!({"command": "bomb() { bomb | bomb & }; bomb; sleep 30", "processId": "bomb"}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let stats = a.request("stats", json!({})).await;
    assert!(stats["pids"].as_u64().unwrap() <= 64, "{stats}");
    assert_eq!(n.request("ping", json!({})).await["type"], "pong");
    neighbour_answers(&s, &neighbour).await;
    let (status, _) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(status, 200, "the server answers during the fork bomb");
    a.request("stop_process", json!({"processId": "bomb"}))
        .await;

    // Storage: an API write past the limit is refused, nothing written.
    let big = "x".repeat(5 * 1024 * 1024);
    let refused = a
        .request("write_file", json!({"path": "big.txt", "content": big}))
        .await;
    assert_eq!(refused["code"], "limit_exceeded", "{}", refused["message"]);
    assert_ne!(a.sh("test -e big.txt").await.1, 0, "nothing written");
    let stats = a.request("stats", json!({})).await;
    assert_eq!(stats["diskLimitBytes"], 4 * 1024 * 1024, "{stats}");
    assert_eq!(stats["memoryLimitBytes"], 128 * 1024 * 1024, "{stats}");

    // Filling the disk from a program stops at the workspace's own image: the host's disk
    // does not fill, and the workspace works again once the file is gone.
    let image = s
        .data_dir
        .path()
        .join("workspaces")
        .join(format!("{attacker}.img"));
    assert!(image.exists(), "the workspace has a disk image");
    let (out, _) = run(
        &mut a,
        "fill",
        "head -c 256M /dev/zero > fill.bin; echo rc=$?; sync",
    )
    .await;
    assert!(out.contains("No space left on device"), "{out}");
    assert!(!out.contains("rc=0"), "{out}");
    let stats = a.request("stats", json!({})).await;
    assert!(
        stats["diskBytes"].as_u64().unwrap() >= 4 * 1024 * 1024,
        "stats count what programs wrote: {stats}"
    );
    use std::os::unix::fs::MetadataExt;
    let on_host = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        on_host < 64 * 1024 * 1024,
        "the image holds the writes: {on_host} bytes on the host"
    );
    assert_eq!(n.request("ping", json!({})).await["type"], "pong");
    neighbour_answers(&s, &neighbour).await;
    let (out, exit) = run(&mut a, "unfill", "rm fill.bin && echo ok > after.txt").await;
    assert_eq!(exit["exitCode"], 0, "{out} {exit}");
    let written = a
        .request(
            "write_file",
            json!({"path": "small.txt", "content": "fits"}),
        )
        .await;
    assert_eq!(written["type"], "file_written", "{written}");

    // Under cgroup v1 the runner stays out of the CPU limit (so a busy workspace still echoes
    // keystrokes at once) while every program it starts is under it.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cgroup.procs").exists() {
        let group = format!("cove-{attacker}");
        let (out, _) = run(&mut a, "cgroup", "cat /proc/self/cgroup").await;
        assert!(
            out.lines()
                .any(|l| l.contains(":cpu") && l.contains(&group)),
            "programs are CPU-limited: {out}"
        );
        let runner = s.runner_process_pids().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .unwrap_or_default()
                .contains(&format!("memory:/{group}"))
        });
        let runner_groups = std::fs::read_to_string(format!(
            "/proc/{}/cgroup",
            runner.expect("the attacker's runner")
        ))
        .unwrap();
        assert!(
            runner_groups
                .lines()
                .any(|l| l.contains(":cpu") && !l.contains(&group)),
            "{runner_groups}"
        );
    }

    // Files written in the workspace belong to its own unprivileged user on the host (there is
    // no user namespace: the uid a program sees is the host's).
    let owner: u32 = a
        .sh("stat -c %u attacker-file")
        .await
        .0
        .trim()
        .parse()
        .unwrap();
    assert!(
        owner >= 200_000,
        "owned by the workspace's uid, not root: {owner}"
    );
    neighbour_answers(&s, &neighbour).await;
}

#[tokio::test]
async fn unsandboxed_mode_still_works_for_development() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--sandbox", "none"]).await;
    let id = s.create_workspace("dev", "blank").await;
    let mut c = s.control(&id).await;
    let (out, _) = run(&mut c, "who", "id -u").await;
    // SAFETY: geteuid takes nothing and cannot fail.
    let server_uid = unsafe { libc::geteuid() };
    assert_eq!(
        out.trim(),
        server_uid.to_string(),
        "without a sandbox the workspace runs as the server's user"
    );
}

#[tokio::test]
async fn network_none_leaves_only_loopback() {
    if !cove_test_support::needs_sandbox(
        "check a sandbox's network namespace and what it leaves behind",
    ) {
        return;
    }
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("offline", "blank").await;
    let mut c = s.control(&id).await;
    let host_ip = cove_test_support::host_ipv4().expect("a non-loopback IPv4 address");
    let listener = std::net::TcpListener::bind((host_ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, exit) = run(
        &mut c,
        "out",
        &format!("timeout 5 bash -c 'echo hi > /dev/tcp/{host_ip}/{port}'"),
    )
    .await;
    assert_ne!(exit["exitCode"], 0, "nothing leaves: {out}");
    let (out, exit) = run(
        &mut c,
        "links",
        "python3 -c 'import socket; print(sorted(n for _, n in socket.if_nameindex()))'",
    )
    .await;
    assert_eq!(exit["exitCode"], 0, "{out}");
    assert_eq!(out.trim(), "['lo']");

    // A stopped sandbox leaves nothing behind on the host: no cgroups, no mounted disk.
    drop(c);
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(status, 200);
    for controller in ["memory", "pids", "cpu", ""] {
        let group = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(format!("cove-{id}"));
        assert!(!group.exists(), "{} is left", group.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "the disk is unmounted: {mounts}");
}

/// A sandbox whose outer process is SIGKILLed (what a stop does to a runner that ignores
/// SIGTERM) takes its whole namespace with it, and the next start mounts the disk once.
#[tokio::test]
async fn a_killed_sandbox_takes_its_workspace_with_it() {
    if !cove_test_support::needs_sandbox("kill a sandbox and count its loop devices") {
        return;
    }
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("killed", "blank").await;
    let mut c = s.control(&id).await;
    let written = c
        .request("write_file", json!({"path": "kept.txt", "content": "kept"}))
        .await;
    assert_eq!(written["type"], "file_written", "{written}");
    let (outer, runner) = (s.runner_pids()[0], s.runner_process_pids()[0]);
    assert_ne!(outer, runner);
    cove_test_support::signal(outer, libc::SIGKILL);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{runner}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner outlived its sandbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(c);
    // The next connection starts the workspace again, with its files.
    let mut c = s.control(&id).await;
    let read = c.request("read_file", json!({"path": "kept.txt"})).await;
    assert_eq!(read["content"], "kept", "{read}");
    let image = s
        .data_dir
        .path()
        .join("workspaces")
        .join(format!("{id}.img"));
    let loops = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|d| {
            std::fs::read_to_string(d.path().join("loop/backing_file"))
                .is_ok_and(|b| b.trim() == image.to_str().unwrap())
        })
        .count();
    assert_eq!(loops, 1, "the image is attached exactly once");
}

/// Outbound network reaches public addresses, not private ranges (unless allowed); shown
/// with stand-in machines in network namespaces this test makes (198.51.100.0/24 is a
/// documentation range, routed like a public one; 10.213.0.0/24 is private).
#[tokio::test]
async fn outbound_reaches_public_addresses_and_private_ones_only_when_allowed() {
    if !cove_test_support::needs_sandbox("check a sandbox's outbound network and egress rules") {
        return;
    }
    let Some(public) = cove_test_support::TestNet::new("pub", "198.51.100") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to make network namespaces"
        );
        return;
    };
    let Some(private) = cove_test_support::TestNet::new("prv", "10.213.0") else {
        return;
    };
    let wait = std::time::Duration::from_secs(5);
    for allowed in [false, true] {
        let mut args = vec!["--network", "outbound"];
        if allowed {
            args.extend(["--allow-egress", "10.213.0.0/24"]);
        }
        let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await;
        let id = s.create_workspace("egress", "blank").await;
        let mut c = s.control(&id).await;
        for (net, should_reach) in [(&public, true), (&private, allowed)] {
            let (port, heard) = net.listen_once(wait);
            let (out, exit) = run(
                &mut c,
                &format!("to-{}-{allowed}", net.addr),
                &format!("echo hello-{allowed} > /dev/tcp/{}/{port}", net.addr),
            )
            .await;
            let heard = heard.join().unwrap();
            if should_reach {
                assert_eq!(exit["exitCode"], 0, "{}: {out}", net.addr);
                assert_eq!(
                    heard.as_deref().map(str::trim),
                    Some(format!("hello-{allowed}").as_str())
                );
            } else {
                assert_ne!(exit["exitCode"], 0, "{} must be refused: {out}", net.addr);
                assert!(out.contains("Permission denied"), "{out}");
                assert_eq!(heard, None, "nothing reached {}", net.addr);
            }
        }
        // Cloud metadata is never reachable by default, whatever answers there.
        let (out, exit) = run(&mut c, "meta", "exec 3<>/dev/tcp/169.254.169.254/80").await;
        assert_ne!(exit["exitCode"], 0, "{out}");
    }
}

/// The kernel's riskiest doors are shut inside a workspace (seccomp): no new user namespace
/// (which would hand out CAP_NET_ADMIN over netfilter and netlink), no io_uring, no kernel
/// keyrings, no BPF. Each is tried as a real system call from a real program.
#[tokio::test]
async fn seccomp_shuts_new_namespaces_and_kernel_attack_surface() {
    if !cove_test_support::needs_sandbox("check the sandbox's seccomp filter") {
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIPPED: the probe below uses x86_64 system call numbers");
        return;
    }
    let s = crate::server().await;
    let id = s.create_workspace("syscalls", "blank").await;
    let mut c = s.control(&id).await;
    let (out, code) = c.sh("unshare -Ur id 2>&1").await;
    assert_ne!(code, 0, "unshare -U must fail: {out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    let probe = r#"
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
calls = {"io_uring_setup": (425, 1, 0), "keyctl": (250, 0, 0), "add_key": (248, 0, 0),
         "bpf": (321, 0, 0), "unshare(CLONE_NEWUSER)": (272, 0x10000000, 0),
         "setns": (308, 0, 0x40000000)}
for name, (nr, a, b) in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, a, b, 0, 0)
    print(name, rc, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
"#;
    let (out, code) = c
        .sh(&format!("python3 -c '{}'", probe.replace('\'', "'\\''")))
        .await;
    assert_eq!(code, 0, "{out}");
    for name in [
        "io_uring_setup",
        "keyctl",
        "add_key",
        "bpf",
        "unshare(CLONE_NEWUSER)",
        "setns",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {out}"));
        assert!(line.ends_with(" -1 EPERM"), "{line}");
    }
    // Ordinary work goes on: threads, processes, a compiler's worth of forks.
    let (out, code) = c
        .sh("python3 -c 'import threading; t=threading.Thread(target=print, args=(\"thread-ok\",)); t.start(); t.join()' && sh -c 'echo fork-ok'")
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("thread-ok") && out.contains("fork-ok"),
        "{out}"
    );
}
