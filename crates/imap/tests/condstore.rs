//! CONDSTORE and QRESYNC (RFC 7162) end to end against a real mail store: enabling,
//! MODSEQ in FETCH, STORE and SEARCH, CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED,
//! SELECT (QRESYNC ...), and VANISHED in place of EXPUNGE. One test per behaviour.

mod common;

use common::{Client, SIMPLE, TestServer, has};

/// The number after `name` in the first line that has it, e.g. `HIGHESTMODSEQ 7`.
fn number_after(lines: &[String], name: &str) -> u64 {
    let line = lines
        .iter()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"));
    let rest = &line[line.find(name).unwrap() + name.len()..];
    let digits: String = rest
        .trim_start_matches([' ', '('])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

async fn inbox_with(server: &TestServer, n: usize) -> Client {
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..n {
        server.deliver(&alice, SIMPLE).await;
    }
    server.login("alice@example.com").await
}

#[tokio::test]
async fn capabilities_and_enable() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 0).await;
    let reply = client.command("CAPABILITY").await;
    assert!(
        has(&reply, " CONDSTORE") && has(&reply, " QRESYNC"),
        "{reply:?}"
    );
    let reply = client.command("ENABLE CONDSTORE X-UNKNOWN").await;
    assert_eq!(reply[0], "* ENABLED CONDSTORE");
    // Enabling twice lists nothing the second time (RFC 5161).
    let reply = client.command("ENABLE CONDSTORE QRESYNC").await;
    assert_eq!(reply[0], "* ENABLED QRESYNC");
    assert!(client.ok(&reply));
}

#[tokio::test]
async fn select_condstore_fetch_changedsince_and_modseq() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 3).await;
    let reply = client.command("SELECT INBOX (CONDSTORE)").await;
    let highest = number_after(&reply, "HIGHESTMODSEQ");
    assert!(client.ok(&reply), "{reply:?}");

    // Once CONDSTORE is on, a STORE reply carries UID and MODSEQ.
    let reply = client.command("STORE 2 +FLAGS (\\Flagged)").await;
    assert!(
        reply[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Recent \\Flagged) MODSEQ ("),
        "{reply:?}"
    );
    let stored = number_after(&reply, "MODSEQ");
    assert!(stored > highest);

    let reply = client
        .command(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .await;
    assert_eq!(
        reply[..2],
        [
            format!("* 2 FETCH (FLAGS (\\Recent \\Flagged) MODSEQ ({stored}))"),
            format!("{} OK FETCH completed", client.last_tag)
        ]
    );
    let reply = client.command("FETCH 1 (MODSEQ)").await;
    assert!(reply[0].starts_with("* 1 FETCH (MODSEQ ("), "{reply:?}");
    let reply = client
        .command("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
        .await;
    assert_eq!(
        reply[0],
        format!("* STATUS INBOX (HIGHESTMODSEQ {stored} MESSAGES 3)")
    );
}

#[tokio::test]
async fn search_modseq_reports_the_highest_match() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 3).await;
    let reply = client.command("SELECT INBOX").await;
    let highest = number_after(&reply, "HIGHESTMODSEQ");
    client.command("STORE 3 +FLAGS.SILENT (\\Seen)").await;
    let reply = client
        .command(&format!("SEARCH MODSEQ {}", highest + 1))
        .await;
    // SEARCH MODSEQ turned CONDSTORE on in the selected state (RFC 7162 section 3.1).
    let stored = number_after(&reply, "HIGHESTMODSEQ");
    assert_eq!(
        reply[0],
        format!("* OK [HIGHESTMODSEQ {stored}] CONDSTORE enabled")
    );
    assert_eq!(reply[1], format!("* SEARCH 3 (MODSEQ {stored})"));
    let reply = client
        .command(&format!("UID SEARCH RETURN (COUNT) MODSEQ {}", highest + 1))
        .await;
    assert!(
        reply[0].ends_with(&format!("UID COUNT 1 MODSEQ {stored}")),
        "{reply:?}"
    );
    // Nothing matched: no MODSEQ.
    let reply = client
        .command(&format!("SEARCH MODSEQ {}", stored + 1))
        .await;
    assert_eq!(reply[0], "* SEARCH");
}

