//! LIST (RFC 9051, with LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819 and SPECIAL-USE
//! RFC 6154) and the rev1 LSUB.

use crate::command::status::StatusItem;
use crate::cursor::{Cursor, is_list_char};
use crate::error::PResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// Selection options; empty for a basic LIST.
    pub selection: Vec<ListSelect>,
    /// The reference name, as given (no INBOX normalisation: it is a prefix).
    pub reference: String,
    /// One pattern for a basic LIST, possibly several with LIST-EXTENDED. Wildcards `*`
    /// and `%` are kept; matching is the session's job.
    pub patterns: Vec<String>,
    /// RETURN options; empty when none were given.
    pub return_opts: Vec<ListReturn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSelect {
    Subscribed,
    Remote,
    RecursiveMatch,
    SpecialUse,
    /// An option we do not know, upper-cased. RFC 5258 says an unknown selection option
    /// must get BAD; the session decides.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
    /// An option we do not know, upper-cased; RFC 5258 says to ignore it.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lsub {
    pub reference: String,
    pub pattern: String,
}

pub(crate) fn parse_list(c: &mut Cursor<'_>) -> PResult<List> {
    c.sp()?;
    let mut selection = Vec::new();
    if c.peek() == Some(b'(') {
        selection = c.list_or_empty(|c| {
            let name = c.atom()?.to_ascii_uppercase();
            Ok(match name.as_str() {
                "SUBSCRIBED" => ListSelect::Subscribed,
                "REMOTE" => ListSelect::Remote,
                "RECURSIVEMATCH" => ListSelect::RecursiveMatch,
                "SPECIAL-USE" => ListSelect::SpecialUse,
                _ => ListSelect::Other(name),
            })
        })?;
        c.sp()?;
    }
    let reference = utf8(c.astring()?);
    c.sp()?;
    let patterns = if c.peek() == Some(b'(') {
        c.list(list_mailbox)?
    } else {
        vec![list_mailbox(c)?]
    };
    let mut return_opts = Vec::new();
    if c.eat(b' ') {
        if !c.eat_keyword("RETURN") {
            return Err(c.unexpected("RETURN"));
        }
        c.sp()?;
        return_opts = c.list_or_empty(|c| {
            let name = c.atom()?.to_ascii_uppercase();
            Ok(match name.as_str() {
                "SUBSCRIBED" => ListReturn::Subscribed,
                "CHILDREN" => ListReturn::Children,
                "SPECIAL-USE" => ListReturn::SpecialUse,
                "STATUS" => {
                    c.sp()?;
                    ListReturn::Status(StatusItem::parse_list(c)?)
                }
                _ => ListReturn::Other(name),
            })
        })?;
    }
    Ok(List {
        selection,
        reference,
        patterns,
        return_opts,
    })
}

pub(crate) fn parse_lsub(c: &mut Cursor<'_>) -> PResult<Lsub> {
    c.sp()?;
    let reference = utf8(c.astring()?);
    c.sp()?;
    let pattern = list_mailbox(c)?;
    Ok(Lsub { reference, pattern })
}

/// `list-mailbox`: list-chars (atom chars plus `%`, `*`, `]`) or a string.
fn list_mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    if matches!(c.peek(), Some(b'"' | b'{')) {
        return Ok(utf8(c.string()?));
    }
    let text = c.take_while(is_list_char);
    if text.is_empty() {
        return Err(c.unexpected("a mailbox pattern"));
    }
    Ok(utf8(text.to_vec()))
}

/// Names and patterns that are not UTF-8 cannot match any mailbox we store (names are
/// UTF-8), so replacing bad bytes keeps LIST answering "nothing" rather than BAD.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn list(reference: &str, patterns: &[&str]) -> List {
        List {
            selection: vec![],
            reference: reference.into(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            return_opts: vec![],
        }
    }

    #[test]
    fn parses_basic_list_and_lsub() {
        check(&[
            ("a LIST \"\" *\r\n", Ok(CommandBody::List(list("", &["*"])))),
            (
                "a LIST \"\" \"\"\r\n",
                Ok(CommandBody::List(list("", &[""]))),
            ),
            (
                "a list ~/Mail/ %\r\n",
                Ok(CommandBody::List(list("~/Mail/", &["%"]))),
            ),
            (
                "a LIST #news. comp.mail.*\r\n",
                Ok(CommandBody::List(list("#news.", &["comp.mail.*"]))),
            ),
            (
                "a LIST \"\" INBOX]*\r\n",
                Ok(CommandBody::List(list("", &["INBOX]*"]))),
            ),
            (
                "a LSUB \"#news.\" \"comp.mail.*\"\r\n",
                Ok(CommandBody::Lsub(Lsub {
                    reference: "#news.".into(),
                    pattern: "comp.mail.*".into(),
                })),
            ),
            ("a LIST \"\"\r\n", Err("expected a space")),
            ("a LIST \"\" (\r\n", Err("expected a mailbox pattern")),
            ("a LIST * *\r\n", Err("expected an atom or a string")),
            ("a LIST \"\" * FOO\r\n", Err("expected RETURN")),
        ]);
    }

    #[test]
    fn parses_list_extended() {
        check(&[
            (
                "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Sent Items\" %) RETURN (CHILDREN)\r\n",
                Ok(CommandBody::List(List {
                    selection: vec![ListSelect::Subscribed, ListSelect::RecursiveMatch],
                    return_opts: vec![ListReturn::Children],
                    ..list("", &["INBOX", "Sent Items", "%"])
                })),
            ),
            (
                "a LIST () \"\" % RETURN (SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN) X-FOO)\r\n",
                Ok(CommandBody::List(List {
                    return_opts: vec![
                        ListReturn::Subscribed,
                        ListReturn::SpecialUse,
                        ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen]),
                        ListReturn::Other("X-FOO".into()),
                    ],
                    ..list("", &["%"])
                })),
            ),
            (
                "a LIST (special-use remote x-y) \"\" * RETURN ()\r\n",
                Ok(CommandBody::List(List {
                    selection: vec![
                        ListSelect::SpecialUse,
                        ListSelect::Remote,
                        ListSelect::Other("X-Y".into()),
                    ],
                    ..list("", &["*"])
                })),
            ),
            ("a LIST \"\" ()\r\n", Err("empty list")),
            ("a LIST \"\" % RETURN (STATUS ())\r\n", Err("empty list")),
            ("a LIST (SUBSCRIBED)\"\" %\r\n", Err("expected a space")),
        ]);
    }
}
