//! A folder downloaded as one archive, packed by `tar` inside the workspace.

#[tokio::test]
async fn a_folder_downloads_as_an_archive_with_links_kept_as_links() {
    let s = crate::server().await;
    let id = s.create_workspace("archive", "blank").await;
    let mut c = s.control(&id).await;
    let (_, code) = c
        .sh("mkdir -p dir/sub && printf 'alpha\\n' > dir/a.txt && head -c 70000 /dev/urandom > dir/sub/b.bin && ln -s /etc dir/link && ln -s /etc out")
        .await;
    assert_eq!(code, 0);
    let (status, body) = s
        .http(
            "GET",
            &format!("/api/workspaces/{id}/archive?path=dir"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let scratch = tempfile::tempdir().unwrap();
    let tarball = scratch.path().join("dir.tar.gz");
    std::fs::write(&tarball, &body).unwrap();
    let listing = std::process::Command::new("tar")
        .arg("-tvzf")
        .arg(&tarball)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("dir/link -> /etc"), "{listing}");
    assert!(
        !listing.contains("passwd"),
        "a link is never followed: {listing}"
    );
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    for file in ["dir/a.txt", "dir/sub/b.bin"] {
        let (status, served) = s
            .http("GET", &format!("/api/workspaces/{id}/files/{file}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            served,
            "{file} comes back identical"
        );
    }
    let (status, whole) = s
        .http(
            "GET",
            &format!("/api/workspaces/{id}/archive?format=tar"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        whole.windows(11).any(|w| w == b"./dir/a.txt"),
        "the whole workspace, uncompressed"
    );
    for (query, expected) in [
        ("path=..", 400),
        ("path=dir/../..", 400),
        ("path=out", 403),
        ("path=missing", 404),
        ("path=dir/a.txt", 400),
        ("path=dir&format=zip", 400),
        ("path=dir&extra=1", 400),
    ] {
        let (status, body) = s
            .http(
                "GET",
                &format!("/api/workspaces/{id}/archive?{query}"),
                None,
            )
            .await;
        assert_eq!(
            status,
            expected,
            "{query}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