#[tokio::test]
async fn store_unchangedsince_refuses_changed_messages() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 3).await;
    let reply = client.command("SELECT INBOX").await;
    let highest = number_after(&reply, "HIGHESTMODSEQ");
    // Message 2 changes after the client read `highest`.
    client.command("STORE 2 +FLAGS.SILENT (\\Answered)").await;
    client.command("ENABLE CONDSTORE").await;

    let reply = client
        .command(&format!(
            "STORE 1:3 (UNCHANGEDSINCE {highest}) +FLAGS.SILENT (\\Deleted)"
        ))
        .await;
    // RFC 7162 section 3.1.3: changed messages are reported even under .SILENT, with
    // their MODSEQ; the refused one is named in MODIFIED, and the reply is still OK.
    assert_eq!(reply.len(), 3, "{reply:?}");
    assert!(reply[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted) MODSEQ ("));
    assert!(reply[1].starts_with("* 3 FETCH (UID 3 FLAGS (\\Recent \\Deleted) MODSEQ ("));
    assert!(
        reply[2].starts_with(&format!("{} OK [MODIFIED 2]", client.last_tag)),
        "{reply:?}"
    );
    let reply = client.command("FETCH 2 FLAGS").await;
    assert!(
        reply[0].contains("FLAGS (\\Recent \\Answered)"),
        "{reply:?}"
    );

    // UNCHANGEDSINCE 0 always fails; UID STORE names UIDs.
    let reply = client
        .command("UID STORE 1:3 (UNCHANGEDSINCE 0) FLAGS (\\Seen)")
        .await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(reply[0].contains("OK [MODIFIED 1:3]"), "{reply:?}");
}

#[tokio::test]
async fn qresync_expunge_is_reported_as_vanished() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 5).await;
    let mut other = server.login("alice@example.com").await;
    client.command("ENABLE QRESYNC").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 2,4 +FLAGS.SILENT (\\Deleted)").await;
    let reply = client.command("EXPUNGE").await;
    assert_eq!(reply[0], "* VANISHED 2,4");
    assert!(
        reply[1].starts_with(&format!("{} OK [HIGHESTMODSEQ ", client.last_tag)),
        "{reply:?}"
    );

    // Another session's expunge also arrives as VANISHED.
    other.command("SELECT INBOX").await;
    other.command("UID STORE 5 +FLAGS.SILENT (\\Deleted)").await;
    other.command("EXPUNGE").await;
    let reply = client.command("NOOP").await;
    assert!(has(&reply, "* VANISHED 5"), "{reply:?}");
    assert!(!has(&reply, "EXPUNGE"), "{reply:?}");
}

