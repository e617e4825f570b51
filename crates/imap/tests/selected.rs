//! The selected state end to end: flag changes, expunges, IDLE, updates from other
//! sessions, APPEND, COPY/MOVE, SEARCH, limits, bad input and shutdown. One test per
//! behaviour.

mod common;

use common::{Client, SIMPLE, TestServer, has};
use std::time::Duration;

#[tokio::test]
async fn store_changes_flags_and_reports_them() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    let reply = client.command("STORE 1:2 +FLAGS (\\Flagged $Work)").await;
    assert_eq!(
        reply[..2],
        [
            "* 1 FETCH (FLAGS (\\Recent \\Flagged $Work))",
            "* 2 FETCH (FLAGS (\\Recent \\Flagged $Work))"
        ]
    );
    let reply = client
        .command("UID STORE 2 -FLAGS.SILENT (\\Flagged)")
        .await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(client.ok(&reply));
    let reply = client.command("STORE 1 FLAGS (\\Seen)").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Recent \\Seen))");
    let reply = client.command("FETCH 1:* FLAGS").await;
    assert_eq!(
        reply[..2],
        [
            "* 1 FETCH (FLAGS (\\Recent \\Seen))",
            "* 2 FETCH (FLAGS (\\Recent $Work))"
        ]
    );
    let reply = client.command("STORE 1 +FLAGS (\\Recent)").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
}

#[tokio::test]
async fn a_store_that_changes_nothing_in_a_stale_view_still_writes() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut a = server.login("alice@example.com").await;
    let mut b = server.login("alice@example.com").await;
    a.command("SELECT INBOX").await;
    b.command("SELECT INBOX").await;
    // A no-op by a's view, which is current: answered from the view, nothing changes.
    let reply = a.command("STORE 1 -FLAGS (\\Flagged)").await;
    assert!(a.ok(&reply), "{reply:?}");
    assert!(reply[0].starts_with("* 1 FETCH (FLAGS ("), "{reply:?}");
    assert!(!reply[0].contains("Flagged"), "{reply:?}");
    // b flags the message; a's view has not caught up, so by it the removal still
    // looks like a no-op, and must be written all the same.
    let reply = b.command("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    assert!(b.ok(&reply), "{reply:?}");
    let reply = a.command("STORE 1 -FLAGS (\\Flagged)").await;
    assert!(a.ok(&reply), "{reply:?}");
    b.command("NOOP").await;
    let reply = b.command("FETCH 1 FLAGS").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (FLAGS (") && !reply[0].contains("Flagged"),
        "b flagged, a unflagged after it: {reply:?}"
    );
    // A replace to what the (now current) view shows changes nothing either way.
    a.command("NOOP").await;
    let reply = a.command("STORE 1 FLAGS (\\Seen)").await;
    assert!(a.ok(&reply), "{reply:?}");
    let reply = a.command("STORE 1 FLAGS (\\Seen)").await;
    assert!(a.ok(&reply) && reply[0].contains("\\Seen"), "{reply:?}");
    let reply = b.command("FETCH 1 FLAGS").await;
    assert!(reply.iter().any(|l| l.contains("\\Seen")), "{reply:?}");
}

/// Another node's writes reach a session only at its next poll, so its view can be
/// stale for a while: a STORE that looks like a no-op by it must still be written,
/// and the session's own write must not make such a view look current.
#[tokio::test]
async fn a_store_in_a_view_another_node_changed_is_written() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;
    // A second mail store over the same database: another node, whose changes
    // this server's sessions are not told of.
    let other = evermail_testkit::local_mailstore(server.dir.path(), Default::default()).await;
    let inbox = other
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    let uids: Vec<_> = other
        .messages(alice.id, inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    let flagged = || async {
        other
            .messages(alice.id, inbox)
            .await
            .unwrap()
            .iter()
            .map(|m| m.flags.contains(&evermail_types::Flag::Flagged))
            .collect::<Vec<_>>()
    };
    let flag = |uid| {
        let other = other.clone();
        async move {
            let flags = [evermail_types::Flag::Flagged].into_iter().collect();
            other
                .store_flags(
                    alice.id,
                    inbox,
                    &[uid],
                    evermail_mailbox::FlagChange::Add,
                    &flags,
                )
                .await
                .unwrap();
        }
    };
    let mut a = server.login("alice@example.com").await;
    a.command("SELECT INBOX").await;

    // Flagged elsewhere; by a's view removing \Flagged changes nothing.
    flag(uids[0]).await;
    let reply = a.command("STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert!(a.ok(&reply), "{reply:?}");
    assert_eq!(flagged().await, [false, false]);

    // Flagged elsewhere again; a's own write to another message comes after that
    // one, so it must not make a's view count as current.
    flag(uids[1]).await;
    let reply = a.command("STORE 1 +FLAGS.SILENT ($Later)").await;
    assert!(a.ok(&reply), "{reply:?}");
    let reply = a.command("STORE 2 -FLAGS.SILENT (\\Flagged)").await;
    assert!(a.ok(&reply), "{reply:?}");
    assert_eq!(flagged().await, [false, false]);
}

#[tokio::test]
async fn expunge_renumbers_and_uid_expunge_is_limited() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..5 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 2,4 +FLAGS.SILENT (\\Deleted)").await;
    let reply = client.command("EXPUNGE").await;
    assert_eq!(reply[..2], ["* 4 EXPUNGE", "* 2 EXPUNGE"]);
    let reply = client.command("FETCH 1:* UID").await;
    assert_eq!(
        reply[..3],
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 5)"
        ]
    );
    client.command("STORE 1:3 +FLAGS.SILENT (\\Deleted)").await;
    let reply = client.command("UID EXPUNGE 3:4").await;
    assert_eq!(reply[0], "* 2 EXPUNGE");
    assert!(client.ok(&reply));
    // CLOSE expunges the rest silently.
    let reply = client.command("CLOSE").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS INBOX (MESSAGES 0)");
}

