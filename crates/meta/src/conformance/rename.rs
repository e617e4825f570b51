//! Conformance of RENAME (a mailbox and its children, and INBOX) and of the
//! all-or-nothing insert MULTIAPPEND uses.

use super::{blob, inbox, message, new_account};
use crate::*;

fn named(name: &str) -> NewMailbox {
    NewMailbox {
        name: name.into(),
        special_use: None,
        subscribed: true,
    }
}

async fn names(meta: &Meta, account: AccountId) -> Vec<String> {
    let mut names: Vec<String> = meta
        .mailboxes(account)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

pub async fn rename_moves_children_and_keeps_uidvalidity(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let work = meta.create_mailbox(alice.id, named("work")).await.unwrap();
    let child = meta
        .create_mailbox(alice.id, named("work/2024"))
        .await
        .unwrap();
    meta.create_mailbox(alice.id, named("work/2024/q1"))
        .await
        .unwrap();
    meta.create_mailbox(alice.id, named("workshop"))
        .await
        .unwrap();
    let stored = meta
        .insert_message(message(&alice, &child, blob(1, 5)))
        .await
        .unwrap();

    let renamed = meta.rename_mailbox(work.id, "jobs/old", '/').await.unwrap();
    let mut renamed_names: Vec<_> = renamed.iter().map(|m| m.name.as_str()).collect();
    renamed_names.sort();
    assert_eq!(
        renamed_names,
        ["jobs/old", "jobs/old/2024", "jobs/old/2024/q1"]
    );
    assert_eq!(
        names(&meta, alice.id).await,
        [
            "INBOX",
            "Sent",
            "jobs/old",
            "jobs/old/2024",
            "jobs/old/2024/q1",
            "workshop"
        ]
    );
    let moved = meta.mailbox(child.id).await.unwrap().unwrap();
    assert_eq!(moved.name, "jobs/old/2024");
    assert_eq!(moved.uidvalidity, child.uidvalidity);
    let messages = meta.messages(child.id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].uid, stored.uid);

    // The old name is free again, and a new mailbox there gets a new UIDVALIDITY.
    let again = meta.create_mailbox(alice.id, named("work")).await.unwrap();
    assert_ne!(again.uidvalidity, work.uidvalidity);
}

pub async fn rename_refuses_taken_names_and_changes_nothing(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let a = meta.create_mailbox(alice.id, named("a")).await.unwrap();
    meta.create_mailbox(alice.id, named("a/x")).await.unwrap();
    meta.create_mailbox(alice.id, named("b/x")).await.unwrap();
    let before = names(&meta, alice.id).await;

    // "b" itself is free, but a child's new name, "b/x", is taken.
    let err = meta.rename_mailbox(a.id, "b", '/').await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = meta.rename_mailbox(a.id, "Sent", '/').await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = meta.rename_mailbox(a.id, "a/y", '/').await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err = meta
        .rename_mailbox(MailboxId(i64::MAX), "z", '/')
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(names(&meta, alice.id).await, before);

    // Another account's names do not matter.
    let bob = meta
        .create_account(new_account("bob@example.com"))
        .await
        .unwrap();
    meta.create_mailbox(bob.id, named("c")).await.unwrap();
    meta.rename_mailbox(a.id, "c", '/').await.unwrap();
    assert!(names(&meta, alice.id).await.contains(&"c/x".to_string()));
}

pub async fn moving_inbox_empties_it_and_logs_the_expunges(meta: Meta) {
    let alice = meta
        .create_account(new_account("alice@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let mut flags = Flags::new();
    flags.insert(&evermail_types::Flag::Seen);
    let first = meta
        .insert_message(NewMessage {
            flags: flags.clone(),
            ..message(&alice, &inbox, blob(1, 7))
        })
        .await
        .unwrap();
    let second = meta
        .insert_message(message(&alice, &inbox, blob(2, 9)))
        .await
        .unwrap();
    let before = meta.mailbox(inbox.id).await.unwrap().unwrap();

    let err = meta
        .move_all_to_new_mailbox(inbox.id, named("Sent"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(meta.messages(inbox.id).await.unwrap().len(), 2);

    let old = meta
        .move_all_to_new_mailbox(inbox.id, named("old-inbox"))
        .await
        .unwrap();
    assert_eq!(old.name, "old-inbox");
    assert_ne!(old.uidvalidity, inbox.uidvalidity);
    assert_eq!(old.uidnext, before.uidnext);
    assert!(old.highest_modseq >= second.modseq);
    let moved = meta.messages(old.id).await.unwrap();
    let uids: Vec<_> = moved.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [first.uid, second.uid]);
    assert_eq!(moved[0].flags, flags);
    assert_eq!(moved[1].size, 9);

    // INBOX stays, empty, with its UIDVALIDITY; the messages read as expunged there.
    let after = meta.mailbox(inbox.id).await.unwrap().unwrap();
    assert_eq!(after.uidvalidity, inbox.uidvalidity);
    assert!(meta.messages(inbox.id).await.unwrap().is_empty());
    let changes = meta
        .changes_since(inbox.id, before.highest_modseq)
        .await
        .unwrap();
    assert_eq!(changes.expunged, [first.uid, second.uid]);
    assert!(changes.highest_modseq > before.highest_modseq);
    // No UID is handed out twice in INBOX, and the quota still counts both.
    let third = meta
        .insert_message(message(&alice, &inbox, blob(3, 1)))
        .await
        .unwrap();
    assert!(third.uid > second.uid);
    let account = meta.account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, 7 + 9 + 1);
    // A later message in the moved mailbox continues after the moved UIDs.
    let fourth = meta
        .insert_message(message(&alice, &old, blob(4, 1)))
        .await
        .unwrap();
    assert!(fourth.uid > second.uid);
    assert!(fourth.modseq > old.highest_modseq);
}

pub async fn insert_messages_is_all_or_nothing(meta: Meta) {
    let alice = meta
        .create_account(NewAccount {
            quota_bytes: Some(100),
            ..new_account("alice@example.com")
        })
        .await
        .unwrap();
    let inbox = inbox(&meta, alice.id).await;
    let batch = vec![
        message(&alice, &inbox, blob(1, 30)),
        message(&alice, &inbox, blob(2, 30)),
    ];
    let inserted = meta.insert_messages(batch).await.unwrap();
    assert_eq!(inserted.len(), 2);
    assert!(inserted[1].uid > inserted[0].uid);
    assert!(inserted[1].modseq > inserted[0].modseq);

    // The third message of this batch would pass the quota alone, not after the
    // first two: nothing of it is stored.
    let batch = vec![
        message(&alice, &inbox, blob(3, 15)),
        message(&alice, &inbox, blob(4, 15)),
        message(&alice, &inbox, blob(5, 15)),
    ];
    let err = meta.insert_messages(batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OverQuota);
    assert_eq!(meta.messages(inbox.id).await.unwrap().len(), 2);
    let account = meta.account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes, 60);
    // And the UIDs go on from the committed ones.
    let next = meta
        .insert_message(message(&alice, &inbox, blob(6, 1)))
        .await
        .unwrap();
    assert!(next.uid > inserted[1].uid);
}
