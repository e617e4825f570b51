//! A proxy names the client it speaks for with `ID` and the cluster secret; the
//! failed-login lockout then keys on the client's address, not the proxy's.

mod common;

use common::{Client, TestServer};

#[tokio::test]
async fn id_with_the_secret_makes_the_lockout_see_the_client() {
    let store = evermail_mailbox::MailstoreOptions {
        login_guard: evermail_mailbox::LoginGuardOptions {
            max_failures_per_pair: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut options = common::test_options();
    options.proxy_secret = Some("s3cret".into());
    let server = TestServer::start_with(options, store).await;
    server.account("alice@example.com", "pw").await;
    let forwarded = |addr: &'static str, secret: &'static str| {
        let server_addr = server.addr;
        async move {
            let mut client = Client::connect(server_addr).await;
            let reply = client
                .command(&format!(
                    "ID (\"x-evermail-proxy\" \"{secret}\" \"x-originating-ip\" \"{addr}\")"
                ))
                .await;
            assert!(client.ok(&reply), "{reply:?}");
            client
        }
    };
    // Four failures "from" 192.0.2.7 lock that client out...
    for failures in [3, 1] {
        let mut client = forwarded("192.0.2.7", "s3cret").await;
        for _ in 0..failures {
            let reply = client.command("LOGIN alice@example.com wrong").await;
            assert!(reply[0].contains("NO [AUTHENTICATIONFAILED]"), "{reply:?}");
        }
    }
    let mut client = forwarded("192.0.2.7", "s3cret").await;
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(reply[0].contains("NO [UNAVAILABLE]"), "{reply:?}");
    // ...but not another forwarded client, nor one whose proxy lacks the secret (its
    // claim is ignored, so it counts as the loopback peer it is).
    for (addr, secret) in [("192.0.2.8", "s3cret"), ("192.0.2.7", "guess")] {
        let mut client = forwarded(addr, secret).await;
        let reply = client.command("LOGIN alice@example.com pw").await;
        assert!(client.ok(&reply), "{addr} {secret}: {reply:?}");
    }
}
