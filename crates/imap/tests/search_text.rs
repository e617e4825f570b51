//! SEARCH on message headers and text against a real mail store: the RFC 9051 examples,
//! decoded encoded words and transfer encodings, CHARSET UTF-8 with a literal, HEADER
//! and SENT*. One test per behaviour.

mod common;

use common::TestServer;

const SMITH: &[u8] = b"From: John Smith <smith@example.com>\r\n\
To: alice@example.com\r\n\
Subject: Quarterly numbers\r\n\
Date: Tue, 1 Feb 1994 23:59:00 -0800\r\n\
X-Ticket: 4711\r\n\
\r\n\
The numbers are in.\r\n";

const JOERG: &[u8] = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\n\
To: alice@example.com\r\n\
Cc: Bob <bob@example.org>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Wed, 2 Feb 1994 08:00:00 +0100\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Sch=F6ne Gr=FC=DFe aus K=F6ln\r\n"
    .as_bytes();

#[tokio::test]
async fn search_headers_and_text() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    server.deliver(&alice, SMITH).await;
    server.deliver(&alice, JOERG).await;
    let mut client = server.login("alice@example.com").await;
    client.command("SELECT INBOX").await;
    client.command("STORE 1:2 +FLAGS.SILENT (\\Flagged)").await;

    let cases = [
        // RFC 9051 section 6.4.4's examples.
        (
            "SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
            "* SEARCH 2",
        ),
        ("SEARCH TEXT \"string not in mailbox\"", "* SEARCH"),
        // Encoded words and the body's transfer encoding and charset are undone.
        ("SEARCH FROM \"jörg\"", "* SEARCH 2"),
        ("SEARCH SUBJECT \"GRÜSSE\"", "* SEARCH"),
        ("SEARCH SUBJECT \"GRÜßE\"", "* SEARCH 2"),
        ("SEARCH BODY \"KÖLN\"", "* SEARCH 2"),
        ("SEARCH BODY quarterly", "* SEARCH"),
        ("SEARCH TEXT quarterly", "* SEARCH 1"),
        ("SEARCH CC bob TO alice", "* SEARCH 2"),
        ("SEARCH OR BCC x SUBJECT numbers", "* SEARCH 1"),
        ("SEARCH HEADER X-Ticket 4711", "* SEARCH 1"),
        ("SEARCH HEADER X-Ticket \"\"", "* SEARCH 1"),
        // SENT* use the Date: field's own day, whatever its zone.
        ("SEARCH SENTON 1-Feb-1994", "* SEARCH 1"),
        ("SEARCH SENTBEFORE 2-Feb-1994", "* SEARCH 1"),
        ("SEARCH SENTSINCE 2-Feb-1994", "* SEARCH 2"),
        ("UID SEARCH NOT TEXT smith", "* SEARCH 2"),
    ];
    for (command, want) in cases {
        let reply = client.command(command).await;
        assert_eq!(reply[0], want, "{command}");
        assert!(client.ok(&reply), "{command}: {reply:?}");
    }

    // CHARSET UTF-8 with the string as a literal (RFC 9051 section 6.4.4).
    client.last_tag = "u1".into();
    client
        .send("u1 SEARCH CHARSET UTF-8 BODY {7}\r\n".as_bytes())
        .await;
    assert_eq!(client.line().await.unwrap(), "+ Ready for literal");
    client.send("schöne\r\n".as_bytes()).await;
    let reply = client.until_tagged().await;
    assert_eq!(reply[0], "* SEARCH 2", "{reply:?}");
}
