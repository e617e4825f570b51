//! \Recent for IMAP4rev1 sessions (RFC 3501 section 2.3.2): a message is recent in
//! exactly one session, the first to SELECT its mailbox after it arrived or the
//! selected session first told of it; EXAMINE claims nothing; rev2 sessions neither
//! see nor claim it.

mod common;

use common::{SIMPLE, TestServer, has};
use std::time::Duration;

#[tokio::test]
async fn only_the_first_select_sees_messages_as_recent() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;

    // EXAMINE looks without claiming.
    let mut looker = server.login("alice@example.com").await;
    let reply = looker.command("EXAMINE INBOX").await;
    assert!(has(&reply, "* 0 RECENT"), "{reply:?}");
    let reply = looker.command("STATUS INBOX (RECENT)").await;
    assert_eq!(reply[0], "* STATUS INBOX (RECENT 2)");

    let mut first = server.login("alice@example.com").await;
    let reply = first.command("SELECT INBOX").await;
    assert!(has(&reply, "* 2 RECENT"), "{reply:?}");
    let reply = first.command("FETCH 1:* FLAGS").await;
    assert_eq!(
        reply[..2],
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))"
        ]
    );
    first.command("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let reply = first.command("SEARCH RECENT").await;
    assert_eq!(reply[0], "* SEARCH 1 2");
    let reply = first.command("SEARCH NEW").await;
    assert_eq!(reply[0], "* SEARCH 2");
    let reply = first.command("SEARCH OLD").await;
    assert_eq!(reply[0], "* SEARCH");

    // Claimed: a second SELECT, and STATUS, see none.
    let mut second = server.login("alice@example.com").await;
    let reply = second.command("SELECT INBOX").await;
    assert!(has(&reply, "* 0 RECENT"), "{reply:?}");
    let reply = second.command("FETCH 2 FLAGS").await;
    assert_eq!(reply[0], "* 2 FETCH (FLAGS ())");
    let reply = second.command("SEARCH OLD").await;
    assert_eq!(reply[0], "* SEARCH 1 2");
    let reply = looker.command("STATUS INBOX (RECENT MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS INBOX (RECENT 0 MESSAGES 2)");

    // A delivery while both have it selected is recent to exactly one of them.
    server.deliver(&alice, SIMPLE).await;
    let mut recent_to = Vec::new();
    for client in [&mut first, &mut second] {
        let reply = client.command("NOOP").await;
        assert!(has(&reply, "* 3 EXISTS"), "{reply:?}");
        let reply = client.command("FETCH 3 FLAGS").await;
        recent_to.push(reply[0] == "* 3 FETCH (FLAGS (\\Recent))");
    }
    assert_eq!(recent_to.iter().filter(|&&r| r).count(), 1, "{recent_to:?}");
    // The first to be told claimed it, and said so with RECENT after EXISTS.
    assert_eq!(recent_to, [true, false]);
    let mut third = server.login("alice@example.com").await;
    let reply = third.command("SELECT INBOX").await;
    assert!(has(&reply, "* 0 RECENT"), "{reply:?}");
}

#[tokio::test]
async fn recent_is_reported_after_exists_to_the_claiming_session() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("SELECT INBOX").await;
    assert!(has(&reply, "* 0 RECENT"), "{reply:?}");
    server.deliver(&alice, SIMPLE).await;
    let mut reply = Vec::new();
    // Bounded: the delivery is announced at once through this process.
    for _ in 0..20 {
        reply = client.command("NOOP").await;
        if has(&reply, "EXISTS") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exists = reply.iter().position(|l| l == "* 1 EXISTS");
    let recent = reply.iter().position(|l| l == "* 1 RECENT");
    assert!(exists.is_some() && recent > exists, "{reply:?}");
}

#[tokio::test]
async fn rev2_sessions_neither_see_nor_claim_recent() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut modern = server.login("alice@example.com").await;
    modern.command("ENABLE IMAP4rev2").await;
    let reply = modern.command("SELECT INBOX").await;
    assert!(!has(&reply, "RECENT"), "{reply:?}");
    let reply = modern.command("FETCH 1 FLAGS").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS ())");
    let mut old = server.login("alice@example.com").await;
    let reply = old.command("SELECT INBOX").await;
    assert!(has(&reply, "* 1 RECENT"), "{reply:?}");
}
