//! The object store in a directory and on a real S3-compatible server (moto, started by the
//! test harness): parts streamed and put together, a failed upload leaving nothing and the
//! object before it untouched, a prefix keeping to its folder of the bucket, and a store that
//! cannot be reached or has no such bucket refused with its reason by `check`.

use bytes::Bytes;
use cove_objects::{Objects, ObjectsError, Place};

#[tokio::test]
async fn streams_go_to_a_directory_in_parts_and_a_failed_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::open(&Place::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
    objects.check().await.unwrap();
    streams_in_parts_and_failures_leave_nothing(&objects).await;
}

#[test]
fn what_object_store_places_are_taken() {
    assert!(matches!(
        Place::parse("s3://"),
        Err(ObjectsError::Setup(..))
    ));
    assert!(matches!(
        Place::parse("gs://b"),
        Err(ObjectsError::Setup(..))
    ));
    assert!(matches!(
        Place::parse("relative/dir"),
        Err(ObjectsError::Setup(..))
    ));
    assert_eq!(
        Place::parse("file:///srv/cove").unwrap(),
        Place::Local("/srv/cove".into())
    );
    let Place::S3(s3) = Place::parse("s3://bucket/a/b/").unwrap() else {
        panic!("an S3 place");
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_deref()),
        ("bucket", Some("a/b"))
    );
}

/// 20 MiB in 1 MiB chunks (three parts of a multipart upload), a producer that fails
/// halfway, small objects, listing and deleting.
async fn streams_in_parts_and_failures_leave_nothing(objects: &Objects) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let producer = tokio::spawn(async move {
        for i in 0..20u8 {
            tx.send(Ok(Bytes::from(vec![i; 1024 * 1024])))
                .await
                .unwrap();
        }
    });
    let stored = objects
        .put_stream("snapshots/w1/a.tar.zst", rx)
        .await
        .unwrap();
    producer.await.unwrap();
    assert_eq!(stored.size, 20 * 1024 * 1024);
    assert_eq!(
        objects.verify("snapshots/w1/a.tar.zst").await.unwrap(),
        stored
    );

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let producer = tokio::spawn(async move {
        for _ in 0..12 {
            tx.send(Ok(Bytes::from(vec![7u8; 1024 * 1024])))
                .await
                .unwrap();
        }
        tx.send(Err("the disk went away".into())).await.unwrap();
    });
    let failed = objects.put_stream("snapshots/w1/b.tar.zst", rx).await;
    producer.await.unwrap();
    assert!(matches!(failed, Err(ObjectsError::Source(ref why)) if why.contains("disk")));
    assert_eq!(objects.get("snapshots/w1/b.tar.zst").await.unwrap(), None);
    assert_eq!(
        objects.verify("snapshots/w1/a.tar.zst").await.unwrap(),
        stored,
        "the object before it is untouched"
    );

    objects
        .put("snapshots/w1.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let mut listed = objects.list("snapshots").await.unwrap();
    listed.sort();
    assert_eq!(listed, ["snapshots/w1.json", "snapshots/w1/a.tar.zst"]);
    objects.delete("snapshots/w1.json").await.unwrap();
    objects.delete("snapshots/w1.json").await.unwrap();
    assert_eq!(objects.get("snapshots/w1.json").await.unwrap(), None);
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use cove_objects::S3Place;
    use cove_test_support::s3::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};

    fn place(endpoint: String, bucket: String, prefix: Option<&str>) -> Place {
        Place::S3(S3Place {
            bucket,
            prefix: prefix.map(str::to_string),
            endpoint: Some(endpoint),
            region: Some("us-east-1".into()),
            virtual_hosted: false,
            access_key_id: Some(ACCESS_KEY_ID.into()),
            secret_access_key: Some(SECRET_ACCESS_KEY.into()),
        })
    }

    #[tokio::test]
    async fn streams_go_to_s3_in_parts_and_a_failed_one_leaves_nothing() {
        let Some(server) = S3Server::shared() else {
            return;
        };
        let bucket = server.bucket();
        let objects =
            Objects::open(&place(server.endpoint(), bucket.clone(), Some("cove"))).unwrap();
        objects.check().await.unwrap();
        assert!(
            objects.describe().starts_with("s3://"),
            "{}",
            objects.describe()
        );
        streams_in_parts_and_failures_leave_nothing(&objects).await;
        // Everything is under the prefix, as another S3 client sees the bucket (incomplete
        // multipart uploads are not objects).
        assert_eq!(server.keys(&bucket), ["cove/snapshots/w1/a.tar.zst"]);
    }

    #[tokio::test]
    async fn a_store_that_is_not_there_is_refused_with_its_reason() {
        let Some(server) = S3Server::shared() else {
            return;
        };
        let missing =
            Objects::open(&place(server.endpoint(), "no-such-bucket".into(), None)).unwrap();
        let why = missing.check().await.unwrap_err().to_string();
        assert!(
            why.contains("NoSuchBucket"),
            "the store's own reason: {why}"
        );

        // Nothing listens on this port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let unreachable = Objects::open(&place(endpoint, server.bucket(), None)).unwrap();
        let why = unreachable.check().await.unwrap_err().to_string();
        assert!(why.contains("(Connect)"), "a connection refused: {why}");

        let debug = format!("{:?}", place(server.endpoint(), "b".into(), None));
        assert!(!debug.contains(SECRET_ACCESS_KEY), "{debug}");
    }
}
