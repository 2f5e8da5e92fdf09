use super::*;
use cove_protocol::ErrorCode;
use std::os::unix::fs::symlink;

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    files: Files,
}

/// A workspace root next to a directory that holds a secret, with symlinks planted inside the
/// root that point out of it.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let outside = dir.path().join("secret");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("key"), "TOP SECRET").unwrap();
    std::fs::write(root.join("src/main.py"), "print('hi')\n").unwrap();
    symlink(&outside, root.join("abs_link")).unwrap();
    symlink("../secret", root.join("rel_link")).unwrap();
    symlink("../secret/key", root.join("file_link")).unwrap();
    symlink("/etc/passwd", root.join("passwd_link")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    symlink("src/main.py", root.join("inside_link")).unwrap();
    let files = Files::open(&root, 1024 * 1024, None).unwrap();
    Fixture {
        _dir: dir,
        root,
        outside,
        files,
    }
}

const HOSTILE: &[&str] = &[
    "../secret/key",
    "/../secret/key",
    "src/../../secret/key",
    "src/../../../../../../etc/passwd",
    "abs_link/key",
    "rel_link/key",
    "file_link",
    "passwd_link",
    "loop_a",
    "/abs_link/key",
    "./../secret/key",
    "src/./../../secret/key",
    "..",
    "../",
    "/..",
    "//../secret/key",
    "abs_link/../secret/key",
    "rel_link/../secret/key",
    "/proc/self/root/etc/passwd",
    "src/\0/main.py",
    "../ws/../secret/key",
    "abs_link",
];

#[test]
fn hostile_reads_are_refused() {
    let f = fixture();
    for path in HOSTILE {
        let err = f.files.read(path).expect_err(path).to_reply();
        assert!(
            matches!(
                err.code,
                ErrorCode::Forbidden | ErrorCode::BadRequest | ErrorCode::NotFound
            ),
            "{path}: {err:?}"
        );
        assert!(
            !err.message.contains(f.outside.to_str().unwrap()),
            "no host path leaks: {err:?}"
        );
    }
    for path in HOSTILE {
        if let Ok(entries) = f.files.list(path) {
            panic!("{path}: listed {entries:?}");
        }
    }
}

#[test]
fn hostile_writes_deletes_and_renames_touch_nothing_outside() {
    let f = fixture();
    // Each write either is refused or lands inside the root: `/proc/self/root/etc/passwd/new`
    // names a path in the workspace, since workspace paths are rooted at the workspace.
    let lands_inside = |target: &str| {
        let rel = target.trim_start_matches('/');
        !rel.contains("..")
            && !rel.contains("link")
            && !rel.contains('\0')
            && std::fs::symlink_metadata(f.root.join(rel)).is_ok()
    };
    for path in HOSTILE {
        let target = format!("{path}/new");
        if f.files.write(&target, b"x", None).is_ok() {
            assert!(lands_inside(&target), "write {target}");
        }
        if f.files.make_dir(&target).is_ok() {
            assert!(lands_inside(&target), "mkdir {target}");
        }
        if f.files.rename("inside_link", &target, true).is_ok() {
            assert!(lands_inside(&target), "rename to {target}");
            f.files.rename(&target, "inside_link", true).unwrap();
        }
        // Renaming a symlink moves the link itself, which is fine; `..` must never resolve.
        if path.contains("..") {
            assert!(
                f.files.rename(path, "stolen", true).is_err(),
                "rename from {path}"
            );
        }
    }
    assert!(!std::path::Path::new("/proc/self/root/etc/passwd/new").exists());
    for path in [
        "../secret/key",
        "abs_link/key",
        "rel_link/key",
        "src/../../secret/key",
    ] {
        assert!(f.files.delete(path, true).is_err(), "delete {path}");
        assert!(
            f.files.write(path, b"pwned", None).is_err(),
            "overwrite {path}"
        );
    }
    // Deleting a symlink removes the link only; writing through one that leads out is refused.
    f.files.delete("abs_link", true).unwrap();
    assert_eq!(
        f.files
            .write("file_link", b"replaced", None)
            .unwrap_err()
            .to_reply()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        std::fs::read_to_string(f.outside.join("key")).unwrap(),
        "TOP SECRET"
    );
    assert_eq!(std::fs::read_dir(&f.outside).unwrap().count(), 1);
    assert!(
        !f.root.join("stolen").exists()
            || std::fs::symlink_metadata(f.root.join("stolen"))
                .unwrap()
                .is_symlink()
    );
}

#[test]
fn is_dir_follows_links_only_inside() {
    let f = fixture();
    assert!(f.files.is_dir("/").unwrap());
    assert!(f.files.is_dir("src").unwrap());
    assert!(!f.files.is_dir("src/main.py").unwrap());
    assert!(!f.files.is_dir("inside_link").unwrap());
    assert_eq!(
        f.files.is_dir("abs_link").unwrap_err().to_reply().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        f.files.is_dir("../secret").unwrap_err().to_reply().code,
        ErrorCode::Forbidden
    );
}

#[test]
fn symlinks_inside_the_root_work() {
    let f = fixture();
    assert_eq!(f.files.read("inside_link").unwrap().bytes, b"print('hi')\n");
    assert_eq!(
        f.files.read("/src/main.py").unwrap().bytes,
        b"print('hi')\n"
    );
    assert_eq!(
        f.files.read("src//./main.py").unwrap().bytes,
        b"print('hi')\n"
    );
}

