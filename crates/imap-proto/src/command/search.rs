//! SEARCH and UID SEARCH: the RFC 9051 search-key grammar with rev1's NEW/OLD/RECENT,
//! ESEARCH return options (RFC 4731), SEARCHRES `SAVE` and `$` (RFC 5182), CONDSTORE's
//! MODSEQ key (RFC 7162) and WITHIN's OLDER/YOUNGER (RFC 5032).

use evermail_types::Flag;

use crate::cursor::Cursor;
use crate::datetime::Date;
use crate::error::{PResult, ParseError};
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub uid: bool,
    /// Upper-cased; the session answers `NO [BADCHARSET]` for one it cannot handle.
    pub charset: Option<String>,
    /// `None` without RETURN (reply with `* SEARCH`); `Some` with RETURN (reply with
    /// `* ESEARCH`), where an empty list means `ALL` (RFC 4731).
    pub return_opts: Option<Vec<SearchReturn>>,
    /// The criteria; several top-level keys are an implicit [`SearchKey::And`].
    pub key: SearchKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// A search criterion. Strings match case-insensitively as substrings; values that are
/// not UTF-8 are kept with replacement characters (a client using another CHARSET
/// will get `NO [BADCHARSET]` before they matter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    /// Every key must match (parentheses, or several top-level keys).
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    /// Message sequence numbers.
    SequenceSet(SequenceSet),
    Uid(SequenceSet),
    /// `ANSWERED`, `DELETED`, ..., `KEYWORD x`: the flag is set.
    Flag(Flag),
    /// `UNANSWERED`, ..., `UNKEYWORD x`: the flag is not set.
    NotFlag(Flag),
    /// rev1 `RECENT`, `NEW` (recent and unseen) and `OLD` (not recent).
    Recent,
    New,
    Old,
    Bcc(String),
    Body(String),
    Cc(String),
    From(String),
    Subject(String),
    Text(String),
    To(String),
    Header(String, String),
    /// INTERNALDATE, compared by date in the server's time zone.
    Before(Date),
    On(Date),
    Since(Date),
    /// The Date: header.
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    /// `MODSEQ [entry-name entry-type] n`; the entry, when given, is kept as written.
    ModSeq {
        entry: Option<(String, String)>,
        mod_seq: u64,
    },
    /// INTERNALDATE at most this many seconds ago.
    Younger(u32),
    /// INTERNALDATE more than this many seconds ago.
    Older(u32),
    /// OBJECTID (RFC 8474): the message with this EMAILID or THREADID.
    EmailId(String),
    ThreadId(String),
}

/// Nesting deeper than this is refused, so a line of `((((...` cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> PResult<Search> {
    c.sp()?;
    let mut return_opts = None;
    if c.eat_keyword("RETURN") {
        c.sp()?;
        return_opts = Some(c.list_or_empty(|c| {
            let name = c.atom()?;
            Ok(match name.to_ascii_uppercase().as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                _ => {
                    return Err(ParseError::syntax(format!(
                        "unknown SEARCH return option {name}"
                    )));
                }
            })
        })?);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat_keyword("CHARSET") {
        c.sp()?;
        let name = c.astring()?;
        charset = Some(String::from_utf8_lossy(&name).to_ascii_uppercase());
        c.sp()?;
    }
    let key = parse_criteria(c)?;
    Ok(Search {
        uid,
        charset,
        return_opts,
        key,
    })
}

