//! Property tests: the parser never panics and keeps its promises about `consumed`, on
//! arbitrary bytes, on mutations of valid commands, and when a valid command arrives a
//! byte at a time. Values with a text form (sequence sets, modified UTF-7) round-trip.

use evermail_imap_proto::{Limits, Parse, SequenceSet, mutf7, parse_command};
use proptest::prelude::*;

const VALID: &[&[u8]] = &[
    b"a1 CAPABILITY\r\n",
    b"a2 LOGIN {5}\r\nalice \"pass word\"\r\n",
    b"a3 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"a4 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1,5 1,9)))\r\n",
    b"a5 LIST (SUBSCRIBED) \"\" (INBOX %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
    b"a6 STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)\r\n",
    b"a7 APPEND saved (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\nhello ~{2}\r\na\0\r\n",
    b"a8 UID FETCH 1:*,7 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> BINARY[1] MODSEQ) (CHANGEDSINCE 5 VANISHED)\r\n",
    b"a9 FETCH 2:4 FULL\r\n",
    b"b1 UID STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Deleted $Junk)\r\n",
    b"b2 UID MOVE 4:* Trash\r\n",
    b"b3 SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (SEEN 1:3) NOT HEADER X-Foo {3}\r\nbar SINCE 1-Feb-1994\r\n",
    b"b4 ID (\"name\" \"mutt\" \"version\" NIL)\r\n",
    b"b5 CREATE Sent (USE (\\Sent))\r\n",
    b"b6 ENABLE CONDSTORE QRESYNC\r\n",
    b"b7 UID EXPUNGE 3:5\r\n",
    b"b8 RENAME old new\r\n",
    // CONDSTORE, QRESYNC, BINARY, SEARCHRES, LIST-EXTENDED/LIST-STATUS, rev2.
    b"b9 SELECT INBOX (CONDSTORE)\r\n",
    b"c1 SEARCH RETURN (SAVE MIN) MODSEQ \"/flags/\\\\draft\" all 620162338 NOT UID $\r\n",
    b"c2 FETCH $ (BINARY.SIZE[1.2] BINARY[]<0.4096> BINARY.PEEK[3]) (CHANGEDSINCE 12345)\r\n",
    b"c3 LIST (SUBSCRIBED RECURSIVEMATCH REMOTE) \"\" (\"*\" %) RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (SIZE HIGHESTMODSEQ DELETED))\r\n",
    b"c4 STORE $ (UNCHANGEDSINCE 0) FLAGS.SILENT ()\r\n",
    b"c5 ENABLE IMAP4rev2 CONDSTORE\r\n",
    b"c6 APPEND INBOX ~{3+}\r\na\0b\r\n",
    b"c7 EXAMINE INBOX (QRESYNC (1 2))\r\n",
    b"c8 UID EXPUNGE $\r\n",
    b"c9 UID SORT (REVERSE DATE SUBJECT) UTF-8 OR FROM {3}\r\nbob TEXT \"x\"\r\n",
    b"d1 THREAD REFERENCES US-ASCII SINCE 1-Feb-1994 HEADER X-Foo \"\"\r\n",
    b"d2 UID FETCH 1:* (EMAILID THREADID)\r\n",
    b"d3 STATUS foo (MAILBOXID SIZE)\r\n",
    b"d4 SEARCH EMAILID E0123abc OR THREADID T-1 NOT EMAILID x_y\r\n",
    b"d5 APPEND INBOX (\\Seen) UTF8 (~{4+}\r\nGr\xc3\xbc)\r\n",
    b"d6 ENABLE UTF8=ACCEPT\r\n",
    // MULTIAPPEND and QUOTA.
    b"q1 APPEND Drafts (\\Draft) {2+}\r\nhi (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {3+}\r\nbye\r\n",
    b"q2 GETQUOTAROOT INBOX\r\n",
    b"q3 GETQUOTA \"\"\r\n",
    b"q4 SETQUOTA \"\" (STORAGE 512 MESSAGE 1000)\r\n",
    b"q5 STATUS INBOX (DELETED DELETED-STORAGE)\r\n",
];

fn limits() -> Limits {
    Limits {
        max_line: 200,
        max_literal: 1000,
        literal_minus: false,
        max_command: 4000,
    }
}

/// The limits before login: LITERAL- caps non-synchronizing literals at 4096 bytes.
fn literal_minus_limits() -> Limits {
    Limits {
        max_literal: 16 * 1024,
        literal_minus: true,
        max_command: 64 * 1024,
        ..limits()
    }
}

/// Checks what every answer must satisfy and returns it.
fn check(input: &[u8]) -> Parse {
    check_with(input, &limits())
}

