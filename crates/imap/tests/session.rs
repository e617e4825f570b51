//! The IMAP session end to end, from the greeting to FETCH: a real listener over a real
//! mail store, driven with a raw TCP client. One test per behaviour.

mod common;

use common::{Client, MULTIPART, SIMPLE, TestServer, has};
use std::time::Duration;

#[tokio::test]
async fn greeting_lists_capabilities_and_logout_says_bye() {
    let server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("CAPABILITY").await;
    let caps = &reply[0];
    for cap in [
        "IMAP4rev1",
        "AUTH=PLAIN",
        "SASL-IR",
        "LITERAL-",
        "IDLE",
        "UIDPLUS",
    ] {
        assert!(caps.contains(cap), "{caps}");
    }
    assert!(!caps.contains("STARTTLS"), "{caps}");
    let reply = client.command("STARTTLS").await;
    assert!(reply[0].starts_with("t2 NO"), "{reply:?}");
    let reply = client.command("LOGOUT").await;
    assert!(reply[0].starts_with("* BYE"), "{reply:?}");
    assert!(client.ok(&reply));
    assert!(client.closed().await);
}

#[tokio::test]
async fn login_succeeds_and_fails_with_authenticationfailed() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("LOGIN alice@example.com wrong").await;
    assert!(
        reply[0].starts_with("t1 NO [AUTHENTICATIONFAILED]"),
        "{reply:?}"
    );
    let reply = client.command("SELECT INBOX").await;
    assert!(reply[0].starts_with("t2 BAD"), "{reply:?}");
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(
        reply[0].starts_with("t3 OK [CAPABILITY IMAP4rev1"),
        "{reply:?}"
    );
    assert!(!reply[0].contains("AUTH=PLAIN"), "{reply:?}");
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(reply[0].starts_with("t4 BAD"), "{reply:?}");
}

#[tokio::test]
async fn three_failed_logins_close_the_session() {
    let server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    for _ in 0..2 {
        let reply = client.command("LOGIN nobody@example.com x").await;
        assert!(reply[0].contains("NO [AUTHENTICATIONFAILED]"), "{reply:?}");
    }
    let reply = client.command("LOGIN nobody@example.com x").await;
    assert!(reply[0].contains("NO [AUTHENTICATIONFAILED]"), "{reply:?}");
    assert_eq!(client.line().await.unwrap(), "* BYE too many failed logins");
    assert!(client.closed().await);
}

