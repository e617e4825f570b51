//! Encoding tests for status responses, codes and untagged data.

use super::*;

fn enc(r: Response) -> String {
    let mut out = Vec::new();
    r.encode(&mut out);
    String::from_utf8(out).unwrap()
}

fn set(s: &str) -> SequenceSet {
    s.parse().unwrap()
}

#[test]
fn encodes_status_responses() {
    let cases: Vec<(StatusResponse, &str)> = vec![
        (
            StatusResponse::ok("a1", "LOGIN completed"),
            "a1 OK LOGIN completed\r\n",
        ),
        (StatusResponse::no("a2", "no\r\nway"), "a2 NO no  way\r\n"),
        (StatusResponse::bad(None, "what?"), "* BAD what?\r\n"),
        (StatusResponse::bye("bye"), "* BYE bye\r\n"),
        (
            StatusResponse::new(None, StatusKind::PreAuth, "hi"),
            "* PREAUTH hi\r\n",
        ),
        (StatusResponse::ok("a", ""), "a OK done\r\n"),
        (
            StatusResponse::new(None, StatusKind::Ok, "ready").with_code(Code::Capability(vec![
                "IMAP4rev2".into(),
                "IMAP4rev1".into(),
            ])),
            "* OK [CAPABILITY IMAP4rev2 IMAP4rev1] ready\r\n",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(enc(Response::Status(s)), want);
    }
}

#[test]
fn encodes_codes() {
    let cases: Vec<(Code, &str)> = vec![
        (Code::Alert, "ALERT"),
        (Code::ReadOnly, "READ-ONLY"),
        (Code::ReadWrite, "READ-WRITE"),
        (Code::TryCreate, "TRYCREATE"),
        (Code::TooBig, "TOOBIG"),
        (Code::UidNext(4392), "UIDNEXT 4392"),
        (Code::UidValidity(3857529045), "UIDVALIDITY 3857529045"),
        (Code::Unseen(12), "UNSEEN 12"),
        (
            Code::HighestModSeq(715194045007),
            "HIGHESTMODSEQ 715194045007",
        ),
        (Code::NoModSeq, "NOMODSEQ"),
        (
            Code::AppendUid {
                uid_validity: 38505,
                uids: set("3955"),
            },
            "APPENDUID 38505 3955",
        ),
        (
            Code::CopyUid {
                uid_validity: 38505,
                from: set("304,319:320"),
                to: set("3956:3958"),
            },
            "COPYUID 38505 304,319:320 3956:3958",
        ),
        (Code::Modified(set("7,9")), "MODIFIED 7,9"),
        (
            Code::PermanentFlags {
                flags: vec![Flag::Deleted, Flag::Seen],
                keywords: true,
            },
            "PERMANENTFLAGS (\\Deleted \\Seen \\*)",
        ),
        (
            Code::PermanentFlags {
                flags: vec![],
                keywords: false,
            },
            "PERMANENTFLAGS ()",
        ),
        (Code::BadCharset(vec!["UTF-8".into()]), "BADCHARSET (UTF-8)"),
        (Code::BadCharset(vec![]), "BADCHARSET"),
        (
            Code::Other {
                name: "X-FOO".into(),
                value: Some("a]b".into()),
            },
            "X-FOO a b",
        ),
        (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (Code::OverQuota, "OVERQUOTA"),
        (Code::UnknownCte, "UNKNOWN-CTE"),
    ];
    for (code, want) in cases {
        let s = StatusResponse::ok("t", "x").with_code(code);
        assert_eq!(enc(Response::Status(s)), format!("t OK [{want}] x\r\n"));
    }
}

#[test]
fn encodes_data() {
    let item = |name: &str| ListItem {
        attributes: vec!["\\HasNoChildren".into()],
        delimiter: Some('/'),
        name: name.into(),
        child_info_subscribed: false,
        old_name: None,
    };
    let cases: Vec<(Data, &str)> = vec![
        (
            Data::Capability(vec!["IMAP4rev2".into(), "IDLE".into()]),
            "CAPABILITY IMAP4rev2 IDLE",
        ),
        (Data::Enabled(vec!["CONDSTORE".into()]), "ENABLED CONDSTORE"),
        (Data::Enabled(vec![]), "ENABLED"),
        (
            Data::List(item("INBOX")),
            "LIST (\\HasNoChildren) \"/\" INBOX",
        ),
        (
            Data::List(item("Sent Items")),
            "LIST (\\HasNoChildren) \"/\" \"Sent Items\"",
        ),
        (
            Data::List(item("Entw\u{fc}rfe")),
            "LIST (\\HasNoChildren) \"/\" {9}\r\nEntw\u{fc}rfe",
        ),
        (
            Data::List(ListItem {
                attributes: vec![],
                delimiter: None,
                child_info_subscribed: true,
                ..item("Foo")
            }),
            "LIST () NIL Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        ),
        (
            Data::List(ListItem {
                old_name: Some("Bar".into()),
                ..item("Foo")
            }),
            "LIST (\\HasNoChildren) \"/\" Foo (\"OLDNAME\" (Bar))",
        ),
        (Data::Lsub(item("a")), "LSUB (\\HasNoChildren) \"/\" a"),
        (
            Data::Status {
                mailbox: "blurdybloop".into(),
                items: vec![
                    (StatusItem::Messages, 231.into()),
                    (StatusItem::UidNext, 44292.into()),
                ],
            },
            "STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)",
        ),
        // RFC 8474 section 4.2's example.
        (
            Data::Status {
                mailbox: "foo".into(),
                items: vec![(
                    StatusItem::MailboxId,
                    StatusValue::ObjectId("F2212ea87-6097-4256-9d51-71338625".into()),
                )],
            },
            "STATUS foo (MAILBOXID (F2212ea87-6097-4256-9d51-71338625))",
        ),
        (
            Data::Flags {
                flags: vec![Flag::Answered, Flag::Keyword("$Junk".into())],
                recent: true,
            },
            "FLAGS (\\Recent \\Answered $Junk)",
        ),
        (Data::Exists(23), "23 EXISTS"),
        (Data::Recent(5), "5 RECENT"),
        (Data::Expunge(3), "3 EXPUNGE"),
        (
            Data::Vanished {
                earlier: true,
                uids: set("300:310,405"),
            },
            "VANISHED (EARLIER) 300:310,405",
        ),
        (
            Data::Vanished {
                earlier: false,
                uids: set("1"),
            },
            "VANISHED 1",
        ),
        (
            Data::Search {
                numbers: vec![2, 84, 882],
                mod_seq: None,
            },
            "SEARCH 2 84 882",
        ),
        (
            Data::Search {
                numbers: vec![],
                mod_seq: None,
            },
            "SEARCH",
        ),
        (
            Data::Search {
                numbers: vec![2],
                mod_seq: Some(917162500),
            },
            "SEARCH 2 (MODSEQ 917162500)",
        ),
        (
            Data::ESearch(ESearch {
                tag: Some("A282".into()),
                min: Some(2),
                count: Some(3),
                ..ESearch::default()
            }),
            "ESEARCH (TAG \"A282\") MIN 2 COUNT 3",
        ),
        (
            Data::ESearch(ESearch {
                tag: Some("a".into()),
                uid: true,
                all: Some(set("4:18,21")),
                max: Some(21),
                ..ESearch::default()
            }),
            "ESEARCH (TAG \"a\") UID MAX 21 ALL 4:18,21",
        ),
        (Data::Sort(vec![2, 84, 882]), "SORT 2 84 882"),
        (Data::Sort(vec![]), "SORT"),
        (Data::Thread(vec![]), "THREAD"),
        // RFC 5256 section 4's example.
        (
            Data::Thread(vec![
                leaf(2),
                node(
                    3,
                    vec![node(
                        6,
                        vec![
                            node(4, vec![leaf(23)]),
                            node(44, vec![node(7, vec![leaf(96)])]),
                        ],
                    )],
                ),
            ]),
            "THREAD (2)(3 6 (4 23)(44 7 96))",
        ),
        // A missing parent at the top: its replies are siblings.
        (
            Data::Thread(vec![ThreadTree {
                message: None,
                children: vec![leaf(3), leaf(5)],
            }]),
            "THREAD ((3)(5))",
        ),
        (Data::Id(None), "ID NIL"),
        (
            Data::Id(Some(vec![
                ("name".into(), Some("evermail".into())),
                ("os".into(), None),
            ])),
            "ID (\"name\" \"evermail\" \"os\" NIL)",
        ),
        (
            Data::Namespace {
                personal: vec![Namespace {
                    prefix: "".into(),
                    delimiter: Some('/'),
                }],
                other: vec![],
                shared: vec![],
            },
            "NAMESPACE ((\"\" \"/\")) NIL NIL",
        ),
        (
            Data::Quota {
                root: "".into(),
                resources: vec![QuotaResource {
                    name: "STORAGE",
                    usage: 10,
                    limit: 512,
                }],
            },
            "QUOTA \"\" (STORAGE 10 512)",
        ),
        (
            Data::QuotaRoot {
                mailbox: "INBOX".into(),
                roots: vec!["".into()],
            },
            "QUOTAROOT INBOX \"\"",
        ),
        (
            Data::QuotaRoot {
                mailbox: "a b".into(),
                roots: vec![],
            },
            "QUOTAROOT \"a b\"",
        ),
    ];
    for (data, want) in cases {
        assert_eq!(enc(Response::Data(data)), format!("* {want}\r\n"));
    }
}

#[test]
fn encodes_continuations() {
    assert_eq!(
        enc(Response::Continue(Continue::Text(
            "Ready for literal".into()
        ))),
        "+ Ready for literal\r\n"
    );
    assert_eq!(enc(Response::Continue(Continue::Base64(vec![]))), "+ \r\n");
    assert_eq!(
        enc(Response::Continue(Continue::Base64(b"abc".to_vec()))),
        "+ YWJj\r\n"
    );
}

fn leaf(n: u32) -> ThreadTree {
    node(n, Vec::new())
}

fn node(n: u32, children: Vec<ThreadTree>) -> ThreadTree {
    ThreadTree {
        message: Some(n),
        children,
    }
}
