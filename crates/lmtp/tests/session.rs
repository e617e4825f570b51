//! One test per behaviour of the LMTP session, each against a real server over a real
//! mail store, driven by a raw TCP client.

mod common;

use common::{MESSAGE, TestServer, dot_stuffed, start};
use evermail_lmtp::LmtpOptions;
use std::time::{Duration, Instant};

async fn server_with_alice() -> (TestServer, evermail_types::AccountId) {
    let server = start(LmtpOptions::default()).await;
    let alice = server.account("alice@example.com", None).await;
    (server, alice)
}

#[tokio::test]
async fn lhlo_advertises_the_extensions() {
    let server = start(LmtpOptions {
        max_message_size: 12345,
        ..LmtpOptions::default()
    })
    .await;
    let mut client = server.client().await;
    let reply = client.lhlo().await;
    assert_eq!(
        reply.lines,
        [
            "lmtp.test",
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "SIZE 12345",
            "CHUNKING",
            "SMTPUTF8"
        ]
    );
    // Python's smtplib sends socket.getfqdn(), which need not be a valid domain.
    assert_eq!(client.cmd("LHLO my_host.local").await.code, 250);
    client.expect("VRFY alice", 252, "2.5.0").await;
    client.expect("HELP", 214, "2.0.0").await;
    client.expect("QUIT", 221, "2.0.0").await;
    assert!(client.replies_until_closed().await.is_empty());
}

#[tokio::test]
async fn unknown_recipient_is_refused_and_the_other_gets_the_message() {
    let (server, alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<sender@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client
        .expect("RCPT TO:<nobody@example.com>", 550, "5.1.1")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(MESSAGE)).await;
    let reply = client.reply().await;
    assert_eq!((reply.code, reply.enhanced()), (250, "2.0.0"), "{reply:?}");
    assert!(reply.lines[0].contains("alice@example.com"), "{reply:?}");
    // Exactly one reply after the data: the next one answers NOOP.
    client.expect("NOOP", 250, "2.0.0").await;
    assert_eq!(server.inbox(alice).await, [MESSAGE]);
}

#[tokio::test]
async fn dots_are_unstuffed() {
    let (server, alice) = server_with_alice().await;
    let message: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nx.\r\n";
    let mut client = server.client().await;
    client.lhlo().await;
    client.expect("MAIL FROM:<>", 250, "2.1.0").await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    let wire = dot_stuffed(message);
    assert!(wire.starts_with(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n..\r\n"));
    client.send(&wire).await;
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(server.inbox(alice).await, [message]);
}

#[tokio::test]
async fn a_whole_pipelined_transaction_in_one_write() {
    let (server, alice) = server_with_alice().await;
    let bob = server.account("bob@example.com", None).await;
    let mut client = server.client().await;
    let mut wire = b"LHLO client.test\r\nMAIL FROM:<s@example.org>\r\n\
        RCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n\
        RCPT TO:<bob@example.com>\r\nDATA\r\n"
        .to_vec();
    wire.extend_from_slice(&dot_stuffed(MESSAGE));
    wire.extend_from_slice(b"NOOP\r\nQUIT\r\n");
    client.send(&wire).await;
    let replies = client.replies_until_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 250, 250, 550, 250, 354, 250, 250, 250, 221]);
    assert_eq!(server.inbox(alice).await, [MESSAGE]);
    assert_eq!(server.inbox(bob).await, [MESSAGE]);
}

#[tokio::test]
async fn bdat_chunks_are_stored_verbatim() {
    let (server, alice) = server_with_alice().await;
    let bob = server.account("bob@example.com", None).await;
    let message: &[u8] = b"Subject: chunks\r\n\r\n.not stuffed\r\n.\r\nend\r\n";
    let (first, last) = message.split_at(20);
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org> BODY=8BITMIME", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client
        .expect("RCPT TO:<bob@example.com>", 250, "2.1.5")
        .await;
    let mut wire = format!("BDAT {}\r\n", first.len()).into_bytes();
    wire.extend_from_slice(first);
    wire.extend_from_slice(format!("BDAT {} LAST\r\n", last.len()).as_bytes());
    wire.extend_from_slice(last);
    client.send(&wire).await;
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(client.reply().await.code, 250);
    client.expect("NOOP", 250, "2.0.0").await;
    assert_eq!(server.inbox(alice).await, [message]);
    assert_eq!(server.inbox(bob).await, [message]);
}

