//! The workspace lifecycle over a fake backend: no root, no sandbox, no runner.

use super::*;
use cove_backend::FakeBackend;

async fn manager() -> (Manager, Arc<FakeBackend>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let objects = cove_objects::Objects::local(&dir.path().join("objects")).unwrap();
    manager_with(objects, dir).await
}

/// A manager whose database is in `dir` and whose snapshots go to `objects`.
async fn manager_with(
    objects: cove_objects::Objects,
    dir: tempfile::TempDir,
) -> (Manager, Arc<FakeBackend>, tempfile::TempDir) {
    let db = Db::open(dir.path()).await.unwrap();
    let backend = Arc::new(FakeBackend::new());
    let accounts = Arc::new(Accounts::new(db.clone(), Default::default()));
    accounts.bootstrap().await.unwrap();
    let templates = Arc::new(
        crate::templates::Catalog::load(db.clone(), objects.clone())
            .await
            .unwrap(),
    );
    (
        Manager::new(
            db,
            backend.clone(),
            accounts,
            objects,
            templates,
            Arc::default(),
        ),
        backend,
        dir,
    )
}

/// The first administrator, as every caller is with `--auth none`.
async fn admin(m: &Manager) -> Caller {
    m.accounts
        .open_caller(std::net::IpAddr::from([127, 0, 0, 1]))
        .await
        .unwrap()
}

async fn state(m: &Manager, id: &str) -> (String, Option<String>) {
    let view = m.view(m.find(&admin(m).await, id).await.unwrap().row).await;
    (view.state.to_string(), view.state_reason)
}

#[tokio::test]
async fn create_start_stop_delete() {
    let (m, backend, _dir) = manager().await;
    let mut events = m.events();
    let view = m
        .create(&admin(&m).await, "demo", Some("python"), Limits::default())
        .await
        .unwrap();
    assert_eq!(view.state, WorkspaceState::Stopped);
    assert!(backend.has_storage(&view.id), "files are made at creation");
    assert!(matches!(events.try_recv(), Ok(WorkspaceEvent::Changed(v)) if v.id == view.id));
    // Names are unique whatever their case; an unknown template is refused, nothing made.
    assert!(
        m.create(&admin(&m).await, "DEMO", None, Limits::default())
            .await
            .is_err()
    );
    assert!(
        m.create(&admin(&m).await, "x", Some("cobol"), Limits::default())
            .await
            .is_err()
    );
    assert_eq!(backend.calls().len(), 1, "{:?}", backend.calls());

    let row = m.find(&admin(&m).await, "demo").await.unwrap().row;
    m.ensure_running(&row).await.unwrap();
    assert_eq!(state(&m, "demo").await.0, "running");
    // A second start finds it running and starts nothing.
    m.ensure_running(&row).await.unwrap();
    assert_eq!(
        backend
            .calls()
            .iter()
            .filter(|c| c.starts_with("start"))
            .count(),
        1
    );
    m.stop(&row, "alice").await.unwrap();
    let view = m
        .view(m.find(&admin(&m).await, "demo").await.unwrap().row)
        .await;
    assert_eq!(view.state, WorkspaceState::Stopped);
    assert_eq!(view.stopped_by.as_deref(), Some("alice"));
    assert_eq!(view.state_reason.as_deref(), Some("stopped by alice"));

    m.delete(&row).await.unwrap();
    assert!(m.find(&admin(&m).await, "demo").await.is_err());
    assert!(!backend.has_storage(&view.id));
    let mut deleted = false;
    while let Ok(event) = events.try_recv() {
        deleted |= matches!(event, WorkspaceEvent::Deleted { ref id, .. } if *id == view.id);
    }
    assert!(deleted, "a deletion is announced");
}