/// One or more search keys to the end of the command, as one key (SEARCH, and SORT
/// and THREAD after their charset).
pub(crate) fn parse_criteria(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut keys = vec![parse_key(c, 0)?];
    while c.eat(b' ') {
        keys.push(parse_key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

fn parse_key(c: &mut Cursor<'_>, depth: usize) -> PResult<SearchKey> {
    if depth > MAX_DEPTH {
        return Err(ParseError::syntax("search criteria nested too deeply"));
    }
    if c.peek() == Some(b'(') {
        let keys = c.list(|c| parse_key(c, depth + 1))?;
        return Ok(SearchKey::And(keys));
    }
    if SequenceSet::starts(c) {
        return Ok(SearchKey::SequenceSet(SequenceSet::parse(c)?));
    }
    let name = c.atom()?.to_ascii_uppercase();
    let key = match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Flag(Flag::Answered),
        "DELETED" => SearchKey::Flag(Flag::Deleted),
        "DRAFT" => SearchKey::Flag(Flag::Draft),
        "FLAGGED" => SearchKey::Flag(Flag::Flagged),
        "SEEN" => SearchKey::Flag(Flag::Seen),
        "UNANSWERED" => SearchKey::NotFlag(Flag::Answered),
        "UNDELETED" => SearchKey::NotFlag(Flag::Deleted),
        "UNDRAFT" => SearchKey::NotFlag(Flag::Draft),
        "UNFLAGGED" => SearchKey::NotFlag(Flag::Flagged),
        "UNSEEN" => SearchKey::NotFlag(Flag::Seen),
        "KEYWORD" => SearchKey::Flag(keyword(c)?),
        "UNKEYWORD" => SearchKey::NotFlag(keyword(c)?),
        "RECENT" => SearchKey::Recent,
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "BCC" => SearchKey::Bcc(text(c)?),
        "BODY" => SearchKey::Body(text(c)?),
        "CC" => SearchKey::Cc(text(c)?),
        "FROM" => SearchKey::From(text(c)?),
        "SUBJECT" => SearchKey::Subject(text(c)?),
        "TEXT" => SearchKey::Text(text(c)?),
        "TO" => SearchKey::To(text(c)?),
        "HEADER" => {
            let field = text(c)?;
            SearchKey::Header(field, text(c)?)
        }
        "BEFORE" => SearchKey::Before(date(c)?),
        "ON" => SearchKey::On(date(c)?),
        "SINCE" => SearchKey::Since(date(c)?),
        "SENTBEFORE" => SearchKey::SentBefore(date(c)?),
        "SENTON" => SearchKey::SentOn(date(c)?),
        "SENTSINCE" => SearchKey::SentSince(date(c)?),
        "LARGER" => {
            c.sp()?;
            SearchKey::Larger(c.number64()?)
        }
        "SMALLER" => {
            c.sp()?;
            SearchKey::Smaller(c.number64()?)
        }
        "UID" => {
            c.sp()?;
            SearchKey::Uid(SequenceSet::parse(c)?)
        }
        "NOT" => {
            c.sp()?;
            SearchKey::Not(Box::new(parse_key(c, depth + 1)?))
        }
        "OR" => {
            c.sp()?;
            let a = parse_key(c, depth + 1)?;
            c.sp()?;
            let b = parse_key(c, depth + 1)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        "MODSEQ" => {
            c.sp()?;
            let mut entry = None;
            if c.peek() == Some(b'"') {
                let name = String::from_utf8_lossy(&c.quoted()?).into_owned();
                c.sp()?;
                let kind = c.atom()?.to_ascii_lowercase();
                if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                    return Err(ParseError::syntax(
                        "MODSEQ entry type must be priv, shared or all",
                    ));
                }
                entry = Some((name, kind));
                c.sp()?;
            }
            SearchKey::ModSeq {
                entry,
                mod_seq: c.number64()?,
            }
        }
        "YOUNGER" => {
            c.sp()?;
            SearchKey::Younger(c.nz_number()?)
        }
        "OLDER" => {
            c.sp()?;
            SearchKey::Older(c.nz_number()?)
        }
        "EMAILID" => SearchKey::EmailId(object_id(c)?),
        "THREADID" => SearchKey::ThreadId(object_id(c)?),
        _ => return Err(ParseError::syntax(format!("unknown search key {name}"))),
    };
    Ok(key)
}

/// `objectid` (RFC 8474): 1 to 255 letters, digits, `_` and `-`.
fn object_id(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    let id = c.atom()?;
    if id.len() > 255
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ParseError::syntax(format!("{id} is not an object id")));
    }
    Ok(id.to_string())
}

