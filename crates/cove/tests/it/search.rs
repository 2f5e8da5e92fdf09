//! Search across a workspace's files with the real `rg`: what it finds and skips, offsets as
//! the browser counts them, globs, limits, and hostile queries.

use serde_json::{Value, json};

use crate::accounts::{ADMIN_PASSWORD, password_server, sign_in};
use crate::ide::{create, get_text, on_path, put, stop};
use cove_test_support::missing_tool;

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("NDJSON line: {l:?}")))
        .collect()
}

#[tokio::test]
async fn search_finds_across_files_respects_gitignore_and_refuses_bad_queries() {
    if !on_path("rg") {
        return missing_tool("ripgrep", "the search tests");
    }
    let s = password_server(&[]).await;
    let owner = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let id = create(&owner, "search", "blank").await;
    put(&owner, &id, "a.py", "needle = 1\nprint(needle)\n").await;
    put(&owner, &id, "src/b.js", "const x = 'Needle';\n").await;
    put(&owner, &id, "docs/é.md", "ünïcode before the needle\n").await;
    put(&owner, &id, ".gitignore", "build/\n").await;
    put(&owner, &id, "build/out.txt", "needle in the build\n").await;
    put(
        &owner,
        &id,
        "needles.txt",
        "needles are not a whole needle word? needle\n",
    )
    .await;

    let search = |query: &str| {
        let owner = owner.clone();
        let path = format!("/api/workspaces/{id}/search?{query}");
        async move {
            let (status, body) = get_text(&owner, &path).await;
            (status, body)
        }
    };
    let (status, body) = search("query=needle").await;
    assert_eq!(status, 200, "{body}");
    let found = lines(&body);
    let done = found.last().unwrap();
    assert_eq!(done["type"], "done", "{body}");
    let paths: std::collections::BTreeSet<&str> = found
        .iter()
        .filter(|l| l["type"] == "match")
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["a.py", "docs/é.md", "needles.txt", "src/b.js"].into(),
        "case-insensitive by default, .gitignore respected: {body}"
    );
    assert_eq!(done["files"], 4, "{body}");
    // Ranges count as the browser counts: "ünïcode before the " is 19 UTF-16 units.
    let accented = found.iter().find(|l| l["path"] == "docs/é.md").unwrap();
    assert_eq!(accented["ranges"], json!([[19, 25]]), "{accented}");
    assert_eq!(accented["line"], 1);

    let (_, body) = search("query=Needle&caseSensitive=true").await;
    assert_eq!(
        lines(&body).iter().filter(|l| l["type"] == "match").count(),
        1,
        "{body}"
    );
    let (_, body) = search("query=needle&wholeWord=true&include=*.txt").await;
    let found = lines(&body);
    let only: Vec<&Value> = found.iter().filter(|l| l["type"] == "match").collect();
    assert_eq!(only.len(), 1, "{body}");
    assert_eq!(only[0]["ranges"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = search("query=ne%2Be.l&regex=true&exclude=a.py,src/**").await;
    let found = lines(&body);
    assert!(
        found
            .iter()
            .filter(|l| l["type"] == "match")
            .all(|l| l["path"] != "a.py" && l["path"] != "src/b.js"),
        "{body}"
    );
    assert!(found.iter().any(|l| l["type"] == "match"), "{body}");
    // A comma inside braces is the glob's own: `*.{py,js}` and `docs/**` are two globs.
    let (_, body) = search("query=needle&include=*.%7Bpy,js%7D,docs/**").await;
    let paths: std::collections::BTreeSet<String> = lines(&body)
        .iter()
        .filter(|l| l["type"] == "match")
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["a.py", "docs/é.md", "src/b.js"].map(String::from).into(),
        "{body}"
    );
    let (_, body) = search("query=needle&maxResults=2").await;
    let done = lines(&body).pop().unwrap();
    assert_eq!(done["truncated"], true, "{body}");
    assert_eq!(done["matches"], 2, "{body}");

    // A bad regular expression is an error line, not a failure of the route.
    let (status, body) = search("query=%28unclosed&regex=true").await;
    assert_eq!(status, 200);
    assert!(lines(&body).iter().any(|l| l["type"] == "error"), "{body}");
    for bad in ["", "query=", "query=x&rm=-rf", "query=x&regex=maybe"] {
        let (status, body) = search(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // A query that looks like an option stays a pattern: it finds the file that holds it.
    put(&owner, &id, "flags.txt", "run it with --files please\n").await;
    let (status, body) = search("query=--files").await;
    assert_eq!(status, 200);
    let found = lines(&body);
    let matched: Vec<&Value> = found.iter().filter(|l| l["type"] == "match").collect();
    assert_eq!(matched.len(), 1, "{body}");
    assert_eq!(matched[0]["path"], "flags.txt");
    assert_eq!(found.last().unwrap()["type"], "done", "{body}");
    stop(&owner, &id).await;
}
