//! The view cache over the real SQLite and fs backends. "Another node" is a second
//! `Mailstore` over the same metadata and blob stores: it shares the database, not
//! this node's cache or change notifications, as a node of a cluster would.

use super::*;
use crate::{FlagChange, MailstoreOptions};
use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, StoreHandle};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use evermail_types::{Flag, Flags, Uid};
use std::sync::Arc;

struct Nodes {
    a: Mailstore,
    b: Mailstore,
    account: AccountId,
    inbox: MailboxId,
    _dir: tempfile::TempDir,
}

async fn two_nodes(view_cache_messages: usize) -> Nodes {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::new(
        SqliteMeta::open(&dir.path().join("meta.sqlite"))
            .await
            .unwrap(),
    );
    let backend = FsBackend::open(&dir.path().join("blobs"), "test").unwrap();
    let blobs = BlobStore::new(vec![StoreHandle::new("local", Arc::new(backend))], 1, 1).unwrap();
    let options = MailstoreOptions {
        view_cache_messages,
        ..MailstoreOptions::default()
    };
    let a = Mailstore::new(meta.clone(), blobs.clone(), options.clone());
    let b = Mailstore::new(meta, blobs, options);
    let account = a
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap()
        .id;
    let inbox = a.find_mailbox(account, "INBOX").await.unwrap().unwrap().id;
    Nodes {
        a,
        b,
        account,
        inbox,
        _dir: dir,
    }
}

async fn deliver(store: &Mailstore, account: AccountId, n: usize) {
    for i in 0..n {
        let body = format!("From: a@example.com\r\nSubject: {i}\r\n\r\nhello {i}\r\n");
        let results = store.deliver(Bytes::from(body), &[account]).await.unwrap();
        assert!(results.iter().all(|r| r.is_ok()));
    }
}

fn uids(list: &[u32]) -> Vec<Uid> {
    list.iter().map(|&u| Uid::new(u).unwrap()).collect()
}

/// The view must be exactly what a full read of the database gives.
async fn assert_view_is_the_truth(store: &Mailstore, account: AccountId, mailbox: MailboxId) {
    let view = store.view(account, mailbox).await.unwrap();
    let truth = store.messages(account, mailbox).await.unwrap();
    let got: Vec<MessageRecord> = view.messages.iter().cloned().collect();
    assert_eq!(got, truth);
    let row = store.mailbox(account, mailbox).await.unwrap();
    assert_eq!(view.highest_modseq, row.highest_modseq);
}

#[tokio::test]
async fn changes_made_through_another_node_are_in_the_next_view() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    deliver(&n.a, n.account, 3).await;
    let first = n.a.view(n.account, n.inbox).await.unwrap();
    assert_eq!(first.messages.len(), 3);

    // Node b delivers one and flags another; node a hears of neither.
    deliver(&n.b, n.account, 1).await;
    let seen: Flags = [Flag::Seen].into_iter().collect();
    n.b.store_flags(n.account, n.inbox, &uids(&[2]), FlagChange::Add, &seen)
        .await
        .unwrap();
    let second = n.a.view(n.account, n.inbox).await.unwrap();
    assert_eq!(second.messages.len(), 4);
    assert!(second.messages[1].flags.contains(&Flag::Seen));
    assert!(second.highest_modseq > first.highest_modseq);
    assert_view_is_the_truth(&n.a, n.account, n.inbox).await;
    // The clone handed out first is a snapshot: later changes do not reach it.
    assert_eq!(first.messages.len(), 3);
    assert!(!first.messages[1].flags.contains(&Flag::Seen));
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 2));
}

#[tokio::test]
async fn an_expunge_through_another_node_is_in_the_next_view() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    deliver(&n.a, n.account, 5).await;
    assert_eq!(
        n.a.view(n.account, n.inbox).await.unwrap().messages.len(),
        5
    );
    let gone =
        n.b.expunge(n.account, n.inbox, &uids(&[1, 3, 5]))
            .await
            .unwrap();
    assert_eq!(gone.len(), 3);
    let view = n.a.view(n.account, n.inbox).await.unwrap();
    let left: Vec<u32> = view.messages.iter().map(|m| m.uid.get()).collect();
    assert_eq!(left, [2, 4]);
    assert_view_is_the_truth(&n.a, n.account, n.inbox).await;
}

#[tokio::test]
async fn two_readers_share_one_snapshot() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    deliver(&n.a, n.account, 4).await;
    let one = n.a.view(n.account, n.inbox).await.unwrap();
    let two = n.a.view(n.account, n.inbox).await.unwrap();
    // The same tree, not a copy of it.
    assert!(one.messages.ptr_eq(&two.messages));
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 1));
    assert_eq!((stats.mailboxes, stats.messages), (1, 4));
    // A session changing its own clone does not change the other's or the cache's.
    let mut mine = one.messages.clone();
    mine[0].flags.insert(&Flag::Flagged);
    let three = n.a.view(n.account, n.inbox).await.unwrap();
    assert!(!three.messages[0].flags.contains(&Flag::Flagged));
    assert!(!two.messages[0].flags.contains(&Flag::Flagged));
}

