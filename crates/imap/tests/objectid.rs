//! OBJECTID (RFC 8474) against a real mail store.

mod common;

use common::{SIMPLE, TestServer, has};

/// The text inside `NAME (` ... `)` in the first line that has it.
fn id_after(lines: &[String], name: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"));
    let rest = &line[line.find(name).unwrap() + name.len()..];
    let rest = rest.trim_start().trim_start_matches('(');
    rest[..rest.find(')').unwrap()].to_string()
}

#[tokio::test]
async fn ids_stay_with_mailboxes_and_messages() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server
        .deliver(&alice, b"Subject: other\r\n\r\nother\r\n")
        .await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("CAPABILITY").await;
    assert!(has(&reply, " OBJECTID"), "{reply:?}");

    // RFC 8474 section 4.1: CREATE and SELECT name the mailbox id, STATUS reports it.
    let reply = client.command("CREATE Projects").await;
    let created = id_after(&reply, "MAILBOXID");
    let reply = client.command("STATUS Projects (MAILBOXID MESSAGES)").await;
    assert_eq!(
        reply[0],
        format!("* STATUS Projects (MAILBOXID ({created}) MESSAGES 0)")
    );
    // RENAME keeps it (section 4.1).
    let reply = client.command("RENAME Projects Work").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("STATUS Work (MAILBOXID)").await;
    assert_eq!(reply[0], format!("* STATUS Work (MAILBOXID ({created}))"));
    client.command("RENAME Work Projects").await;
    let reply = client.command("SELECT INBOX").await;
    let inbox = id_after(&reply, "MAILBOXID");
    assert_ne!(inbox, created);

    // EMAILID follows a message through COPY; THREADID is NIL.
    let reply = client.command("FETCH 1:2 (EMAILID THREADID)").await;
    let first = id_after(&reply[..1], "EMAILID");
    let second = id_after(&reply[1..], "EMAILID");
    assert_ne!(first, second);
    assert!(reply[0].ends_with("THREADID NIL)"), "{reply:?}");
    client.command("COPY 1 Projects").await;
    let reply = client.command(&format!("SEARCH EMAILID {second}")).await;
    assert_eq!(reply[0], "* SEARCH 2");
    client.command("SELECT Projects").await;
    let reply = client.command("FETCH 1 (EMAILID)").await;
    assert_eq!(id_after(&reply, "EMAILID"), first);
    let reply = client.command("SEARCH THREADID T1").await;
    assert_eq!(reply[0], "* SEARCH");
}
