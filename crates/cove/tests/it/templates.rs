//! Templates on the real server: the built-in ones published to the object store at first
//! start; a workspace's files published as a template (regular files with their execute
//! bit, names with spaces and non-ASCII; a symlink out of the workspace left behind); a
//! workspace made from it with those files, its run command, and its init command run once
//! as the process `init`; what a publish refuses; and only an administrator may publish.
//! Once with the data dir's object store, once with a real S3 server (moto).

use cove_test_support::s3::S3Server;
use cove_test_support::{TestServer, WAIT};
use serde_json::{Value, json};

use crate::accounts::{add_user, password_server, sign_in};

#[tokio::test]
async fn a_workspace_published_as_a_template_seeds_new_ones() {
    let s = TestServer::start(env!("CARGO_BIN_EXE_cove")).await;
    publish_and_create(&s).await;
    let objects = s.data_dir.path().join("objects/templates");
    assert!(objects.join("python/manifest.json").is_file());
    assert!(
        std::fs::read_dir(objects.join("team-app")).map_or(true, |mut d| d.next().is_none()),
        "removed from the data dir's object store too"
    );
}

#[tokio::test]
async fn templates_live_in_an_s3_bucket() {
    let Some(moto) = S3Server::shared() else {
        return;
    };
    let bucket = moto.bucket();
    let args = moto.cove_args(&format!("s3://{bucket}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await;
    let keys = moto.keys(&bucket);
    for builtin in ["blank", "node", "python", "static-web"] {
        let prefix = format!("templates/{builtin}/");
        assert_eq!(
            keys.iter().filter(|k| k.starts_with(&prefix)).count(),
            2,
            "{builtin}: an archive and a manifest in {keys:?}"
        );
    }
    publish_and_create(&s).await;
    let left: Vec<String> = moto
        .keys(&bucket)
        .into_iter()
        .filter(|k| k.starts_with("templates/team-app/"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "removed from the bucket too");
}

async fn publish_and_create(s: &TestServer) {
    let (status, list) = s.json("GET", "/api/templates", None).await;
    assert_eq!(status, 200, "{list}");
    let python = find(&list, "python");
    assert_eq!(python["icon"], "🐍");
    assert!(python["description"].as_str().unwrap().contains("Python"));
    assert_eq!(python["publishedBy"], "cove");

    let source = s.create_workspace("source", "blank").await;
    let mut c = s.control(&source).await;
    let (out, code) = c
        .sh("mkdir -p bin 'src/naïve dir' empty && printf 'run:\\n\\techo hi\\n' > Makefile \
             && printf '#!/bin/sh\\necho hello-from-template\\n' > bin/hello.sh && chmod 755 bin/hello.sh \
             && printf 'ünï\\n' > 'src/naïve dir/日本 語.txt' && printf s > .hidden \
             && ln -s /etc/passwd passwd && mkdir -p .ssh && printf key > .ssh/id_ed25519 \
             && printf 'ls\n' >> .bash_history")
        .await;
    assert_eq!(code, 0, "{out}");
    // A devcontainer.json with comments and trailing commas: postCreateCommand at the first
    // start, postStartCommand (a named group) after it and at every start, with the env.
    let devcontainer = r#"{
        // postStart must find what postCreate made: it waits for it
        "postCreateCommand": "sleep 1; printf created > created.out",
        "postStartCommand": { "greet": "test -e created.out && printf \"$GREETING\" > started.out", },
        "containerEnv": { "GREETING": "hi" },
        "remoteEnv": { "GREETING": "hello", },
        "forwardPorts": [8000],
    }"#;
    let (status, _) = s
        .http(
            "PUT",
            &format!("/api/workspaces/{source}/files/.devcontainer/devcontainer.json"),
            Some(devcontainer.as_bytes()),
        )
        .await;
    assert_eq!(status, 201);
    drop(c);

    let publish = json!({
        "workspace": source,
        "name": "team-app",
        "description": "Our service, with its Makefile.",
        "icon": "🧰",
        "runCommand": "sh bin/hello.sh",
        "previewPort": 8000,
        "initCommand": "printf init-ran > init.out; echo INIT-DONE",
    });
    let (status, view) = s
        .json("POST", "/api/templates", Some(publish.clone()))
        .await;
    assert_eq!(status, 201, "{view}");
    // The blank template's README.md, the four files made above and the devcontainer.json;
    // not the symlink, the key or the shell's history.
    assert_eq!(view["files"], 6, "{view}");
    assert_eq!(view["publishedBy"], "admin");
    let (_, list) = s.json("GET", "/api/templates", None).await;
    assert_eq!(
        find(&list, "team-app")["description"],
        "Our service, with its Makefile."
    );

    // A new workspace from it: the files, the run command, and the init command, once.
    let (status, made) = s
        .json(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "from-template", "template": "team-app"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["runCommand"], "sh bin/hello.sh");
    assert_eq!(made["previewPort"], 8000);
    let id = made["id"].as_str().unwrap().to_string();
    let mut c = s.control(&id).await;
    let init = wait_for_exit(&mut c, "init").await;
    assert_eq!(init["exitCode"], 0, "{init}");
    let post_start = wait_for_exit(&mut c, "postStart:greet").await;
    assert_eq!(
        post_start["exitCode"], 0,
        "it ran after postCreate: {post_start}"
    );
    let (out, _) = c.sh("cat created.out started.out").await;
    assert_eq!(out, "createdhello");
    let (out, code) = c
        .sh("cat init.out; echo; stat -c '%a %n' bin/hello.sh Makefile; cat 'src/naïve dir/日本 語.txt' .hidden; \
             test -e passwd || echo no-symlink; sh bin/hello.sh; \
             test -e .ssh/id_ed25519 || test -s .bash_history || echo nothing-personal")
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "init-ran\n755 bin/hello.sh\n644 Makefile\nünï\nsno-symlink\nhello-from-template\nnothing-personal\n"
    );
    drop(c);
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(status, 200);
    let mut c = s.control(&id).await;
    // postStartCommand runs at every start (in the background of the start).
    wait_for_exit(&mut c, "postStart:greet").await;
    let processes = c.request("list_processes", json!({})).await.to_string();
    assert!(
        !processes.contains("\"init\"") && !processes.contains("postCreate"),
        "the init command and postCreateCommand ran once: {processes}"
    );
    assert!(
        processes.contains("postStart:greet"),
        "postStartCommand runs at every start: {processes}"
    );
    drop(c);

    // What a publish refuses, changing nothing.
    for (body, want) in [
        (
            json!({"workspace": source, "name": "Team App", "description": ""}),
            400,
        ),
        (
            json!({"workspace": "no-such", "name": "x", "description": ""}),
            404,
        ),
        (
            json!({"workspace": source, "name": "x", "description": "a\nb"}),
            400,
        ),
        (
            json!({"workspace": source, "name": "x", "description": "", "previewPort": 0}),
            400,
        ),
        (
            json!({"workspace": source, "name": "x", "description": "", "extra": 1}),
            400,
        ),
        (json!(["not", "an", "object"]), 400),
    ] {
        let (status, reply) = s.json("POST", "/api/templates", Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {reply}");
    }
    let (status, _) = s.http("POST", "/api/templates", Some(b"name=x")).await;
    assert_eq!(status, 415, "a form is not JSON");
    let (_, list) = s.json("GET", "/api/templates", None).await;
    assert_eq!(list.as_array().unwrap().len(), 5, "{list}");

    // Removed: new workspaces cannot use it; the one made from it keeps its files.
    let (status, _) = s.json("DELETE", "/api/templates/team-app", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.json("DELETE", "/api/templates/team-app", None).await;
    assert_eq!(status, 404);
    let (status, reply) = s
        .json(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "too-late", "template": "team-app"})),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    let (status, _) = s
        .http("GET", &format!("/api/workspaces/{id}/files/Makefile"), None)
        .await;
    assert_eq!(status, 200);
    for id in [&id, &source] {
        let (status, _) = s
            .json("POST", &format!("/api/workspaces/{id}/stop"), None)
            .await;
        assert_eq!(status, 200);
    }
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name} in {list}"))
}

