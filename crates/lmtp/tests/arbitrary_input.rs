//! Random input to a live session: whatever a client sends, the server answers only
//! with well-formed replies, never panics, and goes on serving the next client.

mod common;

use common::start;
use evermail_lmtp::LmtpOptions;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fragments that take a session into its deeper states (a transaction, DATA, BDAT),
/// so random bytes land there too and not only in the command parser.
const FRAGMENTS: &[&[u8]] = &[
    b"LHLO x\r\n",
    b"MAIL FROM:<s@example.org>\r\n",
    b"MAIL FROM:<> SIZE=10\r\n",
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<nobody@example.com>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 3 LAST\r\n",
    b"RSET\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\r\n",
    b"\n",
    b"\0\xff\xfe",
];

/// Openings a random input starts with, so that most cases get past the greeting and
/// many into a transaction with a recipient, where DATA and BDAT are allowed.
const OPENINGS: &[&[u8]] = &[
    b"",
    b"LHLO x\r\n",
    b"LHLO x\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.com>\r\n",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    let opening = prop_oneof![
        1 => Just(OPENINGS[0]),
        1 => Just(OPENINGS[1]),
        3 => Just(OPENINGS[2]),
    ];
    let piece = prop_oneof![
        3 => proptest::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    (opening, proptest::collection::vec(piece, 0..24))
        .prop_map(|(opening, pieces)| [opening.to_vec(), pieces.concat()].concat())
}

#[test]
fn random_input_never_stops_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let server = start(LmtpOptions {
            timeout_secs: 2,
            max_message_size: 4096,
            ..LmtpOptions::default()
        })
        .await;
        server.account("alice@example.com", None).await;
        server
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(), |bytes| {
            runtime.block_on(async {
                let mut client = tokio::net::TcpStream::connect(server.addr).await.unwrap();
                // The server may close early (too many errors); a failed write is fine.
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                let mut received = Vec::new();
                let read = tokio::time::timeout(
                    Duration::from_secs(10),
                    client.read_to_end(&mut received),
                )
                .await;
                assert!(read.is_ok(), "the server did not close after end of input");
                let text = String::from_utf8(received).expect("replies are UTF-8");
                for line in text.split_terminator("\r\n") {
                    let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).expect(line);
                    assert!((200..600).contains(&code), "{line:?}");
                    assert!(
                        matches!(line.as_bytes().get(3), Some(b' ' | b'-')),
                        "{line:?}"
                    );
                }
                assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");

                // A well-formed client is served as usual afterwards.
                let mut good = server.client().await;
                good.lhlo().await;
                good.expect("NOOP", 250, "2.0.0").await;
            });
            Ok(())
        })
        .unwrap();
    runtime.block_on(server.stop());
}
