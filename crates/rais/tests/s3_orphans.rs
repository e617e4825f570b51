//! The orphan collector on a real S3 store (Garage, from `scripts/garage up`; the
//! `EVERMAIL_TEST_S3_*` variables), beside an fs store, with mail delivered through the
//! real mail model. Without the variables each test is skipped with a notice, except
//! when `CI` is set.
//!
//! Objects in Garage cannot be made old, so the S3 store is wrapped in a backend whose
//! clock runs two hours ahead (`Aged`): everything on it counts as older than the
//! collector's cutoff. The same wrapper makes the race with a delivery deterministic:
//! it can commit a location row right after the DELETE, which is what a delivery whose
//! PUT landed between the collector's HEAD and DELETE does.

mod common;

use async_trait::async_trait;
use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobBackend, BlobError, BlobStore, StoreHandle};
use evermail_blob_s3::{S3Backend, S3Options};
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::{BlobLocation, CopyState, Meta};
use evermail_meta_sqlite::SqliteMeta;
use evermail_rais::{Maintainer, Pace};
use evermail_types::{AccountId, BlobId};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const VARS: [&str; 5] = [
    "EVERMAIL_TEST_S3_ENDPOINT",
    "EVERMAIL_TEST_S3_REGION",
    "EVERMAIL_TEST_S3_BUCKET",
    "EVERMAIL_TEST_S3_ACCESS_KEY_ID",
    "EVERMAIL_TEST_S3_SECRET_ACCESS_KEY",
];

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
            prefix: format!("rais-{:016x}/", rand_suffix()),
            allow_http: true,
            virtual_hosted_style: false,
            timeout_secs: 30,
            connect_timeout_secs: 5,
            max_retries: 2,
        });
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} are not all set, but CI is", VARS.join(", "));
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: EVERMAIL_TEST_S3_* are not set; run `set -a; eval \"$(scripts/garage up)\"; set +a`"
    );
    None
}

fn rand_suffix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 32
}

/// A delivery's commit, run by [`Aged`] right after it deleted `key`.
type Commit = (Meta, BlobId, String);

/// The S3 backend seen two hours later, and a hook after its conditional delete.
struct Aged {
    inner: S3Backend,
    after_delete: Mutex<Option<Commit>>,
}

const AHEAD: Duration = Duration::from_secs(2 * 3600);

#[async_trait]
impl BlobBackend for Aged {
    fn key_for(&self, id: &BlobId) -> String {
        self.inner.key_for(id)
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        self.inner.size(key).await
    }
    async fn old_keys(&self, shard: u8, cutoff: SystemTime) -> Result<Vec<String>, BlobError> {
        self.inner.old_keys(shard, cutoff + AHEAD).await
    }
    async fn delete_if_unchanged(&self, key: &str, cutoff: SystemTime) -> Result<bool, BlobError> {
        let deleted = self.inner.delete_if_unchanged(key, cutoff + AHEAD).await?;
        let commit = self.after_delete.lock().unwrap().take();
        if let Some((meta, id, store)) = commit {
            let location = BlobLocation {
                store,
                key: key.to_string(),
            };
            assert!(meta.add_copy(id, location).await.unwrap());
        }
        Ok(deleted)
    }
}

struct World {
    _dir: tempfile::TempDir,
    s3: Arc<Aged>,
    meta: Meta,
    blobs: BlobStore,
    mail: Mailstore,
    maint: Maintainer,
    account: AccountId,
}

async fn world() -> Option<World> {
    let options = options()?;
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::new(
        SqliteMeta::open(&dir.path().join("meta.sqlite"))
            .await
            .unwrap(),
    );
    let s3 = Arc::new(Aged {
        inner: S3Backend::open(&options, "node1").unwrap(),
        after_delete: Mutex::new(None),
    });
    let fs = Arc::new(FsBackend::open(&dir.path().join("fs"), "node1").unwrap());
    let handles = vec![
        StoreHandle::new("s3", s3.clone()),
        StoreHandle::new("fs", fs),
    ];
    common::register(&meta, &handles).await;
    let blobs = BlobStore::new(handles, 2, 2).unwrap();
    let mail = Mailstore::new(meta.clone(), blobs.clone(), MailstoreOptions::default());
    let account = mail
        .create_account("orphans@example.com", "pw", None)
        .await
        .unwrap()
        .id;
    let maint = Maintainer::new(
        meta.clone(),
        blobs.clone(),
        Arc::new(Pace::new(u64::MAX, u64::MAX)),
    );
    Some(World {
        _dir: dir,
        s3,
        meta,
        blobs,
        mail,
        maint,
        account,
    })
}

