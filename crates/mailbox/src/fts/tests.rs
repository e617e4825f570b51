//! The index-backed answer equals the scan's, over the real SQLite and fs backends;
//! the indexer builds what searches ask for and keeps indexes up to date.

use super::*;
use crate::MailstoreOptions;
use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, StoreHandle};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use evermail_types::Flags;
use proptest::prelude::*;
use std::time::Duration;

struct Fixture {
    store: Mailstore,
    account: AccountId,
    inbox: MailboxId,
    index_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// A mail store with text indexes and their indexer running, which waits
/// `debounce` after new mail and lets a search add at most `in_search_adds`.
async fn fixture() -> Fixture {
    fixture_with(Duration::from_millis(20), IN_SEARCH_ADDS).await
}

async fn fixture_with(debounce: Duration, in_search_adds: usize) -> Fixture {
    let options = TextIndexOptions {
        index_new_mail: false,
    };
    fixture_with_options(debounce, in_search_adds, options).await
}

async fn fixture_with_options(
    debounce: Duration,
    in_search_adds: usize,
    options: TextIndexOptions,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMeta::open(&dir.path().join("meta.sqlite"))
        .await
        .unwrap();
    let backend = FsBackend::open(&dir.path().join("blobs"), "test").unwrap();
    let blobs = BlobStore::new(vec![StoreHandle::new("local", Arc::new(backend))], 1, 1).unwrap();
    let store = Mailstore::new(Meta::new(meta), blobs, MailstoreOptions::default());
    let index_dir = dir.path().join("index");
    let indexes =
        TextIndexes::new(index_dir.clone(), options).with_limits(debounce, in_search_adds);
    assert!(store.inner.text_indexes.set(indexes).is_ok());
    let indexer = store.clone();
    tokio::spawn(async move { indexer.run_text_indexer().await });
    let account = store
        .create_account("alice@example.com", "pw", None)
        .await
        .unwrap()
        .id;
    let inbox = store
        .find_mailbox(account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    Fixture {
        store,
        account,
        inbox,
        index_dir,
        _dir: dir,
    }
}

impl Fixture {
    async fn append(&self, raw: &[u8]) {
        self.store
            .append(
                self.account,
                self.inbox,
                Bytes::copy_from_slice(raw),
                Flags::default(),
                None,
            )
            .await
            .unwrap();
    }

    async fn view(&self) -> Vec<(Uid, BlobId)> {
        let messages = self.store.messages(self.account, self.inbox).await.unwrap();
        messages.iter().map(|m| (m.uid, m.blob)).collect()
    }

    /// What a search without the index finds: every body read and parsed, or for
    /// a header key the header cache's fields (as IMAP SEARCH reads them).
    async fn scan(&self, view: &[(Uid, BlobId)], key: &TextKey) -> Vec<Uid> {
        let mut found = Vec::new();
        for (uid, blob) in view {
            let hit = match key {
                TextKey::Body(s) => self
                    .store
                    .message_text(*blob, true)
                    .await
                    .unwrap()
                    .body_contains(s),
                TextKey::Text(s) => self
                    .store
                    .message_text(*blob, true)
                    .await
                    .unwrap()
                    .text_contains(s),
                TextKey::Header(name, s) => {
                    let fields = [name.to_lowercase()];
                    // As the IMAP scan reads them: along the mailbox's rows.
                    let mut texts = self
                        .store
                        .header_texts_in(self.inbox, &[(*uid, *blob)], Some(&fields))
                        .await
                        .unwrap();
                    texts.remove(blob).unwrap().header_contains(name, s)
                }
            };
            if hit {
                found.push(*uid);
            }
        }
        found
    }

    /// The index's answer; the first search of a mailbox has none and starts the
    /// indexer, which is waited for.
    async fn indexed(&self, view: &[(Uid, BlobId)], keys: &[TextKey]) -> TextHits {
        let search = || self.store.search_text(self.account, self.inbox, view, keys);
        if let Some(hits) = search().await.unwrap() {
            return hits;
        }
        self.store.text_indexer_idle().await;
        search()
            .await
            .unwrap()
            .expect("the indexer built the index")
    }

    /// Checks that every key the index answers gets the scan's answer, and returns
    /// how many keys it answered.
    async fn check(&self, keys: &[TextKey]) -> usize {
        let view = self.view().await;
        let hits = self.indexed(&view, keys).await;
        assert!(hits.unindexed.is_empty());
        let mut answered = 0;
        for (key, got) in keys.iter().zip(hits.matches) {
            let needle = match key {
                TextKey::Body(s) | TextKey::Text(s) | TextKey::Header(_, s) => s,
            };
            let Some(got) = got else {
                assert!(needle.to_lowercase().chars().count() < MIN_INDEXED_CHARS);
                continue;
            };
            answered += 1;
            assert_eq!(got, self.scan(&view, key).await, "{key:?}");
        }
        answered
    }
}

const CORPUS: &[&str] = &[
    "From: Bob <bob@example.org>\r\nSubject: Quarterly REPORT\r\n\r\nThe figures are in the report.\r\n",
    "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Köln\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Sch=F6ne Gr=FC=DFe, bis bald.\r\n",
    "Subject: base64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
w4lsw6h2ZSBkdSBjb3VycyBkZSBwaHlzaXF1ZQ==\r\n",
    "Subject: with attachment\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSee the attached spreadsheet.\r\n\
--b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
c2VjcmV0d29yZCBpbnNpZGUgYXR0YWNobWVudA==\r\n--b--\r\n",
    "Subject: html\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hello <b>World</b> &amp; friends</p></body></html>\r\n",
    "Subject: plain\r\nX-Ticket: Ticket-4242\r\n\r\nreports, reporting and deport.\r\n",
    "From: Report Bot <reporter@example.org>\r\nTo: Ann <ann@example.com>, bob@example.org\r\n\
Cc: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\nBcc: secret-list@example.com\r\n\
Subject: lunch\r\n (folded) again\r\nX-Ticket: none\r\n\r\nNo subject here.\r\n",
    "Subject: Re: lunch\r\nsubject: a second subject\r\nReply-To: reports@example.net\r\n\r\nbody\r\n",
];

/// Every key the index answers, for each needle: BODY, TEXT, SUBJECT, FROM, TO,
/// CC, BCC and HEADER of a few fields.
fn keys(needles: &[&str]) -> Vec<TextKey> {
    const FIELDS: &[&str] = &[
        "subject", "from", "to", "cc", "bcc", "X-Ticket", "reply-to", "x-absent",
    ];
    needles
        .iter()
        .flat_map(|n| {
            let header = |f: &&str| TextKey::Header(f.to_string(), n.to_string());
            [TextKey::Body(n.to_string()), TextKey::Text(n.to_string())]
                .into_iter()
                .chain(FIELDS.iter().map(header))
        })
        .collect()
}

/// How many keys of [`keys`] there are per needle.
const KEYS_PER_NEEDLE: usize = 10;

const NEEDLES: &[&str] = &[
    "report",
    "PORT",
    "eport",
    "Grüße",
    "GRÜSSE",
    "schöne grüße",
    "köln",
    "élève",
    "physique",
    "secretword",
    "attached",
    "world & friends",
    "<b>",
    "ticket-42",
    "x-ticket",
    "subject",
    "bob@example",
    "jörg",
    "joerg@",
    "lunch",
    "(folded)",
    "d) ag",
    "ann <ann",
    "secret-list",
    "none",
    "re: lunch",
    "second subject",
    "zzzz",
    "re",
    "",
];

#[tokio::test]
async fn index_search_equals_scan_on_a_mixed_corpus() {
    let f = fixture().await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let keys = keys(NEEDLES);
    assert_eq!(f.check(&keys).await, keys.len() - 2 * KEYS_PER_NEEDLE);
    // A few answers spelled out, so the comparison cannot pass on two empty lists.
    let view = f.view().await;
    let hits = f
        .indexed(
            &view,
            &[
                TextKey::Body("PORT".into()),
                TextKey::Text("grüße".into()),
                TextKey::Body("secretword".into()),
                TextKey::Body("quarterly".into()),
                TextKey::Text("quarterly".into()),
                header("Subject", "REPORT"),
                header("from", "report"),
                header("subject", "lunch"),
                header("subject", "second subject"),
                header("cc", "jörg"),
                header("reply-to", "report"),
                header("to", "jörg"),
            ],
        )
        .await;
    let uids = |list: &[u32]| Some(list.iter().map(|u| Uid::new(*u).unwrap()).collect());
    assert_eq!(hits.matches[0], uids(&[1, 6]));
    assert_eq!(hits.matches[1], uids(&[2]));
    assert_eq!(hits.matches[2], uids(&[]));
    assert_eq!(hits.matches[3], uids(&[]));
    assert_eq!(hits.matches[4], uids(&[1]));
    assert_eq!(hits.matches[5], uids(&[1]));
    assert_eq!(hits.matches[6], uids(&[7]));
    assert_eq!(hits.matches[7], uids(&[7, 8]));
    assert_eq!(hits.matches[8], uids(&[8]));
    assert_eq!(hits.matches[9], uids(&[7]));
    assert_eq!(hits.matches[10], uids(&[8]));
    assert_eq!(hits.matches[11], uids(&[]));
}

fn header(name: &str, needle: &str) -> TextKey {
    TextKey::Header(name.into(), needle.into())
}

#[tokio::test]
async fn expunged_never_return_and_new_deliveries_are_found() {
    let f = fixture().await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let report = [TextKey::Body("report".into())];
    let found = |hits: TextHits| hits.matches[0].clone().unwrap();
    let view = f.view().await;
    assert_eq!(found(f.indexed(&view, &report).await).len(), 2);

    let first = view[0].0;
    f.store.expunge(f.account, f.inbox, &[first]).await.unwrap();
    let view = f.view().await;
    assert_eq!(
        found(f.indexed(&view, &report).await),
        [Uid::new(6).unwrap()]
    );
    // Even a view that still shows it (a session that has not been told) gets the
    // index's answer only for what the index holds: the expunged one is gone there.
    let mut stale = view.clone();
    stale.insert(0, (first, f.view().await[0].1));
    let hits = f.indexed(&stale, &report).await;
    assert!(!found(hits).contains(&first));

    f.append(b"Subject: late\r\n\r\nA new report arrived.\r\n")
        .await;
    let view = f.view().await;
    let hits = f.indexed(&view, &report).await;
    assert_eq!(found(hits), [Uid::new(6).unwrap(), view.last().unwrap().0]);
    assert_eq!(
        f.check(&keys(NEEDLES)).await,
        (NEEDLES.len() - 2) * KEYS_PER_NEEDLE
    );
}

#[tokio::test]
async fn a_deleted_index_is_rebuilt() {
    let f = fixture().await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let keys = keys(NEEDLES);
    f.check(&keys).await;
    assert!(f.index_dir.exists());
    std::fs::remove_dir_all(&f.index_dir).unwrap();
    f.append(b"Subject: after\r\n\r\nreport after the index was deleted\r\n")
        .await;
    f.check(&keys).await;
    assert!(f.index_dir.exists(), "rebuilt");
    // And with its files damaged, the search goes on without it and it is rebuilt.
    for entry in walk(&f.index_dir) {
        if entry.extension().is_some_and(|e| e == "store") {
            std::fs::write(&entry, b"garbage").unwrap();
        }
    }
    let view = f.view().await;
    let got = f
        .store
        .search_text(f.account, f.inbox, &view, &keys)
        .await
        .unwrap();
    if let Some(hits) = got {
        // The damage was not seen (nothing was read from those files).
        assert_eq!(hits.matches.len(), keys.len());
    }
    f.check(&keys).await;
}

/// Waits for `done` to hold, which the indexer makes true in the background; fails
/// the test after a minute rather than hang.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn the_first_search_scans_and_the_indexer_builds_and_keeps_the_index() {
    let f = fixture().await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let stats = || f.store.text_index_stats();
    let keys = keys(&["report", "lunch", "jörg"]);
    let view = f.view().await;
    // No index yet: the search gets no answer (the caller scans) and asks for one.
    let first = f.store.search_text(f.account, f.inbox, &view, &keys);
    assert!(first.await.unwrap().is_none());
    assert_eq!(stats().searches_unindexed, 1);
    f.store.text_indexer_idle().await;
    assert_eq!(stats().added_in_background, CORPUS.len() as u64);
    let inbox = f.store.mailbox(f.account, f.inbox).await.unwrap();
    let dir = f
        .index_dir
        .join(f.account.0.to_string())
        .join(format!("{}-{}", f.inbox.0, inbox.uidvalidity.0));
    assert!(dir.join("meta.json").exists(), "the index is on disk");

    // Later searches use it, with nothing left for them to add.
    assert_eq!(f.check(&keys).await, keys.len());
    assert_eq!(stats().searches_indexed, 1);
    assert_eq!(stats().added_in_search, 0);

    // New mail is added by the indexer after the debounce, before any search.
    f.append(b"Subject: lunch report\r\n\r\nthe report on lunch\r\n")
        .await;
    f.append(b"From: =?utf-8?q?J=C3=B6rg?= <j@example.net>\r\n\r\nx\r\n")
        .await;
    let added = CORPUS.len() as u64 + 2;
    eventually("new mail indexed", || stats().added_in_background == added).await;
    assert_eq!(f.check(&keys).await, keys.len());
    assert_eq!(stats().added_in_search, 0);

    // Expunged messages are never an answer.
    let view = f.view().await;
    let some: Vec<Uid> = view.iter().step_by(3).map(|(uid, _)| *uid).collect();
    f.store.expunge(f.account, f.inbox, &some).await.unwrap();
    assert_eq!(f.check(&keys).await, keys.len());
    let hits = f.indexed(&f.view().await, &keys).await;
    for uids in hits.matches.iter().flatten() {
        assert!(uids.iter().all(|uid| !some.contains(uid)));
    }
    assert_eq!(stats().searches_unindexed, 1);
    assert_eq!(stats().added_in_search, 0);
    assert_eq!(stats().failures, 0);
}

#[tokio::test]
async fn a_search_leaves_many_missing_messages_to_the_indexer() {
    // The indexer waits an hour after new mail; a search adds at most 2 messages.
    let f = fixture_with(Duration::from_secs(3600), 2).await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let keys = keys(&["report", "lunch"]);
    f.check(&keys).await;
    let built = f.store.text_index_stats().added_in_background;
    assert_eq!(built, CORPUS.len() as u64);

    // Two new messages: the search adds them itself.
    for _ in 0..2 {
        f.append(b"Subject: report\r\n\r\nlunch\r\n").await;
    }
    f.check(&keys).await;
    assert_eq!(f.store.text_index_stats().added_in_search, 2);

    // Three: more than a search may add. It answers for what the index holds and
    // leaves the rest to its caller's scan, and the indexer adds them.
    for _ in 0..3 {
        f.append(b"Subject: lunch\r\n\r\nreport\r\n").await;
    }
    let view = f.view().await;
    let new: BTreeSet<Uid> = view.iter().rev().take(3).map(|(uid, _)| *uid).collect();
    let hits = f
        .store
        .search_text(f.account, f.inbox, &view, &keys)
        .await
        .unwrap()
        .expect("an index");
    assert_eq!(hits.unindexed, new);
    for (key, got) in keys.iter().zip(&hits.matches) {
        let want: Vec<Uid> = f
            .scan(&view, key)
            .await
            .into_iter()
            .filter(|uid| !new.contains(uid))
            .collect();
        assert_eq!(got.as_ref(), Some(&want), "{key:?}");
    }
    f.store.text_indexer_idle().await;
    assert_eq!(f.store.text_index_stats().added_in_search, 2);
    assert_eq!(
        f.store.text_index_stats().added_in_background,
        built + 3,
        "the indexer added them"
    );
    f.check(&keys).await;

    // While the indexer builds an index, a search answers for what it committed
    // and leaves the rest to its scan, adding nothing itself.
    f.append(b"Subject: lunch\r\n\r\nreport\r\n").await;
    let view = f.view().await;
    let newest = view.last().unwrap().0;
    let indexes = f.store.inner.text_indexes.get().unwrap();
    let inbox = f.store.mailbox(f.account, f.inbox).await.unwrap();
    let building = Building::start(indexes, (f.inbox, inbox.uidvalidity.0.get()));
    let search = || f.store.search_text(f.account, f.inbox, &view, &keys);
    let hits = search().await.unwrap().expect("the committed part answers");
    assert_eq!(hits.unindexed, BTreeSet::from([newest]));
    for (key, got) in keys.iter().zip(&hits.matches) {
        let mut want = f.scan(&view, key).await;
        want.retain(|uid| *uid != newest);
        assert_eq!(got.as_ref(), Some(&want), "{key:?}");
    }
    assert_eq!(f.store.text_index_stats().searches_partial, 1);
    assert_eq!(f.store.text_index_stats().added_in_search, 2);
    drop(building);
    let hits = search().await.unwrap().expect("an index");
    assert!(hits.unindexed.is_empty());
    assert_eq!(f.store.text_index_stats().added_in_search, 3);
}

#[tokio::test]
async fn with_index_new_mail_the_indexer_builds_before_any_search() {
    // A search may add 2 messages, so the build (the corpus appended within the
    // debounce) goes through the builder thread.
    let options = TextIndexOptions {
        index_new_mail: true,
    };
    let f = fixture_with_options(Duration::from_millis(500), 2, options).await;
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
    }
    let stats = || f.store.text_index_stats();
    let all = CORPUS.len() as u64;
    eventually("the new mail indexed", || {
        stats().added_in_background == all
    })
    .await;
    f.store.text_indexer_idle().await;

