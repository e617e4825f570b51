//! POP3 sessions over a real listener and mail store, with a raw client. One test per
//! behaviour.

mod common;

use std::time::{Duration, Instant};

use common::{Client, DOTTED, SIMPLE, TIMEOUT, TestServer, stuffed, test_options};
use evermail_pop3::Pop3Options;
use evermail_types::Flag;

const ALICE: &str = "alice@example.com";

#[tokio::test]
async fn user_pass_logs_in_and_reports_the_maildrop() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = Client::connect(server.addr).await;
    assert!(
        client
            .cmd(&format!("USER {ALICE}"))
            .await
            .starts_with("+OK")
    );
    let reply = client.cmd("PASS pw").await;
    assert_eq!(
        reply,
        format!("+OK maildrop has 1 messages ({} octets)", SIMPLE.len())
    );
    assert_eq!(
        client.cmd("QUIT").await,
        "+OK evermail POP3 server signing off (1 messages left)"
    );
    assert!(client.until_closed().await.is_empty());
}

#[tokio::test]
async fn wrong_password_is_delayed_and_refused_with_auth_code() {
    let options = Pop3Options {
        auth_failure_delay_ms: 300,
        ..test_options()
    };
    let server = TestServer::start_with(options).await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    client.cmd(&format!("USER {ALICE}")).await;
    let started = Instant::now();
    let reply = client.cmd("PASS wrong").await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not delayed"
    );
    assert_eq!(reply, "-ERR [AUTH] invalid user name or password");
    // PASS needs a fresh USER after a failure; unknown users look the same.
    assert_eq!(client.cmd("PASS pw").await, "-ERR send USER first");
    client.cmd("USER nobody@example.com").await;
    assert!(client.cmd("PASS pw").await.starts_with("-ERR [AUTH]"));
    // The third failure closes the session.
    assert!(
        client
            .cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHg=")
            .await
            .starts_with("-ERR [AUTH]")
    );
    assert!(client.until_closed().await.is_empty());
}

#[tokio::test]
async fn repeated_failures_lock_the_pair_out_with_sys_temp() {
    let store = evermail_mailbox::MailstoreOptions {
        login_guard: evermail_mailbox::LoginGuardOptions {
            max_failures_per_pair: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let server = TestServer::start_with_store(test_options(), store).await;
    server.account(ALICE, "pw").await;
    server.account("bob@example.com", "pw").await;
    // Three failures close a session, so the guessing takes two.
    for failures in [3, 1] {
        let mut client = Client::connect(server.addr).await;
        for _ in 0..failures {
            client.cmd(&format!("USER {ALICE}")).await;
            assert!(client.cmd("PASS wrong").await.starts_with("-ERR [AUTH]"));
        }
    }
    // Locked: even the right password is refused, as a temporary condition.
    let mut client = Client::connect(server.addr).await;
    client.cmd(&format!("USER {ALICE}")).await;
    assert_eq!(
        client.cmd("PASS pw").await,
        "-ERR [SYS/TEMP] too many failed logins; try again later"
    );
    // Another user from the same address is not affected.
    client.cmd("USER bob@example.com").await;
    assert!(client.cmd("PASS pw").await.starts_with("+OK"));
}

#[tokio::test]
async fn a_failed_login_does_not_hold_up_other_sessions() {
    let options = Pop3Options {
        auth_failure_delay_ms: 2000,
        ..test_options()
    };
    let server = TestServer::start_with(options).await;
    server.account(ALICE, "pw").await;
    let mut slow = Client::connect(server.addr).await;
    slow.cmd(&format!("USER {ALICE}")).await;
    slow.send(b"PASS wrong\r\n").await;
    let started = Instant::now();
    let mut other = server.login(ALICE).await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(other.cmd("STAT").await.starts_with("+OK"));
}

#[tokio::test]
async fn auth_plain_with_and_without_initial_response() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    // "\0alice@example.com\0pw"
    let response = "AGFsaWNlQGV4YW1wbGUuY29tAHB3";
    let mut client = Client::connect(server.addr).await;
    let reply = client.cmd(&format!("AUTH PLAIN {response}")).await;
    assert!(reply.starts_with("+OK maildrop has 0 messages"), "{reply}");
    client.cmd("QUIT").await;

    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");
    let reply = client.cmd(response).await;
    assert!(reply.starts_with("+OK"), "{reply}");
    client.cmd("QUIT").await;

    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(client.cmd("*").await, "-ERR authentication cancelled");
    let (_, list) = client.multi("AUTH").await;
    assert_eq!(list, b"PLAIN\r\n.\r\n");
    assert!(client.cmd("AUTH CRAM-MD5").await.starts_with("-ERR"));
    assert!(
        client
            .cmd("APOP alice c4c9334bac560ecc979e58001b3e22fb")
            .await
            .starts_with("-ERR")
    );
}

#[tokio::test]
async fn stat_list_uidl_retr_are_byte_exact_with_dot_stuffing() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, DOTTED).await;
    let records = server.inbox(&alice).await;
    let inbox = server
        .mailstore
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let mut client = server.login(ALICE).await;

    let total = SIMPLE.len() + DOTTED.len();
    assert_eq!(client.cmd("STAT").await, format!("+OK 2 {total}"));
    let (status, list) = client.multi("LIST").await;
    assert_eq!(status, format!("+OK 2 messages ({total} octets)"));
    assert_eq!(
        String::from_utf8(list).unwrap(),
        format!("1 {}\r\n2 {}\r\n.\r\n", SIMPLE.len(), DOTTED.len())
    );
    assert_eq!(
        client.cmd("LIST 2").await,
        format!("+OK 2 {}", DOTTED.len())
    );
    assert_eq!(client.cmd("LIST 3").await, "-ERR no such message");

    let uv = inbox.uidvalidity;
    let (_, uidl) = client.multi("UIDL").await;
    assert_eq!(
        String::from_utf8(uidl).unwrap(),
        format!(
            "1 {uv}.{}\r\n2 {uv}.{}\r\n.\r\n",
            records[0].uid, records[1].uid
        )
    );
    assert_eq!(
        client.cmd("UIDL 1").await,
        format!("+OK 1 {uv}.{}", records[0].uid)
    );

    let (status, body) = client.multi("RETR 2").await;
    assert_eq!(status, format!("+OK {} octets", DOTTED.len()));
    assert_eq!(body, stuffed(DOTTED));
    assert!(body.windows(9).any(|w| w == b"\r\n..\r\n...".as_slice()));
    let (_, body) = client.multi("RETR 1").await;
    assert_eq!(body, stuffed(SIMPLE));

    // RETR marks the message read for every other client.
    let records = server.inbox(&alice).await;
    assert!(records.iter().all(|m| m.flags.contains(&Flag::Seen)));
}

