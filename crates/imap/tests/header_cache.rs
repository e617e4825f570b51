//! FETCH of header items and header SEARCH served from the header cache: byte for byte
//! what cutting the header from the body gives, and without reading the blob store.

mod common;

use common::{Client, TestServer, has};

/// Sends `tag command` and returns every raw line (literals joined in) through the
/// tagged reply.
async fn raw(client: &mut Client, tag: &str, command: &str) -> Vec<Vec<u8>> {
    client.send(format!("{tag} {command}\r\n").as_bytes()).await;
    let mut lines = Vec::new();
    loop {
        let line = client.raw_line().await.expect("a reply");
        let done = line.starts_with(format!("{tag} ").as_bytes());
        lines.push(line);
        if done {
            return lines;
        }
    }
}

const HEADER_ITEMS: &str = "BODY.PEEK[HEADER] RFC822.HEADER \
    BODY.PEEK[HEADER.FIELDS (Subject FROM x-none)] BODY.PEEK[HEADER.FIELDS.NOT (subject)] \
    BODY.PEEK[HEADER]<3.10>";

/// Messages whose header is easy to cut wrongly.
fn tricky() -> Vec<(Vec<u8>, Vec<u8>)> {
    let long = format!("X-Long: {}\r\n", "a".repeat(70 * 1024));
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (
            b"Subject: crlf\r\nFrom: a@example.com\r\n\r\nbody\r\n".to_vec(),
            b"Subject: crlf\r\nFrom: a@example.com\r\n\r\n",
        ),
        (
            b"Subject: bare LF\nFrom: b@example.com\n\nbody\n".to_vec(),
            b"Subject: bare LF\nFrom: b@example.com\n\n",
        ),
        (
            b"Subject: no body\r\nFrom: c@example.com\r\n\r\n".to_vec(),
            b"Subject: no body\r\nFrom: c@example.com\r\n\r\n",
        ),
        (
            b"Subject: folded\r\n\tacross lines\r\nFrom: J\xf6rg <d@example.com>\r\nX-8bit: \xe2\x82\xac\r\n\r\nbody"
                .to_vec(),
            b"Subject: folded\r\n\tacross lines\r\nFrom: J\xf6rg <d@example.com>\r\nX-8bit: \xe2\x82\xac\r\n\r\n",
        ),
        (b"Subject: no blank line\r\nFrom: e@example.com\r\n".to_vec(), b""),
        (
            format!("Subject: too long to cache\r\n{long}\r\nbody").into_bytes(),
            b"",
        ),
    ];
    cases.into_iter().map(|(m, h)| (m, h.to_vec())).collect()
}

#[tokio::test]
async fn header_items_from_the_cache_equal_the_body_cut() {
    let server = TestServer::start().await;
    let account = server.account("alice@example.com", "pw").await;
    let messages = tricky();
    for (message, _) in &messages {
        server.deliver(&account, message).await;
    }
    // The same body twice: two messages, one blob row in the batch.
    server.deliver(&account, &messages[0].0).await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(client.ok(&reply));
    let count = messages.len() + 1;
    for seq in 1..=count {
        let cached = raw(&mut client, "a", &format!("FETCH {seq} ({HEADER_ITEMS})")).await;
        let cut = raw(
            &mut client,
            "b",
            &format!("FETCH {seq} ({HEADER_ITEMS} BODY.PEEK[])"),
        )
        .await;
        assert!(cached.last().unwrap().starts_with(b"a OK"), "{cached:?}");
        assert!(cut.last().unwrap().starts_with(b"b OK"));
        // Same items first, then BODY[] only in the second.
        let cached_line = &cached[0];
        let prefix = &cached_line[..cached_line.len() - 1];
        assert!(
            cut[0].starts_with(prefix),
            "message {seq}:\n{}\n{}",
            String::from_utf8_lossy(cached_line),
            String::from_utf8_lossy(&cut[0])
        );
        let want = &messages[(seq - 1) % messages.len()].1;
        if !want.is_empty() {
            let mut literal = format!("BODY[HEADER] {{{}}}\r\n", want.len()).into_bytes();
            literal.extend_from_slice(want);
            assert!(
                cached_line.windows(literal.len()).any(|w| w == literal),
                "message {seq}: {}",
                String::from_utf8_lossy(cached_line)
            );
        }
    }
    // The whole set at once answers the same.
    let all = raw(&mut client, "c", &format!("FETCH 1:* ({HEADER_ITEMS})")).await;
    assert_eq!(all.len(), count + 1);
}

#[tokio::test]
async fn header_only_fetch_and_search_do_not_read_the_blob_store() {
    let server = TestServer::start().await;
    let account = server.account("alice@example.com", "pw").await;
    server
        .deliver(
            &account,
            b"Subject: cached\r\nFrom: Bob <bob@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nthe body\r\n",
        )
        .await;
    server
        .deliver(
            &account,
            b"Subject: another\r\nFrom: carol@example.org\r\n\r\nsecond body\r\n",
        )
        .await;
    // Remove every body file: only the metadata database is left.
    let mut removed = 0;
    let mut dirs = vec![server.dir.path().join("blobs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                std::fs::remove_file(&path).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed >= 2, "removed {removed} files");

    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(client.ok(&reply));
    let reply = client
        .command(
            "FETCH 1:2 (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        )
        .await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(has(&reply, "Subject: cached"), "{reply:?}");
    assert!(has(&reply, "Subject: another"), "{reply:?}");
    let reply = client.command("FETCH 1 (BODY.PEEK[HEADER])").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(has(&reply, "From: Bob <bob@example.org>"), "{reply:?}");

    let reply = client.command("SEARCH FROM carol").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(has(&reply, "* SEARCH 2"), "{reply:?}");
    let reply = client.command("SORT (SUBJECT) UTF-8 ALL").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(has(&reply, "* SORT 2 1"), "{reply:?}");

    // What needs the body still reads it, and the body is gone.
    let reply = client.command("FETCH 1 (BODY.PEEK[])").await;
    assert!(!client.ok(&reply), "{reply:?}");
    let reply = client.command("SEARCH BODY second").await;
    assert!(!client.ok(&reply), "{reply:?}");
}
