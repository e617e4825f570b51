//! What repair and scrub use: reads that report bad copies, light and deep checks of
//! one copy, extra copies written by placement, and a store set replaced at run time.
//! Real fs stores in temporary directories.

use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{
    BadCopy, BlobStore, CopyCheck, CopyProblem, StoreHandle, StoreState, StoredCopy, blob_id,
};
use std::sync::Arc;

fn stores(n: usize) -> (Vec<StoreHandle>, Vec<tempfile::TempDir>) {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let handles = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let backend = FsBackend::open(d.path(), "node1").unwrap();
            StoreHandle::new(format!("s{i}"), Arc::new(backend))
        })
        .collect();
    (handles, dirs)
}

fn path(dirs: &[tempfile::TempDir], copy: &StoredCopy) -> std::path::PathBuf {
    dirs[copy.store[1..].parse::<usize>().unwrap()]
        .path()
        .join(&copy.key)
}

#[tokio::test]
async fn reads_report_missing_and_corrupt_copies() {
    let (handles, dirs) = stores(3);
    let blobs = BlobStore::new(handles, 3, 3).unwrap();
    let body = Bytes::from_static(b"Subject: x\r\n\r\nkeep me\r\n");
    let (id, copies) = blobs.put(body.clone()).await.unwrap();
    let (got, bad) = blobs.get_checked(id, &copies).await;
    assert_eq!(got.unwrap(), body);
    assert!(bad.is_empty());

    std::fs::remove_file(path(&dirs, &copies[0])).unwrap();
    std::fs::write(path(&dirs, &copies[1]), b"Subject: x\r\n\r\nkeep mE\r\n").unwrap();
    // Whatever order the copies are tried in, the good one is served and both bad ones
    // that were tried before it are reported.
    let (got, bad) = blobs.get_checked(id, &copies).await;
    assert_eq!(got.unwrap(), body, "a corrupt byte is never served");
    for b in &bad {
        let expected = if b.copy == copies[0] {
            CopyProblem::Missing
        } else {
            CopyProblem::Corrupt
        };
        assert_eq!(b.problem, expected);
    }
    let (got, bad) = blobs.get_checked(id, &copies[..2]).await;
    assert!(got.is_err());
    assert_eq!(
        bad,
        [
            BadCopy {
                copy: copies[0].clone(),
                problem: CopyProblem::Missing
            },
            BadCopy {
                copy: copies[1].clone(),
                problem: CopyProblem::Corrupt
            }
        ]
    );
}

#[tokio::test]
async fn light_and_deep_checks() {
    let (handles, dirs) = stores(1);
    let blobs = BlobStore::new(handles, 1, 1).unwrap();
    let body = Bytes::from_static(b"0123456789");
    let (id, copies) = blobs.put(body.clone()).await.unwrap();
    let copy = &copies[0];
    assert_eq!(blobs.check_copy(id, 10, copy, false).await, CopyCheck::Ok);
    assert_eq!(blobs.check_copy(id, 10, copy, true).await, CopyCheck::Ok);
    assert_eq!(
        blobs.check_copy(id, 11, copy, false).await,
        CopyCheck::Corrupt
    );
    // A flipped byte keeps the size: only the deep check sees it.
    std::fs::write(path(&dirs, copy), b"0123456780").unwrap();
    assert_eq!(blobs.check_copy(id, 10, copy, false).await, CopyCheck::Ok);
    assert_eq!(
        blobs.check_copy(id, 10, copy, true).await,
        CopyCheck::Corrupt
    );
    std::fs::remove_file(path(&dirs, copy)).unwrap();
    assert_eq!(
        blobs.check_copy(id, 10, copy, false).await,
        CopyCheck::Missing
    );
    assert_eq!(
        blobs.check_copy(id, 10, copy, true).await,
        CopyCheck::Missing
    );
    let elsewhere = StoredCopy {
        store: "gone".into(),
        key: copy.key.clone(),
    };
    assert!(matches!(
        blobs.check_copy(id, 10, &elsewhere, true).await,
        CopyCheck::Unknown(_)
    ));
}

#[tokio::test]
async fn replicate_adds_copies_only_where_there_are_none() {
    let (handles, dirs) = stores(4);
    let blobs = BlobStore::new(handles.clone(), 2, 2).unwrap();
    let body = Bytes::from_static(b"replicate me");
    let (id, copies) = blobs.put(body.clone()).await.unwrap();
    let have: Vec<String> = copies.iter().map(|c| c.store.clone()).collect();
    let added = blobs.replicate(id, body.clone(), &have, 5).await;
    assert_eq!(added.len(), 2, "only two stores hold no copy yet");
    for copy in &added {
        assert!(!have.contains(&copy.store));
        assert_eq!(std::fs::read(path(&dirs, copy)).unwrap(), body);
    }
    // Stores that may not be written get no copy.
    let mut read_only = handles.clone();
    for h in read_only.iter_mut() {
        *h = h.clone().with_state(StoreState::Draining);
    }
    blobs.set_stores(read_only);
    assert!(blobs.replicate(id, body.clone(), &[], 1).await.is_empty());
    // ...but are still read, and copies can be deleted from them.
    assert_eq!(blobs.get(id, &added).await.unwrap(), body);
    blobs.delete_copy(&added[0]).await.unwrap();
    assert!(!path(&dirs, &added[0]).exists());
    assert_eq!(id, blob_id(&body));
}

/// A store that accepts a write and never answers, like an S3 endpoint behind a
/// firewall that drops packets, or a hung NFS mount.
struct BlackHole;

#[async_trait::async_trait]
impl evermail_blob::BlobBackend for BlackHole {
    fn key_for(&self, id: &evermail_types::BlobId) -> String {
        id.to_hex()
    }
    async fn put(&self, _: &str, _: Bytes) -> Result<(), evermail_blob::BlobError> {
        std::future::pending().await
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>, evermail_blob::BlobError> {
        std::future::pending().await
    }
    async fn delete(&self, _: &str) -> Result<(), evermail_blob::BlobError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_black_holed_store_delays_a_put_only_by_the_slow_copy_timeout() {
    let (mut handles, _dirs) = stores(2);
    handles.push(StoreHandle::new("hole", Arc::new(BlackHole)));
    let blobs = BlobStore::new(handles, 3, 2).unwrap();
    blobs.set_slow_copy_timeout(std::time::Duration::from_millis(200));
    // Bounded, so a put that waits for the black hole fails the test instead of
    // hanging it.
    let put = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        blobs.put(Bytes::from_static(b"deliver me")),
    );
    let (_, copies) = put
        .await
        .expect("the put waited for the black hole")
        .unwrap();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|c| c.store != "hole"));
    let hole = blobs
        .stores()
        .iter()
        .find(|s| s.id() == "hole")
        .unwrap()
        .clone();
    assert!(!hole.healthy(), "the slow store leaves write placement");
    // Later puts still try it as a last resort (replicas = 3 needs a third store), so
    // each costs at most the timeout again until a probe puts it back.
    let (_, copies) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        blobs.put(Bytes::from_static(b"and me")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(copies.len(), 2);
}
