//! Commands that name mailboxes to manage: CREATE (with RFC 6154 `USE`), DELETE,
//! RENAME, SUBSCRIBE and UNSUBSCRIBE.

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};
use crate::mailbox::MailboxName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub mailbox: MailboxName,
    /// Special-use attributes asked for with `(USE (\Sent ...))`, as written with the
    /// backslash; empty when none.
    pub special_use: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub from: MailboxName,
    pub to: MailboxName,
}

/// ` mailbox`, the whole argument list of DELETE, SUBSCRIBE and UNSUBSCRIBE.
pub(crate) fn parse_mailbox(c: &mut Cursor<'_>) -> PResult<MailboxName> {
    c.sp()?;
    MailboxName::parse(c)
}

pub(crate) fn parse_create(c: &mut Cursor<'_>) -> PResult<Create> {
    let mailbox = parse_mailbox(c)?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        // create-param list (RFC 4466); USE is the only one we know.
        c.list(|c| {
            let name = c.atom()?;
            if !name.eq_ignore_ascii_case("USE") {
                return Err(ParseError::syntax(format!(
                    "unknown CREATE parameter {name}"
                )));
            }
            c.sp()?;
            special_use = c.list(|c| {
                c.expect(b'\\')?;
                Ok(format!("\\{}", c.atom()?))
            })?;
            Ok(())
        })?;
    }
    Ok(Create {
        mailbox,
        special_use,
    })
}

pub(crate) fn parse_rename(c: &mut Cursor<'_>) -> PResult<Rename> {
    let from = parse_mailbox(c)?;
    let to = parse_mailbox(c)?;
    Ok(Rename { from, to })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn mbox(name: &str) -> MailboxName {
        MailboxName::new(name)
    }

    #[test]
    fn parses_mailbox_commands() {
        check(&[
            ("a DELETE foo\r\n", Ok(CommandBody::Delete(mbox("foo")))),
            (
                "a SUBSCRIBE \"a b\"\r\n",
                Ok(CommandBody::Subscribe(mbox("a b"))),
            ),
            (
                "a UNSUBSCRIBE inbox\r\n",
                Ok(CommandBody::Unsubscribe(mbox("INBOX"))),
            ),
            (
                "a RENAME old {3}\r\nnew\r\n",
                Ok(CommandBody::Rename(Rename {
                    from: mbox("old"),
                    to: mbox("new"),
                })),
            ),
            (
                "a CREATE Sent\r\n",
                Ok(CommandBody::Create(Create {
                    mailbox: mbox("Sent"),
                    special_use: vec![],
                })),
            ),
            (
                "a CREATE Sent (USE (\\Sent \\Archive))\r\n",
                Ok(CommandBody::Create(Create {
                    mailbox: mbox("Sent"),
                    special_use: vec!["\\Sent".into(), "\\Archive".into()],
                })),
            ),
            (
                "a CREATE Sent (FOO (\\Sent))\r\n",
                Err("unknown CREATE parameter FOO"),
            ),
            ("a CREATE Sent (USE (Sent))\r\n", Err("expected '\\'")),
            ("a CREATE Sent ()\r\n", Err("empty list")),
            ("a DELETE\r\n", Err("expected a space")),
            ("a RENAME old\r\n", Err("expected a space")),
            ("a DELETE a b\r\n", Err("expected the end of the line")),
        ]);
    }
}
