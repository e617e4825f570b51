//! What RFC 9051 needs beyond RFC 3501, end to end against a real mail store: BINARY,
//! SEARCHRES, LIST-EXTENDED with LIST-STATUS, LITERAL-, and ENABLE IMAP4rev2. One test
//! per behaviour.

mod common;

use common::{Client, SIMPLE, TestServer};

/// A multipart message whose second part is base64 of bytes with NULs in them, and
/// whose third part is quoted-printable.
const ENCODED: &[u8] = b"From: a@example.com\r\n\
To: b@example.com\r\n\
Subject: parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
plain\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AGhpAA==\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9\r\n\
--b\r\n\
Content-Type: application/x-thing\r\n\
Content-Transfer-Encoding: x-unknown\r\n\
\r\n\
????\r\n\
--b--\r\n";

#[tokio::test]
async fn binary_fetch_decodes_parts() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, ENCODED).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;

    // Decoded data with NULs goes as literal8.
    let reply = client
        .command("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
        .await;
    assert_eq!(
        reply[0], "* 1 FETCH (BINARY[2] ~{4}\r\n\0hi\0 BINARY.SIZE[2] 4)",
        "{reply:?}"
    );
    let reply = client.command("FETCH 1 (BINARY.PEEK[3]<1.4>)").await;
    assert_eq!(
        reply[0], "* 1 FETCH (BINARY[3]<1> {4}\r\naf\u{e9})",
        "{reply:?}"
    );
    // BINARY.PEEK leaves \Seen alone; BINARY sets it.
    let reply = client.command("FETCH 1 FLAGS").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Recent))");
    let reply = client.command("FETCH 1 BINARY[1]").await;
    assert_eq!(
        reply[0], "* 1 FETCH (BINARY[1] {5}\r\nplain FLAGS (\\Recent \\Seen))",
        "{reply:?}"
    );
    // A part that does not exist is NIL; one in an unknown encoding is refused.
    let reply = client.command("FETCH 1 (BINARY.PEEK[9])").await;
    assert_eq!(reply[0], "* 1 FETCH (BINARY[9] NIL)");
    let reply = client.command("FETCH 1 (BINARY.PEEK[4])").await;
    assert!(
        reply.last().unwrap().contains("NO [UNKNOWN-CTE]"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn append_literal8_keeps_nul_bytes() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = server.login("alice@example.com").await;
    let message = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\r\n";
    let mut command = format!("{} APPEND INBOX ~{{{}+}}\r\n", "t9", message.len()).into_bytes();
    command.extend_from_slice(message);
    command.extend_from_slice(b"\r\n");
    client.last_tag = "t9".into();
    client.send(&command).await;
    let reply = client.until_tagged().await;
    assert!(
        reply.last().unwrap().starts_with("t9 OK [APPENDUID"),
        "{reply:?}"
    );
    client.command("SELECT INBOX").await;
    let reply = client
        .command("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
        .await;
    assert_eq!(
        reply[0], "* 1 FETCH (BINARY[1] ~{5}\r\na\0b\r\n BINARY.SIZE[1] 5)",
        "{reply:?}"
    );
}

#[tokio::test]
async fn searchres_saves_a_result_for_dollar() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    for _ in 0..5 {
        server.deliver(&alice, SIMPLE).await;
    }
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 2,4 +FLAGS.SILENT (\\Flagged)").await;

    // RFC 5182 example: SAVE alone answers with the tagged OK only.
    let reply = client.command("SEARCH RETURN (SAVE) FLAGGED").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(client.ok(&reply));
    let reply = client.command("FETCH $ (UID)").await;
    assert_eq!(reply[..2], ["* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)"]);
    // `$` in a search key, and in a UID command.
    let reply = client.command("UID SEARCH NOT UID $").await;
    assert_eq!(reply[0], "* SEARCH 1 3 5");
    client.command("UID STORE $ +FLAGS.SILENT (\\Seen)").await;
    let reply = client.command("SEARCH SEEN").await;
    assert_eq!(reply[0], "* SEARCH 2 4");

    // SAVE with MIN keeps only the smallest; other options still answer.
    let reply = client.command("SEARCH RETURN (SAVE MIN COUNT) ALL").await;
    assert!(reply[0].ends_with("MIN 1 COUNT 5"), "{reply:?}");
    let reply = client.command("SEARCH RETURN (SAVE MIN) ALL").await;
    assert!(reply[0].ends_with("MIN 1"), "{reply:?}");
    let reply = client.command("FETCH $ (UID)").await;
    assert_eq!(reply[0], "* 1 FETCH (UID 1)");

    // A failed SAVE empties `$`; an expunged message drops out of it.
    let reply = client
        .command("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        .await;
    assert!(reply[0].contains("NO [BADCHARSET"), "{reply:?}");
    let reply = client.command("FETCH $ (UID)").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    client.command("SEARCH RETURN (SAVE) 1:2").await;
    client.command("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    client.command("EXPUNGE").await;
    let reply = client.command("FETCH $ (UID)").await;
    assert_eq!(reply[0], "* 1 FETCH (UID 2)");
    assert_eq!(reply.len(), 2, "{reply:?}");
}

#[tokio::test]
async fn list_extended_with_status_and_recursivematch() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    for name in ["Fruit", "Fruit/Banana", "Tofu/Silken", "Veg", "Veg/Leek"] {
        let reply = client.command(&format!("CREATE {name}")).await;
        assert!(client.ok(&reply), "{reply:?}");
    }
    // CREATE does not subscribe; subscribe only Fruit/Banana, Tofu/Silken and the Veg
    // pair below the top level.
    for name in ["Fruit/Banana", "Tofu/Silken", "Veg", "Veg/Leek"] {
        let reply = client.command(&format!("SUBSCRIBE {name}")).await;
        assert!(client.ok(&reply), "{reply:?}");
    }

    // LIST-STATUS (RFC 5819): STATUS right after the LIST of each mailbox.
    let reply = client
        .command("LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN SIZE))")
        .await;
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" INBOX");
    let size = SIMPLE.len() * 2;
    assert_eq!(
        reply[1],
        format!("* STATUS INBOX (MESSAGES 2 UNSEEN 2 SIZE {size})")
    );
    // No STATUS for a name that is not a mailbox.
    let reply = client
        .command("LIST \"\" Tofu RETURN (STATUS (MESSAGES))")
        .await;
    assert_eq!(reply[0], "* LIST (\\NonExistent \\HasChildren) \"/\" Tofu");
    assert!(client.ok(&reply[1..]), "{reply:?}");

    // RFC 5258 section 5, example 5: parents of subscribed mailboxes the pattern does
    // not reach are listed with CHILDINFO.
    let reply = client
        .command("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %")
        .await;
    let lines: Vec<&str> = reply.iter().map(String::as_str).collect();
    assert!(
        lines.contains(&"* LIST (\\HasChildren) \"/\" Fruit (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{reply:?}"
    );
    assert!(
        lines.contains(
            &"* LIST (\\NonExistent \\HasChildren) \"/\" Tofu (\"CHILDINFO\" (\"SUBSCRIBED\"))"
        ),
        "{reply:?}"
    );
    assert!(
        lines.contains(
            &"* LIST (\\HasChildren \\Subscribed) \"/\" Veg (\"CHILDINFO\" (\"SUBSCRIBED\"))"
        ),
        "{reply:?}"
    );
    // With `*` every subscribed child is listed itself, so no CHILDINFO is needed.
    let reply = client
        .command("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *")
        .await;
    assert!(!reply.iter().any(|l| l.contains("CHILDINFO")), "{reply:?}");
    assert!(
        reply.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" Fruit/Banana".to_string()),
        "{reply:?}"
    );
    let reply = client.command("LIST (RECURSIVEMATCH) \"\" %").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    let reply = client.command("LIST (X-FOO) \"\" %").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    // Several patterns at once.
    let reply = client.command("LIST \"\" (INBOX Veg)").await;
    assert_eq!(reply.len(), 3, "{reply:?}");
}

#[tokio::test]
async fn literal_minus_before_login_literal_plus_after() {
    let server = TestServer::start().await;
    server.account("alice@example.com", "pw").await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.command("CAPABILITY").await;
    assert!(
        reply[0].contains(" LITERAL-") && !reply[0].contains("LITERAL+"),
        "{reply:?}"
    );
    // 4096 bytes without waiting is allowed before login.
    let name = "a".repeat(4096);
    client.last_tag = "t8".into();
    client
        .send(format!("t8 LOGIN {{4096+}}\r\n{name} pw\r\n").as_bytes())
        .await;
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("t8 NO"), "{reply:?}");
    // 4097 is refused with BAD [TOOBIG], and the connection closes: the literal's
    // bytes are on their way and cannot be told from commands.
    client.last_tag = "t9".into();
    client.send(b"t9 LOGIN {4097+}\r\n").await;
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("t9 BAD [TOOBIG]"), "{reply:?}");
    assert!(client.closed().await);

    // After login the limit is the message size: LITERAL+.
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("CAPABILITY").await;
    assert!(
        reply[0].contains(" LITERAL+") && !reply[0].contains("LITERAL-"),
        "{reply:?}"
    );
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(6000));
    client.last_tag = "t20".into();
    let mut command = format!("t20 APPEND INBOX {{{}+}}\r\n", body.len()).into_bytes();
    command.extend_from_slice(body.as_bytes());
    command.extend_from_slice(b"\r\n");
    client.send(&command).await;
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("t20 OK [APPENDUID"), "{reply:?}");
}