#[tokio::test]
async fn repeated_failures_lock_the_pair_out_with_unavailable() {
    let store = evermail_mailbox::MailstoreOptions {
        login_guard: evermail_mailbox::LoginGuardOptions {
            max_failures_per_pair: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let server = TestServer::start_with(common::test_options(), store).await;
    server.account("alice@example.com", "pw").await;
    server.account("bob@example.com", "pw").await;
    // Three failures close a session, so the guessing takes two.
    for failures in [3, 1] {
        let mut client = Client::connect(server.addr).await;
        for _ in 0..failures {
            let reply = client.command("LOGIN alice@example.com wrong").await;
            assert!(reply[0].contains("NO [AUTHENTICATIONFAILED]"), "{reply:?}");
        }
    }
    // Locked: even the right password is refused, as a temporary condition.
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("LOGIN alice@example.com pw").await;
    assert!(reply[0].contains("NO [UNAVAILABLE]"), "{reply:?}");
    let reply = client
        .command("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3")
        .await;
    assert!(reply[0].contains("NO [UNAVAILABLE]"), "{reply:?}");
    // Another user from the same address is not affected.
    let reply = client.command("LOGIN bob@example.com pw").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn a_failed_login_does_not_delay_other_sessions() {
    let mut options = common::test_options();
    options.auth_failure_delay_ms = 3000;
    let server =
        TestServer::start_with(options, evermail_mailbox::MailstoreOptions::default()).await;
    server.account("alice@example.com", "pw").await;
    let mut slow = Client::connect(server.addr).await;
    slow.send(b"s1 LOGIN alice@example.com wrong\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let _fast = server.login("alice@example.com").await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn authenticate_plain_with_initial_response_and_continuation() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    // "\0alice@example.com\0pw"
    let ir = "AGFsaWNlQGV4YW1wbGUuY29tAHB3";
    let mut client = Client::connect(server.addr).await;
    let reply = client.command(&format!("AUTHENTICATE PLAIN {ir}")).await;
    assert!(reply[0].starts_with("t1 OK [CAPABILITY"), "{reply:?}");

    let mut client = Client::connect(server.addr).await;
    client.send(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ ");
    client.send(format!("{ir}\r\n").as_bytes()).await;
    client.last_tag = "a1".into();
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("a1 OK"), "{reply:?}");

    let mut client = Client::connect(server.addr).await;
    client.send(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ ");
    client.send(b"*\r\n").await;
    client.last_tag = "a1".into();
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("a1 BAD"), "{reply:?}");
}

#[tokio::test]
async fn list_shows_the_default_mailboxes_with_special_use() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("LIST \"\" *").await;
    assert!(client.ok(&reply), "{reply:?}");
    for (name, attr) in [
        ("INBOX", "\\HasNoChildren"),
        ("Drafts", "\\Drafts"),
        ("Sent", "\\Sent"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        let line = reply
            .iter()
            .find(|l| l.ends_with(&format!("\"/\" {name}")))
            .unwrap_or_else(|| panic!("{name} missing: {reply:?}"));
        assert!(line.contains(attr), "{line}");
    }
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" INBOX");
    let reply = client.command("LIST \"\" \"\"").await;
    assert_eq!(reply[0], "* LIST (\\Noselect) \"/\" \"\"");
    let reply = client.command("LIST \"\" inbox").await;
    assert_eq!(reply.len(), 2, "{reply:?}");
    let reply = client.command("LSUB \"\" S%").await;
    assert_eq!(reply[0], "* LSUB () \"/\" Sent");
}

#[tokio::test]
async fn unsubscribe_and_subscribe_change_lsub() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("UNSUBSCRIBE Sent").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LSUB \"\" *").await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(!has(&reply, "\" Sent"), "{reply:?}");
    assert!(has(&reply, "\" Drafts"), "{reply:?}");
    // Stored, not per session: a new session sees the same.
    let mut other = server.login("alice@example.com").await;
    let reply = other.command("LIST (SUBSCRIBED) \"\" S%").await;
    assert!(other.ok(&reply), "{reply:?}");
    assert!(!has(&reply, "\" Sent"), "{reply:?}");
    let reply = other.command("SUBSCRIBE Sent").await;
    assert!(other.ok(&reply), "{reply:?}");
    let reply = client.command("LSUB \"\" S%").await;
    assert_eq!(reply[0], "* LSUB () \"/\" Sent");
    let reply = client.command("SUBSCRIBE Nowhere").await;
    assert!(has(&reply, "NO [NONEXISTENT]"), "{reply:?}");
}

/// imapclient's livetest `test_subscriptions`: a created mailbox is not subscribed
/// until the client says SUBSCRIBE (RFC 9051 section 6.3.7), so LSUB under it lists
/// only what was subscribed.
#[tokio::test]
async fn create_does_not_subscribe() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    for name in ["Base", "Base/one", "Base/two"] {
        let reply = client.command(&format!("CREATE {name}")).await;
        assert!(client.ok(&reply), "{reply:?}");
    }
    let reply = client.command("LSUB \"Base\" \"*\"").await;
    assert_eq!(reply.len(), 1, "nothing subscribed yet: {reply:?}");
    let reply = client.command("SUBSCRIBE Base/one").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LSUB \"Base\" \"*\"").await;
    assert_eq!(reply[0], "* LSUB () \"/\" Base/one");
    assert_eq!(reply.len(), 2, "{reply:?}");
}

