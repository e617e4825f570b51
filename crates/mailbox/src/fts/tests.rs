//! The index-backed answer equals the scan's, over the real SQLite and fs backends.

use super::*;
use crate::MailstoreOptions;
use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, StoreHandle};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use evermail_types::Flags;
use proptest::prelude::*;

struct Fixture {
    store: Mailstore,
    account: AccountId,
    inbox: MailboxId,
    index_dir: PathBuf,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMeta::open(&dir.path().join("meta.sqlite"))
        .await
        .unwrap();
    let backend = FsBackend::open(&dir.path().join("blobs"), "test").unwrap();
    let blobs = BlobStore::new(vec![StoreHandle::new("local", Arc::new(backend))], 1, 1).unwrap();
    let store = Mailstore::new(Meta::new(meta), blobs, MailstoreOptions::default());
    let index_dir = dir.path().join("index");
    store.enable_text_index(index_dir.clone());
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

    /// What a search without the index finds: every body read and parsed.
    async fn scan(&self, view: &[(Uid, BlobId)], key: &TextKey) -> Vec<Uid> {
        let mut found = Vec::new();
        for (uid, blob) in view {
            let text = self.store.message_text(*blob, true).await.unwrap();
            let hit = match key {
                TextKey::Body(s) => text.body_contains(s),
                TextKey::Text(s) => text.text_contains(s),
            };
            if hit {
                found.push(*uid);
            }
        }
        found
    }

    async fn indexed(&self, view: &[(Uid, BlobId)], keys: &[TextKey]) -> TextHits {
        self.store
            .search_text(self.account, self.inbox, view, keys)
            .await
            .unwrap()
            .expect("the index is enabled")
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
                TextKey::Body(s) | TextKey::Text(s) => s,
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
];

fn keys(needles: &[&str]) -> Vec<TextKey> {
    needles
        .iter()
        .flat_map(|n| [TextKey::Body(n.to_string()), TextKey::Text(n.to_string())])
        .collect()
}

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
    assert_eq!(f.check(&keys).await, keys.len() - 4);
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
            ],
        )
        .await;
    let uids = |list: &[u32]| Some(list.iter().map(|u| Uid::new(*u).unwrap()).collect());
    assert_eq!(hits.matches[0], uids(&[1, 6]));
    assert_eq!(hits.matches[1], uids(&[2]));
    assert_eq!(hits.matches[2], uids(&[]));
    assert_eq!(hits.matches[3], uids(&[]));
    assert_eq!(hits.matches[4], uids(&[1]));
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
    assert_eq!(found(hits), [Uid::new(6).unwrap(), Uid::new(7).unwrap()]);
    assert_eq!(f.check(&keys(NEEDLES)).await, NEEDLES.len() * 2 - 4);
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
    f.store
        .search_text(f.account, other.id, &view, &keys)
        .await
        .unwrap()
        .expect("the index answers");
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
fn message(subject: &str, body: &str, latin1_qp: bool) -> Vec<u8> {
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
        bodies in prop::collection::vec(("[abAB äÖß]{0,6}", "[abcAB äÖßx.]{0,40}", any::<bool>()), 1..8),
        needles in prop::collection::vec("[abAB äöÖßx]{1,5}", 1..6),
        picks in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, 3usize..8), 0..4),
    ) {
        // Substrings of the bodies, so matches are common, besides random strings.
        let mut needles = needles;
        for (which, start, len) in &picks {
            let (_, body, _) = &bodies[which.index(bodies.len())];
            let chars: Vec<char> = body.chars().collect();
            let start = (*start).min(chars.len());
            let end = (start + len).min(chars.len());
            needles.push(chars[start..end].iter().collect());
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let f = fixture().await;
            for (subject, body, qp) in &bodies {
                f.append(&message(subject, body, *qp)).await;
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