#[tokio::test]
async fn top_sends_the_header_and_some_body_lines_without_marking_seen() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, DOTTED).await;
    let mut client = server.login(ALICE).await;
    let (_, top) = client.multi("TOP 1 0").await;
    assert_eq!(top, b"From: a@example.com\r\nSubject: dots\r\n\r\n.\r\n");
    let (_, top) = client.multi("TOP 1 2").await;
    assert_eq!(
        top,
        b"From: a@example.com\r\nSubject: dots\r\n\r\nfirst\r\n..\r\n.\r\n"
    );
    let (_, top) = client.multi("TOP 1 100").await;
    assert_eq!(top, stuffed(DOTTED));
    assert_eq!(client.cmd("TOP 2 1").await, "-ERR no such message");
    assert!(!server.inbox(&alice).await[0].flags.contains(&Flag::Seen));
}

#[tokio::test]
async fn dele_marks_and_rset_unmarks() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, DOTTED).await;
    let mut client = server.login(ALICE).await;
    assert_eq!(client.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(
        client.cmd("DELE 1").await,
        "-ERR message is marked as deleted"
    );
    assert_eq!(
        client.cmd("RETR 1").await,
        "-ERR message is marked as deleted"
    );
    assert_eq!(client.cmd("STAT").await, format!("+OK 1 {}", DOTTED.len()));
    let (_, list) = client.multi("LIST").await;
    assert_eq!(
        String::from_utf8(list).unwrap(),
        format!("2 {}\r\n.\r\n", DOTTED.len())
    );
    let reply = client.cmd("RSET").await;
    assert!(reply.starts_with("+OK maildrop has 2 messages"), "{reply}");
    assert!(client.cmd("STAT").await.starts_with("+OK 2 "));
    client.cmd("QUIT").await;
    assert_eq!(server.inbox(&alice).await.len(), 2);
}