    // The first search already reads the index.
    let keys = keys(&["report", "lunch", "jörg"]);
    assert_eq!(f.check(&keys).await, keys.len());
    assert_eq!(stats().searches_unindexed, 0);
    assert_eq!(stats().searches_indexed, 1);
    assert_eq!(stats().added_in_search, 0);

    // The build ran on the indexer's own thread, at a lower priority.
    let nice = indexer_thread_nice().expect("an evermail-index thread");
    assert_eq!(nice, INDEXER_NICE);

    // A flag change leaves an index that holds the newest message alone; new mail
    // is added.
    let jobs = stats().jobs;
    let (uid, _) = f.view().await[0];
    f.store
        .store_flags(
            f.account,
            f.inbox,
            &[uid],
            crate::FlagChange::Add,
            &Flags::from_iter([evermail_types::Flag::Seen]),
        )
        .await
        .unwrap();
    eventually("the flag change's job ran", || stats().jobs > jobs).await;
    assert_eq!(stats().added_in_background, all);
    f.append(b"Subject: lunch\r\n\r\nreport\r\n").await;
    eventually("the new message indexed", || {
        stats().added_in_background == all + 1
    })
    .await;
    assert_eq!(f.check(&keys).await, keys.len());
    assert_eq!(stats().searches_unindexed, 0);
    assert_eq!(stats().failures, 0);
}

