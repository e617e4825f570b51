//! SELECT and EXAMINE, with the RFC 7162 parameters CONDSTORE and QRESYNC.

use crate::command::ExtValue;
use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};
use crate::mailbox::MailboxName;
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub mailbox: MailboxName,
    /// EXAMINE rather than SELECT.
    pub read_only: bool,
    /// `(CONDSTORE)` was given.
    pub condstore: bool,
    pub qresync: Option<Qresync>,
    /// Parameters we do not interpret (upper-cased name, value), so that a later
    /// extension can be added to the session without touching the parser.
    pub other: Vec<(String, Option<ExtValue>)>,
}

/// `QRESYNC (uidvalidity modseq [known-uids] [(known-seqs known-uids)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub mod_seq: u64,
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and the UIDs the client believes they have.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

pub(crate) fn parse(c: &mut Cursor<'_>, read_only: bool) -> PResult<Select> {
    c.sp()?;
    let mut select = Select {
        mailbox: MailboxName::parse(c)?,
        read_only,
        condstore: false,
        qresync: None,
        other: Vec::new(),
    };
    if c.eat(b' ') {
        c.list(|c| {
            let name = c.atom()?.to_ascii_uppercase();
            match name.as_str() {
                "CONDSTORE" => select.condstore = true,
                "QRESYNC" => {
                    c.sp()?;
                    select.qresync = Some(parse_qresync(c)?);
                }
                _ => {
                    let value = if c.eat(b' ') {
                        Some(ExtValue::parse(c)?)
                    } else {
                        None
                    };
                    select.other.push((name, value));
                }
            }
            Ok(())
        })?;
    }
    Ok(select)
}

fn parse_qresync(c: &mut Cursor<'_>) -> PResult<Qresync> {
    c.expect(b'(')?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let mod_seq = c.number64()?;
    if mod_seq == 0 {
        return Err(ParseError::syntax("QRESYNC modseq must be non-zero"));
    }
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(SequenceSet::parse(c)?);
            if c.eat(b' ') {
                seq_match = Some(parse_seq_match(c)?);
            }
        } else {
            seq_match = Some(parse_seq_match(c)?);
        }
    }
    c.expect(b')')?;
    Ok(Qresync {
        uid_validity,
        mod_seq,
        known_uids,
        seq_match,
    })
}

fn parse_seq_match(c: &mut Cursor<'_>) -> PResult<(SequenceSet, SequenceSet)> {
    c.expect(b'(')?;
    let seqs = SequenceSet::parse(c)?;
    c.sp()?;
    let uids = SequenceSet::parse(c)?;
    c.expect(b')')?;
    Ok((seqs, uids))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn select(name: &str, read_only: bool) -> Select {
        Select {
            mailbox: MailboxName::new(name),
            read_only,
            condstore: false,
            qresync: None,
            other: vec![],
        }
    }

    fn set(s: &str) -> SequenceSet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_select() {
        check(&[
            (
                "a SELECT inbox\r\n",
                Ok(CommandBody::Select(select("INBOX", false))),
            ),
            (
                "a EXAMINE \"Sent Items\"\r\n",
                Ok(CommandBody::Select(select("Sent Items", true))),
            ),
            (
                "a SELECT INBOX (CONDSTORE)\r\n",
                Ok(CommandBody::Select(Select {
                    condstore: true,
                    ..select("INBOX", false)
                })),
            ),
            (
                "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
                Ok(CommandBody::Select(Select {
                    qresync: Some(Qresync {
                        uid_validity: 67890007,
                        mod_seq: 20050715194045000,
                        known_uids: Some(set("41,43:211,214:541")),
                        seq_match: None,
                    }),
                    ..select("INBOX", false)
                })),
            ),
            (
                "a SELECT INBOX (QRESYNC (1 2 1:9 (1,5 1,9)))\r\n",
                Ok(CommandBody::Select(Select {
                    qresync: Some(Qresync {
                        uid_validity: 1,
                        mod_seq: 2,
                        known_uids: Some(set("1:9")),
                        seq_match: Some((set("1,5"), set("1,9"))),
                    }),
                    ..select("INBOX", false)
                })),
            ),
            (
                "a SELECT INBOX (X-FOO (1 2) X-BAR)\r\n",
                Ok(CommandBody::Select(Select {
                    other: vec![
                        (
                            "X-FOO".into(),
                            Some(ExtValue::List(vec![
                                ExtValue::Text("1".into()),
                                ExtValue::Text("2".into()),
                            ])),
                        ),
                        ("X-BAR".into(), None),
                    ],
                    ..select("INBOX", false)
                })),
            ),
            ("a SELECT\r\n", Err("expected a space")),
            ("a SELECT INBOX ()\r\n", Err("empty list")),
            ("a SELECT INBOX (QRESYNC (0 1))\r\n", Err("non-zero")),
            (
                "a SELECT INBOX (QRESYNC (1 0))\r\n",
                Err("modseq must be non-zero"),
            ),
            ("a SELECT INBOX (QRESYNC (1))\r\n", Err("expected a space")),
            ("a SELECT INBOX (CONDSTORE\r\n", Err("expected a space")),
        ]);
    }
}
