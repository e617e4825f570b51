//! Mailbox names as commands carry them.

use std::fmt;

use crate::cursor::Cursor;
use crate::error::PResult;

/// A mailbox name as the client sent it, except that any spelling of `INBOX` becomes
/// `INBOX` (RFC 9051 section 5.1: INBOX is case-insensitive, other names are not).
///
/// The name is not decoded from modified UTF-7: whether a rev1 client's name is
/// mUTF-7 depends on what the session negotiated (UTF8=ACCEPT, IMAP4rev2), so the session
/// calls [`crate::mutf7::decode`] when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

impl MailboxName {
    pub fn new(name: impl Into<String>) -> MailboxName {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            MailboxName("INBOX".into())
        } else {
            MailboxName(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<MailboxName> {
        c.astring_utf8("mailbox name").map(MailboxName::new)
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_inbox_only() {
        let cases = [
            (&b"inbox"[..], "INBOX", true),
            (b"\"InBoX\"", "INBOX", true),
            (b"{5}\r\niNbOx", "INBOX", true),
            (b"INBOX.sub", "INBOX.sub", false),
            (b"Sent", "Sent", false),
            (b"\"caf\xc3\xa9\"", "caf\u{e9}", false),
        ];
        for (input, name, inbox) in cases {
            let got = MailboxName::parse(&mut Cursor::new(input)).unwrap();
            assert_eq!((got.as_str(), got.is_inbox()), (name, inbox), "{input:?}");
        }
        assert!(MailboxName::parse(&mut Cursor::new(b"\"\xff\"")).is_err());
    }
}