#[tokio::test]
async fn a_message_too_large_to_index_is_left_to_the_scan() {
    let options = TextIndexOptions {
        index_new_mail: true,
    };
    let f = fixture_with_options(Duration::from_millis(20), IN_SEARCH_ADDS, options).await;
    f.append(b"Subject: lunch\r\n\r\nreport\r\n").await;
    let mut big = b"Subject: big report\r\n\r\n".to_vec();
    big.resize(MAX_INDEXED_BYTES as usize + 1, b'x');
    f.append(&big).await;
    let stats = || f.store.text_index_stats();
    eventually("the small message indexed", || {
        stats().added_in_background == 1
    })
    .await;
    f.store.text_indexer_idle().await;
    let view = f.view().await;
    let big_uid = view[1].0;
    // The index answers for the small one; the large one was never read into it
    // and is the caller's to scan.
    let hits = f
        .store
        .search_text(f.account, f.inbox, &view, &keys(&["report"]))
        .await
        .unwrap()
        .expect("an index");
    assert_eq!(hits.unindexed, BTreeSet::from([big_uid]));
    assert_eq!(hits.matches[0], Some(vec![view[0].0]), "BODY report");
    assert!(hits.matches.iter().flatten().all(|m| !m.contains(&big_uid)));
    assert_eq!(stats().added_in_background + stats().added_in_search, 1);
    assert_eq!(stats().failures, 0);
}