#[tokio::test]
async fn eviction_keeps_the_bound_and_drops_the_least_recently_used() {
    let n = two_nodes(7).await;
    let mut boxes = Vec::new();
    for name in ["one", "two", "three"] {
        let id = n.a.create_mailbox(n.account, name, None).await.unwrap().id;
        let messages = n.a.view(n.account, n.inbox).await.unwrap().messages;
        assert!(messages.is_empty());
        deliver(&n.a, n.account, 2).await;
        let all: Vec<Uid> =
            n.a.view(n.account, n.inbox)
                .await
                .unwrap()
                .messages
                .iter()
                .map(|m| m.uid)
                .collect();
        n.a.copy_messages(n.account, n.inbox, &all, id)
            .await
            .unwrap();
        n.a.expunge(n.account, n.inbox, &all).await.unwrap();
        boxes.push(id);
    }
    // The INBOX, now empty, still counts one toward the bound (a mailbox is one more
    // than its messages), so empty mailboxes cannot pile up unbounded.
    let inbox = n.a.view(n.account, n.inbox).await.unwrap();
    assert!(inbox.messages.is_empty());
    let before = n.a.view_cache_stats();
    assert_eq!((before.mailboxes, before.messages), (1, 0));

    // Each mailbox costs 3 and the bound is 7: the INBOX and two fit, a third evicts.
    for &id in &boxes[..2] {
        assert_eq!(n.a.view(n.account, id).await.unwrap().messages.len(), 2);
    }
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.mailboxes, stats.messages), (3, 4));
    // Using the INBOX and the first again leaves the second least recently used.
    n.a.view(n.account, n.inbox).await.unwrap();
    n.a.view(n.account, boxes[0]).await.unwrap();
    n.a.view(n.account, boxes[2]).await.unwrap();
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.mailboxes, stats.messages), (3, 4), "{stats:?}");
    assert_eq!(stats.evictions, before.evictions + 1);
    let misses = stats.misses;
    n.a.view(n.account, boxes[0]).await.unwrap();
    assert_eq!(n.a.view_cache_stats().misses, misses, "the first stayed");
    n.a.view(n.account, boxes[1]).await.unwrap();
    assert_eq!(n.a.view_cache_stats().misses, misses + 1, "the second went");
    // The least recently used now are the INBOX, then the third: both had to go.
    let stats = n.a.view_cache_stats();
    assert_eq!(stats.evictions, before.evictions + 3);
    assert_eq!((stats.mailboxes, stats.messages), (2, 4), "{stats:?}");
    for &id in &boxes {
        assert_view_is_the_truth(&n.a, n.account, id).await;
    }
}

#[tokio::test]
async fn a_deleted_mailbox_is_forgotten() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    let gone =
        n.a.create_mailbox(n.account, "gone", None)
            .await
            .unwrap()
            .id;
    deliver(&n.a, n.account, 2).await;
    n.a.copy_messages(n.account, n.inbox, &uids(&[1, 2]), gone)
        .await
        .unwrap();
    assert_eq!(n.a.view(n.account, gone).await.unwrap().messages.len(), 2);
    // INBOX (read by the copy) and `gone`.
    assert_eq!(n.a.view_cache_stats().mailboxes, 2);
    n.a.delete_mailbox(n.account, gone).await.unwrap();
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.mailboxes, stats.messages), (1, 2));
    assert!(n.a.view(n.account, gone).await.is_err());
}

#[tokio::test]
async fn a_mailbox_larger_than_the_cache_is_read_whole_and_not_kept() {
    let n = two_nodes(2).await;
    deliver(&n.a, n.account, 3).await;
    for _ in 0..2 {
        assert_eq!(
            n.a.view(n.account, n.inbox).await.unwrap().messages.len(),
            3
        );
    }
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.messages), (2, 0, 0));
}

fn record(uid: u32, modseq: u64) -> MessageRecord {
    MessageRecord {
        uid: Uid::new(uid).unwrap(),
        modseq: ModSeq(modseq),
        flags: Flags::new(),
        size: 10,
        internal_date: 0,
        blob: evermail_types::BlobId([0; 32]),
    }
}

#[test]
fn a_snapshot_of_another_uidvalidity_is_not_served() {
    let cache = ViewCache::new(100);
    let list: MessageList = [record(1, 1)].into_iter().collect();
    let (old, new) = (UidValidity::new(7).unwrap(), UidValidity::new(8).unwrap());
    cache.store(MailboxId(1), old, list, ModSeq(1));
    assert!(cache.get(MailboxId(1), new).is_none());
    assert_eq!(cache.stats().messages, 0);
}