#[tokio::test]
async fn idle_sees_a_delivery_within_a_second() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ idling");
    let started = std::time::Instant::now();
    let mailstore = server.mailstore.clone();
    let account = alice.id;
    tokio::spawn(async move {
        mailstore
            .deliver(bytes::Bytes::from_static(SIMPLE), &[account])
            .await
            .unwrap();
    });
    assert_eq!(client.line().await.unwrap(), "* 1 EXISTS");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(client.line().await.unwrap(), "* 1 RECENT");
    // Flag changes and expunges by another session arrive too.
    let mut other = server.login("alice@example.com").await;
    other.command("SELECT INBOX").await;
    other.command("STORE 1 +FLAGS (\\Deleted)").await;
    assert_eq!(
        client.line().await.unwrap(),
        "* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted))"
    );
    other.command("EXPUNGE").await;
    assert_eq!(client.line().await.unwrap(), "* 1 EXPUNGE");
    client.send(b"DONE\r\n").await;
    client.last_tag = "i1".into();
    let reply = client.until_tagged().await;
    assert_eq!(reply, ["i1 OK IDLE terminated"]);
}

#[tokio::test]
async fn another_sessions_expunge_waits_until_it_may_be_sent() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..3 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut reader = server.login("alice@example.com").await;
    reader.command("SELECT INBOX").await;
    let mut writer = server.login("alice@example.com").await;
    writer.command("SELECT INBOX").await;
    writer.command("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let reply = writer.command("EXPUNGE").await;
    assert_eq!(reply[0], "* 2 EXPUNGE");

    // FETCH, STORE and SEARCH by sequence number must not see EXPUNGE; the old
    // numbering still holds for them.
    let reply = reader.command("FETCH 1:* UID").await;
    assert!(!has(&reply, "EXPUNGE"), "{reply:?}");
    assert!(has(&reply, "* 3 FETCH (UID 3)"), "{reply:?}");
    let reply = reader.command("SEARCH ALL").await;
    assert!(!has(&reply, "EXPUNGE"), "{reply:?}");
    assert!(has(&reply, "* SEARCH 1 2 3"), "{reply:?}");
    let reply = reader.command("STORE 3 +FLAGS (\\Seen)").await;
    assert!(!has(&reply, "EXPUNGE"), "{reply:?}");
    // NOOP may, and the numbers shift after it.
    let reply = reader.command("NOOP").await;
    assert_eq!(reply[0], "* 2 EXPUNGE");
    let reply = reader.command("FETCH 2 UID").await;
    assert_eq!(reply[0], "* 2 FETCH (UID 3)");
}

#[tokio::test]
async fn noop_reports_new_messages_and_flag_changes() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    let mut other = server.login("alice@example.com").await;
    other.command("SELECT INBOX").await;
    other.command("STORE 1 +FLAGS (\\Answered)").await;
    server.deliver(&alice, SIMPLE).await;
    let reply = client.command("NOOP").await;
    assert_eq!(
        reply,
        [
            // This session selected first and hears of the delivery first: both
            // messages are recent to it alone.
            "* 2 EXISTS",
            "* 2 RECENT",
            "* 1 FETCH (UID 1 FLAGS (\\Recent \\Answered))",
            "t3 OK NOOP completed"
        ]
    );
}