/// The process `id` as `list_processes` shows it once it has exited.
async fn wait_for_exit(c: &mut cove_test_support::Control, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = c.request("list_processes", json!({})).await;
        if let Some(p) = reply["processes"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["processId"] == id))
            && p["running"] == false
        {
            return p.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} did not exit: {reply}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_an_administrator_publishes_or_removes_templates() {
    let s = password_server(&[]).await;
    let admin = sign_in(s.port, "admin", crate::accounts::ADMIN_PASSWORD).await;
    let user = add_user(&admin, "ulla", "ulla-password-1", "user").await;
    let a = user
        .call("POST", "/api/workspaces", Some(json!({"name": "mine"})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = user
        .call(
            "POST",
            "/api/templates",
            Some(json!({"workspace": "mine", "name": "mine", "description": ""})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(
        user.call("DELETE", "/api/templates/python", None)
            .await
            .status,
        403
    );
    let a = user.call("GET", "/api/templates", None).await;
    assert_eq!((a.status, a.body.as_array().map(Vec::len)), (200, Some(4)));
    let anonymous = crate::accounts::send(s.port, None, "GET", "/api/templates", &[], None).await;
    assert_eq!(anonymous.status, 401);
}

/// `cove template list|publish|remove` against a running server, with an API token; a
/// user's token is refused with the server's reason, a missing one with a hint.
#[tokio::test]
async fn the_cli_publishes_lists_and_removes_templates() {
    let s = password_server(&[]).await;
    let admin = sign_in(s.port, "admin", crate::accounts::ADMIN_PASSWORD).await;
    let a = admin
        .call(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "cli-src", "template": "python"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let token = admin
        .call("POST", "/api/tokens", Some(json!({"name": "cli"})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let user = add_user(&admin, "ulla", "ulla-password-1", "user").await;
    let user_token = user
        .call("POST", "/api/tokens", Some(json!({"name": "cli"})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://127.0.0.1:{}", s.port);
    let cove = |args: &[&str], token: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"));
        command
            .args(["template", "--url", &url])
            .args(args)
            .env_remove("COVE_TOKEN")
            .kill_on_drop(true);
        if !token.is_empty() {
            command.env("COVE_TOKEN", token);
        }
        async move {
            let out = tokio::time::timeout(WAIT, command.output())
                .await
                .expect("cove template ends in time")
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) = cove(
        &[
            "publish",
            "cli-src",
            "--name",
            "py-team",
            "--description",
            "Python, our way",
            "--init-command",
            "pip --version",
        ],
        &token,
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("Published template py-team (3 files"), "{out}");
    let (ok, out, err) = cove(&["list"], &token).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("py-team") && out.contains("Python, our way") && out.contains("(by admin)"),
        "{out}"
    );

    let (ok, _, err) = cove(&["remove", "python"], &user_token).await;
    assert!(
        !ok && err.contains("403") && err.contains("only an administrator"),
        "{err}"
    );
    let (ok, _, err) = cove(&["list"], "").await;
    assert!(
        !ok && err.contains("401") && err.contains("--token"),
        "{err}"
    );

    let (ok, out, err) = cove(&["remove", "py-team"], &token).await;
    assert!(ok && out.contains("Removed template py-team"), "{out}{err}");
    let (ok, _, err) = cove(&["remove", "py-team"], &token).await;
    assert!(!ok && err.contains("404"), "{err}");
    let a = admin
        .call("POST", "/api/workspaces/cli-src/stop", None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}
