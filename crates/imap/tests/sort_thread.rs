//! SORT and THREAD (RFC 5256) against a real mail store. One test per behaviour.

mod common;

use common::TestServer;

fn message(from: &str, subject: &str, date: &str, id: &str, refs: &str, body: &str) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: alice@example.com\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n"
    );
    if !refs.is_empty() {
        m.push_str(&format!("References: {refs}\r\n"));
    }
    m.push_str(&format!("\r\n{body}\r\n"));
    m.into_bytes()
}

async fn mailbox() -> (TestServer, common::Client) {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    let messages = [
        // 1
        message(
            "carol@example.com",
            "Plan",
            "Mon, 1 Jan 2024 10:00:00 +0000",
            "p1@x",
            "",
            "a",
        ),
        // 2: a reply, and the largest
        message(
            "bob@example.com",
            "Re: plan",
            "Mon, 1 Jan 2024 12:00:00 +0000",
            "p2@x",
            "<p1@x>",
            &"b".repeat(500),
        ),
        // 3: sent earliest of all, but in another zone
        message(
            "anne@example.com",
            "[list] Agenda",
            "Mon, 1 Jan 2024 09:00:00 +0200",
            "a1@x",
            "",
            "c",
        ),
        // 4: a reply to the reply
        message(
            "dave@example.com",
            "Re: Re: Plan",
            "Tue, 2 Jan 2024 08:00:00 +0000",
            "p3@x",
            "<p1@x> <p2@x>",
            "d",
        ),
    ];
    for m in &messages {
        server.deliver(&alice, m).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    (server, client)
}

#[tokio::test]
async fn sort_orders_by_each_key() {
    let (_server, mut client) = mailbox().await;
    let cases = [
        ("SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4"),
        ("SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT 4 3 2 1"),
        ("SORT (DATE) UTF-8 ALL", "* SORT 3 1 2 4"),
        ("SORT (FROM) UTF-8 ALL", "* SORT 3 2 1 4"),
        ("SORT (REVERSE SIZE) UTF-8 ALL", "* SORT 2 4 3 1"),
        // Base subjects: agenda < plan; equal subjects keep sequence order.
        ("SORT (SUBJECT) UTF-8 ALL", "* SORT 3 1 2 4"),
        ("SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 3 4 2 1"),
        ("SORT (SUBJECT) US-ASCII NOT FROM bob", "* SORT 3 1 4"),
        ("UID SORT (DATE) UTF-8 2:4", "* SORT 3 2 4"),
    ];
    for (command, want) in cases {
        let reply = client.command(command).await;
        assert_eq!(reply[0], want, "{command}");
        assert!(client.ok(&reply), "{command}: {reply:?}");
    }
    let reply = client.command("SORT (DATE) KOI8-R ALL").await;
    assert!(reply[0].contains("NO [BADCHARSET"), "{reply:?}");
}

#[tokio::test]
async fn thread_by_subject_and_references() {
    let (_server, mut client) = mailbox().await;
    let reply = client.command("THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(reply[0], "* THREAD (3)(1 (2)(4))");
    let reply = client.command("THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(reply[0], "* THREAD (3)(1 2 4)");
    let reply = client
        .command("UID THREAD REFERENCES UTF-8 NOT UID 2")
        .await;
    // Without 2 in the result, 4's parent chain still runs through it as a dummy,
    // which is promoted.
    assert_eq!(reply[0], "* THREAD (3)(1 4)");
    let reply = client.command("CAPABILITY").await;
    for cap in ["SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"] {
        assert!(reply[0].contains(cap), "{reply:?}");
    }
}
