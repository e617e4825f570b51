//! FETCH and UID FETCH, with CONDSTORE's CHANGEDSINCE and QRESYNC's VANISHED modifiers
//! (RFC 7162) and BINARY (RFC 3516). The section types are shared with the FETCH
//! response encoder.

use std::fmt;
use std::num::NonZeroU32;

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub set: SequenceSet,
    /// The attributes asked for, with the ALL/FAST/FULL macros expanded. For UID FETCH
    /// the session must add UID to each response itself (RFC 9051 section 6.4.9).
    pub attrs: Vec<FetchAttr>,
    pub uid: bool,
    /// `CHANGEDSINCE n`: only messages whose MODSEQ is greater.
    pub changed_since: Option<u64>,
    /// `VANISHED` (UID FETCH only, with CHANGEDSINCE).
    pub vanished: bool,
}

/// One `fetch-att`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    /// `RFC822`: the whole message, like `BODY[]` but sets \Seen.
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// `BODY`: the non-extensible body structure.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// OBJECTID (RFC 8474).
    EmailId,
    ThreadId,
    /// `BODY[section]<partial>`, or `BODY.PEEK[...]` (which does not set \Seen).
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]`: the part with its
    /// Content-Transfer-Encoding removed.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<u32>,
    },
}

/// A `section-spec`: a part path (empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    /// Part numbers, each non-zero: `[1, 2]` for `1.2`.
    pub part: Vec<u32>,
    /// `None` for the whole part (`BODY[]`, `BODY[1.2]`).
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    /// Field names as given; they match header names case-insensitively.
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only after a part number: that part's MIME header.
    Mime,
}

/// `<offset.length>` of a partial fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    pub offset: u32,
    pub length: NonZeroU32,
}

impl FetchAttr {
    /// Whether serving it sets `\Seen` on a read-write mailbox.
    pub fn sets_seen(&self) -> bool {
        match self {
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
            FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
            _ => false,
        }
    }
}

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> PResult<Fetch> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let attrs = if c.peek() == Some(b'(') {
        c.list(parse_attr)?
    } else if c.eat_keyword("ALL") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ]
    } else if c.eat_keyword("FAST") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ]
    } else if c.eat_keyword("FULL") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ]
    } else {
        vec![parse_attr(c)?]
    };
    let mut fetch = Fetch {
        set,
        attrs,
        uid,
        changed_since: None,
        vanished: false,
    };
    if c.eat(b' ') {
        c.list(|c| {
            let name = c.atom()?;
            if name.eq_ignore_ascii_case("CHANGEDSINCE") {
                c.sp()?;
                fetch.changed_since = Some(c.number64()?);
            } else if name.eq_ignore_ascii_case("VANISHED") {
                fetch.vanished = true;
            } else {
                return Err(ParseError::syntax(format!("unknown FETCH modifier {name}")));
            }
            Ok(())
        })?;
        // RFC 7162 section 3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        if fetch.vanished && (!uid || fetch.changed_since.is_none()) {
            return Err(ParseError::syntax(
                "VANISHED requires UID FETCH with CHANGEDSINCE",
            ));
        }
    }
    Ok(fetch)
}

fn parse_attr(c: &mut Cursor<'_>) -> PResult<FetchAttr> {
    let word = c.word()?.to_ascii_uppercase();
    let attr = match word.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "EMAILID" => FetchAttr::EmailId,
        "THREADID" => FetchAttr::ThreadId,
        "BODY" if c.peek() != Some(b'[') => FetchAttr::Body,
        "BODY" | "BODY.PEEK" => {
            let section = parse_section(c)?;
            FetchAttr::BodySection {
                peek: word == "BODY.PEEK",
                section,
                partial: parse_partial(c)?,
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = parse_binary_section(c)?;
            FetchAttr::Binary {
                peek: word == "BINARY.PEEK",
                part,
                partial: parse_partial(c)?,
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize {
            part: parse_binary_section(c)?,
        },
        _ => {
            return Err(ParseError::syntax(format!(
                "unknown FETCH attribute {word}"
            )));
        }
    };
    Ok(attr)
}

/// `"[" [section-spec] "]"`.
fn parse_section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[')?;
    let mut section = Section::default();
    if c.eat(b']') {
        return Ok(section);
    }
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        section.part.push(c.nz_number()?);
        if !c.eat(b'.') {
            c.expect(b']')?;
            return Ok(section);
        }
    }
    let keyword = c.take_while(|b| b.is_ascii_alphabetic() || b == b'.');
    let keyword = String::from_utf8_lossy(keyword).to_ascii_uppercase();
    section.text = Some(match keyword.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !section.part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            c.sp()?;
            let names = c.list(|c| {
                String::from_utf8(c.astring()?)
                    .map_err(|_| ParseError::syntax("header field name is not ASCII"))
            })?;
            if keyword == "HEADER.FIELDS" {
                SectionText::HeaderFields(names)
            } else {
                SectionText::HeaderFieldsNot(names)
            }
        }
        _ => return Err(ParseError::syntax(format!("bad section {keyword:?}"))),
    });
    c.expect(b']')?;
    Ok(section)
}

/// `section-binary`: `"[" [part] "]"`.
fn parse_binary_section(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    c.expect(b'[')?;
    let mut part = Vec::new();
    if !c.eat(b']') {
        loop {
            part.push(c.nz_number()?);
            if c.eat(b']') {
                break;
            }
            c.expect(b'.')?;
        }
    }
    Ok(part)
}

fn parse_partial(c: &mut Cursor<'_>) -> PResult<Option<Partial>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let offset = c.number()?;
    c.expect(b'.')?;
    let length =
        NonZeroU32::new(c.nz_number()?).ok_or_else(|| ParseError::syntax("zero length"))?;
    c.expect(b'>')?;
    Ok(Some(Partial { offset, length }))
}

impl Section {
    /// The section as it appears between the brackets of a FETCH response, written
    /// straight into the response buffer (a FETCH of headers writes it once per
    /// message).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (i, n) in self.part.iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            let _ = std::io::Write::write_fmt(out, format_args!("{n}"));
        }
        let Some(text) = &self.text else {
            return;
        };
        if !self.part.is_empty() {
            out.push(b'.');
        }
        let (keyword, names) = match text {
            SectionText::Header => ("HEADER", None),
            SectionText::Text => ("TEXT", None),
            SectionText::Mime => ("MIME", None),
            SectionText::HeaderFields(n) => ("HEADER.FIELDS", Some(n)),
            SectionText::HeaderFieldsNot(n) => ("HEADER.FIELDS.NOT", Some(n)),
        };
        out.extend_from_slice(keyword.as_bytes());
        if let Some(names) = names {
            out.extend_from_slice(b" (");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                crate::response::encode::astring(out, name.as_bytes());
            }
            out.push(b')');
        }
    }
}

impl fmt::Display for Section {
    /// The section as it appears between the brackets of a FETCH response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.encode(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn fetch(set: &str, attrs: Vec<FetchAttr>) -> Fetch {
        Fetch {
            set: set.parse().unwrap(),
            attrs,
            uid: false,
            changed_since: None,
            vanished: false,
        }
    }

    fn ok(f: Fetch) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Fetch(f))
    }

    fn body(
        peek: bool,
        part: &[u32],
        text: Option<SectionText>,
        partial: Option<(u32, u32)>,
    ) -> FetchAttr {
        FetchAttr::BodySection {
            peek,
            section: Section {
                part: part.to_vec(),
                text,
            },
            partial: partial.map(|(offset, len)| Partial {
                offset,
                length: NonZeroU32::new(len).unwrap(),
            }),
        }
    }

    #[test]
    fn parses_simple_attributes_and_macros() {
        use FetchAttr::*;
        check(&[
            ("a FETCH 1 FLAGS\r\n", ok(fetch("1", vec![Flags]))),
            (
                "a FETCH 1:* (uid flags)\r\n",
                ok(fetch("1:*", vec![Uid, Flags])),
            ),
            (
                "a FETCH 2 FAST\r\n",
                ok(fetch("2", vec![Flags, InternalDate, Rfc822Size])),
            ),
            (
                "a FETCH 2 all\r\n",
                ok(fetch("2", vec![Flags, InternalDate, Rfc822Size, Envelope])),
            ),
            (
                "a FETCH 2 FULL\r\n",
                ok(fetch(
                    "2",
                    vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
                )),
            ),
            (
                "a FETCH $ (ENVELOPE INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE MODSEQ EMAILID THREADID)\r\n",
                ok(fetch(
                    "$",
                    vec![
                        Envelope,
                        InternalDate,
                        Rfc822,
                        Rfc822Header,
                        Rfc822Size,
                        Rfc822Text,
                        Body,
                        BodyStructure,
                        ModSeq,
                        EmailId,
                        ThreadId,
                    ],
                )),
            ),
            (
                "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
                ok(Fetch {
                    uid: true,
                    changed_since: Some(12345),
                    vanished: true,
                    ..fetch("1:*", vec![Flags])
                }),
            ),
            (
                "a FETCH 1 (FLAGS) (CHANGEDSINCE 5)\r\n",
                ok(Fetch {
                    changed_since: Some(5),
                    ..fetch("1", vec![Flags])
                }),
            ),
            (
                "a FETCH 1 (FLAGS) (VANISHED)\r\n",
                Err("VANISHED requires UID FETCH"),
            ),
            (
                "a FETCH 1 (FLAGS) (FOO)\r\n",
                Err("unknown FETCH modifier FOO"),
            ),
            ("a FETCH 1 ()\r\n", Err("empty list")),
            ("a FETCH 1 FOO\r\n", Err("unknown FETCH attribute FOO")),
            (
                "a FETCH 1 (FLAGS ALL)\r\n",
                Err("unknown FETCH attribute ALL"),
            ),
            (
                "a FETCH 0 FLAGS\r\n",
                Err("0 is not a valid sequence number"),
            ),
            ("a FETCH FLAGS\r\n", Err("expected a number")),
            ("a FETCH 1\r\n", Err("expected a space")),
            ("a FETCH 1 ALLX\r\n", Err("unknown FETCH attribute ALLX")),
        ]);
    }

    #[test]
    fn parses_sections() {
        use SectionText::*;
        let fields = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, Result<FetchAttr, &str>)] = &[
            ("BODY[]", Ok(body(false, &[], None, None))),
            ("BODY.PEEK[]", Ok(body(true, &[], None, None))),
            ("body[text]", Ok(body(false, &[], Some(Text), None))),
            (
                "BODY[HEADER]<0.100>",
                Ok(body(false, &[], Some(Header), Some((0, 100)))),
            ),
            ("BODY[1.2.3]", Ok(body(false, &[1, 2, 3], None, None))),
            ("BODY[4.2.MIME]", Ok(body(false, &[4, 2], Some(Mime), None))),
            (
                "BODY[4.TEXT]<5.1>",
                Ok(body(false, &[4], Some(Text), Some((5, 1)))),
            ),
            (
                "BODY.PEEK[HEADER.FIELDS (From \"To\" {2}\r\nCc)]",
                Ok(body(
                    true,
                    &[],
                    Some(HeaderFields(fields(&["From", "To", "Cc"]))),
                    None,
                )),
            ),
            (
                "BODY[1.HEADER.FIELDS.NOT (X-Spam)]",
                Ok(body(
                    false,
                    &[1],
                    Some(HeaderFieldsNot(fields(&["X-Spam"]))),
                    None,
                )),
            ),
            (
                "BINARY[1.2]",
                Ok(FetchAttr::Binary {
                    peek: false,
                    part: vec![1, 2],
                    partial: None,
                }),
            ),
            (
                "BINARY.PEEK[]<0.9>",
                Ok(FetchAttr::Binary {
                    peek: true,
                    part: vec![],
                    partial: Some(Partial {
                        offset: 0,
                        length: NonZeroU32::new(9).unwrap(),
                    }),
                }),
            ),
            (
                "BINARY.SIZE[3]",
                Ok(FetchAttr::BinarySize { part: vec![3] }),
            ),
            ("BODY[MIME]", Err("bad section \"MIME\"")),
            ("BODY[0]", Err("expected a non-zero number")),
            ("BODY[1.]", Err("bad section \"\"")),
            ("BODY[HEADER.FIELDS ()]", Err("empty list")),
            ("BODY[HEADER.FIELDS]", Err("expected a space")),
            ("BODY[TEXT", Err("expected ']'")),
            ("BODY[]<0.0>", Err("expected a non-zero number")),
            ("BODY[]<1>", Err("expected '.'")),
            ("BINARY[TEXT]", Err("expected a number")),
            ("BINARY.SIZE", Err("expected '['")),
            ("BODY.PEEK", Err("expected '['")),
        ];
        for (attr, want) in cases {
            let input = format!("a FETCH 1 {attr}\r\n");
            let got = super::super::parse(input.as_bytes()).map(|c| match c.body {
                CommandBody::Fetch(f) => f.attrs.into_iter().next().unwrap(),
                other => panic!("{other:?}"),
            });
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{attr}"),
                (Err(e), Err(want)) => assert!(e.message().contains(want), "{attr}: {e}"),
                (got, want) => panic!("{attr}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn prints_sections() {
        let cases = [
            ("BODY[]", ""),
            ("BODY[1.2.MIME]", "1.2.MIME"),
            (
                "BODY[HEADER.FIELDS (From \"X Y\")]",
                "HEADER.FIELDS (From \"X Y\")",
            ),
            ("BODY[3.HEADER.FIELDS.NOT (A)]", "3.HEADER.FIELDS.NOT (A)"),
        ];
        for (attr, want) in cases {
            let input = format!("a FETCH 1 {attr}\r\n");
            let Ok(crate::Command {
                body: CommandBody::Fetch(f),
                ..
            }) = super::super::parse(input.as_bytes())
            else {
                panic!("{attr}")
            };
            let FetchAttr::BodySection { section, .. } = &f.attrs[0] else {
                panic!()
            };
            assert_eq!(section.to_string(), want);
        }
    }

    #[test]
    fn knows_what_sets_seen() {
        assert!(body(false, &[], None, None).sets_seen());
        assert!(!body(true, &[], None, None).sets_seen());
        assert!(FetchAttr::Rfc822.sets_seen());
        assert!(!FetchAttr::Rfc822Header.sets_seen());
    }
}
