//! MULTIAPPEND (RFC 3502) over a real listener and mail store: several messages in
//! one APPEND land together with one APPENDUID, or none does.

mod common;

use common::{TestServer, has};

const ALICE: &str = "alice@example.com";

/// `APPEND mailbox` with each message as a non-synchronizing literal.
fn multiappend(mailbox: &str, messages: &[(&str, &str)]) -> String {
    let mut command = format!("APPEND {mailbox}");
    for (flags, body) in messages {
        command.push_str(&format!(" ({flags}) {{{}+}}\r\n{body}", body.len()));
    }
    command
}

#[tokio::test]
async fn several_messages_land_together_with_one_appenduid() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    let reply = client.command("CAPABILITY").await;
    assert!(has(&reply, " MULTIAPPEND"), "{reply:?}");
    let command = multiappend(
        "INBOX",
        &[
            ("\\Seen", "Subject: one\r\n\r\nfirst\r\n"),
            ("\\Flagged", "Subject: two\r\n\r\nsecond\r\n"),
            ("", "Subject: three\r\n\r\nthird\r\n"),
        ],
    );
    let reply = client.command(&command).await;
    assert!(client.ok(&reply), "{reply:?}");
    assert!(reply.last().unwrap().contains(" 1:3]"), "{reply:?}");
    let reply = client.command("SELECT INBOX").await;
    assert!(has(&reply, "* 3 EXISTS"), "{reply:?}");
    let reply = client.command("FETCH 1:3 (FLAGS BODY.PEEK[TEXT])").await;
    assert!(
        has(&reply, "* 1 FETCH (FLAGS (\\Recent \\Seen)"),
        "{reply:?}"
    );
    assert!(
        has(&reply, "* 2 FETCH (FLAGS (\\Recent \\Flagged)"),
        "{reply:?}"
    );
    assert!(has(&reply, "third"), "{reply:?}");
}

#[tokio::test]
async fn a_batch_over_quota_stores_nothing() {
    let server = TestServer::start().await;
    server
        .mailstore
        .create_account(ALICE, "pw", Some(100))
        .await
        .unwrap();
    let mut client = server.login(ALICE).await;
    let forty = format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(24));
    assert_eq!(forty.len(), 40);
    // Each message fits the quota alone; the third does not fit after the first two.
    let command = multiappend("INBOX", &[("", &forty), ("", &forty), ("", &forty)]);
    let reply = client.command(&command).await;
    assert!(has(&reply, "NO [OVERQUOTA]"), "{reply:?}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 0)"), "{reply:?}");
    // Two fit.
    let command = multiappend("INBOX", &[("", &forty), ("", &forty)]);
    let reply = client.command(&command).await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 2)"), "{reply:?}");
}

#[tokio::test]
async fn a_missing_mailbox_gets_trycreate_and_nothing_is_stored() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    let command = multiappend("Nowhere", &[("", "a\r\n"), ("", "b\r\n")]);
    let reply = client.command(&command).await;
    assert!(has(&reply, "NO [TRYCREATE]"), "{reply:?}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 0)"), "{reply:?}");
}

#[tokio::test]
async fn a_batch_larger_than_the_command_limit_is_toobig() {
    let mut options = common::test_options();
    options.max_message_size = 200_000;
    let server =
        TestServer::start_with(options, evermail_mailbox::MailstoreOptions::default()).await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    let body = format!("Subject: big\r\n\r\n{}\r\n", "b".repeat(190_000 - 18));
    assert_eq!(body.len(), 190_000);
    // Each message is within APPENDLIMIT; together they pass what one command may
    // carry (one message and some lines). The last literal is synchronizing, so the
    // server refuses it before its data is sent.
    client
        .send(
            format!("t1 APPEND INBOX {{190000+}}\r\n{body} {{190000+}}\r\n{body} {{190000}}\r\n")
                .as_bytes(),
        )
        .await;
    client.last_tag = "t1".into();
    let reply = client.until_tagged().await;
    assert!(has(&reply, "t1 NO [TOOBIG]"), "{reply:?}");
    // The session goes on, and nothing was stored.
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 0)"), "{reply:?}");
}