#[tokio::test]
async fn a_failed_start_or_stop_is_an_error_with_its_reason() {
    let (m, backend, _dir) = manager().await;
    m.create(&admin(&m).await, "w", None, Limits::default())
        .await
        .unwrap();
    let row = m.find(&admin(&m).await, "w").await.unwrap().row;
    backend.fail_starts(true);
    let refused = m.ensure_running(&row).await.unwrap_err();
    assert_eq!(refused.reply.code, cove_protocol::ErrorCode::Unavailable);
    let (st, reason) = state(&m, "w").await;
    assert_eq!(st, "error");
    assert!(reason.unwrap().contains("could not start"));
    // A later start may succeed.
    backend.fail_starts(false);
    m.ensure_running(&row).await.unwrap();
    assert_eq!(state(&m, "w").await.0, "running");
    // A stop that fails does not leave the workspace "stopping" for good.
    backend.fail_stops(true);
    assert!(m.stop(&row, "admin").await.is_err());
    let (st, reason) = state(&m, "w").await;
    assert_eq!(st, "error");
    assert!(reason.unwrap().contains("could not be stopped"));
    backend.fail_stops(false);
    m.stop(&row, "admin").await.unwrap();
    assert_eq!(state(&m, "w").await.0, "stopped");
}

#[tokio::test]
async fn a_runner_that_died_is_noticed_and_a_restart_reconciles() {
    let (m, backend, _dir) = manager().await;
    for name in ["a", "b", "c"] {
        m.create(&admin(&m).await, name, None, Limits::default())
            .await
            .unwrap();
    }
    let a = m.find(&admin(&m).await, "a").await.unwrap().row;
    let b = m.find(&admin(&m).await, "b").await.unwrap().row;
    m.ensure_running(&a).await.unwrap();
    m.ensure_running(&b).await.unwrap();
    // a's runner dies (OOM, killed): the next look says so, with why.
    backend.set_running(&a.id, false);
    let (st, reason) = state(&m, "a").await;
    assert_eq!(st, "stopped");
    assert!(reason.unwrap().contains("runner exited"));
    // The server restarts: b's runner survived, c's was found running (started by an
    // earlier server), a's is gone.
    backend.set_running(&m.find(&admin(&m).await, "c").await.unwrap().row.id, true);
    m.reconcile().await.unwrap();
    assert_eq!(state(&m, "a").await.0, "stopped");
    assert_eq!(state(&m, "b").await.0, "running");
    assert_eq!(state(&m, "c").await.0, "running");
    backend.set_running(&b.id, false);
    m.reconcile().await.unwrap();
    let (st, reason) = state(&m, "b").await;
    assert_eq!(st, "stopped");
    assert!(reason.unwrap().contains("while the server was down"));
}

/// A start whose request went away mid-way (the client closed the socket): the runner came
/// up, nobody recorded it. The next look records it running; a stop works either way.
#[tokio::test]
async fn a_start_nobody_saw_finish_is_recorded_and_can_be_stopped() {
    let (m, backend, _dir) = manager().await;
    for name in ["seen", "stoppable"] {
        m.create(&admin(&m).await, name, None, Limits::default())
            .await
            .unwrap();
        let row = m.find(&admin(&m).await, name).await.unwrap().row;
        m.db.set_state(&row.id, WorkspaceState::Starting, "", None)
            .await
            .unwrap();
        backend.set_running(&row.id, true);
    }
    let seen = m.find(&admin(&m).await, "seen").await.unwrap().row;
    m.ensure_running(&seen).await.unwrap();
    assert_eq!(state(&m, "seen").await.0, "running");
    assert!(
        !backend.calls().iter().any(|c| c.starts_with("start")),
        "nothing was started twice: {:?}",
        backend.calls()
    );
    let stoppable = m.find(&admin(&m).await, "stoppable").await.unwrap().row;
    m.stop(&stoppable, "admin").await.unwrap();
    assert_eq!(state(&m, "stoppable").await.0, "stopped");
}

