//! Repair, scrub, drain and garbage collection over a real SQLite metadata store and
//! three real fs stores, with mail delivered through the real mail model.

mod common;

use bytes::Bytes;
use evermail_blob::{BlobStore, StoreHandle, StoreState};
use evermail_mailbox::{ErrorKind, Mailstore, MailstoreOptions};
use evermail_meta::{CopyState, Meta};
use evermail_meta_sqlite::SqliteMeta;
use evermail_rais::{Maintainer, Pace};
use evermail_types::{AccountId, BlobId};
use std::path::PathBuf;
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    roots: Vec<PathBuf>,
    handles: Vec<StoreHandle>,
    meta: Meta,
    blobs: BlobStore,
    mail: Mailstore,
    maint: Maintainer,
    account: AccountId,
}

async fn world(replicas: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::new(
        SqliteMeta::open(&dir.path().join("meta.sqlite"))
            .await
            .unwrap(),
    );
    let (roots, handles) = common::fs_stores(dir.path(), 3);
    common::register(&meta, &handles).await;
    let blobs = BlobStore::new(handles.clone(), replicas, replicas).unwrap();
    let mail = Mailstore::new(meta.clone(), blobs.clone(), MailstoreOptions::default());
    let account = mail
        .create_account("rais@example.com", "pw", None)
        .await
        .unwrap()
        .id;
    let maint = Maintainer::new(
        meta.clone(),
        blobs.clone(),
        Arc::new(Pace::new(u64::MAX, u64::MAX)),
    );
    World {
        _dir: dir,
        roots,
        handles,
        meta,
        blobs,
        mail,
        maint,
        account,
    }
}

fn body(i: usize) -> Bytes {
    Bytes::from(format!(
        "From: a@example.com\r\nSubject: message {i}\r\n\r\nbody {i} {}\r\n",
        "x".repeat(i * 37)
    ))
}

impl World {
    async fn deliver(&self, n: usize) -> Vec<(BlobId, Bytes)> {
        let mut out = Vec::new();
        for i in 0..n {
            let b = body(i);
            let done = self.mail.deliver(b.clone(), &[self.account]).await.unwrap();
            assert!(done[0].is_ok());
            out.push((evermail_blob::blob_id(&b), b));
        }
        out
    }

