//! `* n FETCH (...)`. Items borrow what they show (flags, envelope, structure, body
//! bytes) from the session, so serving `BODY[]` copies the message once, into the
//! output buffer.

use evermail_types::{Envelope, Flags, MimePart};

use super::body::{body_structure, envelope};
use super::encode::{literal, literal8};
use super::flag_list;
use crate::command::Section;
use crate::datetime::DateTime;

/// One untagged FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse<'a> {
    /// The message sequence number.
    pub seq: u32,
    pub items: Vec<FetchItem<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem<'a> {
    Uid(u32),
    /// `recent` adds `\Recent` (rev1 sessions track it per session).
    Flags {
        flags: &'a Flags,
        recent: bool,
    },
    /// Unix seconds; sent in UTC (`+0000`).
    InternalDate(i64),
    Rfc822Size(u64),
    ModSeq(u64),
    /// OBJECTID (RFC 8474): `EMAILID (id)`.
    EmailId(String),
    /// `THREADID (id)`, or `THREADID NIL` for a message in no thread.
    ThreadId(Option<String>),
    Envelope(&'a Envelope),
    /// The non-extensible BODY structure.
    Body(&'a MimePart),
    BodyStructure(&'a MimePart),
    /// `BODY[section]<origin> data`; `data: None` sends NIL (a part that does not
    /// exist). `origin` is the offset of a partial fetch.
    BodySection {
        section: Section,
        origin: Option<u32>,
        data: Option<&'a [u8]>,
    },
    /// `BINARY[part]<origin> data`, as literal8 when the data holds NUL.
    Binary {
        part: Vec<u32>,
        origin: Option<u32>,
        data: Option<&'a [u8]>,
    },
    BinarySize {
        part: Vec<u32>,
        size: u64,
    },
    Rfc822(Option<&'a [u8]>),
    Rfc822Header(Option<&'a [u8]>),
    Rfc822Text(Option<&'a [u8]>),
}

impl<'a> FetchResponse<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_deferring(out, usize::MAX);
    }

    /// Like [`encode`](Self::encode), except that the data of a literal longer than
    /// `defer_over` bytes is left out: only its `{N}` announcement is written, and the
    /// data is returned with the position in `out` where it belongs. The caller
    /// writes the response in pieces, the large data straight from where it lives (a
    /// memory-mapped spool file), so it is never copied into a buffer whole.
    pub fn encode_deferring(&self, out: &mut Vec<u8>, defer_over: usize) -> Vec<(usize, &'a [u8])> {
        let mut deferred = Vec::new();
        put(out, format_args!("* {} FETCH (", self.seq));
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            if let Some(data) = item.encode_deferring(out, defer_over) {
                deferred.push((out.len(), data));
            }
        }
        out.extend_from_slice(b")\r\n");
        deferred
    }
}

impl<'a> FetchItem<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_deferring(out, usize::MAX);
    }

    /// Encodes the item; literal data longer than `defer_over` is returned instead of
    /// written (see [`FetchResponse::encode_deferring`]).
    fn encode_deferring(&self, out: &mut Vec<u8>, defer_over: usize) -> Option<&'a [u8]> {
        match self {
            FetchItem::Uid(n) => put(out, format_args!("UID {n}")),
            FetchItem::Flags { flags, recent } => {
                out.extend_from_slice(b"FLAGS ");
                flag_list(out, flags.iter(), *recent);
            }
            FetchItem::InternalDate(unix) => put(
                out,
                format_args!("INTERNALDATE \"{}\"", DateTime::utc(*unix)),
            ),
            FetchItem::Rfc822Size(n) => put(out, format_args!("RFC822.SIZE {n}")),
            FetchItem::ModSeq(n) => put(out, format_args!("MODSEQ ({n})")),
            FetchItem::EmailId(id) => put(out, format_args!("EMAILID ({id})")),
            FetchItem::ThreadId(Some(id)) => put(out, format_args!("THREADID ({id})")),
            FetchItem::ThreadId(None) => out.extend_from_slice(b"THREADID NIL"),
            FetchItem::Envelope(env) => {
                out.extend_from_slice(b"ENVELOPE ");
                envelope(out, env);
            }
            FetchItem::Body(part) => {
                out.extend_from_slice(b"BODY ");
                body_structure(out, part, false);
            }
            FetchItem::BodyStructure(part) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                body_structure(out, part, true);
            }
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                out.extend_from_slice(b"BODY[");
                section.encode(out);
                out.push(b']');
                return origin_and_data(out, *origin, *data, false, defer_over);
            }
            FetchItem::Binary { part, origin, data } => {
                put(out, format_args!("BINARY[{}]", dotted(part)));
                return origin_and_data(out, *origin, *data, true, defer_over);
            }
            FetchItem::BinarySize { part, size } => {
                put(out, format_args!("BINARY.SIZE[{}] {size}", dotted(part)))
            }
            FetchItem::Rfc822(data) => return nliteral(out, "RFC822", *data, defer_over),
            FetchItem::Rfc822Header(data) => {
                return nliteral(out, "RFC822.HEADER", *data, defer_over);
            }
            FetchItem::Rfc822Text(data) => {
                return nliteral(out, "RFC822.TEXT", *data, defer_over);
            }
        }
        None
    }
}