#[test]
fn names_are_plain_and_readable() {
    for good in [
        "demo",
        "My project 2",
        "py-demo",
        "a.b_c",
        "x",
        &"n".repeat(64),
    ] {
        assert_eq!(validate_name(good).unwrap(), good.trim(), "{good:?}");
    }
    assert_eq!(validate_name("  padded  ").unwrap(), "padded");
    for bad in [
        "",
        ".",
        "..",
        "-lead",
        "trail.",
        "a\u{200b}",
        "\u{202e}evil",
        "caf\u{e9}",
        "a/b",
        "a%2f",
        "tab\there",
        &"n".repeat(65),
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(validate_name(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn states_only_move_forward() {
    use WorkspaceState::*;
    let allowed = [
        (Stopped, Starting),
        (Starting, Running),
        (Running, Stopping),
        (Stopping, Stopped),
        (Starting, Error),
        (Stopping, Error),
        (Error, Starting),
        (Running, Stopped),
        (Starting, Stopping),
        (Stopped, Hibernated),
        (Hibernated, Starting),
        (Starting, Hibernated),
    ];
    for (from, to) in allowed {
        assert!(from.can_become(to), "{from} -> {to}");
    }
    for (from, to) in [
        (Running, Starting),
        (Stopped, Running),
        (Stopping, Running),
        (Stopped, Error),
        (Running, Hibernated),
        (Hibernated, Running),
        (Hibernated, Stopped),
    ] {
        assert!(!from.can_become(to), "{from} -> {to} must be refused");
    }
    // Every state is left somehow: none is a trap.
    for from in WorkspaceState::ALL {
        assert!(
            WorkspaceState::ALL.iter().any(|to| from.can_become(*to)),
            "{from}"
        );
    }
}

/// The idle stop: a running workspace nobody is connected to is stopped after the idle time
/// (with why, in the store and the audit log); one with a connection, or kept running, is
/// not; one whose runner died is recorded as stopped at the next look, idle stop or not.
#[tokio::test]
async fn idle_workspaces_stop_unless_connected_or_kept_running() {
    use super::watch::{Idle, Lifecycle};
    use std::time::{Duration, Instant};
    let (m, backend, _dir) = manager().await;
    let admin = admin(&m).await;
    let mut rows = Vec::new();
    for name in ["idle", "connected", "kept"] {
        m.create(&admin, name, None, Limits::default())
            .await
            .unwrap();
        let row = m.find(&admin, name).await.unwrap().row;
        m.ensure_running(&row).await.unwrap();
        rows.push(row);
    }
    let (idle, connected, kept) = (&rows[0], &rows[1], &rows[2]);
    m.set_keep_running(kept, true).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let socket = m
        .accounts
        .open_connection(
            &admin,
            Some((&connected.id, WorkspaceAccess::Owner)),
            crate::accounts::ConnectionKind::Control,
            &shutdown,
        )
        .unwrap();
    let policy = Lifecycle {
        idle_stop: Some(Duration::from_secs(60)),
        hibernate_after: None,
    };
    let wall = crate::now_ms();
    let mut seen = Idle::default();
    let t0 = Instant::now();
    assert!(m.look(policy, &mut seen, t0, wall).await.is_empty());
    assert!(
        m.look(policy, &mut seen, t0 + Duration::from_secs(59), wall)
            .await
            .is_empty(),
        "not yet a minute"
    );
    let stopped = m
        .look(policy, &mut seen, t0 + Duration::from_secs(61), wall)
        .await;
    assert_eq!(stopped, vec![idle.id.clone()]);
    let (st, reason) = state(&m, "idle").await;
    assert_eq!(
        (st.as_str(), reason.as_deref()),
        ("stopped", Some("stopped after 1 min with nobody connected"))
    );
    assert_eq!(state(&m, "connected").await.0, "running");
    assert_eq!(state(&m, "kept").await.0, "running");
    let (entries, _) = m.db.audit(&Default::default()).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.user == "cove" && e.action == "workspace.stop" && e.target == idle.id),
        "{entries:?}"
    );
    // The last connection goes: the idle time counts from the next look.
    drop(socket);
    let t1 = t0 + Duration::from_secs(120);
    assert!(m.look(policy, &mut seen, t1, wall).await.is_empty());
    assert_eq!(
        m.look(policy, &mut seen, t1 + Duration::from_secs(61), wall)
            .await,
        vec![connected.id.clone()]
    );
    // Never with the idle stop off; but a dead runner is noticed either way.
    m.set_keep_running(kept, false).await.unwrap();
    let off = Lifecycle::default();
    let far = t1 + Duration::from_secs(3600);
    assert!(m.look(off, &mut seen, far, wall).await.is_empty());
    assert_eq!(state(&m, "kept").await.0, "running");
    let mut events = m.events();
    backend.set_running(&kept.id, false);
    m.look(off, &mut seen, far, wall).await;
    let row = m.db.get(&kept.id).await.unwrap().unwrap();
    assert_eq!(row.state, WorkspaceState::Stopped);
    assert!(
        row.state_reason.contains("runner exited"),
        "{}",
        row.state_reason
    );
    assert!(
        matches!(events.try_recv(), Ok(WorkspaceEvent::Changed(v)) if v.id == kept.id && v.state == WorkspaceState::Stopped),
        "live views are told"
    );
}

/// Every file under a directory store (snapshots, manifests, and anything half-written),
/// as keys.
fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(
                    entry
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    found.sort();
    found
}

/// Hibernate and restore over the fake backend and a real (directory) object store: the
/// files leave and come back; a corrupted snapshot replaces nothing; a snapshot cut short
/// leaves the previous one recorded and in place, and nothing else.
#[tokio::test]
async fn hibernate_restore_and_what_goes_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let objects = cove_objects::Objects::local(&root).unwrap();
    hibernate_cycle(objects, dir, || files_under(&root)).await;
}

/// The same on a real S3 server (moto), whose bucket is listed by the harness's own client.
#[cfg(feature = "s3")]
#[tokio::test]
async fn hibernate_restore_and_what_goes_wrong_on_s3() {
    use cove_test_support::s3::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};
    let Some(moto) = S3Server::shared() else {
        return;
    };
    let bucket = moto.bucket();
    let objects = cove_objects::Objects::open(&cove_objects::Place::S3(cove_objects::S3Place {
        bucket: bucket.clone(),
        prefix: None,
        endpoint: Some(moto.endpoint()),
        region: None,
        virtual_hosted: false,
        access_key_id: Some(ACCESS_KEY_ID.into()),
        secret_access_key: Some(SECRET_ACCESS_KEY.into()),
    }))
    .unwrap();
    hibernate_cycle(objects, tempfile::tempdir().unwrap(), || moto.keys(&bucket)).await;
}

