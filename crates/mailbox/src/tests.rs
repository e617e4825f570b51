//! Tests of the mail model over the real SQLite and fs backends.

use super::*;
use evermail_blob::StoreHandle;
use evermail_blob::fs::FsBackend;
use evermail_meta_sqlite::SqliteMeta;

async fn mailstore(options: MailstoreOptions) -> (Mailstore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMeta::open(&dir.path().join("meta.sqlite"))
        .await
        .unwrap();
    let backend = FsBackend::open(&dir.path().join("blobs"), "test").unwrap();
    let blobs = BlobStore::new(vec![StoreHandle::new("local", Arc::new(backend))], 1, 1).unwrap();
    (Mailstore::new(Meta::new(meta), blobs, options), dir)
}

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn delivery_reaches_every_inbox_and_stores_the_body_once() {
    let (store, dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw1", None)
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.com", "pw2", None)
        .await
        .unwrap();
    let results = store
        .deliver(Bytes::from_static(MESSAGE), &[alice.id, bob.id])
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    for account in [alice.id, bob.id] {
        let inbox = store.find_mailbox(account, "inbox").await.unwrap().unwrap();
        let messages = store.messages(account, inbox.id).await.unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(store.body(messages[0].blob).await.unwrap(), MESSAGE);
        let structure = store.structure(messages[0].blob).await.unwrap();
        assert_eq!(structure.envelope.subject.as_deref(), Some("hi"));
    }
    let files = walk(&dir.path().join("blobs"));
    assert_eq!(files, 1, "one body file for two recipients");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
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
async fn new_accounts_get_special_use_mailboxes() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let boxes = store.mailboxes(alice.id).await.unwrap();
    let got: Vec<_> = boxes
        .iter()
        .map(|m| (m.name.as_str(), m.special_use.as_deref()))
        .collect();
    assert_eq!(got, DEFAULT_MAILBOXES);
}

#[tokio::test]
async fn authentication_checks_the_password() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    store
        .create_account("alice@example.com", "secret", None)
        .await
        .unwrap();
    let ok = store
        .authenticate("Alice@Example.com", "secret")
        .await
        .unwrap();
    assert_eq!(ok.unwrap().address, "alice@example.com");
    assert!(
        store
            .authenticate("alice@example.com", "Secret")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("nobody@example.com", "secret")
            .await
            .unwrap()
            .is_none()
    );
    store
        .set_password("alice@example.com", "new")
        .await
        .unwrap();
    assert!(
        store
            .authenticate("alice@example.com", "secret")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("alice@example.com", "new")
            .await
            .unwrap()
            .is_some()
    );
    let err = store
        .create_account("x@example.com", "", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[tokio::test]
async fn oversize_and_over_quota_are_refused() {
    let (store, _dir) = mailstore(MailstoreOptions {
        max_message_size: 100,
        default_quota: None,
        ..MailstoreOptions::default()
    })
    .await;
    let alice = store
        .create_account("alice@example.com", "pw", Some(60))
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.com", "pw", None)
        .await
        .unwrap();
    let err = store
        .deliver(Bytes::from(vec![b'x'; 101]), &[bob.id])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    let results = store
        .deliver(Bytes::from(vec![b'y'; 70]), &[alice.id, bob.id])
        .await
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().kind(),
        ErrorKind::OverQuota
    );
    assert!(results[1].is_ok());
}

#[tokio::test]
async fn accounts_cannot_reach_each_others_mailboxes() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.com", "pw", None)
        .await
        .unwrap();
    store
        .deliver(Bytes::from_static(MESSAGE), &[bob.id])
        .await
        .unwrap();
    let bobs_inbox = store.find_mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    let err = store.messages(alice.id, bobs_inbox.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let uid = evermail_types::Uid::FIRST;
    assert!(
        store
            .expunge(alice.id, bobs_inbox.id, &[uid])
            .await
            .is_err()
    );
    assert!(
        store
            .append(
                alice.id,
                bobs_inbox.id,
                Bytes::from_static(MESSAGE),
                Flags::new(),
                None
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.messages(bob.id, bobs_inbox.id).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn changes_are_announced() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let mut changes = store.subscribe();
    let delivered = store
        .deliver(Bytes::from_static(MESSAGE), &[alice.id])
        .await
        .unwrap();
    let inserted = delivered[0].as_ref().unwrap();
    let change = changes.recv().await.unwrap();
    assert_eq!(change.account, alice.id);
    assert_eq!(change.mailbox, inserted.mailbox);
    assert_eq!(change.modseq, inserted.modseq);
}

#[tokio::test]
async fn aliases_route_mail() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    store
        .add_alias("info@example.com", "alice@example.com")
        .await
        .unwrap();
    let who = store
        .resolve_recipient("INFO@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who.address, "alice@example.com");
    store.remove_alias("info@example.com").await.unwrap();
    assert!(
        store
            .resolve_recipient("info@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .remove_alias("info@example.com")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn mailboxes_are_created_and_deleted_per_account() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.com", "pw", None)
        .await
        .unwrap();
    let created = store
        .create_mailbox(alice.id, "Lists/rust", None)
        .await
        .unwrap();
    assert!(!created.subscribed, "CREATE does not subscribe");
    let again = store.create_mailbox(alice.id, "Lists/rust", None).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
    // Bob cannot delete Alice's mailbox, even knowing its id.
    let err = store.delete_mailbox(bob.id, created.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    store.delete_mailbox(alice.id, created.id).await.unwrap();
    assert!(
        store
            .find_mailbox(alice.id, "Lists/rust")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_account_named_twice_gets_one_copy() {
    let (store, _dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let results = store
        .deliver(Bytes::from_static(MESSAGE), &[alice.id, alice.id])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    let inbox = store
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.messages(alice.id, inbox.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn copies_share_the_body_and_stay_within_the_account() {
    let (store, dir) = mailstore(MailstoreOptions::default()).await;
    let alice = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap();
    let bob = store
        .create_account("bob@example.com", "pw", None)
        .await
        .unwrap();
    store
        .deliver(Bytes::from_static(MESSAGE), &[alice.id])
        .await
        .unwrap();
    let inbox = store
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let trash = store
        .find_mailbox(alice.id, "Trash")
        .await
        .unwrap()
        .unwrap();
    let original = store.messages(alice.id, inbox.id).await.unwrap().remove(0);
    let mut changes = store.subscribe();
    let missing = Uid::new(99).unwrap();
    let copies = store
        .copy_messages(alice.id, inbox.id, &[missing, original.uid], trash.id)
        .await
        .unwrap();
    assert_eq!(copies.len(), 1, "a missing UID is skipped");
    assert_eq!(copies[0].0, original.uid);
    assert_eq!(copies[0].1.mailbox, trash.id);
    assert_eq!(changes.recv().await.unwrap().mailbox, trash.id);
    let copied = store.messages(alice.id, trash.id).await.unwrap();
    assert_eq!(copied[0].blob, original.blob);
    assert_eq!(store.body(copied[0].blob).await.unwrap(), MESSAGE);
    assert_eq!(walk(&dir.path().join("blobs")), 1, "no second body file");
    // Neither side of a copy may belong to another account.
    let bob_inbox = store.find_mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    for (from, to) in [(inbox.id, bob_inbox.id), (bob_inbox.id, trash.id)] {
        let (done, err) = store
            .copy_messages(alice.id, from, &[original.uid], to)
            .await
            .unwrap_err();
        assert!(done.is_empty());
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    let (done, err) = store
        .copy_messages(bob.id, inbox.id, &[original.uid], bob_inbox.id)
        .await
        .unwrap_err();
    assert!(done.is_empty());
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
