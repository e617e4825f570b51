//! Random input against a live session: the server must neither panic nor stop
//! serving the next, well-formed client.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Client, SIMPLE, TestServer};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

/// Panics anywhere in this test process, session tasks included (tokio would
/// otherwise swallow a session's panic into its JoinHandle).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Fragments that reach deep into the session: commands in every state, literals,
/// IDLE, AUTHENTICATE continuations.
const FRAGMENTS: &[&str] = &[
    "a LOGIN alice@example.com pw\r\n",
    "b SELECT INBOX\r\n",
    "c FETCH 1:* (FLAGS BODY[] BODY.PEEK[1.MIME]<0.5> ENVELOPE BODYSTRUCTURE)\r\n",
    "d STORE * +FLAGS (\\Seen)\r\n",
    "e UID SEARCH OR SEEN NOT 1:* UID 1\r\n",
    "f APPEND INBOX {5}\r\n",
    "g APPEND INBOX {3+}\r\nabc\r\n",
    "h IDLE\r\n",
    "DONE\r\n",
    "i AUTHENTICATE PLAIN\r\n",
    "j LIST \"\" *%\r\n",
    "k EXPUNGE\r\n",
    "{4294967295}\r\n",
    "l UID FETCH 4294967295:1 BODY[HEADER.FIELDS (a b)]\r\n",
    "*\r\n",
    "\r\n",
];

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
    ]
}

async fn run_case(server: &TestServer, chunks: Vec<Vec<u8>>) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    for chunk in chunks {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.shutdown().await;
    drop(stream);
    let mut client = Client::connect(server.addr).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.command("LOGIN alice@example.com pw"),
    )
    .await
    .expect("a well-formed client is still served");
    assert!(client.ok(&reply), "{reply:?}");
    client.command("SELECT INBOX").await;
    let reply = client.command("FETCH 1 BODY.PEEK[]").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[test]
fn random_input_never_stops_the_server() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let server = TestServer::start().await;
        let alice = server.account("alice@example.com", "pw").await;
        server.deliver(&alice, SIMPLE).await;
        server
    });
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(chunks in proptest::collection::vec(chunk(), 1..24))| {
        runtime.block_on(run_case(&server, chunks));
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a session panicked");
}