#[tokio::test]
async fn another_users_mailboxes_are_invisible() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.account("bob@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut alice_client = server.login("alice@example.com").await;
    alice_client.command("CREATE Secret").await;
    let mut bob = server.login("bob@example.com").await;
    let reply = bob.command("LIST \"\" *").await;
    assert!(!has(&reply, "Secret"), "{reply:?}");
    for command in [
        "SELECT Secret",
        "EXAMINE Secret",
        "STATUS Secret (MESSAGES)",
        "DELETE Secret",
    ] {
        let reply = bob.command(command).await;
        assert!(
            reply[0].contains("NO [NONEXISTENT]"),
            "{command}: {reply:?}"
        );
    }
    let reply = bob.command("APPEND Secret {1+}\r\nx").await;
    assert!(reply[0].contains("NO [TRYCREATE]"), "{reply:?}");
    // Bob's INBOX is his own, empty one.
    let reply = bob.command("STATUS INBOX (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS INBOX (MESSAGES 0)");
    let reply = bob.command("LIST \"\" ../*").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
}

#[tokio::test]
async fn append_then_fetch() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT Drafts").await;
    client
        .send(
            format!(
                "a1 APPEND Drafts (\\Draft \\Seen) \"05-Jan-2024 10:00:00 +0100\" {{{}}}\r\n",
                SIMPLE.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal");
    client.send(SIMPLE).await;
    client.send(b"\r\n").await;
    client.last_tag = "a1".into();
    let reply = client.until_tagged().await;
    // The selected mailbox hears about its new message before the tagged reply.
    assert_eq!(reply[0], "* 1 EXISTS");
    let last = reply.last().unwrap();
    assert!(last.starts_with("a1 OK [APPENDUID "), "{last}");
    assert!(last.contains(" 1] APPEND completed"), "{last}");
    let reply = client
        .command("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])")
        .await;
    let line = &reply[0];
    assert!(line.contains("FLAGS (\\Recent \\Seen \\Draft)"), "{line}");
    assert!(
        line.contains("INTERNALDATE \"05-Jan-2024 09:00:00 +0000\""),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            "{}\r\n)",
            String::from_utf8_lossy(SIMPLE).trim_end()
        )),
        "{line}"
    );
    let reply = client.command("APPEND Nowhere {1+}\r\nx").await;
    assert!(reply[0].contains("NO [TRYCREATE]"), "{reply:?}");
}

#[tokio::test]
async fn append_over_the_limits_is_refused() {
    let mut options = common::test_options();
    options.max_message_size = 100;
    let server =
        TestServer::start_with(options, evermail_mailbox::MailstoreOptions::default()).await;
    let alice = server.account("alice@example.com", "pw").await;
    server
        .mailstore
        .set_quota("alice@example.com", Some(150))
        .await
        .unwrap();
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("APPEND INBOX {101}").await;
    assert!(reply[0].contains("NO [TOOBIG]"), "{reply:?}");
    let reply = client.command("CAPABILITY").await;
    assert!(reply[0].contains("APPENDLIMIT=100"), "{reply:?}");
    let message = [b'x'; 90];
    let reply = client
        .command(&format!(
            "APPEND INBOX {{90+}}\r\n{}",
            String::from_utf8_lossy(&message)
        ))
        .await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client
        .command(&format!(
            "APPEND INBOX {{90+}}\r\n{}",
            String::from_utf8_lossy(&message)
        ))
        .await;
    assert!(reply[0].contains("NO [OVERQUOTA]"), "{reply:?}");
    let _ = alice;
}

#[tokio::test]
async fn garbage_gets_bad_and_the_session_goes_on() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    client.send(b"\x00\xff garbage\r\n").await;
    assert!(client.line().await.unwrap().starts_with("* BAD"));
    let reply = client.command("FROBNICATE").await;
    assert!(reply[0].starts_with("t1 BAD unknown command"), "{reply:?}");
    let reply = client.command("LOGIN").await;
    assert!(reply[0].starts_with("t2 BAD"), "{reply:?}");
    let reply = client.command("NOOP").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn a_synchronizing_literal_gets_one_continuation() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    client.send(b"l1 LOGIN {17}\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal");
    // Sent in pieces: no second continuation for the same literal.
    client.send(b"alice@").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.send(b"example.com {2}\r\n").await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal");
    client.send(b"pw\r\n").await;
    client.last_tag = "l1".into();
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("l1 OK"), "{reply:?}");
}

#[tokio::test]
async fn an_oversized_literal_before_login_is_refused_without_reading_it() {
    let server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    client.send(b"l1 LOGIN {1000000}\r\n").await;
    let line = client.line().await.unwrap();
    assert!(line.starts_with("l1 NO [TOOBIG]"), "{line}");
    let reply = client.command("NOOP").await;
    assert!(client.ok(&reply), "{reply:?}");
}

