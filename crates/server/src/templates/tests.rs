//! The catalog over a real (directory) object store and SQLite.

use super::*;

async fn catalog() -> (Catalog, Objects, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    let objects = Objects::local(&dir.path().join("objects")).unwrap();
    let catalog = Catalog::load(db, objects.clone()).await.unwrap();
    (catalog, objects, dir)
}

fn request(name: &str) -> PublishTemplate {
    PublishTemplate {
        workspace: "w".into(),
        name: name.into(),
        description: "A test template.".into(),
        icon: Some("🧪".into()),
        run_command: Some("make run".into()),
        preview_port: Some(8080),
        init_command: Some("make deps".into()),
    }
}

#[tokio::test]
async fn built_in_templates_are_published_once_and_read_back() {
    let (catalog, objects, dir) = catalog().await;
    let names: Vec<String> = catalog.list().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["blank", "node", "python", "static-web"]);
    assert_eq!(catalog.default_name().as_deref(), Some("blank"));
    let python = catalog.files("python").await.unwrap();
    assert!(python.iter().any(|f| f.path == "main.py"), "{python:?}");
    let keys = objects.list("templates").await.unwrap();
    assert_eq!(keys.len(), 8, "an archive and a manifest each: {keys:?}");

    // A second start reads them from the database; nothing is published again.
    let db = Db::open(dir.path()).await.unwrap();
    let again = Catalog::load(db, objects.clone()).await.unwrap();
    assert_eq!(again.list(), catalog.list());
    assert_eq!(objects.list("templates").await.unwrap().len(), 8);
    assert_eq!(*again.files("python").await.unwrap(), *python);
}

#[tokio::test]
async fn publish_replace_and_delete() {
    let (catalog, objects, _dir) = catalog().await;
    let files = vec![
        SeedFile {
            path: "Makefile".into(),
            contents: b"run:\n\techo hi\n".to_vec(),
            executable: false,
        },
        SeedFile {
            path: "bin/go".into(),
            contents: b"#!/bin/sh\n".to_vec(),
            executable: true,
        },
    ];
    let manifest = Catalog::manifest_of(&request("team-app")).unwrap();
    let view = catalog
        .publish(manifest.clone(), &files, "ada")
        .await
        .unwrap();
    assert_eq!((view.files, view.bytes), (2, 24));
    assert_eq!(view.published_by.as_deref(), Some("ada"));
    assert_eq!(view.init_command.as_deref(), Some("make deps"));
    assert_eq!(*catalog.files("team-app").await.unwrap(), files);

    // Published again under its name: the new files, and the old archive is gone.
    let before = objects.list("templates/team-app").await.unwrap();
    catalog.publish(manifest, &files[..1], "ada").await.unwrap();
    assert_eq!(catalog.files("team-app").await.unwrap().len(), 1);
    let after = objects.list("templates/team-app").await.unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_ne!(before, after);

    // An archive changed behind cove's back is refused, not used.
    let archive = after.iter().find(|k| k.ends_with(".tar.zst")).unwrap();
    objects
        .put(archive, bytes::Bytes::from_static(b"junk"))
        .await
        .unwrap();
    catalog.unpacked.lock().unwrap().clear();
    let refused = catalog.files("team-app").await.unwrap_err();
    assert!(
        refused.reply.message.contains("cannot be read"),
        "{:?}",
        refused.reply
    );

    catalog.delete("team-app").await.unwrap();
    assert!(catalog.manifest("team-app").is_none());
    assert!(objects.list("templates/team-app").await.unwrap().is_empty());
    assert_eq!(
        catalog.delete("team-app").await.unwrap_err().reply.code,
        ErrorCode::NotFound
    );
}

#[test]
fn what_a_publish_may_ask_for() {
    for bad in ["", "Team", "-x", "a b", "a/b", "..", &"x".repeat(41)] {
        assert!(Catalog::manifest_of(&request(bad)).is_err(), "{bad:?}");
    }
    let mut long = request("ok");
    long.description = "x".repeat(301);
    assert!(Catalog::manifest_of(&long).is_err());
    let mut newline = request("ok");
    newline.icon = Some("a\nb".into());
    assert!(Catalog::manifest_of(&newline).is_err());
    let mut port = request("ok");
    port.preview_port = Some(0);
    assert!(Catalog::manifest_of(&port).is_err());
    let mut blank = request("ok");
    blank.init_command = Some("   ".into());
    assert_eq!(Catalog::manifest_of(&blank).unwrap().init_command, None);
}

#[tokio::test]
async fn objects_no_template_records_are_swept() {
    let (catalog, objects, _dir) = catalog().await;
    let before = objects.list("templates").await.unwrap();
    for key in [
        "templates/team-app/0123.tar.zst",
        "templates/gone/manifest.json",
        "templates/python/old.tar.zst",
    ] {
        objects
            .put(key, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let mut removed = catalog.sweep().await.unwrap();
    removed.sort();
    assert_eq!(
        removed,
        [
            "templates/gone/manifest.json",
            "templates/python/old.tar.zst",
            "templates/team-app/0123.tar.zst"
        ]
    );
    let mut after = objects.list("templates").await.unwrap();
    let mut before = before;
    after.sort();
    before.sort();
    assert_eq!(after, before, "every recorded archive and manifest stays");
    assert!(catalog.files("python").await.is_ok());
}
