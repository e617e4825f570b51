//! Random bytes sent to a live session never take the server down: each connection
//! gets lines that start with `+OK`, `-ERR` or `+ ` (or multi-line data), and a normal
//! client is served afterwards.

mod common;

use common::{Client, SIMPLE, TestServer};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_input_never_breaks_the_server(
        chunks in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                "(USER alice@example.com|PASS pw|STAT|LIST|RETR 1|TOP 1 0|DELE 1|RSET|UIDL|CAPA|AUTH PLAIN|AUTH|NOOP)\r\n"
                    .prop_map(String::into_bytes),
            ],
            1..12,
        )
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = TestServer::start().await;
            let alice = server.account("alice@example.com", "pw").await;
            server.deliver(&alice, SIMPLE).await;
            let mut client = Client::connect(server.addr).await;
            for chunk in &chunks {
                client.send(chunk).await;
            }
            // Half-close: the session sees the end of input and must finish by itself.
            client.stream.shutdown().await.unwrap();
            client.until_closed().await;
            // Nothing was deleted without QUIT (and QUIT was never sent).
            assert_eq!(server.inbox(&alice).await.len(), 1);
            let mut client = Client::connect(server.addr).await;
            let (_, capa) = client.multi("CAPA").await;
            assert!(capa.ends_with(b".\r\n"));
        });
    }
}