/// Waits (up to a generous bound) until `done` holds; fails the test otherwise.
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

/// A message of `n` lines, none starting with a dot.
fn large_message(n: usize) -> Vec<u8> {
    let mut message = b"Subject: large\r\n\r\n".to_vec();
    for i in 0..n {
        message.extend_from_slice(format!("line {i} of a large message\r\n").as_bytes());
    }
    message
}

#[tokio::test]
async fn a_message_past_the_spool_threshold_goes_through_a_file_that_is_removed() {
    let server = start(LmtpOptions {
        spool_threshold: 1000,
        ..LmtpOptions::default()
    })
    .await;
    let alice = server.account("alice@example.com", None).await;
    let message = large_message(2000);
    let mut client = server.client().await;
    client.lhlo().await;
    // DATA, then BDAT in three chunks.
    client.expect("MAIL FROM:<>", 250, "2.1.0").await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(&message)).await;
    assert_eq!(client.reply().await.code, 250);
    client.expect("MAIL FROM:<>", 250, "2.1.0").await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    let chunks: Vec<&[u8]> = message.chunks(message.len() / 3 + 1).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = if i + 1 == chunks.len() { " LAST" } else { "" };
        let mut wire = format!("BDAT {}{last}\r\n", chunk.len()).into_bytes();
        wire.extend_from_slice(chunk);
        client.send(&wire).await;
        assert_eq!(client.reply().await.code, 250);
    }
    client.expect("NOOP", 250, "2.0.0").await;
    assert_eq!(
        server.inbox(alice).await,
        [message.clone(), message.clone()]
    );
    assert_eq!(server.spool_files(), 0);

    // A client that goes away mid-data leaves no spool file behind either.
    client.expect("MAIL FROM:<>", 250, "2.1.0").await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&message[..message.len() / 2]).await;
    wait_for(
        || server.spool_files() == 1,
        "the half message to be spooled",
    )
    .await;
    drop(client);
    wait_for(|| server.spool_files() == 0, "the spool file to be removed").await;
    assert_eq!(server.inbox(alice).await.len(), 2);
}

#[tokio::test]
async fn refused_bdat_chunks_are_read_past() {
    let (server, alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    // The chunk looks like commands; they must not be executed.
    client.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n").await;
    let reply = client.reply().await;
    assert_eq!((reply.code, reply.enhanced()), (503, "5.5.1"), "{reply:?}");
    client.expect("NOOP", 250, "2.0.0").await;
    assert!(server.inbox(alice).await.is_empty());
}

#[tokio::test]
async fn size_over_the_limit_is_refused_at_mail() {
    let server = start(LmtpOptions {
        max_message_size: 1000,
        ..LmtpOptions::default()
    })
    .await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org> SIZE=1001", 552, "5.3.4")
        .await;
    client
        .expect("MAIL FROM:<s@example.org> SIZE=1000", 250, "2.1.0")
        .await;
}

#[tokio::test]
async fn oversize_data_gets_552_per_recipient_and_the_session_goes_on() {
    let server = start(LmtpOptions {
        max_message_size: 1000,
        ..LmtpOptions::default()
    })
    .await;
    let alice = server.account("alice@example.com", None).await;
    let bob = server.account("bob@example.com", None).await;
    let mut client = server.client().await;
    client.lhlo().await;
    for data in [true, false] {
        client
            .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
            .await;
        client
            .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
            .await;
        client
            .expect("RCPT TO:<bob@example.com>", 250, "2.1.5")
            .await;
        let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(2000));
        if data {
            assert_eq!(client.cmd("DATA").await.code, 354);
            client.send(&dot_stuffed(big.as_bytes())).await;
        } else {
            let mut wire = format!("BDAT {} LAST\r\n", big.len()).into_bytes();
            wire.extend_from_slice(big.as_bytes());
            client.send(&wire).await;
        }
        for _ in 0..2 {
            let reply = client.reply().await;
            assert_eq!((reply.code, reply.enhanced()), (552, "5.3.4"), "{reply:?}");
        }
        client.expect("NOOP", 250, "2.0.0").await;
    }
    // A message of exactly the limit is fine.
    let exact = format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(1000 - 16));
    assert_eq!(exact.len(), 1000);
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(exact.as_bytes())).await;
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(server.inbox(alice).await, [exact.as_bytes()]);
    assert!(server.inbox(bob).await.is_empty());
}

