//! The conformance suite: one async function per behaviour, run against every backend
//! through [`meta_conformance_tests!`](crate::meta_conformance_tests). A backend passes
//! when every function returns without panicking.

use crate::*;
use evermail_types::{Flag, ModSeq, Uid, UidValidity};
use std::collections::HashSet;

mod lease;
mod membership;
mod rais;
mod rename;
pub use lease::*;
pub use membership::*;
pub use rais::*;
pub use rename::*;

/// Expands to one `#[tokio::test]` per conformance function. `$make` is an expression
/// evaluated afresh for every test; it must be a future giving `(Meta, guard)`, where
/// the guard (a temporary directory, a database handle) lives until the test ends.
///
/// `meta_conformance_tests!(optional $make)` is for backends that need a server the
/// machine may not have: `$make` gives `Option<(Meta, guard)>`, and `None` ends the
/// test at once. Deciding (and saying) when skipping is acceptable is `$make`'s job;
/// it should panic instead where the server must exist, as in CI.
#[macro_export]
macro_rules! meta_conformance_tests {
    // `optional` comes first: it would otherwise start parsing as an expression.
    (optional $make:expr) => {
        $crate::meta_conformance_tests!(@list optional $make);
    };
    ($make:expr) => {
        $crate::meta_conformance_tests!(@list required $make);
    };
    (@list $mode:ident $make:expr) => {
        $crate::meta_conformance_tests!(@each $mode $make;
            account_lifecycle,
            account_addresses_are_case_insensitive,
            aliases_and_catch_all_resolve,
            new_account_gets_its_mailboxes,
            mailbox_names_are_unique_per_account,
            recreated_mailbox_gets_new_uidvalidity,
            subscriptions_are_stored,
            uids_and_modseqs_only_grow,
            concurrent_inserts_get_distinct_uids,
            quota_is_enforced_and_tracked,
            flag_updates_advance_modseq,
            unchanged_since_refuses_changed_messages,
            expunge_is_logged_and_uids_are_not_reused,
            expunge_log_keeps_every_removal,
            identical_bodies_share_one_blob,
            copy_states_feed_the_repair_queue,
            store_registry_refuses_removing_a_sole_copy,
            garbage_collection_waits_and_refuses_doomed_bodies,
            rename_moves_children_and_keeps_uidvalidity,
            rename_refuses_taken_names_and_changes_nothing,
            moving_inbox_empties_it_and_logs_the_expunges,
            insert_messages_is_all_or_nothing,
            nodes_heartbeat_and_keep_their_state,
            highest_modseqs_follow_every_change,
            insert_message_once_stores_a_delivery_once,
            recent_messages_are_claimed_once,
            blobs_are_read_in_one_batch_with_their_headers,
            message_headers_are_read_along_a_run_of_uids,
            leases_have_one_holder_at_a_time,
            concurrent_takers_get_one_lease,
        );
    };
    (@each required $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (meta, _guard) = $make.await;
                $crate::conformance::$name(meta).await;
            }
        )*
    };
    (@each optional $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((meta, _guard)) = $make.await else {
                    return;
                };
                $crate::conformance::$name(meta).await;
            }
        )*
    };
}

fn new_account(address: &str) -> NewAccount {
    NewAccount {
        address: address.to_string(),
        password_hash: "$argon2id$test".to_string(),
        quota_bytes: None,
        mailboxes: vec![
            NewMailbox {
                name: "INBOX".into(),
                special_use: None,
                subscribed: true,
            },
            NewMailbox {
                name: "Sent".into(),
                special_use: Some("\\Sent".into()),
                subscribed: true,
            },
        ],
    }
}

async fn inbox(meta: &Meta, account: AccountId) -> MailboxRecord {
    meta.mailboxes(account)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "INBOX")
        .expect("every account has an INBOX")
}

fn blob(byte: u8, size: u64) -> BlobRecord {
    BlobRecord {
        id: BlobId([byte; 32]),
        size,
        structure: "{}".into(),
        header: None,
    }
}

