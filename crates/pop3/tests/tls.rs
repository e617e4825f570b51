//! STLS and implicit TLS over a real listener and mail store, with a rustls client that
//! trusts only the certificate the server generated.

mod common;

use common::{Client, SIMPLE, TestServer, stuffed, test_options};
use evermail_pop3::{PlaintextAuth, Pop3Options};

const ALICE: &str = "alice@example.com";

fn options(plaintext_auth: PlaintextAuth) -> Pop3Options {
    Pop3Options {
        plaintext_auth,
        ..test_options()
    }
}

fn capa_lines(raw: Vec<u8>) -> Vec<String> {
    String::from_utf8(raw)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn stls_is_offered_before_tls_and_not_after() {
    let server = TestServer::start_tls(test_options()).await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = capa_lines(capa);
    assert!(capa.contains(&"STLS".to_string()), "{capa:?}");
    // Loopback may log in in plaintext by default.
    assert!(capa.contains(&"USER".to_string()), "{capa:?}");

    assert_eq!(client.cmd("STLS").await, "+OK begin TLS negotiation");
    let mut client = client.upgrade(server.tls_client_config()).await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = capa_lines(capa);
    assert!(!capa.contains(&"STLS".to_string()), "{capa:?}");
    assert!(capa.contains(&"SASL PLAIN".to_string()), "{capa:?}");
    assert_eq!(client.cmd("STLS").await, "-ERR TLS is already active");
    client.login(ALICE, "pw").await;
}

#[tokio::test]
async fn passwords_are_refused_in_plaintext_where_not_allowed() {
    // "never" stands in for a client on a non-loopback address.
    let server = TestServer::start_tls(options(PlaintextAuth::Never)).await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = Client::connect(server.addr).await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = capa_lines(capa);
    assert!(capa.contains(&"STLS".to_string()), "{capa:?}");
    assert!(
        !capa.iter().any(|l| l == "USER" || l.starts_with("SASL")),
        "{capa:?}"
    );
    assert!(
        client
            .cmd(&format!("USER {ALICE}"))
            .await
            .starts_with("-ERR [AUTH] ")
    );
    assert!(client.cmd("PASS pw").await.starts_with("-ERR [AUTH] "));
    // Refused before any response is asked for.
    assert!(client.cmd("AUTH PLAIN").await.starts_with("-ERR [AUTH] "));
    assert!(
        client
            .cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3")
            .await
            .starts_with("-ERR [AUTH] ")
    );

    assert!(client.cmd("STLS").await.starts_with("+OK"));
    let mut client = client.upgrade(server.tls_client_config()).await;
    let (_, capa) = client.multi("CAPA").await;
    assert!(capa_lines(capa).contains(&"USER".to_string()));
    let reply = client.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3").await;
    assert!(reply.starts_with("+OK maildrop has 1 messages"), "{reply}");
    let (_, body) = client.multi("RETR 1").await;
    assert_eq!(body, stuffed(SIMPLE));
}

#[tokio::test]
async fn commands_pipelined_behind_stls_are_discarded() {
    let server = TestServer::start_tls(options(PlaintextAuth::Always)).await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    // One write, as an attacker in the middle would append it: the USER must not run
    // inside the encrypted session.
    client
        .send(format!("STLS\r\nUSER {ALICE}\r\n").as_bytes())
        .await;
    assert_eq!(client.line().await.unwrap(), "+OK begin TLS negotiation");
    let mut client = client.upgrade(server.tls_client_config()).await;
    assert_eq!(client.cmd("PASS pw").await, "-ERR send USER first");
    client.login(ALICE, "pw").await;
}

#[tokio::test]
async fn a_user_given_before_stls_is_forgotten() {
    let server = TestServer::start_tls(options(PlaintextAuth::Always)).await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    assert!(
        client
            .cmd(&format!("USER {ALICE}"))
            .await
            .starts_with("+OK")
    );
    assert!(client.cmd("STLS").await.starts_with("+OK"));
    let mut client = client.upgrade(server.tls_client_config()).await;
    assert_eq!(client.cmd("PASS pw").await, "-ERR send USER first");
}

#[tokio::test]
async fn implicit_tls_serves_mail() {
    let server = TestServer::start_tls(options(PlaintextAuth::Never)).await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.connect_tls().await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = capa_lines(capa);
    assert!(!capa.contains(&"STLS".to_string()), "{capa:?}");
    assert!(capa.contains(&"USER".to_string()), "{capa:?}");
    client.login(ALICE, "pw").await;
    assert_eq!(client.cmd("STAT").await, format!("+OK 1 {}", SIMPLE.len()));
    let (_, body) = client.multi("RETR 1").await;
    assert_eq!(body, stuffed(SIMPLE));
    assert!(client.cmd("QUIT").await.starts_with("+OK"));
}