#[tokio::test]
async fn over_quota_is_452_at_rcpt_and_after_data() {
    let server = start(LmtpOptions::default()).await;
    let quota = MESSAGE.len() as u64;
    let full = server.account("full@example.com", Some(quota)).await;
    let small = server.account("small@example.com", Some(10)).await;
    let alice = server.account("alice@example.com", None).await;
    let mut client = server.client().await;
    client.lhlo().await;
    // Fills the first mailbox exactly; the second one is too small for the message.
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<full@example.com>", 250, "2.1.5")
        .await;
    client
        .expect("RCPT TO:<small@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(MESSAGE)).await;
    assert_eq!(client.reply().await.code, 250);
    let reply = client.reply().await;
    assert_eq!((reply.code, reply.enhanced()), (452, "4.2.2"), "{reply:?}");
    // Now the first mailbox is at its quota and refused before any data.
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<full@example.com>", 452, "4.2.2")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client.expect("RSET", 250, "2.0.0").await;
    assert_eq!(server.inbox(full).await, [MESSAGE]);
    assert!(server.inbox(small).await.is_empty());
    assert!(server.inbox(alice).await.is_empty());
}

#[tokio::test]
async fn a_storage_failure_is_a_temporary_451_and_nothing_is_stored() {
    let (server, alice) = server_with_alice().await;
    let bob = server.account("bob@example.com", None).await;
    // A file where the blob store's directory should be makes every write fail, even
    // for root, which ignores permissions.
    let blobs = server.data_dir().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client
        .expect("RCPT TO:<bob@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(MESSAGE)).await;
    for _ in 0..2 {
        let reply = client.reply().await;
        assert_eq!((reply.code, reply.enhanced()), (451, "4.3.0"), "{reply:?}");
    }
    client.expect("NOOP", 250, "2.0.0").await;
    assert!(server.inbox(alice).await.is_empty());
    assert!(server.inbox(bob).await.is_empty());
}

#[tokio::test]
async fn two_addresses_of_one_account_get_one_copy_and_two_replies() {
    let (server, alice) = server_with_alice().await;
    server
        .mailstore
        .add_alias("info@example.com", "alice@example.com")
        .await
        .unwrap();
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client
        .expect("RCPT TO:<info@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(&dot_stuffed(MESSAGE)).await;
    let first = client.reply().await;
    let second = client.reply().await;
    assert_eq!((first.code, second.code), (250, 250));
    assert!(second.lines[0].contains("info@example.com"), "{second:?}");
    assert_eq!(server.inbox(alice).await, [MESSAGE]);
}

#[tokio::test]
async fn too_many_recipients_is_452() {
    let server = start(LmtpOptions {
        max_recipients: 2,
        ..LmtpOptions::default()
    })
    .await;
    server.account("alice@example.com", None).await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    for _ in 0..2 {
        client
            .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
            .await;
    }
    client
        .expect("RCPT TO:<alice@example.com>", 452, "4.5.3")
        .await;
}

#[tokio::test]
async fn commands_out_of_sequence_are_503() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    client
        .expect("MAIL FROM:<s@example.org>", 503, "5.5.1")
        .await;
    client.lhlo().await;
    client
        .expect("RCPT TO:<alice@example.com>", 503, "5.5.1")
        .await;
    client.expect("DATA", 503, "5.5.1").await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("MAIL FROM:<s@example.org>", 503, "5.5.1")
        .await;
    client
        .expect("RCPT TO:<nobody@example.com>", 550, "5.1.1")
        .await;
    // RFC 2033 section 4.2: DATA with no accepted recipient is 503.
    client.expect("DATA", 503, "5.5.1").await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    client.expect("RSET", 250, "2.0.0").await;
    client.expect("DATA", 503, "5.5.1").await;
    client
        .expect("MAIL FROM:<s@example.org> BODY=BINARYMIME", 555, "5.5.4")
        .await;
}

#[tokio::test]
async fn helo_and_ehlo_are_refused() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    let reply = client.expect("HELO client.test", 500, "5.5.1").await;
    assert!(reply.lines[0].contains("LHLO"), "{reply:?}");
    client.expect("EHLO client.test", 500, "5.5.1").await;
    client.lhlo().await;
}

#[tokio::test]
async fn malformed_commands_get_5xx() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    client.expect("FROBNICATE now", 500, "5.5.1").await;
    client.expect("MAIL FROM:", 501, "5.1.7").await;
    client
        .expect("MAIL FROM:<a@example.net> SIZE=many", 501, "5.5.4")
        .await;
    client
        .expect("MAIL FROM:<a@example.net>", 250, "2.1.0")
        .await;
    client.expect("RCPT TO:<broken", 553, "5.1.3").await;
}

