//! APPEND, with MULTIAPPEND (RFC 3502) and BINARY's literal8 (RFC 3516).

use evermail_types::Flag;

use crate::command::parse_flag_list;
use crate::cursor::Cursor;
use crate::datetime::DateTime;
use crate::error::{PResult, ParseError};
use crate::mailbox::MailboxName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub mailbox: MailboxName,
    /// At least one message; more than one only with MULTIAPPEND, where they must be
    /// appended all or none.
    pub messages: Vec<AppendMessage>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    /// The INTERNALDATE to give the message; the server's clock when `None`.
    pub date: Option<DateTime>,
    /// The message as sent (copied out of the session buffer; bounded by the literal
    /// limit and by bytes actually received).
    pub data: Vec<u8>,
    /// Sent as literal8 (`~{N}`): may contain NUL and must be stored as is; RFC 3516
    /// wants `[UNKNOWN-CTE]` if the server cannot.
    pub binary: bool,
}

impl std::fmt::Debug for AppendMessage {
    // A message can be megabytes; test failures and logs need only its size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendMessage")
            .field("flags", &self.flags)
            .field("date", &self.date)
            .field("data_len", &self.data.len())
            .field("binary", &self.binary)
            .finish()
    }
}

pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<Append> {
    c.sp()?;
    let mailbox = MailboxName::parse(c)?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        messages.push(parse_message(c)?);
    }
    if messages.is_empty() {
        return Err(c.unexpected("a space"));
    }
    Ok(Append { mailbox, messages })
}

fn parse_message(c: &mut Cursor<'_>) -> PResult<AppendMessage> {
    let mut flags = Vec::new();
    let mut date = None;
    if c.peek() == Some(b'(') {
        flags = parse_flag_list(c)?;
        c.sp()?;
    }
    if c.peek() == Some(b'"') {
        date = Some(DateTime::parse(c)?);
        c.sp()?;
    }
    // RFC 6855 section 4: `UTF8 (literal8)` is a message whose header may be UTF-8.
    let utf8 = c.eat_keyword("UTF8");
    if utf8 {
        c.sp()?;
        c.expect(b'(')?;
    }
    if !matches!(c.peek(), Some(b'{' | b'~')) {
        return Err(c.unexpected("the message as a literal"));
    }
    let (data, binary) = c.literal(true)?;
    if utf8 {
        c.expect(b')')?;
    }
    if data.is_empty() {
        return Err(ParseError::syntax("empty message"));
    }
    Ok(AppendMessage {
        flags,
        date,
        data: data.to_vec(),
        binary,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn msg(flags: Vec<Flag>, date: Option<i64>, data: &[u8], binary: bool) -> AppendMessage {
        AppendMessage {
            flags,
            date: date.map(|unix| DateTime {
                unix,
                offset_minutes: -420,
            }),
            data: data.to_vec(),
            binary,
        }
    }

    fn append(name: &str, messages: Vec<AppendMessage>) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Append(Append {
            mailbox: MailboxName::new(name),
            messages,
        }))
    }

    #[test]
    fn parses_append() {
        check(&[
            (
                "a APPEND saved {5}\r\nhello\r\n",
                append("saved", vec![msg(vec![], None, b"hello", false)]),
            ),
            (
                "a APPEND inbox (\\Seen $X) \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi\r\n",
                append(
                    "INBOX",
                    vec![msg(
                        vec![Flag::Seen, Flag::Keyword("$X".into())],
                        Some(837_596_665),
                        b"hi",
                        false,
                    )],
                ),
            ),
            (
                "a APPEND x () ~{3}\r\na\0b\r\n",
                append("x", vec![msg(vec![], None, b"a\0b", true)]),
            ),
            (
                "a APPEND x {1}\r\na (\\Draft) {1}\r\nb\r\n",
                append(
                    "x",
                    vec![
                        msg(vec![], None, b"a", false),
                        msg(vec![Flag::Draft], None, b"b", false),
                    ],
                ),
            ),
            (
                "a APPEND x UTF8 (~{4+}\r\nGr\u{fc})\r\n",
                append("x", vec![msg(vec![], None, "Grü".as_bytes(), true)]),
            ),
            (
                "a APPEND x (\\Seen) UTF8 ({1}\r\na)\r\n",
                append("x", vec![msg(vec![Flag::Seen], None, b"a", false)]),
            ),
            ("a APPEND x UTF8 ~{1}\r\na\r\n", Err("expected '('")),
            ("a APPEND x UTF8 (~{1}\r\na\r\n", Err("expected ')'")),
            ("a APPEND x\r\n", Err("expected a space")),
            ("a APPEND x \"hello\"\r\n", Err("malformed date")),
            (
                "a APPEND x hello\r\n",
                Err("expected the message as a literal"),
            ),
            ("a APPEND x {0}\r\n\r\n", Err("empty message")),
            (
                "a APPEND x (\\Recent) {1}\r\na\r\n",
                Err("flag \\Recent cannot be set"),
            ),
            ("a APPEND x {3}\r\na\0b\r\n", Err("NUL in a literal")),
            (
                "a APPEND x {1}\r\nab\r\n",
                Err("expected the end of the line"),
            ),
        ]);
    }
}