#[tokio::test]
async fn dele_then_quit_expunges() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, DOTTED).await;
    let kept = server.inbox(&alice).await[1].uid;
    let mut client = server.login(ALICE).await;
    client.cmd("DELE 1").await;
    assert_eq!(
        client.cmd("QUIT").await,
        "+OK evermail POP3 server signing off (1 messages left)"
    );
    assert!(client.until_closed().await.is_empty());
    let left = server.inbox(&alice).await;
    assert_eq!(left.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![kept]);
}

#[tokio::test]
async fn dele_then_dropped_connection_deletes_nothing() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login(ALICE).await;
    assert!(client.cmd("DELE 1").await.starts_with("+OK"));
    drop(client);
    // Once the lock is free again the session is surely gone.
    let mut again = login_when_free(&server).await;
    assert!(again.cmd("STAT").await.starts_with("+OK 1 "));
    assert_eq!(server.inbox(&alice).await.len(), 1);
}

/// Logs in, retrying while the previous session still holds the maildrop lock.
async fn login_when_free(server: &TestServer) -> Client {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut client = Client::connect(server.addr).await;
        client.cmd(&format!("USER {ALICE}")).await;
        let reply = client.cmd("PASS pw").await;
        if reply.starts_with("+OK") {
            return client;
        }
        assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
        assert!(
            Instant::now() < deadline,
            "the maildrop lock was never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_second_session_gets_in_use_until_the_first_quits() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    server.account("bob@example.com", "pw").await;
    let mut first = server.login(ALICE).await;
    let mut second = Client::connect(server.addr).await;
    second.cmd(&format!("USER {ALICE}")).await;
    assert_eq!(
        second.cmd("PASS pw").await,
        "-ERR [IN-USE] maildrop is locked by another POP3 session"
    );
    // Another account is not affected.
    let mut bob = server.login("bob@example.com").await;
    assert!(bob.cmd("STAT").await.starts_with("+OK"));
    // The refused session is still in AUTHORIZATION and may try again.
    first.cmd("QUIT").await;
    first.until_closed().await;
    second.cmd(&format!("USER {ALICE}")).await;
    assert!(second.cmd("PASS pw").await.starts_with("+OK"));
}

#[tokio::test]
async fn uidl_is_stable_across_sessions_and_ignores_new_mail_mid_session() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, DOTTED).await;
    let mut client = server.login(ALICE).await;
    let (_, first) = client.multi("UIDL").await;
    let first = String::from_utf8(first).unwrap();
    // New mail does not change the numbering of a session in progress.
    server.deliver(&alice, SIMPLE).await;
    assert!(client.cmd("STAT").await.starts_with("+OK 2 "));
    client.cmd("DELE 1").await;
    client.cmd("QUIT").await;
    client.until_closed().await;

    let mut client = server.login(ALICE).await;
    let (_, second) = client.multi("UIDL").await;
    let second = String::from_utf8(second).unwrap();
    let ids = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .filter(|l| *l != ".")
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    let (first, second) = (ids(&first), ids(&second));
    assert_eq!(second.len(), 2);
    // Message 2 of the first session is message 1 now, with the same id; the new
    // message has an id never used before.
    assert_eq!(second[0], first[1]);
    assert!(!first.contains(&second[1]));
}

#[tokio::test]
async fn commands_are_checked_against_the_state() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    assert_eq!(
        client.cmd("STAT").await,
        "-ERR STAT is not allowed before login"
    );
    assert_eq!(client.cmd("PASS pw").await, "-ERR send USER first");
    assert_eq!(client.cmd("XYZZY").await, "-ERR unknown command");
    assert!(client.cmd("RETR 0").await.starts_with("-ERR"));
    client.login(ALICE, "pw").await;
    assert_eq!(client.cmd("USER bob").await, "-ERR already logged in");
    assert_eq!(client.cmd("STLS").await, "-ERR already logged in");
    assert_eq!(client.cmd("NOOP").await, "+OK");
    assert_eq!(client.cmd("RETR 1").await, "-ERR no such message");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = Client::connect(server.addr).await;
    client
        .send(format!("USER {ALICE}\r\nPASS pw\r\nSTAT\r\nLIST\r\nNOOP\r\n").as_bytes())
        .await;
    assert!(client.line().await.unwrap().starts_with("+OK"));
    assert!(client.line().await.unwrap().starts_with("+OK maildrop"));
    assert!(client.line().await.unwrap().starts_with("+OK 1 "));
    assert!(client.line().await.unwrap().starts_with("+OK 1 messages"));
    assert_eq!(
        client.until_terminator().await,
        format!("1 {}\r\n.\r\n", SIMPLE.len()).as_bytes()
    );
    assert_eq!(client.line().await.unwrap(), "+OK");
}