#[tokio::test]
async fn enable_imap4rev2_changes_the_session() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    server.deliver(&alice, SIMPLE).await;
    let mut rev1 = server.login("alice@example.com").await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("CAPABILITY").await;
    assert!(reply[0].contains(" IMAP4rev2"), "{reply:?}");
    // Before ENABLE the session is rev1: \Recent and RECENT, SEARCH.
    let reply = client.command("SELECT INBOX").await;
    assert!(reply.contains(&"* 2 RECENT".to_string()), "{reply:?}");
    let reply = client.command("SEARCH ALL").await;
    assert_eq!(reply[0], "* SEARCH 1 2");
    client.command("UNSELECT").await;

    let reply = client.command("ENABLE IMAP4rev2").await;
    assert_eq!(reply[0], "* ENABLED IMAP4rev2");
    let reply = client.command("SELECT INBOX").await;
    assert!(
        !reply
            .iter()
            .any(|l| l.contains("RECENT") || l.contains("\\Recent")),
        "{reply:?}"
    );
    assert!(
        reply.contains(&"* LIST () \"/\" INBOX".to_string()),
        "{reply:?}"
    );
    let reply = client.command("SEARCH ALL").await;
    assert_eq!(
        reply[0],
        format!("* ESEARCH (TAG \"{}\") ALL 1:2", client.last_tag)
    );
    let reply = client.command("UID SEARCH SEEN").await;
    assert_eq!(
        reply[0],
        format!("* ESEARCH (TAG \"{}\") UID", client.last_tag)
    );
    let reply = client.command("SELECT Drafts").await;
    assert!(
        reply.iter().any(|l| l.starts_with("* OK [CLOSED]")),
        "{reply:?}"
    );
    assert!(
        reply.contains(&"* LIST (\\Drafts) \"/\" Drafts".to_string()),
        "{reply:?}"
    );

    // Mailbox names are UTF-8 for this session and modified UTF-7 for a rev1 one.
    let reply = client.command("CREATE \"Entwürfe/Ärger\"").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LIST \"\" \"Entwürfe/*\"").await;
    assert_eq!(
        reply[0],
        // 8-bit names go as literals, which rev1 and rev2 clients both read.
        "* LIST (\\HasNoChildren) \"/\" {16}\r\nEntwürfe/Ärger"
    );
    let reply = rev1.command("LIST \"\" \"Entw&APw-rfe/*\"").await;
    assert_eq!(
        reply[0],
        "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe/&AMQ-rger"
    );
    let reply = client.command("STATUS \"Entwürfe/Ärger\" (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS {16}\r\nEntwürfe/Ärger (MESSAGES 0)");
}