#[tokio::test]
async fn search_by_flags_and_numbers() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..4 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 1,3 +FLAGS.SILENT (\\Seen)").await;
    client.command("STORE 3 +FLAGS.SILENT (\\Flagged)").await;
    let cases = [
        ("SEARCH ALL", "* SEARCH 1 2 3 4"),
        ("SEARCH UNSEEN", "* SEARCH 2 4"),
        ("SEARCH SEEN NOT FLAGGED", "* SEARCH 1"),
        ("SEARCH OR FLAGGED 2 UNDELETED", "* SEARCH 2 3"),
        ("SEARCH 2:3 SEEN", "* SEARCH 3"),
        ("UID SEARCH UID 2:* UNSEEN", "* SEARCH 2 4"),
        // All four arrived before this session's SELECT: recent to it.
        ("SEARCH NEW", "* SEARCH 2 4"),
        ("SEARCH OLD", "* SEARCH"),
        ("SEARCH CHARSET UTF-8 DELETED", "* SEARCH"),
    ];
    for (command, want) in cases {
        let reply = client.command(command).await;
        assert_eq!(reply[0], want, "{command}");
    }
    let reply = client.command("SEARCH RETURN (MIN COUNT) UNSEEN").await;
    assert_eq!(
        reply[0],
        format!("* ESEARCH (TAG \"{}\") MIN 2 COUNT 2", client.last_tag)
    );
    // Text keys read the messages (more in tests/search_text.rs).
    let reply = client.command("SEARCH SUBJECT hello").await;
    assert_eq!(reply[0], "* SEARCH 1 2 3 4");
    let reply = client.command("SEARCH CHARSET KOI8-R ALL").await;
    assert!(reply[0].contains("NO [BADCHARSET"), "{reply:?}");
}

#[tokio::test]
async fn session_commands_namespace_id_enable_unselect() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("NAMESPACE").await;
    assert_eq!(reply[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    let reply = client.command("ID (\"name\" \"test\")").await;
    assert!(
        reply[0].starts_with("* ID (\"name\" \"evermail\""),
        "{reply:?}"
    );
    let reply = client.command("ENABLE FOO").await;
    assert_eq!(reply[0], "* ENABLED");
    let reply = client.command("UNSELECT").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
    client.command("SELECT INBOX").await;
    let reply = client.command("UNSELECT").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("COPY 1 Trash").await;
    assert!(reply[0].contains("BAD"), "{reply:?}");
}

#[tokio::test]
async fn shutdown_says_bye_between_commands_and_in_idle() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut waiting = server.login("alice@example.com").await;
    let mut idling = server.login("alice@example.com").await;
    idling.command("SELECT INBOX").await;
    idling.send(b"i1 IDLE\r\n").await;
    assert_eq!(idling.line().await.unwrap(), "+ idling");
    server.shutdown.cancel();
    for client in [&mut waiting, &mut idling] {
        assert_eq!(
            client.line().await.unwrap(),
            "* BYE [UNAVAILABLE] server shutting down"
        );
        assert!(client.closed().await);
    }
    tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn autologout_before_login() {
    let mut options = common::test_options();
    options.idle_timeout_secs = 1;
    let server =
        TestServer::start_with(options, evermail_mailbox::MailstoreOptions::default()).await;
    let mut client = Client::connect(server.addr).await;
    let line = client.line().await.unwrap();
    assert!(line.starts_with("* BYE autologout"), "{line}");
    assert!(client.closed().await);
}

#[tokio::test]
async fn copy_and_move_report_copyuid() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..3 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    let reply = client.command("COPY 1:2 Archive").await;
    let last = reply.last().unwrap();
    assert!(last.contains("OK [COPYUID "), "{last}");
    assert!(last.contains(" 1:2 1:2] COPY completed"), "{last}");
    let reply = client.command("COPY 1 Nowhere").await;
    assert!(reply[0].contains("NO [TRYCREATE]"), "{reply:?}");
    let reply = client.command("UID MOVE 2:3 Trash").await;
    assert!(reply[0].starts_with("* OK [COPYUID "), "{reply:?}");
    assert!(reply[0].contains(" 2:3 1:2]"), "{reply:?}");
    assert_eq!(reply[1..3], ["* 3 EXPUNGE", "* 2 EXPUNGE"]);
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("STATUS Archive (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS Archive (MESSAGES 2)");
    client.command("EXAMINE Archive").await;
    let reply = client.command("FETCH 1 (FLAGS BODY.PEEK[TEXT])").await;
    assert_eq!(
        reply[0],
        "* 1 FETCH (FLAGS (\\Flagged) BODY[TEXT] {13}\r\nhello world\r\n)"
    );
    let reply = client.command("MOVE 1 INBOX").await;
    assert!(reply[0].contains("NO [READ-ONLY]"), "{reply:?}");
}