#[test]
fn write_is_versioned_and_conflicts_are_detected() {
    let f = fixture();
    let first = f.files.read("src/main.py").unwrap();
    let written = f
        .files
        .write("src/main.py", b"print(2)\n", Some(&first.version))
        .unwrap();
    assert!(!written.created);
    assert_ne!(written.version, first.version);
    // Stale base version: refused, file unchanged.
    let err = f
        .files
        .write("src/main.py", b"print(3)\n", Some(&first.version))
        .unwrap_err()
        .to_reply();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(
        std::fs::read(f.root.join("src/main.py")).unwrap(),
        b"print(2)\n"
    );
    // A new file in new directories.
    let created = f.files.write("a/b/c.txt", b"deep", None).unwrap();
    assert!(created.created);
    assert_eq!(std::fs::read(f.root.join("a/b/c.txt")).unwrap(), b"deep");
    // No temp files are left behind, and listing hides them anyway.
    assert!(std::fs::read_dir(f.root.join("src")).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(TEMP_PREFIX)
    }));
}

#[test]
fn write_keeps_the_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    std::fs::write(f.root.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        f.root.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    f.files
        .write("run.sh", b"#!/bin/sh\necho hi\n", None)
        .unwrap();
    let mode = std::fs::metadata(f.root.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn size_limit_is_enforced_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), vec![b'x'; 2000]).unwrap();
    let files = Files::open(dir.path(), 1000, None).unwrap();
    assert_eq!(
        files.read("big").unwrap_err().to_reply().code,
        ErrorCode::TooLarge
    );
    assert_eq!(
        files
            .write("new", &[0; 1001], None)
            .unwrap_err()
            .to_reply()
            .code,
        ErrorCode::TooLarge
    );
    assert!(!dir.path().join("new").exists());
}

#[test]
fn fifo_is_not_read_and_does_not_hang() {
    let f = fixture();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        f.root.join("pipe"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert_eq!(
        f.files.read("pipe").unwrap_err().to_reply().code,
        ErrorCode::BadRequest
    );
}

#[test]
fn list_make_delete_rename() {
    let f = fixture();
    f.files.make_dir("x/y").unwrap();
    f.files.make_dir("x/y").unwrap();
    f.files.write("x/y/z.txt", b"z", None).unwrap();
    let names: Vec<_> = f
        .files
        .list("/")
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert_eq!(names[0], ("src".to_string(), EntryKind::Dir));
    assert!(names.contains(&("abs_link".to_string(), EntryKind::Symlink)));
    assert_eq!(
        f.files.delete("x", false).unwrap_err().to_reply().code,
        ErrorCode::Conflict
    );
    f.files.write("other.txt", b"o", None).unwrap();
    assert_eq!(
        f.files
            .rename("other.txt", "x/y/z.txt", false)
            .unwrap_err()
            .to_reply()
            .code,
        ErrorCode::Conflict
    );
    f.files
        .rename("other.txt", "moved/here.txt", false)
        .unwrap();
    assert_eq!(std::fs::read(f.root.join("moved/here.txt")).unwrap(), b"o");
    assert_eq!(
        f.files
            .rename("x", "x/y/inside", false)
            .unwrap_err()
            .to_reply()
            .code,
        ErrorCode::BadRequest
    );
    f.files.delete("x", true).unwrap();
    assert!(!f.root.join("x").exists());
    assert_eq!(
        f.files.delete("/", true).unwrap_err().to_reply().code,
        ErrorCode::BadRequest
    );
    assert_eq!(
        f.files
            .delete("nothing", false)
            .unwrap_err()
            .to_reply()
            .code,
        ErrorCode::NotFound
    );
    assert!(f.files.disk_usage(10_000) > 0);
}

#[test]
fn recursive_delete_does_not_follow_symlinks_out() {
    let f = fixture();
    f.files.make_dir("trap").unwrap();
    symlink(&f.outside, f.root.join("trap/out")).unwrap();
    f.files.delete("trap", true).unwrap();
    assert_eq!(
        std::fs::read_to_string(f.outside.join("key")).unwrap(),
        "TOP SECRET"
    );
}

#[test]
fn storage_limit_refuses_api_writes_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(dir.path(), 1 << 20, Some(256 * 1024)).unwrap();
    files.write("a.bin", &vec![1u8; 100 * 1024], None).unwrap();
    files.write("b.bin", &vec![1u8; 100 * 1024], None).unwrap();
    let err = files
        .write("c.bin", &vec![1u8; 100 * 1024], None)
        .unwrap_err()
        .to_reply();
    assert_eq!(err.code, ErrorCode::LimitExceeded, "{err:?}");
    assert!(!dir.path().join("c.bin").exists());
}

#[test]
fn recursive_delete_removes_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let f = fixture();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.txt");
    std::fs::create_dir_all(f.root.join("mixed/deeper")).unwrap();
    std::fs::write(f.root.join("mixed").join(odd), "latin-1 name").unwrap();
    std::fs::create_dir(
        f.root
            .join("mixed")
            .join(std::ffi::OsStr::from_bytes(b"d\xfe")),
    )
    .unwrap();
    std::fs::write(f.root.join("mixed/deeper").join(odd), "deeper").unwrap();
    f.files.delete("mixed", true).unwrap();
    assert!(!f.root.join("mixed").exists());
}