#[tokio::test]
async fn an_overlong_line_is_refused_and_closes() {
    let server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    client.send(&[b'A'; 600]).await;
    let lines = client.until_closed().await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("-ERR command line longer"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn capa_lists_what_is_offered() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = Client::connect(server.addr).await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = String::from_utf8(capa).unwrap();
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL PLAIN",
    ] {
        assert!(capa.lines().any(|l| l == cap), "{cap} missing: {capa}");
    }
    // This listener has no TLS.
    assert!(!capa.contains("STLS"), "{capa}");
    assert_eq!(
        client.cmd("STLS").await,
        "-ERR STLS is not available on this listener"
    );
    client.login(ALICE, "pw").await;
    let (_, capa) = client.multi("CAPA").await;
    let capa = String::from_utf8(capa).unwrap();
    assert!(capa.contains("UIDL") && !capa.contains("USER"), "{capa}");
}

#[tokio::test]
async fn shutdown_ends_sessions_without_deleting() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login(ALICE).await;
    assert!(client.cmd("DELE 1").await.starts_with("+OK"));
    server.shutdown.cancel();
    let lines = client.until_closed().await;
    assert_eq!(
        lines,
        vec!["-ERR [SYS/TEMP] server shutting down".to_string()]
    );
    tokio::time::timeout(TIMEOUT, server.handle)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    let inbox = server
        .mailstore
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        server
            .mailstore
            .messages(alice.id, inbox.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn autologout_closes_without_deleting() {
    let options = Pop3Options {
        idle_timeout_secs: 1,
        ..test_options()
    };
    let server = TestServer::start_with(options).await;
    let alice = server.account(ALICE, "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login(ALICE).await;
    client.cmd("DELE 1").await;
    let lines = client.until_closed().await;
    assert_eq!(
        lines,
        vec!["-ERR autologout; idle for too long".to_string()]
    );
    let mut again = login_when_free(&server).await;
    assert!(again.cmd("STAT").await.starts_with("+OK 1 "));
}

#[tokio::test]
async fn xclient_with_the_secret_makes_the_lockout_see_the_client() {
    let store = evermail_mailbox::MailstoreOptions {
        login_guard: evermail_mailbox::LoginGuardOptions {
            max_failures_per_pair: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let options = Pop3Options {
        proxy_secret: Some("s3cret".into()),
        ..test_options()
    };
    let server = TestServer::start_with_store(options, store).await;
    server.account(ALICE, "pw").await;
    let forwarded = |addr: &'static str| {
        let server_addr = server.addr;
        async move {
            let mut client = Client::connect(server_addr).await;
            let reply = client
                .cmd(&format!("XCLIENT ADDR={addr} PORT=4000 SECRET=s3cret"))
                .await;
            assert!(reply.starts_with("+OK"), "{reply}");
            client
        }
    };
    // Without the secret the claim is refused.
    let mut client = Client::connect(server.addr).await;
    assert!(
        client
            .cmd("XCLIENT ADDR=192.0.2.7 SECRET=guess")
            .await
            .starts_with("-ERR")
    );
    assert!(
        client
            .cmd("XCLIENT ADDR=192.0.2.7")
            .await
            .starts_with("-ERR")
    );
    // Four failures from the forwarded 192.0.2.7 lock that client out...
    for failures in [3, 1] {
        let mut client = forwarded("192.0.2.7").await;
        for _ in 0..failures {
            client.cmd(&format!("USER {ALICE}")).await;
            assert!(client.cmd("PASS wrong").await.starts_with("-ERR [AUTH]"));
        }
    }
    let mut client = forwarded("192.0.2.7").await;
    client.cmd(&format!("USER {ALICE}")).await;
    assert!(client.cmd("PASS pw").await.starts_with("-ERR [SYS/TEMP]"));
    // ...but neither another forwarded client nor the proxy's own address.
    let mut client = forwarded("192.0.2.8").await;
    client.cmd(&format!("USER {ALICE}")).await;
    assert!(client.cmd("PASS pw").await.starts_with("+OK"));
    assert!(
        client
            .cmd("XCLIENT ADDR=192.0.2.9 SECRET=s3cret")
            .await
            .starts_with("-ERR")
    );
    client.cmd("QUIT").await;
}
