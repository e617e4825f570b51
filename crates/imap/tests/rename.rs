//! RENAME over a real listener and mail store (RFC 9051 section 6.3.6), including
//! its examples and the INBOX rule.

mod common;

use common::{TestServer, has};

const ALICE: &str = "alice@example.com";

fn mail(subject: &str) -> Vec<u8> {
    format!("From: a@example.net\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n").into_bytes()
}

/// The number after `key` in a STATUS line.
fn status_value(line: &str, key: &str) -> u64 {
    let rest = line.split_once(&format!("{key} ")).expect(key).1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn listed(reply: &[String]) -> Vec<String> {
    let mut names: Vec<String> = reply
        .iter()
        .filter_map(|l| l.strip_prefix("* LIST "))
        .filter_map(|l| l.rsplit_once("\"/\" ").map(|(_, n)| n.to_string()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn rename_moves_the_hierarchy_as_in_the_rfc_example() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    for name in ["foo/bar", "foo/baz", "foo", "fools"] {
        let reply = client.command(&format!("CREATE {name}")).await;
        assert!(client.ok(&reply), "{reply:?}");
    }
    let reply = client.command("STATUS foo/bar (UIDVALIDITY)").await;
    let uidvalidity = reply[0].clone();
    // RFC 9051: "RENAME foo zap" renames foo/bar to zap/bar and foo/baz to zap/baz.
    let reply = client.command("RENAME foo zap").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LIST \"\" *").await;
    let names = listed(&reply);
    for want in ["zap", "zap/bar", "zap/baz", "fools"] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("foo/") || n == "foo"));
    let reply = client.command("STATUS zap/bar (UIDVALIDITY)").await;
    assert_eq!(
        reply[0].replace("zap/bar", "foo/bar"),
        uidvalidity,
        "UIDVALIDITY kept"
    );
}

#[tokio::test]
async fn rename_refuses_existing_and_missing_names() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    client.command("CREATE a").await;
    let reply = client.command("RENAME a Sent").await;
    assert!(has(&reply, "NO [ALREADYEXISTS]"), "{reply:?}");
    let reply = client.command("RENAME a inbox").await;
    assert!(has(&reply, "NO [ALREADYEXISTS]"), "{reply:?}");
    let reply = client.command("RENAME nowhere b").await;
    assert!(has(&reply, "NO [NONEXISTENT]"), "{reply:?}");
    let reply = client.command("RENAME a a/b").await;
    assert!(has(&reply, "NO [CANNOT]"), "{reply:?}");
    let reply = client.command("RENAME a \"b*\"").await;
    assert!(has(&reply, "NO [CANNOT]"), "{reply:?}");
    let reply = client.command("LIST \"\" a").await;
    assert!(has(&reply, "\"/\" a"), "a is still there: {reply:?}");
}

#[tokio::test]
async fn renaming_inbox_moves_its_messages_and_leaves_it_empty() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    for subject in ["one", "two", "three"] {
        server.deliver(&alice, &mail(subject)).await;
    }
    let mut client = server.login(ALICE).await;
    client.command("CREATE INBOX/child").await;
    let reply = client.command("STATUS INBOX (UIDVALIDITY UIDNEXT)").await;
    let inbox_status = reply[0].clone();
    let mut watcher = server.login(ALICE).await;
    let reply = watcher.command("SELECT INBOX").await;
    assert!(has(&reply, "* 3 EXISTS"), "{reply:?}");

    let reply = client.command("RENAME INBOX old-mail").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client
        .command("STATUS INBOX (MESSAGES UIDVALIDITY UIDNEXT)")
        .await;
    assert!(reply[0].contains("MESSAGES 0"), "{reply:?}");
    // INBOX keeps its UIDVALIDITY and does not hand out a moved UID again.
    assert_eq!(
        status_value(&reply[0], "UIDVALIDITY"),
        status_value(&inbox_status, "UIDVALIDITY")
    );
    assert_eq!(status_value(&reply[0], "UIDNEXT"), 4);
    let reply = client
        .command("STATUS old-mail (UIDVALIDITY UIDNEXT)")
        .await;
    assert_ne!(
        status_value(&reply[0], "UIDVALIDITY"),
        status_value(&inbox_status, "UIDVALIDITY")
    );
    let reply = client.command("SELECT old-mail").await;
    assert!(has(&reply, "* 3 EXISTS"), "{reply:?}");
    let reply = client
        .command("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert!(has(&reply, "Subject: one"), "{reply:?}");
    assert!(has(&reply, "Subject: three"), "{reply:?}");
    // INBOX's own children stay where they are.
    let reply = client.command("LIST \"\" *").await;
    let names = listed(&reply);
    assert!(names.contains(&"INBOX/child".to_string()), "{names:?}");
    assert!(!names.contains(&"old-mail/child".to_string()), "{names:?}");

    // The session that had INBOX selected sees the messages go.
    let reply = watcher.command("NOOP").await;
    assert_eq!(
        reply.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        3,
        "{reply:?}"
    );
    // New mail arrives in the empty INBOX.
    server.deliver(&alice, &mail("four")).await;
    let reply = watcher.command("NOOP").await;
    assert!(has(&reply, "* 1 EXISTS"), "{reply:?}");
}
