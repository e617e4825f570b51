//! RETR and TOP of a message past the spool threshold (1 MiB): read into a verified
//! spool file and written stuffed in pieces; the bytes are exactly those of the small
//! message path and the spool file is gone afterwards.

mod common;

use common::{TestServer, stuffed, test_options};
use evermail_mailbox::MailstoreOptions;

/// About `size` bytes of lines, many starting with a dot, one line longer than a
/// response piece (256 KiB), so stuffing meets the piece boundaries.
fn large_message(size: usize) -> Vec<u8> {
    let mut m = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: large\r\n\r\n".to_vec();
    m.extend_from_slice(b"top line 1\r\n.top line 2\r\n");
    m.extend(std::iter::repeat_n(b'x', 300 * 1024));
    m.extend_from_slice(b"\r\n");
    let mut i = 0u64;
    while m.len() < size {
        let dots = ".".repeat((i % 3) as usize);
        m.extend_from_slice(format!("{dots}line {i} {}\r\n", i * 7919).as_bytes());
        i += 1;
    }
    m.extend_from_slice(b".\r\n");
    m
}

#[tokio::test]
async fn a_large_message_is_retrieved_byte_for_byte() {
    let spool = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_store(
        test_options(),
        MailstoreOptions {
            spool_dir: Some(spool.path().to_path_buf()),
            ..MailstoreOptions::default()
        },
    )
    .await;
    let alice = server.account("alice@example.com", "pw").await;
    let message = large_message(3 * 1024 * 1024);
    server.deliver(&alice, &message).await;
    let mut client = server.login("alice@example.com").await;

    let (status, top) = client.multi("TOP 1 2").await;
    assert!(status.starts_with("+OK"), "{status}");
    let header_end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let want = &message[..header_end + b"top line 1\r\n.top line 2\r\n".len()];
    assert_eq!(top, stuffed(want));

    let (status, body) = client.multi("RETR 1").await;
    assert_eq!(status, format!("+OK {} octets", message.len()));
    assert!(
        body == stuffed(&message),
        "RETR differs from the stored message"
    );

    let left: Vec<_> = std::fs::read_dir(spool.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left: {left:?}");
}