/// `objects_in` lists every key of `objects`, as the store itself holds them.
async fn hibernate_cycle(
    objects: cove_objects::Objects,
    dir: tempfile::TempDir,
    objects_in: impl Fn() -> Vec<String>,
) {
    let (m, backend, _dir) = manager_with(objects, dir).await;
    // The templates published at the first start are there too; this is about snapshots.
    let objects_in = || -> Vec<String> {
        objects_in()
            .into_iter()
            .filter(|key| key.starts_with("snapshots/"))
            .collect()
    };
    let admin = admin(&m).await;
    m.create(&admin, "sleepy", None, Limits::default())
        .await
        .unwrap();
    let row = m.find(&admin, "sleepy").await.unwrap().row;
    m.ensure_running(&row).await.unwrap();

    m.hibernate(&row, "admin").await.unwrap();
    let (st, reason) = state(&m, "sleepy").await;
    assert_eq!(st, "hibernated");
    assert!(reason.unwrap().contains("in the object store"));
    assert!(!backend.has_storage(&row.id), "the local copy is gone");
    let stored = objects_in();
    assert_eq!(stored.len(), 2, "the snapshot and its manifest: {stored:?}");
    assert!(
        m.hibernate(&row, "admin").await.is_err(),
        "already hibernated"
    );

    // A start restores it, then starts it.
    m.ensure_running(&row).await.unwrap();
    assert_eq!(state(&m, "sleepy").await.0, "running");
    assert!(backend.has_storage(&row.id));

    // Hibernated again; then its snapshot is damaged: the start refuses it, nothing changes.
    m.hibernate(&row, "admin").await.unwrap();
    let snapshot = objects_in()
        .into_iter()
        .find(|o| o.ends_with(".tar.zst"))
        .unwrap();
    assert_eq!(objects_in().len(), 2, "the older snapshot was removed");
    let mut bytes = m.objects.get(&snapshot).await.unwrap().unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    m.objects
        .put(&snapshot, bytes.clone().into())
        .await
        .unwrap();
    let refused = m.ensure_running(&row).await;
    assert!(refused.is_err());
    let (st, reason) = state(&m, "sleepy").await;
    assert_eq!(st, "hibernated");
    assert!(
        reason.unwrap().contains("the restore failed"),
        "kept, with why"
    );
    assert!(!backend.has_storage(&row.id), "nothing was put in place");
    bytes[middle] ^= 0xff;
    m.objects.put(&snapshot, bytes.into()).await.unwrap();
    m.ensure_running(&row).await.unwrap();
    assert!(backend.has_storage(&row.id));

    // A snapshot cut short: the workspace keeps its files and its last good snapshot.
    let recorded = m.db.get(&row.id).await.unwrap().unwrap().snapshot;
    let before = objects_in();
    backend.fail_exports_after(Some(300_000));
    assert!(m.hibernate(&row, "admin").await.is_err());
    let now = m.db.get(&row.id).await.unwrap().unwrap();
    assert_eq!(
        now.state,
        WorkspaceState::Stopped,
        "stopped to hibernate, not hibernated"
    );
    assert_eq!(
        now.snapshot, recorded,
        "the good snapshot is still the one recorded"
    );
    assert!(backend.has_storage(&row.id));
    assert_eq!(objects_in(), before, "nothing else is left in the store");
    backend.fail_exports_after(None);

    // A restore whose request went away (the state says so, nobody runs it): the next start
    // restores it, instead of starting a workspace without files.
    m.hibernate(&row, "admin").await.unwrap();
    m.db.set_state(
        &row.id,
        WorkspaceState::Starting,
        "restoring its files: 40%",
        None,
    )
    .await
    .unwrap();
    m.ensure_running(&row).await.unwrap();
    assert_eq!(state(&m, "sleepy").await.0, "running");
    assert!(backend.has_storage(&row.id));

    // At start-up, what no workspace records is swept: a snapshot cut short between upload
    // and record, and the objects of a workspace that is gone; the recorded one stays.
    let recorded_objects = objects_in();
    m.objects
        .put(
            &format!("snapshots/{}/orphan.tar.zst", row.id),
            bytes::Bytes::from_static(b"x"),
        )
        .await
        .unwrap();
    m.objects
        .put(
            "snapshots/0123456789abcdef0123456789abcdef/gone.tar.zst",
            bytes::Bytes::from_static(b"x"),
        )
        .await
        .unwrap();
    m.reconcile().await.unwrap();
    assert_eq!(objects_in(), recorded_objects);

    // Deleting the workspace deletes its snapshots.
    m.hibernate(&row, "admin").await.unwrap();
    m.delete(&m.db.get(&row.id).await.unwrap().unwrap())
        .await
        .unwrap();
    assert!(objects_in().is_empty(), "{:?}", objects_in());
}