#[tokio::test]
async fn create_nested_mailboxes_and_delete_them() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("CREATE Lists/rust").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("CREATE Lists/rust").await;
    assert!(reply[0].contains("NO [ALREADYEXISTS]"), "{reply:?}");
    let reply = client.command("LIST \"\" %").await;
    assert!(
        has(&reply, "* LIST (\\Noselect \\HasChildren) \"/\" Lists"),
        "{reply:?}"
    );
    let reply = client.command("LIST Lists/ %").await;
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" Lists/rust");
    // Modified UTF-7 for a rev1 client: "Entwürfe".
    let reply = client.command("CREATE Entw&APw-rfe").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LIST \"\" Entw*").await;
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe");
    let reply = client.command("DELETE Lists/rust").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("SELECT Lists/rust").await;
    assert!(reply[0].contains("NO [NONEXISTENT]"), "{reply:?}");
    let reply = client.command("DELETE INBOX").await;
    assert!(reply[0].contains("NO"), "{reply:?}");
}

#[tokio::test]
async fn select_reports_the_mailbox() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, MULTIPART).await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(
        reply.iter().any(|l| l.starts_with("* FLAGS (")),
        "{reply:?}"
    );
    for want in [
        "* 2 EXISTS",
        "* 2 RECENT",
        "* OK [UNSEEN 1]",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]",
        "* OK [UIDVALIDITY ",
        "* OK [UIDNEXT 3]",
        "* OK [HIGHESTMODSEQ ",
        "OK [READ-WRITE] SELECT completed",
    ] {
        assert!(has(&reply, want), "{want}: {reply:?}");
    }
    let reply = client.command("EXAMINE inbox").await;
    assert!(has(&reply, "OK [READ-ONLY] EXAMINE completed"), "{reply:?}");
    assert!(has(&reply, "[PERMANENTFLAGS ()]"), "{reply:?}");
    let reply = client.command("STORE 1 +FLAGS (\\Seen)").await;
    assert!(reply[0].contains("NO [READ-ONLY]"), "{reply:?}");
    let reply = client.command("SELECT Nope").await;
    assert!(reply[0].contains("NO [NONEXISTENT]"), "{reply:?}");
    // The failed SELECT left nothing selected.
    let reply = client.command("FETCH 1 FLAGS").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
}

#[tokio::test]
async fn status_counts_without_selecting() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    let reply = client
        .command("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)")
        .await;
    let line = &reply[0];
    assert!(
        line.starts_with("* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY "),
        "{line}"
    );
    assert!(line.contains("UNSEEN 2"), "{line}");
    assert!(
        line.contains(&format!("SIZE {}", 2 * SIMPLE.len())),
        "{line}"
    );
    let reply = client.command("STATUS Missing (MESSAGES)").await;
    assert!(reply[0].contains("NO [NONEXISTENT]"), "{reply:?}");
}

#[tokio::test]
async fn fetch_body_returns_the_exact_bytes() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    let mut odd = MULTIPART.to_vec();
    odd.extend_from_slice(b"trailing \xff\xfe bytes\r\n");
    server.deliver(&alice, &odd).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.send(b"f1 FETCH 1 BODY.PEEK[]\r\n").await;
    let line = client.raw_line().await.unwrap();
    let mut want = format!("* 1 FETCH (BODY[] {{{}}}\r\n", odd.len()).into_bytes();
    want.extend_from_slice(&odd);
    want.push(b')');
    assert_eq!(line, want);
    client.last_tag = "f1".into();
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("f1 OK"), "{reply:?}");
}

