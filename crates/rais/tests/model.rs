//! A property test of RAIS as a whole: random sequences of deliveries, expunges,
//! reads, store loss, corruption, stores going down and coming back, drains, scrubs,
//! repairs and garbage collection, over a real SQLite metadata store, three real fs
//! stores and the real mail model, checked against a model of which bodies must
//! exist.
//!
//! The model: a body must read back intact while a message references it, whatever
//! happened, as long as no two destructive events (a store wiped, a copy corrupted)
//! happen without a heal in between (every store active again, a deep scrub, a
//! repair), since two copies cannot survive two arbitrary losses. A body no message
//! references is gone after a collection with no grace period; one still referenced
//! never is.

use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, StoreHandle, StoreState, blob_id};
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::{CopyState, Meta};
use evermail_meta_sqlite::SqliteMeta;
use evermail_rais::{Maintainer, Pace};
use evermail_types::AccountId;
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

const BODIES: usize = 5;
const STORES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Deliver(usize),
    Expunge(usize),
    Read(usize),
    /// Every file of a store deleted.
    Wipe(usize),
    /// One byte flipped in one copy of a body.
    Corrupt(usize),
    SetState(usize, StoreState),
    Scrub {
        deep: bool,
    },
    Repair,
    Collect,
    /// Every store active, a deep scrub and a repair: the operator's recovery.
    Heal,
}

fn op() -> impl Strategy<Value = Op> {
    let state = prop_oneof![
        Just(StoreState::Active),
        Just(StoreState::Draining),
        Just(StoreState::Down),
        Just(StoreState::ReadOnly),
    ];
    prop_oneof![
        4 => (0..BODIES).prop_map(Op::Deliver),
        2 => (0..BODIES).prop_map(Op::Expunge),
        3 => (0..BODIES).prop_map(Op::Read),
        1 => (0..STORES).prop_map(Op::Wipe),
        1 => (0..BODIES).prop_map(Op::Corrupt),
        2 => ((0..STORES), state).prop_map(|(s, st)| Op::SetState(s, st)),
        1 => any::<bool>().prop_map(|deep| Op::Scrub { deep }),
        2 => Just(Op::Repair),
        1 => Just(Op::Collect),
        1 => Just(Op::Heal),
    ]
}

fn body(i: usize) -> Bytes {
    Bytes::from(format!(
        "From: model@example.com\r\nSubject: body {i}\r\n\r\n{}\r\n",
        "abcdefgh".repeat(1 + i * 13)
    ))
}