/// The nice value of this process's `evermail-index` thread, from /proc.
fn indexer_thread_nice() -> Option<i32> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != "evermail-index" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the command's closing parenthesis: state is the 3rd field
        // of stat, nice the 19th.
        let rest = &stat[stat.rfind(')')? + 2..];
        return rest.split(' ').nth(16)?.parse().ok();
    }
    None
}

#[tokio::test]
async fn the_sweep_removes_indexes_of_deleted_mailboxes_only() {
    let f = fixture().await;
    let other = f
        .store
        .create_mailbox(f.account, "Projects", None)
        .await
        .unwrap();
    for raw in CORPUS {
        f.append(raw.as_bytes()).await;
        f.store
            .append(
                f.account,
                other.id,
                Bytes::copy_from_slice(raw.as_bytes()),
                Flags::default(),
                None,
            )
            .await
            .unwrap();
    }
    let keys = keys(NEEDLES);
    f.check(&keys).await;
    let messages = f.store.messages(f.account, other.id).await.unwrap();
    let view: Vec<_> = messages.iter().map(|m| (m.uid, m.blob)).collect();
    let search = || f.store.search_text(f.account, other.id, &view, &keys);
    assert!(search().await.unwrap().is_none(), "not built yet");
    f.store.text_indexer_idle().await;
    search().await.unwrap().expect("the index answers");
    let account_dir = f.index_dir.join(f.account.0.to_string());
    let dir_of =
        |m: &crate::MailboxRecord| account_dir.join(format!("{}-{}", m.id.0, m.uidvalidity.0));
    let inbox = f.store.mailbox(f.account, f.inbox).await.unwrap();
    assert!(dir_of(&inbox).exists() && dir_of(&other).exists());
    // Something that is not an index is never touched.
    std::fs::create_dir_all(account_dir.join("notes")).unwrap();

    assert_eq!(f.store.sweep_text_indexes().await.unwrap(), 0, "both live");
    f.store.delete_mailbox(f.account, other.id).await.unwrap();
    assert_eq!(f.store.sweep_text_indexes().await.unwrap(), 1);
    assert!(
        !dir_of(&other).exists(),
        "the deleted mailbox's index is gone"
    );
    assert!(dir_of(&inbox).exists(), "the live one stays");
    assert!(account_dir.join("notes").exists());
    // The live index still answers as the scan does.
    f.check(&keys).await;
    assert_eq!(f.store.sweep_text_indexes().await.unwrap(), 0);
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A small message whose body is `body`, sometimes quoted-printable in ISO-8859-1.
fn message(subject: &str, from: &str, body: &str, latin1_qp: bool) -> Vec<u8> {
    let subject = format!("{subject}\r\nFrom: {from}");
    if latin1_qp && body.chars().all(|c| (c as u32) < 256) {
        let mut qp = String::new();
        for c in body.chars() {
            let b = c as u32;
            if b >= 128 || c == '=' {
                qp.push_str(&format!("={b:02X}"));
            } else {
                qp.push(c);
            }
        }
        format!(
            "Subject: {subject}\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
        )
        .into_bytes()
    } else {
        format!("Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
            .into_bytes()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn index_equals_scan_for_random_corpora(
        bodies in prop::collection::vec((
            "[abAB äÖß]{0,6}",
            "[abAB äÖß]{0,6}( <[ab]{1,3}@[ab]{1,3}\\.[ab]{2}>)?",
            "[abcAB äÖßx.]{0,40}",
            any::<bool>(),
        ), 1..8),
        needles in prop::collection::vec("[abAB äöÖßx@<>]{1,5}", 1..6),
        picks in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, 0usize..40, 3usize..8), 0..6),
    ) {
        // Substrings of the subjects, senders and bodies, so matches are common,
        // besides random strings.
        let mut needles = needles;
        for (which, part, start, len) in &picks {
            let (subject, from, body, _) = &bodies[which.index(bodies.len())];
            let text = [subject, from, body][*part];
            let chars: Vec<char> = text.chars().collect();
            let start = (*start).min(chars.len());
            let end = (start + len).min(chars.len());
            needles.push(chars[start..end].iter().collect());
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let f = fixture().await;
            for (subject, from, body, qp) in &bodies {
                f.append(&message(subject, from, body, *qp)).await;
            }
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            f.check(&keys(&needles)).await;
            // Expunge every other message, and search again.
            let view = f.view().await;
            let odd: Vec<Uid> = view.iter().step_by(2).map(|(uid, _)| *uid).collect();
            f.store.expunge(f.account, f.inbox, &odd).await.unwrap();
            f.check(&keys(&needles)).await;
        });
    }
}