#[tokio::test]
async fn utf8_accept_switches_names_and_charsets() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SIMPLE).await;
    let mut client = server.login("alice@example.com").await;
    let reply = client.command("CAPABILITY").await;
    assert!(reply[0].contains(" UTF8=ACCEPT"), "{reply:?}");
    let reply = client.command("ENABLE UTF8=ACCEPT").await;
    assert_eq!(reply[0], "* ENABLED UTF8=ACCEPT");
    // Names are UTF-8 now, as for a rev2 session (RFC 6855 section 3).
    let reply = client.command("CREATE \"Grüße\"").await;
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("LIST \"\" \"Gr*\"").await;
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" {7}\r\nGrüße");
    // SEARCH takes no CHARSET any more.
    client.command("SELECT INBOX").await;
    let reply = client.command("SEARCH CHARSET UTF-8 ALL").await;
    assert!(reply[0].contains(" BAD "), "{reply:?}");
    // APPEND's UTF8 data item (section 4) stores a message with a UTF-8 header.
    let message = "Subject: Grüße\r\n\r\nhallo\r\n";
    client.last_tag = "u1".into();
    let command = format!(
        "u1 APPEND \"Grüße\" UTF8 (~{{{}+}}\r\n{message})\r\n",
        message.len()
    );
    client.send(command.as_bytes()).await;
    let reply = client.until_tagged().await;
    assert!(reply[0].starts_with("u1 OK [APPENDUID"), "{reply:?}");
    let reply = client.command("STATUS \"Grüße\" (MESSAGES)").await;
    assert!(reply[0].ends_with("(MESSAGES 1)"), "{reply:?}");
}