#[tokio::test]
async fn fetch_sections_partials_envelope_and_bodystructure() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, MULTIPART).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    let reply = client.command("FETCH 1 (BODY.PEEK[1])").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[1] {10}\r\nfirst part)");
    let reply = client.command("FETCH 1 (BODY.PEEK[1.MIME])").await;
    assert!(
        reply[0].ends_with("Content-Type: text/plain; charset=us-ascii\r\n\r\n)"),
        "{reply:?}"
    );
    let reply = client
        .command("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject To)])")
        .await;
    assert_eq!(
        reply[0],
        "* 1 FETCH (BODY[HEADER.FIELDS (Subject To)] {39}\r\nTo: bob@example.com\r\nSubject: parts\r\n\r\n)"
    );
    let reply = client
        .command("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Message-ID MIME-Version)])")
        .await;
    assert!(
        reply[0].contains("Content-Type: multipart/mixed"),
        "{reply:?}"
    );
    assert!(!reply[0].contains("Subject: parts"), "{reply:?}");
    let reply = client.command("FETCH 1 (BODY.PEEK[]<6.5>)").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[]<6> {5}\r\nAlice)");
    let reply = client.command("FETCH 1 (BODY.PEEK[2.HEADER])").await;
    assert_eq!(
        reply[0],
        "* 1 FETCH (BODY[2.HEADER] {43}\r\nFrom: carol@example.com\r\nSubject: inner\r\n\r\n)"
    );
    let reply = client.command("FETCH 1 (BODY.PEEK[2.TEXT])").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (BODY[2.TEXT] {"),
        "{reply:?}"
    );
    assert!(reply[0].contains("inner body"), "{reply:?}");
    let reply = client.command("FETCH 1 (BODY.PEEK[9])").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[9] NIL)");
    let reply = client
        .command("FETCH 1 (UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE FLAGS)")
        .await;
    let line = &reply[0];
    assert!(line.starts_with("* 1 FETCH (UID 1 RFC822.SIZE "), "{line}");
    assert!(line.contains("INTERNALDATE \""), "{line}");
    assert!(
        line.contains("ENVELOPE (NIL \"parts\" ((\"Alice\" NIL \"alice\" \"example.com\"))"),
        "{line}"
    );
    assert!(
        line.contains("BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\")"),
        "{line}"
    );
    assert!(line.contains("\"mixed\""), "{line}");
    assert!(line.ends_with("FLAGS (\\Recent))"), "{line}");
    let reply = client.command("FETCH 1 RFC822.HEADER").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (RFC822.HEADER {"),
        "{reply:?}"
    );
    let reply = client.command("FETCH 1 FLAGS").await;
    assert_eq!(
        reply[0], "* 1 FETCH (FLAGS (\\Recent))",
        "peeks leave \\Seen alone"
    );
}

#[tokio::test]
async fn a_body_fetch_sets_seen_and_reports_it() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    client.command("EXAMINE INBOX").await;
    let reply = client.command("FETCH 1 BODY[TEXT]").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[TEXT] {13}\r\nhello world\r\n)");
    client.command("SELECT INBOX").await;
    let reply = client.command("FETCH 1 BODY[TEXT]").await;
    assert_eq!(
        reply[0],
        "* 1 FETCH (BODY[TEXT] {13}\r\nhello world\r\n FLAGS (\\Recent \\Seen))"
    );
    let reply = client.command("UID FETCH 1 (FLAGS)").await;
    assert_eq!(reply[0], "* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen))");
}

#[tokio::test]
async fn fetch_by_sequence_number_and_uid_sets() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..3 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    let reply = client.command("FETCH 2:* (UID)").await;
    assert_eq!(reply[..2], ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]);
    let reply = client.command("UID FETCH 3:* FLAGS").await;
    assert_eq!(reply[0], "* 3 FETCH (UID 3 FLAGS (\\Recent))");
    let reply = client.command("UID FETCH 99 FLAGS").await;
    assert!(client.ok(&reply) && reply.len() == 1, "{reply:?}");
    let reply = client.command("FETCH 4 FLAGS").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
}