#[test]
fn an_older_snapshot_does_not_replace_a_newer_one() {
    let cache = ViewCache::new(100);
    let uv = UidValidity::new(7).unwrap();
    let newer: MessageList = [record(1, 1), record(2, 5)].into_iter().collect();
    let older: MessageList = [record(1, 1)].into_iter().collect();
    cache.store(MailboxId(1), uv, newer, ModSeq(5));
    cache.store(MailboxId(1), uv, older, ModSeq(3));
    let (held, modseq) = cache.get(MailboxId(1), uv).unwrap();
    assert_eq!((held.len(), modseq), (2, ModSeq(5)));
}

#[test]
fn changes_are_folded_in_by_uid() {
    // (UIDs held, records changed or added, UIDs expunged, UIDs after)
    type Case<'a> = (&'a [u32], &'a [u32], &'a [u32], &'a [u32]);
    let cases: &[Case<'_>] = &[
        (&[], &[1, 2], &[], &[1, 2]),
        (&[1, 2, 3], &[4], &[2], &[1, 3, 4]),
        (&[1, 3], &[2], &[], &[1, 2, 3]),
        (&[1, 2, 3], &[2], &[9], &[1, 2, 3]),
        (&[1, 2, 3], &[], &[1, 2, 3], &[]),
    ];
    for &(held, changed, expunged, after) in cases {
        let mut list: MessageList = held.iter().map(|&u| record(u, 1)).collect();
        let touched = apply_changes(
            &mut list,
            crate::Changes {
                messages: changed.iter().map(|&u| record(u, 2)).collect(),
                expunged: uids(expunged),
                highest_modseq: ModSeq(2),
            },
        );
        let got: Vec<u32> = list.iter().map(|m| m.uid.get()).collect();
        assert_eq!(got, after, "{held:?} {changed:?} {expunged:?}");
        assert_eq!(touched, !changed.is_empty() || !expunged.is_empty());
        for m in list.iter().filter(|m| changed.contains(&m.uid.get())) {
            assert_eq!(m.modseq, ModSeq(2), "a changed record is replaced");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_missing_at_once_read_the_mailbox_once() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    deliver(&n.a, n.account, 50).await;
    let store = Arc::new(n.a.clone());
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (store, account, inbox) = (store.clone(), n.account, n.inbox);
            tokio::spawn(async move { store.view(account, inbox).await.unwrap() })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().messages.len(), 50);
    }
    let stats = n.a.view_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 15), "{stats:?}");
    assert!(
        n.a.views().loading.lock().unwrap().is_empty(),
        "no gate left behind"
    );
    assert_view_is_the_truth(&n.a, n.account, n.inbox).await;
}

#[tokio::test]
async fn the_summary_is_kept_with_its_snapshot_and_follows_changes() {
    let n = two_nodes(DEFAULT_VIEW_CACHE_MESSAGES).await;
    // Enough messages that the vector is a tree, not an inline chunk.
    deliver(&n.a, n.account, 200).await;
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let all: Vec<u32> = (1..=200).collect();
    n.a.store_flags(n.account, n.inbox, &uids(&all[..9]), FlagChange::Add, &seen)
        .await
        .unwrap();
    let view = n.a.view(n.account, n.inbox).await.unwrap();
    let validity = view.record.uidvalidity;
    let first = n.a.view_summary(n.inbox, validity, &view.messages);
    assert_eq!(*first, ViewSummary::of(&view.messages));
    assert_eq!(first.first_unseen, Some(10));
    assert_eq!(first.keywords.keywords().count(), 0);
    // The same snapshot again: the kept summary, not a new pass.
    let again = n.a.view(n.account, n.inbox).await.unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &n.a.view_summary(n.inbox, validity, &again.messages)
    ));
    // A session's own changed clone is never given the snapshot's summary.
    let mut mine = again.messages.clone();
    mine[9].flags.insert(&Flag::Seen);
    assert_eq!(
        n.a.view_summary(n.inbox, validity, &mine).first_unseen,
        Some(11)
    );

    // Another node marks message 10 seen and gives message 150 a keyword.
    n.b.store_flags(n.account, n.inbox, &uids(&[10]), FlagChange::Add, &seen)
        .await
        .unwrap();
    let keyword: Flags = [Flag::Keyword("$Project".into())].into_iter().collect();
    n.b.store_flags(n.account, n.inbox, &uids(&[150]), FlagChange::Add, &keyword)
        .await
        .unwrap();
    let changed = n.a.view(n.account, n.inbox).await.unwrap();
    let summary = n.a.view_summary(n.inbox, validity, &changed.messages);
    assert_eq!(*summary, ViewSummary::of(&changed.messages));
    assert_eq!(summary.first_unseen, Some(11));
    assert_eq!(
        summary.keywords.keywords().collect::<Vec<_>>(),
        ["$Project"]
    );
    assert!(Arc::ptr_eq(
        &summary,
        &n.a.view_summary(n.inbox, validity, &changed.messages)
    ));
}