fn check_with(input: &[u8], limits: &Limits) -> Parse {
    let parse = parse_command(input, limits);
    match &parse {
        Parse::Complete { consumed, .. } | Parse::Error { consumed, .. } => {
            assert!(*consumed > 0, "{input:?}: consumed nothing");
            assert!(*consumed <= input.len(), "{input:?}: consumed past the end");
        }
        Parse::NeedContinuation { data_offset, .. } => {
            assert_eq!(*data_offset, input.len(), "{input:?}");
        }
        Parse::Incomplete => {}
    }
    parse
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(b'{'),
        Just(b'}'),
        Just(b'('),
        Just(b')'),
        Just(b'"'),
        Just(b'\\'),
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b'+'),
        Just(b'~'),
        Just(b'9'),
        Just(0u8),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = input.len().max(1);
        match *m {
            Mutation::Replace(i, b) if !input.is_empty() => input[i % len] = b,
            Mutation::Insert(i, b) => input.insert(i % (input.len() + 1), b),
            Mutation::Delete(i) if !input.is_empty() => {
                input.remove(i % len);
            }
            Mutation::Truncate(i) => input.truncate(i % (input.len() + 1)),
            _ => {}
        }
    }
    input
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&input);
    }

    #[test]
    fn tokens_soup(parts in proptest::collection::vec(prop_oneof![
        Just(&b"a "[..]), Just(&b"FETCH "[..]), Just(&b"UID "[..]), Just(&b"SEARCH "[..]),
        Just(&b"(("[..]), Just(&b")"[..]), Just(&b"{3}\r\n"[..]), Just(&b"{2+}\r\n"[..]),
        Just(&b"~{1}\r\n"[..]), Just(&b"BODY[1.MIME]<0.5>"[..]), Just(&b"NOT "[..]),
        Just(&b"OR "[..]), Just(&b"1:*"[..]), Just(&b"\"q\\\"\""[..]), Just(&b"\r\n"[..]),
        Just(&b" "[..]), Just(&b"LOGIN "[..]), Just(&b"APPEND x "[..]), Just(&b"$"[..]),
        Just(&b"BINARY.PEEK[1]<0.9>"[..]), Just(&b"(CHANGEDSINCE 1 VANISHED)"[..]),
        Just(&b"(UNCHANGEDSINCE 9) "[..]), Just(&b"RETURN (SAVE) "[..]),
        Just(&b"MODSEQ \"/flags/\\\\seen\" priv 5 "[..]), Just(&b"(QRESYNC (1 2 1:5 (1 2)))"[..]),
        Just(&b"RETURN (STATUS (SIZE)) "[..]), Just(&b"{4097+}\r\n"[..]),
        Just(&b"SORT (REVERSE "[..]), Just(&b"THREAD REFERENCES "[..]), Just(&b"UTF-8 "[..]),
    ], 0..40)) {
        let input: Vec<u8> = parts.concat();
        check(&input);
    }

    #[test]
    fn mutated_commands(
        which in 0..VALID.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let input = apply(VALID[which].to_vec(), &mutations);
        check(&input);
    }

    /// Literal announcements of every size around LITERAL-'s 4096, synchronizing or
    /// not, with or without their data.
    #[test]
    fn literal_minus_announcements(
        len in prop_oneof![0u64..5000, Just(4096u64), Just(4097u64), any::<u64>()],
        plus in any::<bool>(),
        binary in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut input = format!(
            "a LOGIN {}{{{len}{}}}\r\n",
            if binary { "~" } else { "" },
            if plus { "+" } else { "" },
        )
        .into_bytes();
        input.extend_from_slice(&data);
        let parse = check_with(&input, &literal_minus_limits());
        if plus && len > 4096 {
            let refused = matches!(parse, Parse::Error { .. });
            prop_assert!(refused, "{:?}", parse);
        }
    }

    #[test]
    fn mutated_commands_before_login(
        which in 0..VALID.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let input = apply(VALID[which].to_vec(), &mutations);
        check_with(&input, &literal_minus_limits());
    }

    #[test]
    fn set_text_round_trips(ranges in proptest::collection::vec((0u32..20, 0u32..20), 1..6)) {
        let text = ranges
            .iter()
            .map(|(a, b)| {
                let bound = |n: u32| if n == 0 { "*".to_string() } else { n.to_string() };
                if a == b { bound(*a) } else { format!("{}:{}", bound(*a), bound(*b)) }
            })
            .collect::<Vec<_>>()
            .join(",");
        let set: SequenceSet = text.parse().unwrap();
        prop_assert_eq!(set.to_string(), text);
        // Every member of the normalised ranges is in the set, and nothing else is.
        let members: Vec<u32> = set.iter(15).collect();
        for n in 1..=25 {
            prop_assert_eq!(members.contains(&n), set.contains(n, 15), "{} in {}", n, set);
        }
    }

    #[test]
    fn mutf7_round_trips(name in "\\PC{0,12}") {
        let encoded = mutf7::encode(&name);
        prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(mutf7::decode(&encoded), Ok(name));
    }
}

#[test]
fn valid_commands_parse_whole() {
    for input in VALID {
        match check(input) {
            Parse::Complete { consumed, .. } => assert_eq!(consumed, input.len(), "{input:?}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }
}

/// A command arriving in pieces is never mistaken for a complete one, asks for each
/// synchronizing literal exactly at its start, and completes only at the end.
#[test]
fn valid_commands_arrive_byte_by_byte() {
    for input in VALID {
        for cut in 0..input.len() {
            match check(&input[..cut]) {
                Parse::Incomplete | Parse::NeedContinuation { .. } => {}
                other => panic!(
                    "{:?} cut at {cut}: {other:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        }
    }
}

#[test]
fn pipelined_commands_come_out_one_at_a_time() {
    let all: Vec<u8> = VALID.concat();
    let mut rest = &all[..];
    let mut tags = Vec::new();
    while !rest.is_empty() {
        let Parse::Complete { consumed, command } = check(rest) else {
            panic!("{:?}", String::from_utf8_lossy(rest));
        };
        tags.push(command.tag);
        rest = &rest[consumed..];
    }
    assert_eq!(tags.len(), VALID.len());
}
