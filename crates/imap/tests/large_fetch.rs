//! FETCH of messages past the spool threshold (1 MiB): the body is read into a
//! verified spool file and served from its map, the literal written in pieces. The
//! bytes must be exactly those of a small message's path: whole, partial, sections,
//! over plaintext and TLS; the spool file is gone once the response is written.

mod common;

use common::{Client, TestServer, test_options};
use evermail_mailbox::MailstoreOptions;

/// A multipart message of about `size` bytes: a text part with lines that start with
/// dots and a base64 part, so sections and BINARY have something to cut.
fn large_message(size: usize) -> Vec<u8> {
    let mut m = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: large\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\n"
        .to_vec();
    let mut i = 0u64;
    while m.len() < size / 2 {
        m.extend_from_slice(format!(".line {i} of the first part {}\r\n", i * 7919).as_bytes());
        i += 1;
    }
    m.extend_from_slice(b"--b\r\nContent-Type: application/octet-stream\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
    while m.len() < size {
        m.extend_from_slice(
            b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n",
        );
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

async fn server() -> TestServer {
    let spool = tempfile::tempdir().unwrap().keep();
    TestServer::start_with(
        test_options(),
        MailstoreOptions {
            spool_dir: Some(spool),
            ..MailstoreOptions::default()
        },
    )
    .await
}

/// The literal data of the one FETCH item named `item` in `lines`.
fn literal_of(raw: &[u8], item: &str) -> Vec<u8> {
    // A literal8 (`~{N}`) for binary data holding NUL.
    let open = match find(raw, format!("{item} {{").as_bytes()) {
        Some(at) => at + item.len() + 1,
        None => {
            let at =
                find(raw, format!("{item} ~{{").as_bytes()).unwrap_or_else(|| panic!("{item}"));
            at + item.len() + 2
        }
    };
    let close = open + raw[open..].iter().position(|&b| b == b'}').unwrap();
    let n: usize = std::str::from_utf8(&raw[open + 1..close])
        .unwrap()
        .parse()
        .unwrap();
    raw[close + 3..close + 3 + n].to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `command` and returns the raw response bytes through the tagged reply.
async fn raw_command<S>(client: &mut Client<S>, command: &str) -> (Vec<String>, Vec<u8>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tag = format!("r{}", command.len());
    client.last_tag = tag.clone();
    client.send(format!("{tag} {command}\r\n").as_bytes()).await;
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let line = client.raw_line().await.expect("a response");
        raw.extend_from_slice(&line);
        raw.extend_from_slice(b"\r\n");
        let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        let done = text.starts_with(&format!("{tag} "));
        lines.push(text);
        if done {
            return (lines, raw);
        }
    }
}

async fn check_fetches<S>(client: &mut Client<S>, message: &[u8], spool_dir: &std::path::Path)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (lines, raw) = raw_command(client, "FETCH 1 (BODY.PEEK[] RFC822.SIZE)").await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    assert_eq!(literal_of(&raw, "BODY[]"), message);
    assert!(find(&raw, format!("RFC822.SIZE {}", message.len()).as_bytes()).is_some());

    let (lines, raw) = raw_command(client, "FETCH 1 (BODY.PEEK[]<1000.2000000>)").await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    assert_eq!(literal_of(&raw, "BODY[]<1000>"), &message[1000..2_001_000]);

    // Two large literals in one response, with small items between and after.
    let (lines, raw) = raw_command(client, "FETCH 1 (BODY.PEEK[1] UID BINARY.PEEK[] FLAGS)").await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    let part1 = literal_of(&raw, "BODY[1]");
    let start = find(message, b".line 0").unwrap();
    assert_eq!(part1, &message[start..start + part1.len()]);
    // The part ends where the CRLF before its boundary starts.
    assert!(message[start + part1.len()..].starts_with(b"\r\n--b\r\n"));
    assert!(part1.len() > 1_000_000);
    assert_eq!(literal_of(&raw, "BINARY[]"), message);
    assert!(find(&raw, b"UID 1 ").is_some() && find(&raw, b"FLAGS (").is_some());

    let (lines, raw) = raw_command(client, "FETCH 1 (RFC822.TEXT BINARY.PEEK[2])").await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    let text = literal_of(&raw, "RFC822.TEXT");
    assert!(message.ends_with(&text) && text.starts_with(b"--b\r\n"));
    let binary = literal_of(&raw, "BINARY[2]");
    assert!(binary.len() > 100_000 && binary[..48] == (0u8..48).collect::<Vec<_>>()[..]);

    // Every spool file was removed once its response was written.
    let left: Vec<_> = std::fs::read_dir(spool_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left: {left:?}");
}

#[tokio::test]
async fn a_large_message_is_fetched_byte_for_byte() {
    let server = server().await;
    let account = server.account("alice@example.com", "pw").await;
    let message = large_message(3 * 1024 * 1024);
    server.deliver(&account, &message).await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(client.ok(&reply), "{reply:?}");
    let spool = server.mailstore.spool_dir();
    check_fetches(&mut client, &message, &spool).await;
}

#[tokio::test]
async fn a_large_message_is_fetched_over_tls() {
    let spool = tempfile::tempdir().unwrap().keep();
    let server = TestServer::start_tls_with(
        test_options(),
        MailstoreOptions {
            spool_dir: Some(spool),
            ..MailstoreOptions::default()
        },
    )
    .await;
    let account = server.account("alice@example.com", "pw").await;
    let message = large_message(2 * 1024 * 1024 + 17);
    server.deliver(&account, &message).await;
    let mut client = server.connect_tls().await;
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("SELECT INBOX").await;
    assert!(client.ok(&reply), "{reply:?}");
    let spool = server.mailstore.spool_dir();
    check_fetches(&mut client, &message, &spool).await;
}

#[tokio::test]
async fn a_corrupt_large_body_is_never_served() {
    let server = server().await;
    let account = server.account("alice@example.com", "pw").await;
    let message = large_message(1536 * 1024);
    server.deliver(&account, &message).await;
    // Flip one byte of the only copy.
    let blob = walk(&server.dir.path().join("blobs"))
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() == message.len() as u64)
        .expect("the stored body");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1_200_000] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(client.ok(&reply), "{reply:?}");
    let (lines, raw) = raw_command(&mut client, "FETCH 1 (BODY.PEEK[])").await;
    assert!(
        lines.last().unwrap().contains("NO [SERVERBUG]"),
        "{lines:?}"
    );
    assert!(find(&raw, b"BODY[]").is_none());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
