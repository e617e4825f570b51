//! APPEND of messages past the spool threshold (1 MiB): the literal goes to a spool file
//! while it arrives and is stored from it. What is stored is byte for byte what was
//! sent, with synchronizing and non-synchronizing literals, MULTIAPPEND and a literal
//! mailbox name; APPENDLIMIT and spool errors are refused with a reason; no spool file
//! is left on any path.

mod common;

use common::{Client, TestServer, has, test_options};
use evermail_imap::ImapOptions;
use evermail_mailbox::MailstoreOptions;
use std::path::{Path, PathBuf};

const ALICE: &str = "alice@example.com";

fn message(size: usize, tag: u8) -> Vec<u8> {
    let mut m = format!("From: a@example.com\r\nSubject: large {tag}\r\n\r\n").into_bytes();
    let mut i = 0u64;
    while m.len() < size {
        m.extend_from_slice(format!("{tag} line {i} {}\r\n", i * 7919).as_bytes());
        i += 1;
    }
    m
}

async fn server_with(options: ImapOptions, spool: &Path) -> TestServer {
    let server = TestServer::start_with(
        options,
        MailstoreOptions {
            spool_dir: Some(spool.to_path_buf()),
            ..MailstoreOptions::default()
        },
    )
    .await;
    server.account(ALICE, "pw").await;
    server
}

fn spool_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Sends `tag APPEND INBOX {N}`, waits for the continuation, sends the data in pieces.
async fn append_sync(client: &mut Client, data: &[u8]) -> Vec<String> {
    client.last_tag = "ap".into();
    client
        .send(format!("ap APPEND INBOX (\\Seen) {{{}}}\r\n", data.len()).as_bytes())
        .await;
    let go = client.line().await.unwrap();
    assert!(go.starts_with("+ "), "{go}");
    for piece in data.chunks(100_000) {
        client.send(piece).await;
    }
    client.send(b"\r\n").await;
    client.until_tagged().await
}

async fn fetch_body(client: &mut Client, n: u32) -> Vec<u8> {
    client.last_tag = format!("f{n}");
    client
        .send(format!("f{n} FETCH {n} BODY.PEEK[]\r\n").as_bytes())
        .await;
    let line = client.raw_line().await.unwrap();
    let open = line.iter().position(|&b| b == b'{').unwrap();
    let close = open + line[open..].iter().position(|&b| b == b'}').unwrap();
    let reply = client.until_tagged().await;
    assert!(client.ok(&reply), "{reply:?}");
    let len: usize = std::str::from_utf8(&line[open + 1..close])
        .unwrap()
        .parse()
        .unwrap();
    line[close + 3..close + 3 + len].to_vec()
}

#[tokio::test]
async fn large_appends_are_stored_byte_for_byte() {
    let spool = tempfile::tempdir().unwrap();
    let server = server_with(test_options(), spool.path()).await;
    let mut client = server.login(ALICE).await;

    let first = message(3 * 1024 * 1024, b'a');
    let reply = append_sync(&mut client, &first).await;
    assert!(client.ok(&reply), "{reply:?}");

    // MULTIAPPEND with LITERAL+: a small message between two large ones, sent at once.
    let (second, third) = (
        message(1024 * 1024, b'b'),
        message(2 * 1024 * 1024 + 5, b'c'),
    );
    let small = b"Subject: small\r\n\r\nsmall\r\n".to_vec();
    let mut command = b"mu APPEND INBOX".to_vec();
    for m in [&second, &small, &third] {
        command.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
        command.extend_from_slice(m);
    }
    command.extend_from_slice(b"\r\n");
    client.last_tag = "mu".into();
    client.send(&command).await;
    let reply = client.until_tagged().await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(reply.last().unwrap().contains(" 2:4]"), "{reply:?}");

    // The mailbox name as a literal, then a large message.
    let fifth = message(1_500_000, b'e');
    client.last_tag = "ml".into();
    client.send(b"ml APPEND {5}\r\n").await;
    assert!(client.line().await.unwrap().starts_with("+ "));
    client
        .send(format!("INBOX {{{}}}\r\n", fifth.len()).as_bytes())
        .await;
    assert!(client.line().await.unwrap().starts_with("+ "));
    client.send(&fifth).await;
    client.send(b"\r\n").await;
    let reply = client.until_tagged().await;
    assert!(client.ok(&reply), "{reply:?}");

    let reply = client.command("SELECT INBOX").await;
    assert!(has(&reply, "* 5 EXISTS"), "{reply:?}");
    for (n, want) in [
        (1, &first),
        (2, &second),
        (3, &small),
        (4, &third),
        (5, &fifth),
    ] {
        assert!(fetch_body(&mut client, n).await == *want, "message {n}");
    }
    let reply = client.command("FETCH 1 FLAGS").await;
    assert!(has(&reply, "\\Seen"), "{reply:?}");
    assert!(spool_files(spool.path()).is_empty());
}

#[tokio::test]
async fn appendlimit_and_spool_errors_are_refused_with_a_reason() {
    let spool = tempfile::tempdir().unwrap();
    let options = ImapOptions {
        max_message_size: 2 * 1024 * 1024,
        ..test_options()
    };
    let server = server_with(options, spool.path()).await;
    let mut client = server.login(ALICE).await;
    let reply = client
        .command(&format!("APPEND INBOX {{{}}}", 3 * 1024 * 1024))
        .await;
    assert!(has(&reply, "NO [TOOBIG]"), "{reply:?}");

    // A spool directory that cannot be created: the literal is still read to its end,
    // the APPEND refused, and the session goes on.
    let blocked = tempfile::tempdir().unwrap();
    let file = blocked.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let server = server_with(test_options(), &file.join("spool")).await;
    let mut client = server.login(ALICE).await;
    let reply = append_sync(&mut client, &message(1_200_000, b'x')).await;
    assert!(has(&reply, "NO [UNAVAILABLE]"), "{reply:?}");
    assert!(has(&reply, "spool"), "{reply:?}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 0)"), "{reply:?}");
}

#[tokio::test]
async fn a_client_gone_mid_literal_leaves_no_spool_file() {
    let spool = tempfile::tempdir().unwrap();
    let server = server_with(test_options(), spool.path()).await;
    let mut client = server.login(ALICE).await;
    client.send(b"ap APPEND INBOX {3000000+}\r\n").await;
    client.send(&message(1_500_000, b'g')[..1_500_000]).await;
    // The partial file exists while the literal is arriving.
    let mut seen = false;
    for _ in 0..200 {
        if !spool_files(spool.path()).is_empty() {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(seen, "no spool file while the literal arrives");
    drop(client);
    let mut gone = false;
    for _ in 0..400 {
        if spool_files(spool.path()).is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(gone, "spool file left: {:?}", spool_files(spool.path()));
}