#[tokio::test]
async fn long_lines_are_500_and_skipped() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    for len in [5_000, 200_000] {
        let line = format!("MAIL FROM:<{}@example.net>", "a".repeat(len));
        client.expect(&line, 500, "5.5.2").await;
        client.expect("NOOP", 250, "2.0.0").await;
    }
}

#[tokio::test]
async fn garbage_gets_errors_then_421_and_others_are_still_served() {
    let (server, alice) = server_with_alice().await;
    let mut bad = server.client().await;
    let mut garbage = Vec::new();
    for i in 0..20u32 {
        garbage.extend((0..300u32).map(|j| ((i * 7919 + j * 104_729) % 256) as u8));
        garbage.extend_from_slice(b"\r\n");
    }
    bad.send(&garbage).await;
    let replies = bad.replies_until_closed().await;
    assert_eq!(replies.len(), 11, "{replies:?}");
    assert!(replies[..10].iter().all(|r| r.code >= 500), "{replies:?}");
    let last = &replies[10];
    assert_eq!((last.code, last.enhanced()), (421, "4.7.0"), "{last:?}");

    let mut good = server.client().await;
    good.lhlo().await;
    good.expect("MAIL FROM:<s@example.org>", 250, "2.1.0").await;
    good.expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(good.cmd("DATA").await.code, 354);
    good.send(&dot_stuffed(MESSAGE)).await;
    assert_eq!(good.reply().await.code, 250);
    assert_eq!(server.inbox(alice).await, [MESSAGE]);
}

fn quick() -> LmtpOptions {
    LmtpOptions {
        timeout_secs: 1,
        ..LmtpOptions::default()
    }
}

#[tokio::test]
async fn an_idle_client_is_closed_with_421() {
    let server = start(quick()).await;
    let mut client = server.client().await;
    client.send(b"NO").await;
    let started = Instant::now();
    let replies = client.replies_until_closed().await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].code, replies[0].enhanced()), (421, "4.4.2"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_line_trickled_byte_by_byte_still_times_out() {
    let server = start(quick()).await;
    let mut client = server.client().await;
    let started = Instant::now();
    // One byte every 200 ms never leaves the connection idle for a second, but the
    // line as a whole must arrive within one.
    for &b in b"NOOP NOOP NOOP NOOP NOOP NOOP" {
        if client.stream.try_write(&[b]).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let replies = client.replies_until_closed().await;
    let last = replies.last().expect("a 421 before closing");
    assert_eq!((last.code, last.enhanced()), (421, "4.4.2"));
}

#[tokio::test]
async fn a_client_stalling_in_data_is_closed_and_nothing_is_stored() {
    let server = start(quick()).await;
    let alice = server.account("alice@example.com", None).await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(b"Subject: half\r\n\r\nand then noth").await;
    let replies = client.replies_until_closed().await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].code, replies[0].enhanced()), (421, "4.4.2"));
    assert!(server.inbox(alice).await.is_empty());
}