    /// Every body reads back byte for byte and has `replicas` good copies, none on
    /// `not_on`.
    async fn assert_whole(&self, bodies: &[(BlobId, Bytes)], replicas: usize, not_on: &str) {
        for (id, b) in bodies {
            assert_eq!(&self.mail.body(*id).await.unwrap(), b);
            let copies = self.meta.blob_copies(*id).await.unwrap();
            let good: Vec<_> = copies.iter().filter(|c| c.state == CopyState::Ok).collect();
            assert_eq!(good.len(), replicas, "{copies:?}");
            assert!(copies.iter().all(|c| c.store != not_on), "{copies:?}");
        }
        assert!(
            self.meta
                .under_replicated(replicas as u32, &[], 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn files(&self, store: usize) -> usize {
        walk(&self.roots[store])
    }
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn a_lost_store_is_found_and_every_body_gets_its_copies_back() {
    let w = world(2).await;
    let bodies = w.deliver(30).await;
    let on_s0 = w.files(0);
    assert!(on_s0 > 0);
    std::fs::remove_dir_all(&w.roots[0]).unwrap();

    // Reads still serve every body, and mark the copies they found missing.
    let (id, b) = &bodies[0];
    assert_eq!(&w.mail.body(*id).await.unwrap(), b);
    // A light scrub finds the rest.
    let report = w.maint.scrub(false, &()).await.unwrap();
    assert_eq!(report.checked, 60);
    assert_eq!(report.missing as usize + report.ok as usize, 60);
    assert!(report.missing as usize >= on_s0 - 1, "{report:?}");
    let queue = w.meta.under_replicated(2, &[], 1000).await.unwrap();
    assert_eq!(queue.len(), on_s0);
    assert!(queue.iter().all(|u| u.good == 1));

    let report = w.maint.repair(&()).await.unwrap();
    assert_eq!(report.under_replicated as usize, on_s0);
    assert_eq!(report.copies_added as usize, on_s0);
    assert_eq!(report.lost, 0);
    w.assert_whole(&bodies, 2, "").await;
    let again = w.maint.repair(&()).await.unwrap();
    assert_eq!(again.under_replicated, 0, "nothing left to do");
}

#[tokio::test]
async fn a_deep_scrub_finds_a_flipped_byte_that_a_light_one_cannot() {
    let w = world(2).await;
    let bodies = w.deliver(5).await;
    let (id, b) = &bodies[3];
    let copy = &w.meta.blob_copies(*id).await.unwrap()[0];
    let root = &w.roots[copy.store[1..].parse::<usize>().unwrap()];
    let path = root.join(&copy.key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let light = w.maint.scrub(false, &()).await.unwrap();
    assert_eq!((light.ok, light.corrupt), (10, 0));
    let deep = w.maint.scrub(true, &()).await.unwrap();
    assert_eq!((deep.ok, deep.corrupt), (9, 1));
    assert_eq!(
        deep.bytes,
        bodies.iter().map(|(_, b)| 2 * b.len() as u64).sum::<u64>()
    );
    let copies = w.meta.blob_copies(*id).await.unwrap();
    assert_eq!(copies[0].state, CopyState::Corrupt);
    assert_eq!(
        &w.mail.body(*id).await.unwrap(),
        b,
        "the good copy is served"
    );

    let report = w.maint.repair(&()).await.unwrap();
    assert_eq!(report.copies_added, 1);
    // Placement puts the new copy where the corrupt one was (the blob's best store,
    // still writable), overwriting it; otherwise the bad copy would be dropped.
    assert_eq!(report.bad_copies_dropped, 0);
    let copies = w.meta.blob_copies(*id).await.unwrap();
    assert!(
        copies.iter().all(|c| c.state == CopyState::Ok),
        "{copies:?}"
    );
    w.assert_whole(&bodies, 2, "").await;
    let deep = w.maint.scrub(true, &()).await.unwrap();
    assert_eq!(deep.corrupt, 0);
}

#[tokio::test]
async fn drain_then_remove_empties_a_store_and_loses_nothing() {
    let w = world(2).await;
    let bodies = w.deliver(20).await;
    assert!(w.files(1) > 0);
    assert!(w.meta.sole_copies("s1").await.unwrap() == 0);
    // With s1 draining only s0 and s2 can take copies: every body ends on both.
    let mut handles = w.handles.clone();
    handles[1] = handles[1].clone().with_state(StoreState::Draining);
    w.blobs.set_stores(handles);
    let report = w.maint.repair(&()).await.unwrap();
    assert!(report.drained > 0, "{report:?}");
    assert_eq!(w.files(1), 0, "the draining store is empty");
    w.assert_whole(&bodies, 2, "s1").await;
    w.meta.remove_store("s1").await.unwrap();

    // A store holding the only copy of something is not removed.
    let mut handles = w.handles.clone();
    handles.remove(1);
    w.blobs.set_stores(handles);
    let lone = w.world_with_one_copy_on("s2").await;
    let err = w.meta.remove_store("s2").await.unwrap_err();
    assert!(err.to_string().contains("only copy of 1 bodies"), "{err}");
    assert_eq!(&w.mail.body(lone.0).await.unwrap(), &lone.1);
}

impl World {
    /// Delivers a body and then loses its other copy, leaving `store` the only holder.
    async fn world_with_one_copy_on(&self, store: &str) -> (BlobId, Bytes) {
        let b = Bytes::from_static(b"Subject: lone\r\n\r\nonly here\r\n");
        self.mail.deliver(b.clone(), &[self.account]).await.unwrap();
        let id = evermail_blob::blob_id(&b);
        for c in self.meta.blob_copies(id).await.unwrap() {
            if c.store != store {
                self.meta
                    .set_copy_state(id, &c.store, CopyState::Missing, None)
                    .await
                    .unwrap();
            }
        }
        (id, b)
    }
}

#[tokio::test]
async fn garbage_collection_waits_for_the_grace_period() {
    let w = world(2).await;
    let bodies = w.deliver(3).await;
    let inbox = w
        .mail
        .find_mailbox(w.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let messages = w.mail.messages(w.account, inbox.id).await.unwrap();
    w.mail
        .expunge(w.account, inbox.id, &[messages[0].uid])
        .await
        .unwrap();
    let files = w.files(0) + w.files(1) + w.files(2);

    let report = w.maint.collect_garbage(3600).await.unwrap();
    assert_eq!((report.newly_unreferenced, report.deleted), (1, 0));
    assert_eq!(
        w.files(0) + w.files(1) + w.files(2),
        files,
        "nothing deleted in the grace period"
    );
    let report = w.maint.collect_garbage(0).await.unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(w.files(0) + w.files(1) + w.files(2), files - 2);
    assert!(w.meta.blob(bodies[0].0).await.unwrap().is_none());
    // The others are untouched.
    w.assert_whole(&bodies[1..], 2, "").await;
}

#[tokio::test]
async fn a_delivery_racing_garbage_collection_never_loses_its_body() {
    let w = world(2).await;
    let bodies = w.deliver(1).await;
    let (id, b) = bodies[0].clone();
    let inbox = w
        .mail
        .find_mailbox(w.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let uid = w.mail.messages(w.account, inbox.id).await.unwrap()[0].uid;
    w.mail.expunge(w.account, inbox.id, &[uid]).await.unwrap();

    // Collection dooms the body; a delivery of the same content arrives before the
    // copies are deleted. It must be refused (LMTP 451, the MTA retries), never
    // acknowledged with a body that is about to vanish.
    w.meta.mark_unreferenced(0).await.unwrap();
    let doomed = w.meta.doom_unreferenced(i64::MAX, 10).await.unwrap();
    assert_eq!(doomed.len(), 1);
    let results = w.mail.deliver(b.clone(), &[w.account]).await.unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        w.mail
            .messages(w.account, inbox.id)
            .await
            .unwrap()
            .is_empty()
    );
    let report = w.maint.collect_garbage(0).await.unwrap();
    assert_eq!(report.deleted, 1);
    // The retry stores it afresh and it reads back.
    let results = w.mail.deliver(b.clone(), &[w.account]).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(w.mail.body(id).await.unwrap(), b);
    w.assert_whole(&bodies, 2, "").await;

    // Delivered again while only stamped (inside the grace period): it keeps its body
    // through any number of collections.
    let uid = w.mail.messages(w.account, inbox.id).await.unwrap()[0].uid;
    w.mail.expunge(w.account, inbox.id, &[uid]).await.unwrap();
    assert_eq!(
        w.maint
            .collect_garbage(3600)
            .await
            .unwrap()
            .newly_unreferenced,
        1
    );
    w.mail.deliver(b.clone(), &[w.account]).await.unwrap();
    for _ in 0..3 {
        assert_eq!(w.maint.collect_garbage(0).await.unwrap().deleted, 0);
    }
    assert_eq!(w.mail.body(id).await.unwrap(), b);
}

#[tokio::test]
async fn drain_keeps_a_copy_whose_replacements_exist_only_on_paper() {
    let w = world(1).await;
    let bodies = w.deliver(6).await;
    let (id, b) = bodies[2].clone();
    let copy = w.meta.blob_copies(id).await.unwrap().remove(0);
    let x: usize = copy.store[1..].parse().unwrap();
    let y = (x + 1) % 3;
    // A row says store y holds a good copy; the file was never there (or is gone
    // since the last scrub).
    let phantom = evermail_meta::BlobLocation {
        store: format!("s{y}"),
        key: copy.key.clone(),
    };
    assert!(w.meta.add_copy(id, phantom).await.unwrap());
    let mut handles = w.handles.clone();
    handles[x] = handles[x].clone().with_state(StoreState::Draining);
    w.blobs.set_stores(handles);

    w.maint.repair(&()).await.unwrap();
    assert!(
        w.roots[x].join(&copy.key).exists(),
        "the only real copy was kept"
    );
    assert_eq!(w.mail.body(id).await.unwrap(), b);
    // The phantom is now marked missing, so the next pass copies the body for real
    // and only then empties the draining store.
    w.maint.repair(&()).await.unwrap();
    assert!(!w.roots[x].join(&copy.key).exists());
    assert_eq!(w.mail.body(id).await.unwrap(), b);
    for (id, b) in &bodies {
        assert_eq!(&w.mail.body(*id).await.unwrap(), b);
    }
    assert_eq!(w.files(x), 0);
}

#[tokio::test]
async fn copies_on_a_store_marked_down_are_replaced_but_kept() {
    let w = world(2).await;
    let bodies = w.deliver(12).await;
    let on_s2 = w.files(2);
    assert!(on_s2 > 0);
    let mut handles = w.handles.clone();
    handles[2] = handles[2].clone().with_state(StoreState::Down);
    w.blobs.set_stores(handles);
    let report = w.maint.repair(&()).await.unwrap();
    assert_eq!(report.copies_added as usize, on_s2, "{report:?}");
    assert_eq!(report.drained, 0, "a down store is not emptied");
    assert_eq!(w.files(2), on_s2);
    // Every body now has two good copies on s0 and s1.
    let counted = vec!["s2".to_string()];
    assert!(
        w.meta
            .under_replicated(2, &counted, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for (id, b) in &bodies {
        assert_eq!(&w.mail.body(*id).await.unwrap(), b);
    }
}

#[tokio::test]
async fn orphaned_files_are_collected_after_the_grace_period_and_recorded_ones_never() {
    let w = world(2).await;
    let bodies = w.deliver(4).await;
    // A delivery that wrote its body but never committed (a crash, a refused
    // commit): files no row records.
    let orphan = Bytes::from_static(b"Subject: never committed\r\n\r\nlost\r\n");
    let (_, copies) = w.blobs.put(orphan).await.unwrap();
    let files = |w: &World| w.files(0) + w.files(1) + w.files(2);
    assert_eq!(files(&w), 10);
    // Within the grace period nothing goes.
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 0);
    assert_eq!(files(&w), 10);
    // Made old, the orphan's copies go; the recorded ones, just as old, stay.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for root in &w.roots {
        for path in walk_files(root) {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(old).unwrap();
        }
    }
    assert_eq!(w.maint.collect_orphans(3600).await.unwrap(), 2);
    assert_eq!(files(&w), 8);
    for copy in &copies {
        let root = &w.roots[copy.store[1..].parse::<usize>().unwrap()];
        assert!(!root.join(&copy.key).exists());
    }
    w.assert_whole(&bodies, 2, "").await;
}

fn walk_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_large_body_is_repaired_through_a_spool_file() {
    let w = world(2).await;
    let spool = tempfile::tempdir().unwrap();
    let maint = w.maint.clone().with_spool_dir(spool.path());
    let big = Bytes::from(
        (0..3 * 1024 * 1024u32)
            .map(|i| b"abcdefghij\r\n"[(i % 12) as usize])
            .collect::<Vec<u8>>(),
    );
    assert!(big.len() as u64 >= evermail_rais::SPOOL_REPAIR_BYTES);
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    message.extend_from_slice(&big);
    let message = Bytes::from(message);
    let id = evermail_blob::blob_id(&message);
    assert!(w.mail.deliver(message.clone(), &[w.account]).await.unwrap()[0].is_ok());
    let copies = w.meta.blob_copies(id).await.unwrap();
    assert_eq!(copies.len(), 2);
    let lost: usize = copies[0].store[1..].parse().unwrap();
    std::fs::remove_dir_all(&w.roots[lost]).unwrap();
    let found = maint.scrub(false, &()).await.unwrap();
    assert_eq!(found.missing, 1);

    let report = maint.repair(&()).await.unwrap();
    assert_eq!((report.copies_added, report.lost), (1, 0), "{report:?}");
    assert_eq!(report.bytes_copied, message.len() as u64);
    w.assert_whole(&[(id, message)], 2, "").await;
    assert_eq!(
        std::fs::read_dir(spool.path()).unwrap().count(),
        0,
        "the spool file is gone"
    );
}