fn text(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    let bytes = c.astring()?;
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn date(c: &mut Cursor<'_>) -> PResult<Date> {
    c.sp()?;
    Date::parse(c)
}

fn keyword(c: &mut Cursor<'_>) -> PResult<Flag> {
    c.sp()?;
    let atom = c.atom()?;
    match Flag::parse(atom) {
        Some(flag @ Flag::Keyword(_)) => Ok(flag),
        _ => Err(ParseError::syntax(format!("{atom} is not a keyword"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn search(key: SearchKey) -> Search {
        Search {
            uid: false,
            charset: None,
            return_opts: None,
            key,
        }
    }

    fn ok(s: Search) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Search(s))
    }

    fn set(s: &str) -> SequenceSet {
        s.parse().unwrap()
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    #[test]
    fn parses_keys() {
        use SearchKey::*;
        check(&[
            ("a SEARCH ALL\r\n", ok(search(All))),
            (
                "a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
                ok(search(And(vec![
                    Flag(evermail_types::Flag::Flagged),
                    Since(date(1994, 2, 1)),
                    Not(Box::new(From("Smith".into()))),
                ]))),
            ),
            (
                "a SEARCH OR (SEEN 1:3) NOT UID 5,$\r\n",
                Err("expected a number, found '$'"),
            ),
            (
                "a SEARCH OR (SEEN 1:3) NOT UID $\r\n",
                ok(search(Or(
                    Box::new(And(vec![
                        Flag(evermail_types::Flag::Seen),
                        SequenceSet(set("1:3")),
                    ])),
                    Box::new(Not(Box::new(Uid(set("$"))))),
                ))),
            ),
            (
                "a SEARCH HEADER X-Foo {3}\r\nbar LARGER 10 SMALLER 20\r\n",
                ok(search(And(vec![
                    Header("X-Foo".into(), "bar".into()),
                    Larger(10),
                    Smaller(20),
                ]))),
            ),
            (
                "a SEARCH KEYWORD $Junk UNKEYWORD $Fwd UNSEEN UNDELETED UNDRAFT UNFLAGGED UNANSWERED\r\n",
                ok(search(And(vec![
                    Flag(evermail_types::Flag::Keyword("$Junk".into())),
                    NotFlag(evermail_types::Flag::Keyword("$Fwd".into())),
                    NotFlag(evermail_types::Flag::Seen),
                    NotFlag(evermail_types::Flag::Deleted),
                    NotFlag(evermail_types::Flag::Draft),
                    NotFlag(evermail_types::Flag::Flagged),
                    NotFlag(evermail_types::Flag::Answered),
                ]))),
            ),
            (
                "a SEARCH NEW OLD RECENT BEFORE \"1-Jan-2000\" ON 2-Jan-2000 SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000\r\n",
                ok(search(And(vec![
                    New,
                    Old,
                    Recent,
                    Before(date(2000, 1, 1)),
                    On(date(2000, 1, 2)),
                    SentBefore(date(2000, 1, 3)),
                    SentOn(date(2000, 1, 4)),
                    SentSince(date(2000, 1, 5)),
                ]))),
            ),
            (
                "a SEARCH BCC a BODY b CC c SUBJECT d TEXT e TO f\r\n",
                ok(search(And(vec![
                    Bcc("a".into()),
                    Body("b".into()),
                    Cc("c".into()),
                    Subject("d".into()),
                    Text("e".into()),
                    To("f".into()),
                ]))),
            ),
            (
                "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 YOUNGER 60 OLDER 3600\r\n",
                ok(search(And(vec![
                    ModSeq {
                        entry: Some(("/flags/\\draft".into(), "all".into())),
                        mod_seq: 620162338,
                    },
                    Younger(60),
                    Older(3600),
                ]))),
            ),
            (
                "a SEARCH MODSEQ 5\r\n",
                ok(search(ModSeq {
                    entry: None,
                    mod_seq: 5,
                })),
            ),
            (
                "a SEARCH EMAILID Ma5c3-_9 OR THREADID T1 ALL\r\n",
                ok(search(And(vec![
                    EmailId("Ma5c3-_9".into()),
                    Or(Box::new(ThreadId("T1".into())), Box::new(All)),
                ]))),
            ),
            ("a SEARCH EMAILID a.b\r\n", Err("not an object id")),
            ("a SEARCH\r\n", Err("expected a space")),
            ("a SEARCH FOO\r\n", Err("unknown search key FOO")),
            ("a SEARCH ()\r\n", Err("empty list")),
            ("a SEARCH OR SEEN\r\n", Err("expected a space")),
            ("a SEARCH SINCE 1-Foo-2000\r\n", Err("unknown month")),
            ("a SEARCH KEYWORD \\Seen\r\n", Err("expected an atom")),
            ("a SEARCH MODSEQ \"/flags/x\" any 1\r\n", Err("entry type")),
            ("a SEARCH LARGER x\r\n", Err("expected a number")),
        ]);
    }

    #[test]
    fn parses_charset_and_return() {
        check(&[
            (
                "a UID SEARCH CHARSET utf-8 TEXT \"caf\u{e9}\"\r\n",
                ok(Search {
                    uid: true,
                    charset: Some("UTF-8".into()),
                    ..search(SearchKey::Text("caf\u{e9}".into()))
                }),
            ),
            (
                "a SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET US-ASCII 1:*\r\n",
                ok(Search {
                    charset: Some("US-ASCII".into()),
                    return_opts: Some(vec![
                        SearchReturn::Min,
                        SearchReturn::Max,
                        SearchReturn::Count,
                        SearchReturn::All,
                        SearchReturn::Save,
                    ]),
                    ..search(SearchKey::SequenceSet(set("1:*")))
                }),
            ),
            (
                "a SEARCH RETURN () ALL\r\n",
                ok(Search {
                    return_opts: Some(vec![]),
                    ..search(SearchKey::All)
                }),
            ),
            (
                "a SEARCH RETURN (FOO) ALL\r\n",
                Err("unknown SEARCH return option FOO"),
            ),
            ("a SEARCH CHARSET\r\n", Err("expected a space")),
        ]);
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(1000), ")".repeat(1000));
        check(&[(&deep, Err("nested too deeply"))]);
        let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(1000));
        check(&[(&nots, Err("nested too deeply"))]);
        let ok_depth = format!("a SEARCH {}ALL{}\r\n", "(".repeat(10), ")".repeat(10));
        assert!(super::super::test_util::body(&ok_depth).is_ok());
    }
}