fn body(tag: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@example.com\r\nSubject: {tag}\r\n\r\nbody of {tag}\r\n"
    ))
}

impl World {
    async fn deliver(&self, b: &Bytes) -> BlobId {
        let done = self.mail.deliver(b.clone(), &[self.account]).await.unwrap();
        assert!(done[0].is_ok());
        evermail_blob::blob_id(b)
    }

    fn s3_key(&self, id: &BlobId) -> String {
        self.s3.key_for(id)
    }

    async fn s3_copy(&self, id: BlobId) -> Option<CopyState> {
        self.meta
            .blob_copies(id)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.store == "s3")
            .map(|c| c.state)
    }
}

#[tokio::test]
async fn old_unrecorded_s3_objects_are_collected_and_recorded_ones_never() {
    let Some(w) = world().await else { return };
    let kept = body("recorded");
    let kept_id = w.deliver(&kept).await;
    // A delivery that wrote its body and never committed.
    let (orphan_id, _) = w.blobs.put(body("never committed")).await.unwrap();
    assert!(w.s3.get(&w.s3_key(&orphan_id)).await.unwrap().is_some());

    // The fs store's files are young, so only the S3 orphan goes.
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 1);
    assert_eq!(w.s3.get(&w.s3_key(&orphan_id)).await.unwrap(), None);
    assert_eq!(
        w.s3.get(&w.s3_key(&kept_id)).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(w.s3_copy(kept_id).await, Some(CopyState::Ok));
    // Nothing is left to collect, and the next pass's re-check finds nothing raced.
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 0);
    assert_eq!(w.mail.body(kept_id).await.unwrap(), kept);
}

#[tokio::test]
async fn a_delivery_committing_during_the_delete_gets_its_body_back() {
    let Some(w) = world().await else { return };
    let b = body("raced");
    let id = w.deliver(&b).await;
    // The S3 copy is an orphan now (as if the first delivery had never recorded it),
    // and a second delivery of the same content commits its row right after the
    // collector's DELETE.
    w.meta.remove_copy(id, "s3").await.unwrap();
    *w.s3.after_delete.lock().unwrap() = Some((w.meta.clone(), id, "s3".into()));

    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 0);
    assert!(w.s3.after_delete.lock().unwrap().is_none(), "the hook ran");
    // Put back at once, from the body the collector held.
    assert_eq!(w.s3.get(&w.s3_key(&id)).await.unwrap(), Some(b.clone()));
    assert_eq!(w.s3_copy(id).await, Some(CopyState::Ok));
    let scrub = w.maint.scrub(true, &()).await.unwrap();
    assert_eq!((scrub.ok, scrub.missing, scrub.corrupt), (2, 0, 0));
}

#[tokio::test]
async fn a_delivery_committing_after_the_pass_is_repaired_from_another_copy() {
    let Some(w) = world().await else { return };
    let b = body("late commit");
    let id = w.deliver(&b).await;
    w.meta.remove_copy(id, "s3").await.unwrap();
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 1);
    assert_eq!(w.s3.get(&w.s3_key(&id)).await.unwrap(), None);
    // The racing delivery's row arrives after the pass re-read the rows.
    let location = BlobLocation {
        store: "s3".into(),
        key: w.s3_key(&id),
    };
    assert!(w.meta.add_copy(id, location).await.unwrap());
    assert_eq!(w.s3_copy(id).await, Some(CopyState::Ok));

    // The next pass re-reads the rows of what the last one deleted: marked missing,
    // and repair copies it back from the fs store.
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 0);
    assert_eq!(w.s3_copy(id).await, Some(CopyState::Missing));
    let repaired = w.maint.repair(&()).await.unwrap();
    assert_eq!(repaired.copies_added, 1, "{repaired:?}");
    assert_eq!(w.s3.get(&w.s3_key(&id)).await.unwrap(), Some(b.clone()));
    assert_eq!(w.s3_copy(id).await, Some(CopyState::Ok));
    assert_eq!(w.mail.body(id).await.unwrap(), b);
}