fn message(account: &AccountRecord, mailbox: &MailboxRecord, blob: BlobRecord) -> NewMessage {
    NewMessage {
        account: account.id,
        mailbox: mailbox.id,
        locations: vec![BlobLocation {
            store: "local".into(),
            key: blob.id.to_hex(),
        }],
        blob,
        flags: Flags::new(),
        internal_date: 1_700_000_000,
    }
}

pub async fn account_lifecycle(meta: Meta) {
    let created = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    assert_eq!(created.address, "alice@example.com");
    assert_eq!(created.used_bytes, 0);

    let err = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    meta.set_password_hash(created.id, "$argon2id$other")
        .await
        .unwrap();
    meta.set_quota(created.id, Some(1000)).await.unwrap();
    let found = meta.account(created.id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$argon2id$other");
    assert_eq!(found.quota_bytes, Some(1000));

    meta.create_account(new_account("bob@example.org"))
        .await
        .unwrap();
    let all: Vec<_> = meta
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(all, ["alice@example.com", "bob@example.org"]);
    assert_eq!(
        meta.list_domains().await.unwrap(),
        ["example.com", "example.org"]
    );

    meta.remove_account(created.id).await.unwrap();
    assert!(meta.account(created.id).await.unwrap().is_none());
    assert!(
        meta.account_by_address("alice@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(meta.mailboxes(created.id).await.unwrap().is_empty());
}

pub async fn account_addresses_are_case_insensitive(meta: Meta) {
    let created = meta
        .create_account(new_account("Carol@Example.COM"))
        .await
        .unwrap();
    assert_eq!(created.address, "carol@example.com");
    let found = meta
        .account_by_address("CAROL@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.id);
    let err = meta
        .create_account(new_account("carol@EXAMPLE.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

pub async fn aliases_and_catch_all_resolve(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let bob = meta
        .create_account(new_account("bob@example.com"))
        .await
        .unwrap();
    meta.add_alias("postmaster@example.com", alice.id)
        .await
        .unwrap();
    meta.add_alias("@example.com", bob.id).await.unwrap();

    let resolve = |a: &'static str| {
        let meta = meta.clone();
        async move { meta.resolve_address(a).await.unwrap().map(|r| r.address) }
    };
    assert_eq!(
        resolve("alice@example.com").await.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        resolve("Postmaster@example.com").await.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        resolve("anyone@example.com").await.as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(resolve("anyone@elsewhere.net").await, None);

    let err = meta
        .add_alias("bob@example.com", alice.id)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "an alias may not shadow an account"
    );
    let err = meta
        .create_account(new_account("postmaster@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "an account may not shadow an alias"
    );

    let listed = meta.list_aliases().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&AliasRecord {
        alias: "postmaster@example.com".into(),
        target: "alice@example.com".into()
    }));
    assert!(meta.remove_alias("@example.com").await.unwrap());
    assert!(!meta.remove_alias("@example.com").await.unwrap());
    assert_eq!(resolve("anyone@example.com").await, None);
}

pub async fn new_account_gets_its_mailboxes(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let boxes = meta.mailboxes(alice.id).await.unwrap();
    let names: Vec<_> = boxes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["INBOX", "Sent"]);
    let sent = &boxes[1];
    assert_eq!(sent.special_use.as_deref(), Some("\\Sent"));
    assert!(sent.subscribed);
    assert_eq!(sent.uidnext, Uid::FIRST);
    assert_ne!(boxes[0].uidvalidity, boxes[1].uidvalidity);
    assert_eq!(meta.mailbox(sent.id).await.unwrap().as_ref(), Some(sent));
}

pub async fn mailbox_names_are_unique_per_account(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let bob = meta
        .create_account(new_account("bob@example.com"))
        .await
        .unwrap();
    let work = NewMailbox {
        name: "Work".into(),
        special_use: None,
        subscribed: false,
    };
    meta.create_mailbox(alice.id, work.clone()).await.unwrap();
    meta.create_mailbox(bob.id, work.clone()).await.unwrap();
    let err = meta.create_mailbox(alice.id, work).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

pub async fn recreated_mailbox_gets_new_uidvalidity(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let work = NewMailbox {
        name: "Work".into(),
        special_use: None,
        subscribed: false,
    };
    let mut seen: HashSet<UidValidity> = HashSet::new();
    for _ in 0..5 {
        let created = meta.create_mailbox(alice.id, work.clone()).await.unwrap();
        assert!(seen.insert(created.uidvalidity), "UIDVALIDITY repeated");
        meta.delete_mailbox(created.id).await.unwrap();
        assert!(meta.mailbox(created.id).await.unwrap().is_none());
    }
}

pub async fn subscriptions_are_stored(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let sent = meta.mailboxes(alice.id).await.unwrap().remove(1);
    assert!(sent.subscribed);
    meta.set_subscribed(sent.id, false).await.unwrap();
    assert!(!meta.mailbox(sent.id).await.unwrap().unwrap().subscribed);
    // Setting what is already set is not an error.
    meta.set_subscribed(sent.id, false).await.unwrap();
    meta.set_subscribed(sent.id, true).await.unwrap();
    assert!(meta.mailbox(sent.id).await.unwrap().unwrap().subscribed);
    let err = meta
        .set_subscribed(MailboxId(i64::MAX), true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub async fn uids_and_modseqs_only_grow(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let mut last: Option<InsertedMessage> = None;
    for i in 0..10u8 {
        let got = meta
            .insert_message(message(&alice, &inbox, blob(i, 10)))
            .await
            .unwrap();
        assert_eq!(got.uidvalidity, inbox.uidvalidity);
        if let Some(prev) = last {
            assert!(got.uid > prev.uid);
            assert!(got.modseq > prev.modseq);
        } else {
            assert_eq!(got.uid, Uid::FIRST);
        }
        last = Some(got);
    }
    let after = meta.mailbox(inbox.id).await.unwrap().unwrap();
    assert_eq!(after.uidnext.get(), 11);
    assert_eq!(after.highest_modseq, last.unwrap().modseq);
    let listed = meta.messages(inbox.id).await.unwrap();
    assert_eq!(listed.len(), 10);
    assert!(listed.windows(2).all(|w| w[0].uid < w[1].uid));
}

pub async fn recent_messages_are_claimed_once(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    assert_eq!(
        inbox.recent_uid,
        Uid::FIRST,
        "a new mailbox has nothing claimed"
    );
    for i in 0..3u8 {
        meta.insert_message(message(&alice, &inbox, blob(i, 10)))
            .await
            .unwrap();
    }
    let uid = |n: u32| Uid::new(n).unwrap();
    // The first claim gets UIDs 1..4, the second, racing it up to the same UIDNEXT,
    // gets none.
    let claims: Vec<_> = (0..4)
        .map(|_| {
            let meta = meta.clone();
            tokio::spawn(async move { meta.claim_recent(inbox.id, uid(4)).await })
        })
        .collect();
    let mut marks = Vec::new();
    for claim in claims {
        marks.push(claim.await.unwrap().unwrap().get());
    }
    marks.sort();
    assert_eq!(
        marks,
        [1, 4, 4, 4],
        "exactly one claim gets the recent messages"
    );
    assert_eq!(
        meta.mailbox(inbox.id).await.unwrap().unwrap().recent_uid,
        uid(4)
    );
    // A claim below the mark lowers nothing.
    assert_eq!(meta.claim_recent(inbox.id, uid(2)).await.unwrap(), uid(4));
    meta.insert_message(message(&alice, &inbox, blob(9, 10)))
        .await
        .unwrap();
    assert_eq!(meta.claim_recent(inbox.id, uid(5)).await.unwrap(), uid(4));
    assert_eq!(
        meta.mailbox(inbox.id).await.unwrap().unwrap().recent_uid,
        uid(5)
    );
    let missing = meta.claim_recent(MailboxId(i64::MAX), uid(5)).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
}

pub async fn concurrent_inserts_get_distinct_uids(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let meta = meta.clone();
        let new = message(&alice, &inbox, blob(i, 5));
        tasks.push(tokio::spawn(async move { meta.insert_message(new).await }));
    }
    let mut uids = HashSet::new();
    let mut modseqs = HashSet::new();
    for t in tasks {
        let got = t.await.unwrap().unwrap();
        assert!(uids.insert(got.uid));
        assert!(modseqs.insert(got.modseq));
    }
    assert_eq!(uids.len(), 40);
    let max = uids.iter().map(|u| u.get()).max().unwrap();
    assert_eq!(max, 40, "UIDs are dense when nothing failed");
    let account = meta.account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, 200);
}

pub async fn quota_is_enforced_and_tracked(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    meta.set_quota(alice.id, Some(100)).await.unwrap();
    let inbox = inbox(&meta, alice.id).await;
    meta.insert_message(message(&alice, &inbox, blob(1, 60)))
        .await
        .unwrap();
    let err = meta
        .insert_message(message(&alice, &inbox, blob(2, 60)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OverQuota);
    meta.insert_message(message(&alice, &inbox, blob(3, 40)))
        .await
        .unwrap();
    let account = meta.account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, 100);
    assert_eq!(meta.messages(inbox.id).await.unwrap().len(), 2);
    assert!(
        meta.blob(BlobId([2; 32])).await.unwrap().is_none(),
        "refused body left a row"
    );
}

pub async fn flag_updates_advance_modseq(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let a = meta
        .insert_message(message(&alice, &inbox, blob(1, 1)))
        .await
        .unwrap();
    let b = meta
        .insert_message(message(&alice, &inbox, blob(2, 1)))
        .await
        .unwrap();
    let seen: Flags = [Flag::Seen, Flag::Keyword("$Work".into())]
        .into_iter()
        .collect();

    let changed = meta
        .update_flags(inbox.id, &[a.uid, b.uid], FlagChange::Add, &seen)
        .await
        .unwrap();
    assert_eq!(changed.len(), 2);
    assert!(
        changed
            .iter()
            .all(|m| m.flags == seen && m.modseq > b.modseq)
    );
    let after_add = changed[0].modseq;

    // Adding what is already there changes nothing and spends no MODSEQ.
    let unchanged = meta
        .update_flags(inbox.id, &[a.uid], FlagChange::Add, &seen)
        .await
        .unwrap();
    assert!(unchanged.is_empty());

    let only_seen: Flags = [Flag::Seen].into_iter().collect();
    let replaced = meta
        .update_flags(inbox.id, &[a.uid], FlagChange::Replace, &only_seen)
        .await
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].flags, only_seen);
    assert!(replaced[0].modseq > after_add);

    let changes = meta.changes_since(inbox.id, after_add).await.unwrap();
    assert_eq!(changes.messages.len(), 1);
    assert_eq!(changes.messages[0].uid, a.uid);
    assert_eq!(changes.highest_modseq, replaced[0].modseq);
    let mailbox = meta.mailbox(inbox.id).await.unwrap().unwrap();
    assert_eq!(mailbox.highest_modseq, replaced[0].modseq);
}

pub async fn unchanged_since_refuses_changed_messages(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let a = meta
        .insert_message(message(&alice, &inbox, blob(1, 1)))
        .await
        .unwrap();
    let b = meta
        .insert_message(message(&alice, &inbox, blob(2, 1)))
        .await
        .unwrap();
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let flagged: Flags = [Flag::Flagged].into_iter().collect();

    // `b` changed after `a.modseq`: it is refused and keeps its flags.
    let update = meta
        .update_flags_unchanged_since(inbox.id, &[a.uid, b.uid], a.modseq, FlagChange::Add, &seen)
        .await
        .unwrap();
    assert_eq!(update.modified, [b.uid]);
    assert_eq!(update.changed.len(), 1);
    assert_eq!(update.changed[0].uid, a.uid);
    assert!(update.changed[0].modseq > b.modseq);
    let after = update.changed[0].modseq;

    // A limit at or above every MODSEQ lets all through; gone UIDs are skipped.
    let update = meta
        .update_flags_unchanged_since(
            inbox.id,
            &[a.uid, b.uid, Uid::new(99).unwrap()],
            after,
            FlagChange::Add,
            &flagged,
        )
        .await
        .unwrap();
    assert!(update.modified.is_empty());
    assert_eq!(update.changed.len(), 2);

    // UNCHANGEDSINCE 0 refuses every message (RFC 7162 section 3.1.3).
    let update = meta
        .update_flags_unchanged_since(inbox.id, &[a.uid, b.uid], ModSeq(0), FlagChange::Add, &seen)
        .await
        .unwrap();
    assert_eq!(update.modified, [a.uid, b.uid]);
    assert!(update.changed.is_empty());
    let messages = meta.messages(inbox.id).await.unwrap();
    assert!(!messages[1].flags.contains(&Flag::Seen));
}

/// QRESYNC's `VANISHED (EARLIER)` needs every removal after any MODSEQ a client may
/// still hold, so the log is not trimmed by later changes.
pub async fn expunge_log_keeps_every_removal(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let mut uids = Vec::new();
    for i in 0..4 {
        let m = meta
            .insert_message(message(&alice, &inbox, blob(i + 1, 1)))
            .await
            .unwrap();
        uids.push(m);
    }
    let first = meta.expunge(inbox.id, &[uids[0].uid]).await.unwrap();
    assert_eq!(first, [uids[0].uid]);
    let between = meta
        .mailbox(inbox.id)
        .await
        .unwrap()
        .unwrap()
        .highest_modseq;
    meta.expunge(inbox.id, &[uids[2].uid]).await.unwrap();
    meta.insert_message(message(&alice, &inbox, blob(9, 1)))
        .await
        .unwrap();

    let all = meta.changes_since(inbox.id, uids[3].modseq).await.unwrap();
    assert_eq!(all.expunged, [uids[0].uid, uids[2].uid]);
    let later = meta.changes_since(inbox.id, between).await.unwrap();
    assert_eq!(later.expunged, [uids[2].uid]);
    let from_start = meta.changes_since(inbox.id, ModSeq(0)).await.unwrap();
    assert_eq!(from_start.expunged, [uids[0].uid, uids[2].uid]);
    assert_eq!(from_start.messages.len(), 3);
}

pub async fn expunge_is_logged_and_uids_are_not_reused(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let a = meta
        .insert_message(message(&alice, &inbox, blob(1, 7)))
        .await
        .unwrap();
    let b = meta
        .insert_message(message(&alice, &inbox, blob(2, 9)))
        .await
        .unwrap();
    let gone = meta
        .expunge(inbox.id, &[b.uid, Uid::new(99).unwrap()])
        .await
        .unwrap();
    assert_eq!(gone, [b.uid]);
    let account = meta.account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, 7);

    let changes = meta.changes_since(inbox.id, a.modseq).await.unwrap();
    assert_eq!(changes.expunged, [b.uid]);
    assert!(changes.messages.is_empty());
    assert!(changes.highest_modseq > b.modseq);

    let c = meta
        .insert_message(message(&alice, &inbox, blob(3, 1)))
        .await
        .unwrap();
    assert!(c.uid > b.uid, "an expunged UID was reused");
    let uids: Vec<_> = meta
        .messages(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [a.uid, c.uid]);
}

pub async fn identical_bodies_share_one_blob(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let bob = meta
        .create_account(new_account("bob@example.com"))
        .await
        .unwrap();
    let body = blob(42, 1234);
    let a_inbox = inbox(&meta, alice.id).await;
    let b_inbox = inbox(&meta, bob.id).await;
    meta.insert_message(message(&alice, &a_inbox, body.clone()))
        .await
        .unwrap();
    meta.insert_message(message(&bob, &b_inbox, body.clone()))
        .await
        .unwrap();
    assert_eq!(meta.blob(body.id).await.unwrap(), Some(body.clone()));
    let locations = meta.blob_locations(body.id).await.unwrap();
    assert_eq!(
        locations,
        [BlobLocation {
            store: "local".into(),
            key: body.id.to_hex()
        }]
    );
    let listed = meta.messages(b_inbox.id).await.unwrap();
    assert_eq!(listed[0].blob, body.id);
    assert_eq!(listed[0].size, 1234);
}

pub async fn blobs_are_read_in_one_batch_with_their_headers(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    // Bytes a header may hold: 8-bit, bare LF, NUL; and one blob with no cached header.
    let mut with_header = blob(1, 100);
    with_header.structure = r#"{"kind":"one"}"#.into();
    with_header.header = Some(b"Subject: Gr\xfc\xdfe\n\tfolded\r\n\0\r\n\r\n".to_vec());
    let mut empty_header = blob(2, 5);
    empty_header.header = Some(Vec::new());
    let without = blob(3, 7);
    for b in [&with_header, &empty_header, &without] {
        meta.insert_message(message(&alice, &inbox, b.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        meta.blob(with_header.id).await.unwrap(),
        Some(with_header.clone())
    );
    // Unknown ids are left out, repeated ones come once; the order is the caller's to make.
    let ids = [
        without.id,
        BlobId([9; 32]),
        with_header.id,
        empty_header.id,
        with_header.id,
    ];
    let mut got = meta.blobs(&ids).await.unwrap();
    got.sort_by_key(|b| b.id);
    assert_eq!(got, [with_header.clone(), empty_header, without]);
    assert!(meta.blobs(&[]).await.unwrap().is_empty());
    // More ids than one query takes are still all answered.
    let many: Vec<BlobId> = (0..1200u32)
        .map(|i| {
            let mut id = [0xee; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            BlobId(id)
        })
        .chain([with_header.id])
        .collect();
    assert_eq!(meta.blobs(&many).await.unwrap(), [with_header]);
}

pub async fn message_headers_are_read_along_a_run_of_uids(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let sent = meta
        .mailboxes(alice.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "Sent")
        .unwrap();
    let mut with_header = blob(1, 100);
    with_header.header = Some(b"Subject: Gr\xfc\xdfe\n\tfolded\r\n\0\r\n\r\n".to_vec());
    let without = blob(2, 7);
    let mut elsewhere = blob(3, 9);
    elsewhere.header = Some(b"Subject: not in the inbox\r\n\r\n".to_vec());
    let mut uids = Vec::new();
    // UIDs 1..=4 in the INBOX (the first body twice, as after a COPY); one in Sent.
    for b in [&with_header, &without, &with_header, &without] {
        let inserted = meta
            .insert_message(message(&alice, &inbox, b.clone()))
            .await
            .unwrap();
        uids.push(inserted.uid);
    }
    meta.insert_message(message(&alice, &sent, elsewhere.clone()))
        .await
        .unwrap();
    let expunged = meta.expunge(inbox.id, &[uids[1]]).await.unwrap();
    assert_eq!(expunged, [uids[1]]);
    let header_of = |b: &BlobRecord, uid: Uid| MessageHeader {
        uid,
        blob: b.id,
        size: b.size,
        header: b.header.clone(),
    };
    let uid = |n: u32| Uid::new(n).unwrap();
    // In UID order, expunged ones gone, other mailboxes' rows never.
    assert_eq!(
        meta.message_headers(inbox.id, uid(1), uid(100))
            .await
            .unwrap(),
        [
            header_of(&with_header, uids[0]),
            header_of(&with_header, uids[2]),
            header_of(&without, uids[3]),
        ]
    );
    // The bounds are inclusive.
    assert_eq!(
        meta.message_headers(inbox.id, uids[2], uids[2])
            .await
            .unwrap(),
        [header_of(&with_header, uids[2])]
    );
    assert!(
        meta.message_headers(inbox.id, uids[1], uids[1])
            .await
            .unwrap()
            .is_empty()
    );
}
