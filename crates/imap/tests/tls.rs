//! TLS: STARTTLS and implicit TLS over a real listener and mail store, with a rustls
//! client that trusts only the certificate the server generated. One test per
//! behaviour.

mod common;

use common::{Client, SIMPLE, TIMEOUT, TestServer, has, test_options};
use evermail_imap::{ImapOptions, PlaintextAuth};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options(plaintext_auth: PlaintextAuth) -> ImapOptions {
    ImapOptions {
        plaintext_auth,
        ..test_options()
    }
}

#[tokio::test]
async fn starttls_is_offered_before_tls_and_not_after() {
    let server = TestServer::start_tls(test_options()).await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("CAPABILITY").await;
    assert!(reply[0].contains(" STARTTLS"), "{reply:?}");
    // Loopback may log in in plaintext by default, so no LOGINDISABLED here.
    assert!(reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    assert!(!reply[0].contains("LOGINDISABLED"), "{reply:?}");

    let mut client = client.starttls(server.tls_client_config()).await;
    let reply = client.command("CAPABILITY").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(!reply[0].contains("STARTTLS"), "{reply:?}");
    assert!(!reply[0].contains("LOGINDISABLED"), "{reply:?}");
    assert!(reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn logindisabled_until_starttls_where_plaintext_is_refused() {
    // "never" stands in for a client on a non-loopback address.
    let server = TestServer::start_tls(options(PlaintextAuth::Never)).await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("CAPABILITY").await;
    assert!(reply[0].contains(" STARTTLS"), "{reply:?}");
    assert!(reply[0].contains("LOGINDISABLED"), "{reply:?}");
    assert!(!reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(reply[0].contains("NO [PRIVACYREQUIRED]"), "{reply:?}");
    let reply = client
        .command("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3")
        .await;
    assert!(reply[0].contains("NO [PRIVACYREQUIRED]"), "{reply:?}");
    // Without an initial response the server must refuse before asking for one.
    let reply = client.command("AUTHENTICATE PLAIN").await;
    assert!(reply[0].contains("NO [PRIVACYREQUIRED]"), "{reply:?}");

    let mut client = client.starttls(server.tls_client_config()).await;
    let reply = client.command("CAPABILITY").await;
    assert!(!reply[0].contains("LOGINDISABLED"), "{reply:?}");
    assert!(reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    let reply = client
        .command("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3")
        .await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("SELECT INBOX").await;
    assert!(has(&reply, "* 1 EXISTS"), "{reply:?}");
    let reply = client.command("FETCH 1 BODY.PEEK[TEXT]").await;
    assert!(has(&reply, "hello world"), "{reply:?}");
}

#[tokio::test]
async fn commands_pipelined_behind_starttls_are_discarded() {
    let server = TestServer::start_tls(options(PlaintextAuth::Always)).await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    // One write, as an attacker in the middle would append it: `b` arrives in the
    // same segment as STARTTLS and must never run inside the TLS session.
    client
        .send(b"a STARTTLS\r\nb LOGIN alice@example.com pw\r\n")
        .await;
    client.last_tag = "a".into();
    let reply = client.until_tagged().await;
    assert_eq!(reply, ["a OK Begin TLS negotiation now"]);
    let mut client = client.upgrade(server.tls_client_config()).await;
    let reply = client.command("CAPABILITY").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(!reply.iter().any(|l| l.starts_with("b ")), "{reply:?}");
    // Not logged in: the injected LOGIN never ran.
    let reply = client.command("SELECT INBOX").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
    assert!(!reply.iter().any(|l| l.starts_with("b ")), "{reply:?}");
}

#[tokio::test]
async fn starttls_twice_or_after_login_is_refused() {
    let server = TestServer::start_tls(test_options()).await;
    server.account("alice@example.com", "pw").await;
    let client = Client::connect(server.addr).await;
    let mut client = client.starttls(server.tls_client_config()).await;
    let reply = client.command("STARTTLS").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    // The session is still usable inside TLS.
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(client.ok(&reply), "{reply:?}");

    let mut plain = server.login("alice@example.com").await;
    let reply = plain.command("STARTTLS").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    let reply = plain.command("NOOP").await;
    assert!(plain.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn implicit_tls_listener_serves_a_session() {
    // Passwords are refused in plaintext, yet allowed here: the connection is TLS.
    let server = TestServer::start_tls(options(PlaintextAuth::Never)).await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.connect_tls().await;
    let reply = client.command("CAPABILITY").await;
    assert!(!reply[0].contains("STARTTLS"), "{reply:?}");
    assert!(!reply[0].contains("LOGINDISABLED"), "{reply:?}");
    assert!(reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    let reply = client.command("STARTTLS").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("SELECT INBOX").await;
    assert!(has(&reply, "* 1 EXISTS"), "{reply:?}");
    let reply = client.command("FETCH 1 BODY[]").await;
    assert!(has(&reply, "hello world"), "{reply:?}");
    let reply = client.command("LOGOUT").await;
    assert!(reply[0].starts_with("* BYE"), "{reply:?}");
    assert!(client.closed().await);
}

#[tokio::test]
async fn plaintext_on_the_tls_port_gets_nothing_and_the_server_stays_up() {
    let server = TestServer::start_tls(test_options()).await;
    let mut raw = tokio::net::TcpStream::connect(server.tls_addr.unwrap())
        .await
        .unwrap();
    raw.write_all(b"a LOGIN alice@example.com pw\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, raw.read_to_end(&mut buf)).await;
    // The handshake fails: at most a TLS alert comes back, never an IMAP line.
    assert!(read.is_ok(), "connection left open");
    assert!(!buf.starts_with(b"* "), "{buf:?}");
    let mut client = server.connect_tls().await;
    let reply = client.command("NOOP").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn shutdown_reaches_tls_sessions() {
    let server = TestServer::start_tls(test_options()).await;
    let mut client = server.connect_tls().await;
    let reply = client.command("NOOP").await;
    assert!(client.ok(&reply), "{reply:?}");
    server.shutdown.cancel();
    let line = client.line().await.unwrap();
    assert!(line.starts_with("* BYE [UNAVAILABLE]"), "{line}");
    assert!(client.closed().await);
    tokio::time::timeout(Duration::from_secs(10), server.tls_handle.unwrap())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