#[test]
fn the_delta_of_an_index_and_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = TextIndex::open(dir.path()).unwrap();
    for uid in [1, 2, 3, 5, 9] {
        let text = IndexedText {
            uid,
            headers: Vec::new(),
            body: String::new(),
        };
        index.add(text).unwrap();
    }
    let view = |uids: &[u32]| -> Vec<(Uid, BlobId)> {
        uids.iter()
            .map(|u| (Uid::new(*u).unwrap(), BlobId([*u as u8; 32])))
            .collect()
    };
    let uids = |list: &[(Uid, BlobId)]| list.iter().map(|(u, _)| u.get()).collect::<Vec<_>>();
    // 1 was expunged; 4 and 6 are new; 9 is above the view's largest (a delivery
    // the session has not seen yet) and stays.
    let Delta { gone, missing } = delta(&index, &view(&[2, 3, 4, 5, 6]));
    assert_eq!(gone, [1]);
    assert_eq!(uids(&missing), [4, 6]);
    let Delta { gone, missing } = delta(&index, &view(&[]));
    assert!(gone.is_empty() && missing.is_empty());
    let Delta { gone, missing } = delta(&index, &view(&[10]));
    assert_eq!(gone, [1, 2, 3, 5, 9]);
    assert_eq!(uids(&missing), [10]);
    assert_eq!(
        uids(&sort_view(view(&[3, 1, 2, 1]))),
        [1, 2, 3],
        "a view out of order is sorted"
    );
}
