//! The S3 backend against a real S3-compatible server (Garage, started by
//! `scripts/garage up`), whose address comes from the `EVERMAIL_TEST_S3_*` variables
//! that script prints. Without them each test is skipped with a notice, except when
//! `CI` is set: CI must never pass by skipping.

use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobBackend, BlobStore, ErrorKind, StoreHandle, blob_id};
use evermail_blob_s3::{S3Backend, S3Options};
use std::sync::Arc;

const VARS: [&str; 5] = [
    "EVERMAIL_TEST_S3_ENDPOINT",
    "EVERMAIL_TEST_S3_REGION",
    "EVERMAIL_TEST_S3_BUCKET",
    "EVERMAIL_TEST_S3_ACCESS_KEY_ID",
    "EVERMAIL_TEST_S3_SECRET_ACCESS_KEY",
];

/// Options for the test server, each test under its own prefix so tests never see
/// each other's objects; `None` (after saying so) when there is no server.
fn options() -> Option<S3Options> {
    let values: Vec<String> = VARS
        .iter()
        .map(|v| std::env::var(v).unwrap_or_default())
        .collect();
    if values.iter().all(|v| !v.is_empty()) {
        return Some(S3Options {
            endpoint: values[0].clone(),
            region: values[1].clone(),
            bucket: values[2].clone(),
            access_key_id: values[3].clone(),
            secret_access_key: values[4].clone(),
            prefix: format!("test-{:016x}/", rand::random::<u64>()),
            allow_http: true,
            virtual_hosted_style: false,
            timeout_secs: 30,
            connect_timeout_secs: 5,
            max_retries: 2,
        });
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} are not all set, but CI is: the S3 tests must run in CI. Start Garage with \
             `set -a; eval \"$(scripts/garage up)\"; set +a`",
            VARS.join(", ")
        );
    }
    // Written to the stderr handle, not with eprintln!, which the test harness hides
    // for passing tests; once per test binary is enough.
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: EVERMAIL_TEST_S3_ENDPOINT and the other EVERMAIL_TEST_S3_* variables \
             are not set, so the S3 tests of this binary pass without running. Run \
             `set -a; eval \"$(scripts/garage up)\"; set +a` to run them."
        );
    });
    None
}

#[tokio::test]
async fn put_get_delete() {
    let Some(options) = options() else { return };
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let body = Bytes::from_static(b"Subject: s3\r\n\r\nstored in a bucket\r\n");
    let key = s3.key_for(&blob_id(&body));
    assert!(key.starts_with("node1/"));
    assert_eq!(s3.get(&key).await.unwrap(), None);
    s3.put(&key, body.clone()).await.unwrap();
    // Content-addressed: writing the same body again is fine.
    s3.put(&key, body.clone()).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), Some(body));
    s3.delete(&key).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), None);
    // Deleting what is not there is not an error.
    s3.delete(&key).await.unwrap();
}

#[tokio::test]
async fn large_and_binary_bodies_round_trip() {
    let Some(options) = options() else { return };
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let body: Bytes = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let key = s3.key_for(&blob_id(&body));
    s3.put(&key, body.clone()).await.unwrap();
    assert_eq!(s3.get(&key).await.unwrap(), Some(body));
    s3.delete(&key).await.unwrap();
}

#[tokio::test]
async fn nodes_sharing_a_bucket_do_not_collide() {
    let Some(options) = options() else { return };
    let a = S3Backend::open(&options, "a").unwrap();
    let b = S3Backend::open(&options, "b").unwrap();
    let id = blob_id(b"same");
    assert_ne!(a.key_for(&id), b.key_for(&id));
    a.put(&a.key_for(&id), Bytes::from_static(b"same"))
        .await
        .unwrap();
    assert_eq!(b.get(&b.key_for(&id)).await.unwrap(), None);
    b.delete(&b.key_for(&id)).await.unwrap();
    assert!(a.get(&a.key_for(&id)).await.unwrap().is_some());
    a.delete(&a.key_for(&id)).await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_are_an_error_not_a_missing_body() {
    let Some(mut options) = options() else { return };
    options.secret_access_key = "0".repeat(64);
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let key = s3.key_for(&blob_id(b"x"));
    let err = s3.get(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(s3.put(&key, Bytes::from_static(b"x")).await.is_err());
}

#[tokio::test]
async fn replicates_between_a_filesystem_and_a_bucket() {
    let Some(options) = options() else { return };
    let dir = tempfile_dir();
    let fs = FsBackend::open(&dir, "node1").unwrap();
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let blobs = BlobStore::new(
        vec![
            StoreHandle::new("disk", Arc::new(fs)),
            StoreHandle::new("garage", Arc::new(s3)),
        ],
        2,
        2,
    )
    .unwrap();
    let body = Bytes::from_static(b"Subject: both\r\n\r\non a disk and in a bucket\r\n");
    let (id, copies) = blobs.put(body.clone()).await.unwrap();
    assert_eq!(copies.len(), 2);
    // Lose the disk copy: the bucket's serves.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(blobs.get(id, &copies).await.unwrap(), body);
    let s3_copy: Vec<_> = copies.into_iter().filter(|c| c.store == "garage").collect();
    assert_eq!(blobs.get(id, &s3_copy).await.unwrap(), body);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("evermail-s3-test-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the orphan collector uses: old objects are listed by shard, and deleted only
/// if LastModified is still before the cutoff.
#[tokio::test]
async fn old_keys_and_delete_if_unchanged_follow_last_modified() {
    let Some(options) = options() else { return };
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let body = Bytes::from_static(b"Subject: orphan\r\n\r\nnever recorded\r\n");
    let id = blob_id(&body);
    let key = s3.key_for(&id);
    s3.put(&key, body.clone()).await.unwrap();
    let shard = id.0[0];
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    // Written just now: not older than an hour ago, older than an hour ahead.
    assert!(s3.old_keys(shard, past).await.unwrap().is_empty());
    assert_eq!(s3.old_keys(shard, future).await.unwrap(), vec![key.clone()]);
    assert!(
        s3.old_keys(shard.wrapping_add(1), future)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!s3.delete_if_unchanged(&key, past).await.unwrap());
    assert_eq!(s3.get(&key).await.unwrap(), Some(body));
    assert!(s3.delete_if_unchanged(&key, future).await.unwrap());
    assert_eq!(s3.get(&key).await.unwrap(), None);
    // Gone: nothing to delete.
    assert!(!s3.delete_if_unchanged(&key, future).await.unwrap());
}

/// The streaming calls on a body below one part (a single PUT) and on a missing key.
#[tokio::test]
async fn small_files_stream_with_a_single_put() {
    let Some(options) = options() else { return };
    let s3 = S3Backend::open(&options, "node1").unwrap();
    let dir = tempfile_dir();
    let body = Bytes::from_static(b"Subject: small\r\n\r\none PUT\r\n");
    let id = blob_id(&body);
    let key = s3.key_for(&id);
    let src = dir.join("src");
    std::fs::write(&src, &body).unwrap();
    assert_eq!(s3.content_id(&key).await.unwrap(), None);
    assert!(!s3.get_to_file(&key, &dir.join("none")).await.unwrap());
    s3.put_file(&key, &src).await.unwrap();
    assert_eq!(s3.content_id(&key).await.unwrap(), Some(id));
    let dest = dir.join("dest");
    assert!(s3.get_to_file(&key, &dest).await.unwrap());
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    s3.delete(&key).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