/// A workspace stopped for longer than `--hibernate-after` is hibernated by the watcher (one
/// per look), with an audit row; a running one, or one stopped more recently, is not.
#[tokio::test]
async fn long_stopped_workspaces_are_hibernated() {
    use super::watch::{Idle, Lifecycle};
    use std::time::{Duration, Instant};
    let (m, backend, _dir) = manager().await;
    let admin = admin(&m).await;
    for name in ["old", "older", "running"] {
        m.create(&admin, name, None, Limits::default())
            .await
            .unwrap();
    }
    let running = m.find(&admin, "running").await.unwrap().row;
    m.ensure_running(&running).await.unwrap();
    let policy = Lifecycle {
        idle_stop: None,
        hibernate_after: Some(Duration::from_secs(7 * 86_400)),
    };
    let mut seen = Idle::default();
    let now = crate::now_ms();
    assert!(
        m.look(policy, &mut seen, Instant::now(), now)
            .await
            .is_empty(),
        "stopped just now"
    );
    let week_later = now + 7 * 86_400_000 + 1000;
    let first = m.look(policy, &mut seen, Instant::now(), week_later).await;
    let second = m.look(policy, &mut seen, Instant::now(), week_later).await;
    assert_eq!((first.len(), second.len()), (1, 1), "one per look");
    for name in ["old", "older"] {
        let (st, reason) = state(&m, name).await;
        assert_eq!(st, "hibernated");
        assert!(reason.unwrap().starts_with("hibernated by cove"));
    }
    assert_eq!(state(&m, "running").await.0, "running");
    assert!(backend.has_storage(&running.id));
    let (entries, _) = m.db.audit(&Default::default()).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.user == "cove" && e.action == "workspace.hibernate")
            .count(),
        2
    );
    assert!(
        m.look(policy, &mut seen, Instant::now(), week_later)
            .await
            .is_empty()
    );
}