#[tokio::test]
async fn select_qresync_resynchronizes_a_cache() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 5).await;
    let reply = client.command("SELECT INBOX").await;
    let uidvalidity = number_after(&reply, "UIDVALIDITY");
    let highest = number_after(&reply, "HIGHESTMODSEQ");
    // Without ENABLE QRESYNC the parameter is a client error.
    let reply = client
        .command(&format!("SELECT INBOX (QRESYNC ({uidvalidity} {highest}))"))
        .await;
    assert!(reply.last().unwrap().contains(" BAD "), "{reply:?}");

    // While the client is away: 1 and 4 are expunged, 3 is flagged.
    let mut other = server.login("alice@example.com").await;
    other.command("SELECT INBOX").await;
    other.command("STORE 1,4 +FLAGS.SILENT (\\Deleted)").await;
    other.command("EXPUNGE").await;
    other.command("UID STORE 3 +FLAGS.SILENT (\\Flagged)").await;

    client.command("ENABLE QRESYNC").await;
    let reply = client
        .command(&format!(
            "SELECT INBOX (QRESYNC ({uidvalidity} {highest} 1:3,5))"
        ))
        .await;
    assert!(client.ok(&reply), "{reply:?}");
    // UID 4 was not in the client's known UIDs, so it is not reported.
    assert!(
        reply.contains(&"* VANISHED (EARLIER) 1".to_string()),
        "{reply:?}"
    );
    let fetch = reply
        .iter()
        .find(|l| l.contains("FETCH"))
        .unwrap_or_else(|| panic!("{reply:?}"));
    assert!(
        fetch.starts_with("* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ("),
        "{reply:?}"
    );
    assert_eq!(reply.iter().filter(|l| l.contains("FETCH")).count(), 1);

    // A changed UIDVALIDITY: the cache is useless and nothing is resynchronized.
    let reply = client
        .command(&format!(
            "SELECT INBOX (QRESYNC ({} {highest}))",
            uidvalidity + 1
        ))
        .await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(
        !has(&reply, "VANISHED") && !has(&reply, "FETCH"),
        "{reply:?}"
    );
    // Switching mailboxes with QRESYNC on announces the close.
    assert!(has(&reply, "[CLOSED]"), "{reply:?}");
}

#[tokio::test]
async fn uid_fetch_vanished_reports_earlier_expunges() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 4).await;
    let reply = client.command("SELECT INBOX").await;
    let highest = number_after(&reply, "HIGHESTMODSEQ");
    let query = format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)");
    let reply = client.command(&query).await;
    assert!(reply.last().unwrap().contains(" BAD "), "{reply:?}");

    client.command("ENABLE QRESYNC").await;
    client.command("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    client.command("EXPUNGE").await;
    client.command("UID STORE 3 +FLAGS.SILENT (\\Seen)").await;
    let reply = client.command(&query).await;
    assert_eq!(reply[0], "* VANISHED (EARLIER) 2");
    assert!(
        reply[1].starts_with("* 2 FETCH (UID 3 FLAGS (\\Recent \\Seen) MODSEQ ("),
        "{reply:?}"
    );
    assert!(client.ok(&reply));
    // VANISHED is for UID FETCH only.
    let reply = client
        .command(&format!(
            "FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)"
        ))
        .await;
    assert!(reply.last().unwrap().contains(" BAD "), "{reply:?}");
}

#[tokio::test]
async fn held_back_expunges_lower_the_reported_highestmodseq() {
    let server = TestServer::start().await;
    let mut client = inbox_with(&server, 3).await;
    let mut other = server.login("alice@example.com").await;
    client.command("ENABLE QRESYNC").await;
    let reply = client.command("SELECT INBOX").await;
    let selected_at = number_after(&reply, "HIGHESTMODSEQ");
    other.command("SELECT INBOX").await;
    other.command("UID STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.command("EXPUNGE").await;
    other.command("UID STORE 3 +FLAGS.SILENT (\\Flagged)").await;

    // A STORE by sequence number may not announce the removal, but its FETCH carries
    // a MODSEQ above it; RFC 7162 section 3.2 then wants a HIGHESTMODSEQ below it.
    let reply = client.command("STORE 2 +FLAGS (\\Seen)").await;
    assert!(!has(&reply, "VANISHED"), "{reply:?}");
    let stored = reply
        .iter()
        .find(|l| l.contains("FETCH (UID 2"))
        .map(|l| number_after(std::slice::from_ref(l), "MODSEQ"))
        .unwrap_or_else(|| panic!("{reply:?}"));
    let floor = number_after(&reply, "[HIGHESTMODSEQ");
    assert!(floor < stored, "{reply:?}");
    assert_eq!(floor, selected_at, "{reply:?}");
    // The next command that may announce it does, and the floor goes away.
    let reply = client.command("NOOP").await;
    assert!(has(&reply, "* VANISHED 1"), "{reply:?}");
    assert!(!has(&reply, "[HIGHESTMODSEQ"), "{reply:?}");
}
