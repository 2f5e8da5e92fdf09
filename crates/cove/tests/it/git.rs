//! Source control through the workspace's own `git`: status, staging one hunk, commits as
//! the person, branches, push and pull, credentials in the workspace's store, and hostile input.

use serde_json::{Value, json};

async fn git_op(s: &cove_test_support::TestServer, id: &str, op: Value) -> (u16, Value) {
    s.json("POST", &format!("/api/workspaces/{id}/git"), Some(op))
        .await
}

#[tokio::test]
async fn source_control_runs_the_workspaces_own_git() {
    let s = crate::server().await;
    let id = s.create_workspace("git", "blank").await;
    let mut c = s.control(&id).await;
    let (status, body) = s
        .json("GET", &format!("/api/workspaces/{id}/git/status"), None)
        .await;
    assert_eq!((status, body["repository"].clone()), (200, json!(false)));
    let (status, done) = git_op(&s, &id, json!({"op": "init"})).await;
    assert_eq!((status, done["ok"].clone()), (200, json!(true)), "{done}");
    c.sh("printf 'one\\ntwo\\nthree\\n' > a.txt && git init -q --bare ../remote.git 2>/dev/null || git init -q --bare remote.git && git remote add origin ./remote.git")
        .await;
    let (_, body) = s
        .json("GET", &format!("/api/workspaces/{id}/git/status"), None)
        .await;
    let files = body["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "a.txt" && f["worktree"] == "?"),
        "{body}"
    );
    let (_, done) = git_op(&s, &id, json!({"op": "stage", "paths": ["a.txt"]})).await;
    assert_eq!(done["ok"], true, "{done}");
    let (_, done) = git_op(
        &s,
        &id,
        json!({"op": "commit", "message": "first: from cove"}),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    let (log, _) = c.sh("git log --format='%an|%s'").await;
    assert!(log.contains("admin|first: from cove"), "{log}");

    // One hunk staged: the index gets the text the IDE computed, the rest stays unstaged.
    c.sh("printf 'ONE\\ntwo\\nthree\\nfour\\n' > a.txt").await;
    let (_, done) = git_op(
        &s,
        &id,
        json!({"op": "setIndex", "path": "a.txt", "content": "ONE\ntwo\nthree\n"}),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    let (staged, _) = c.sh("git diff --cached --stat; echo ---; git diff").await;
    assert!(staged.contains("a.txt | 2 +-"), "{staged}");
    assert!(
        staged.contains("+four") && !staged.split("---").nth(1).unwrap().contains("+ONE"),
        "{staged}"
    );
    for (from, expected) in [
        ("head", "one\ntwo\nthree\n"),
        ("index", "ONE\ntwo\nthree\n"),
    ] {
        let (status, shown) = s
            .json(
                "GET",
                &format!("/api/workspaces/{id}/git/show?path=a.txt&from={from}"),
                None,
            )
            .await;
        assert_eq!((status, shown["content"].clone()), (200, json!(expected)));
    }
    let (_, done) = git_op(&s, &id, json!({"op": "unstage", "paths": ["a.txt"]})).await;
    assert_eq!(done["ok"], true, "{done}");
    let (_, done) = git_op(&s, &id, json!({"op": "discard", "paths": ["a.txt"]})).await;
    assert_eq!(done["ok"], true, "{done}");
    let (text, _) = c.sh("cat a.txt").await;
    assert!(text.starts_with("one\ntwo\nthree"), "{text}");

    // Branches and a push to a remote in the workspace.
    let (_, done) = git_op(
        &s,
        &id,
        json!({"op": "switch", "branch": "feature/x", "create": true}),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    let (_, body) = s
        .json("GET", &format!("/api/workspaces/{id}/git/status"), None)
        .await;
    assert_eq!(body["branch"], "feature/x", "{body}");
    c.sh("git push -q -u origin feature/x 2>&1").await;
    c.sh("echo more >> a.txt && git commit -qam more").await;
    let (_, done) = git_op(&s, &id, json!({"op": "push"})).await;
    assert_eq!(done["ok"], true, "{done}");
    let (_, done) = git_op(&s, &id, json!({"op": "pull"})).await;
    assert_eq!(done["ok"], true, "{done}");

    // Credentials go to the workspace's own store, and are never said back.
    let (_, done) = git_op(
        &s,
        &id,
        json!({"op": "credentials", "url": "https://git.example.com/team/repo.git", "username": "ada", "password": "s3cret-token"}),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    assert!(!done.to_string().contains("s3cret-token"), "{done}");
    let (stored, _) = c.sh("cat ~/.git-credentials").await;
    assert!(
        stored.contains("https://ada:s3cret-token@git.example.com"),
        "{stored}"
    );

    // Hostile input changes nothing.
    for bad in [
        json!({"op": "stage", "paths": ["../outside"]}),
        json!({"op": "stage", "paths": ["/etc/passwd"]}),
        json!({"op": "stage", "paths": []}),
        json!({"op": "switch", "branch": "-D", "create": false}),
        json!({"op": "switch", "branch": "a..b", "create": true}),
        json!({"op": "commit", "message": "  "}),
        json!({"op": "credentials", "url": "file:///etc", "username": "a", "password": "b"}),
        json!({"op": "credentials", "url": "https://h", "username": "a\nhost=evil", "password": "b"}),
        json!({"op": "gc"}),
        json!({"op": "stage", "paths": ["a.txt"], "extra": 1}),
    ] {
        let (status, body) = git_op(&s, &id, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = s
        .json(
            "GET",
            &format!("/api/workspaces/{id}/git/show?path=../x&from=head"),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (branches, _) = c.sh("git branch --format='%(refname:short)'").await;
    assert!(
        !branches.contains("a..b") && !branches.contains("-D"),
        "{branches}"
    );
}