/// Writes formatted text into the response buffer without an intermediate `String`
/// (a FETCH of 100,000 messages formats a few items each). Writing to a `Vec` cannot
/// fail.
fn put(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    let _ = std::io::Write::write_fmt(out, args);
}

fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn origin_and_data<'a>(
    out: &mut Vec<u8>,
    origin: Option<u32>,
    data: Option<&'a [u8]>,
    binary: bool,
    defer_over: usize,
) -> Option<&'a [u8]> {
    if let Some(o) = origin {
        put(out, format_args!("<{o}>"));
    }
    out.push(b' ');
    match data {
        None => {
            out.extend_from_slice(b"NIL");
            None
        }
        // Message data always goes as a literal: it is usually long and has CRLFs, and
        // a fixed form makes the output predictable for clients and tests.
        Some(d) => deferrable_literal(out, d, binary, defer_over),
    }
}

fn nliteral<'a>(
    out: &mut Vec<u8>,
    name: &str,
    data: Option<&'a [u8]>,
    defer_over: usize,
) -> Option<&'a [u8]> {
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    match data {
        None => {
            out.extend_from_slice(b"NIL");
            None
        }
        Some(d) => deferrable_literal(out, d, false, defer_over),
    }
}

/// A literal (`literal8` for binary data holding NUL); only its announcement when the
/// data is longer than `defer_over`, and then the data is returned.
fn deferrable_literal<'a>(
    out: &mut Vec<u8>,
    data: &'a [u8],
    binary: bool,
    defer_over: usize,
) -> Option<&'a [u8]> {
    if data.len() <= defer_over {
        if binary {
            literal8(out, data);
        } else {
            literal(out, data);
        }
        return None;
    }
    if binary && data.contains(&0) {
        out.push(b'~');
    }
    put(out, format_args!("{{{}}}\r\n", data.len()));
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SectionText;
    use evermail_types::Flag;

    #[test]
    fn large_literals_can_be_deferred_and_the_pieces_make_the_same_response() {
        let big = b"x\0yz".repeat(10);
        let items = || {
            vec![
                FetchItem::Uid(7),
                FetchItem::Rfc822(Some(&big[..])),
                FetchItem::Binary {
                    part: vec![1],
                    origin: None,
                    data: Some(&big[..]),
                },
                FetchItem::Rfc822Text(Some(b"short")),
            ]
        };
        let mut whole = Vec::new();
        FetchResponse {
            seq: 1,
            items: items(),
        }
        .encode(&mut whole);
        let mut out = Vec::new();
        let response = FetchResponse {
            seq: 1,
            items: items(),
        };
        let deferred = response.encode_deferring(&mut out, 10);
        assert_eq!(deferred.len(), 2);
        assert!(out.len() < whole.len() - 2 * big.len() + 1);
        let mut joined = Vec::new();
        let mut at = 0;
        for (pos, data) in deferred {
            joined.extend_from_slice(&out[at..pos]);
            joined.extend_from_slice(data);
            at = pos;
        }
        joined.extend_from_slice(&out[at..]);
        assert_eq!(
            String::from_utf8_lossy(&joined),
            String::from_utf8_lossy(&whole)
        );
        assert!(
            whole.windows(4).any(|w| w == b"~{40"),
            "binary with NUL is literal8"
        );
    }

    fn enc(items: Vec<FetchItem<'_>>) -> String {
        let mut out = Vec::new();
        FetchResponse { seq: 12, items }.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_items() {
        let flags: Flags = [Flag::Seen, Flag::Keyword("$Junk".into())]
            .into_iter()
            .collect();
        let empty = Flags::new();
        let cases: Vec<(FetchItem<'_>, &str)> = vec![
            (FetchItem::Uid(4827313), "UID 4827313"),
            (
                FetchItem::Flags {
                    flags: &flags,
                    recent: false,
                },
                "FLAGS (\\Seen $Junk)",
            ),
            (
                FetchItem::Flags {
                    flags: &flags,
                    recent: true,
                },
                "FLAGS (\\Recent \\Seen $Junk)",
            ),
            (
                FetchItem::Flags {
                    flags: &empty,
                    recent: false,
                },
                "FLAGS ()",
            ),
            (
                FetchItem::InternalDate(837_596_665),
                "INTERNALDATE \"17-Jul-1996 09:44:25 +0000\"",
            ),
            (FetchItem::Rfc822Size(44827), "RFC822.SIZE 44827"),
            (FetchItem::ModSeq(624140003), "MODSEQ (624140003)"),
            (
                FetchItem::EmailId("M6d99ac3275bb4e".into()),
                "EMAILID (M6d99ac3275bb4e)",
            ),
            (FetchItem::ThreadId(None), "THREADID NIL"),
            (
                FetchItem::ThreadId(Some("T64b478a75b7ea9".into())),
                "THREADID (T64b478a75b7ea9)",
            ),
            (
                FetchItem::BodySection {
                    section: Section::default(),
                    origin: None,
                    data: Some(b"Hi\r\n"),
                },
                "BODY[] {4}\r\nHi\r\n",
            ),
            (
                FetchItem::BodySection {
                    section: Section {
                        part: vec![1, 2],
                        text: Some(SectionText::Mime),
                    },
                    origin: Some(10),
                    data: Some(b"x"),
                },
                "BODY[1.2.MIME]<10> {1}\r\nx",
            ),
            (
                FetchItem::BodySection {
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec!["From".into(), "To".into()])),
                    },
                    origin: None,
                    data: None,
                },
                "BODY[HEADER.FIELDS (From To)] NIL",
            ),
            (
                FetchItem::Binary {
                    part: vec![],
                    origin: None,
                    data: Some(b"a\0"),
                },
                "BINARY[] ~{2}\r\na\0",
            ),
            (
                FetchItem::Binary {
                    part: vec![3],
                    origin: Some(0),
                    data: Some(b"ab"),
                },
                "BINARY[3]<0> {2}\r\nab",
            ),
            (
                FetchItem::BinarySize {
                    part: vec![1, 1],
                    size: 7,
                },
                "BINARY.SIZE[1.1] 7",
            ),
            (FetchItem::Rfc822(Some(b"m")), "RFC822 {1}\r\nm"),
            (FetchItem::Rfc822Header(None), "RFC822.HEADER NIL"),
            (FetchItem::Rfc822Text(Some(b"")), "RFC822.TEXT {0}\r\n"),
        ];
        for (item, want) in cases {
            assert_eq!(enc(vec![item]), format!("* 12 FETCH ({want})\r\n"));
        }
    }

    #[test]
    fn joins_items_with_spaces() {
        let flags = Flags::new();
        assert_eq!(
            enc(vec![
                FetchItem::Uid(1),
                FetchItem::Flags {
                    flags: &flags,
                    recent: false
                },
                FetchItem::Rfc822Size(3)
            ]),
            "* 12 FETCH (UID 1 FLAGS () RFC822.SIZE 3)\r\n"
        );
        let part = MimePart::opaque(0, 10);
        assert_eq!(
            enc(vec![
                FetchItem::Body(&part),
                FetchItem::BodyStructure(&part)
            ]),
            "* 12 FETCH (BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0) \
             BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL))\r\n"
        );
    }
}