struct World {
    _dir: tempfile::TempDir,
    roots: Vec<PathBuf>,
    handles: Vec<StoreHandle>,
    states: Vec<StoreState>,
    meta: Meta,
    blobs: BlobStore,
    mail: Mailstore,
    maint: Maintainer,
    account: AccountId,
    /// Messages referencing each body, as acknowledged.
    referenced: [usize; BODIES],
    /// False between a destructive event and the next heal.
    healthy: bool,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::new(
            SqliteMeta::open(&dir.path().join("meta.sqlite"))
                .await
                .unwrap(),
        );
        let roots: Vec<PathBuf> = (0..STORES)
            .map(|i| dir.path().join(format!("s{i}")))
            .collect();
        let handles: Vec<StoreHandle> = roots
            .iter()
            .enumerate()
            .map(|(i, r)| {
                StoreHandle::new(format!("s{i}"), Arc::new(FsBackend::open(r, "n").unwrap()))
            })
            .collect();
        let blobs = BlobStore::new(handles.clone(), 2, 2).unwrap();
        let mail = Mailstore::new(meta.clone(), blobs.clone(), MailstoreOptions::default());
        let account = mail
            .create_account("model@example.com", "pw", None)
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
            states: vec![StoreState::Active; STORES],
            meta,
            blobs,
            mail,
            maint,
            account,
            referenced: [0; BODIES],
            healthy: true,
        }
    }

    fn apply_states(&self) {
        let handles = self
            .handles
            .iter()
            .zip(&self.states)
            .map(|(h, s)| h.clone().with_state(*s))
            .collect();
        self.blobs.set_stores(handles);
    }

    async fn uids_of(&self, i: usize) -> Vec<evermail_types::Uid> {
        let inbox = self
            .mail
            .find_mailbox(self.account, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let id = blob_id(&body(i));
        self.mail
            .messages(self.account, inbox.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.blob == id)
            .map(|m| m.uid)
            .collect()
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Deliver(i) => {
                // Refusals (too few writable stores, a doomed body) are allowed; only
                // what is acknowledged counts.
                if let Ok(results) = self.mail.deliver(body(*i), &[self.account]).await
                    && results[0].is_ok()
                {
                    self.referenced[*i] += 1;
                }
            }
            Op::Expunge(i) => {
                if let Some(uid) = self.uids_of(*i).await.first() {
                    let inbox = self
                        .mail
                        .find_mailbox(self.account, "INBOX")
                        .await
                        .unwrap()
                        .unwrap();
                    self.mail
                        .expunge(self.account, inbox.id, &[*uid])
                        .await
                        .unwrap();
                    self.referenced[*i] -= 1;
                }
            }
            Op::Read(i) => {
                if self.referenced[*i] > 0 {
                    let got = self.mail.body(blob_id(&body(*i))).await;
                    assert_eq!(got.unwrap(), body(*i), "body {i} lost or corrupt");
                }
            }
            Op::Wipe(s) => {
                if self.healthy {
                    self.healthy = false;
                    let _ = std::fs::remove_dir_all(&self.roots[*s]);
                }
            }
            Op::Corrupt(i) => {
                if self.healthy {
                    let id = blob_id(&body(*i));
                    let copies = self.meta.blob_copies(id).await.unwrap();
                    if let Some(c) = copies.first() {
                        let root = &self.roots[c.store[1..].parse::<usize>().unwrap()];
                        let path = root.join(&c.key);
                        if let Ok(mut bytes) = std::fs::read(&path) {
                            self.healthy = false;
                            bytes[5] ^= 0x40;
                            std::fs::write(&path, bytes).unwrap();
                        }
                    }
                }
            }
            Op::SetState(s, state) => {
                self.states[*s] = *state;
                self.apply_states();
            }
            Op::Scrub { deep } => {
                self.maint.scrub(*deep, &()).await.unwrap();
            }
            Op::Repair => {
                self.maint.repair(&()).await.unwrap();
            }
            Op::Collect => {
                self.maint.collect_garbage(0).await.unwrap();
                for i in 0..BODIES {
                    let record = self.meta.blob(blob_id(&body(i))).await.unwrap();
                    if self.referenced[i] == 0 {
                        assert!(
                            record.is_none(),
                            "unreferenced body {i} survived collection"
                        );
                    } else {
                        assert!(record.is_some(), "referenced body {i} was collected");
                    }
                }
            }
            Op::Heal => {
                self.states = vec![StoreState::Active; STORES];
                self.apply_states();
                self.maint.scrub(true, &()).await.unwrap();
                let report = self.maint.repair(&()).await.unwrap();
                assert_eq!(report.lost, 0, "{report:?}");
                assert_eq!(report.still_under_replicated, 0, "{report:?}");
                self.healthy = true;
                for i in (0..BODIES).filter(|&i| self.referenced[i] > 0) {
                    let copies = self.meta.blob_copies(blob_id(&body(i))).await.unwrap();
                    let good = copies.iter().filter(|c| c.state == CopyState::Ok).count();
                    assert!(good >= 2, "body {i} has {good} good copies after a heal");
                }
            }
        }
        // Whatever happened, every acknowledged body reads back intact.
        for i in (0..BODIES).filter(|&i| self.referenced[i] > 0) {
            match self.mail.body(blob_id(&body(i))).await {
                Ok(got) => assert_eq!(got, body(i), "after {op:?}: body {i} is corrupt"),
                Err(e) => panic!("after {op:?}: body {i} does not read back: {e}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_bodies_survive_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut world = World::new().await;
            for op in &ops {
                world.apply(op).await;
            }
            world.apply(&Op::Heal).await;
        });
    }
}