#[tokio::test]
async fn data_trickled_byte_by_byte_is_cut_off() {
    let server = start(quick()).await;
    let alice = server.account("alice@example.com", None).await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    // One byte every 200 ms is never idle for a second, but far below the rate floor,
    // so the server must cut the data phase while we are still sending, long before
    // its 10-second whole-data deadline.
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while started.elapsed() < Duration::from_secs(8) && !got.ends_with(b"\r\n") {
        match client.stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        let _ = client.stream.try_write(b"x");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = String::from_utf8_lossy(&got);
    assert!(
        reply.starts_with("421 4.4.2"),
        "while trickling, got {reply:?}"
    );
    assert!(server.inbox(alice).await.is_empty());
}

#[tokio::test]
async fn a_client_vanishing_mid_data_leaves_nothing() {
    let (server, alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    assert_eq!(client.cmd("DATA").await.code, 354);
    client.send(b"Subject: half\r\n\r\nand then").await;
    drop(client);
    // The next client is served, and the half message was never delivered.
    let mut next = server.client().await;
    next.lhlo().await;
    assert!(server.inbox(alice).await.is_empty());
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_and_serve_returns() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    server.shutdown.cancel();
    let replies = client.replies_until_closed().await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].code, replies[0].enhanced()), (421, "4.3.2"));
    let addr = server.addr;
    server.join().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_a_transaction_whose_data_was_sent_finish() {
    let (server, alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
    let mut wire = b"DATA\r\n".to_vec();
    wire.extend_from_slice(&dot_stuffed(MESSAGE));
    client.send(&wire).await;
    server.shutdown.cancel();
    let replies = client.replies_until_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [354, 250, 421], "{replies:?}");
    assert_eq!(replies[1].enhanced(), "2.0.0");
    assert_eq!(replies[2].enhanced(), "4.3.2");
    assert_eq!(server.inbox(alice).await, [MESSAGE]);
    server.join().await;
}

#[tokio::test]
async fn dsn_parameters_are_refused_because_dsn_is_not_offered() {
    let (server, _alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    client
        .expect("MAIL FROM:<s@example.org> RET=HDRS", 555, "5.5.4")
        .await;
    client
        .expect("MAIL FROM:<s@example.org>", 250, "2.1.0")
        .await;
    client
        .expect("RCPT TO:<alice@example.com> NOTIFY=NEVER", 555, "5.5.4")
        .await;
    client
        .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
        .await;
}

#[tokio::test]
async fn a_transaction_named_by_xdelivery_is_stored_once_however_often_sent() {
    let (server, alice) = server_with_alice().await;
    let mut client = server.client().await;
    client.lhlo().await;
    // A proxy replaying one transaction (the same XDELIVERY), then a new transaction.
    for name in [
        "00112233445566778899aabbccddeeff",
        "00112233445566778899aabbccddeeff",
        "ffeeddccbbaa99887766554433221100",
    ] {
        client
            .expect(
                &format!("MAIL FROM:<sender@example.org> XDELIVERY={name}"),
                250,
                "2.1.0",
            )
            .await;
        client
            .expect("RCPT TO:<alice@example.com>", 250, "2.1.5")
            .await;
        assert_eq!(client.cmd("DATA").await.code, 354);
        client.send(&dot_stuffed(MESSAGE)).await;
        let reply = client.reply().await;
        assert_eq!(reply.code, 250, "{reply:?}");
    }
    assert_eq!(server.inbox(alice).await.len(), 2);
    client
        .expect("MAIL FROM:<sender@example.org> XDELIVERY=12", 501, "5.5.4")
        .await;
}
