//! STATUS: `STATUS mailbox (item ...)`. The items are shared with LIST-STATUS.

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};
use crate::mailbox::MailboxName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub mailbox: MailboxName,
    pub items: Vec<StatusItem>,
}

/// A `status-att` of RFC 9051 (with RFC 3501's RECENT and RFC 7162's HIGHESTMODSEQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    /// QUOTA's DELETED-STORAGE (RFC 9208 section 4.2): KiB an EXPUNGE would free.
    DeletedStorage,
    Size,
    HighestModSeq,
    /// OBJECTID (RFC 8474): the mailbox's MAILBOXID, an object id, not a number.
    MailboxId,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::MailboxId => "MAILBOXID",
        }
    }

    const ALL: [StatusItem; 10] = [
        StatusItem::Messages,
        StatusItem::Recent,
        StatusItem::UidNext,
        StatusItem::UidValidity,
        StatusItem::Unseen,
        StatusItem::Deleted,
        StatusItem::DeletedStorage,
        StatusItem::Size,
        StatusItem::HighestModSeq,
        StatusItem::MailboxId,
    ];

    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<StatusItem> {
        let atom = c.atom()?;
        StatusItem::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(atom))
            .ok_or_else(|| ParseError::syntax(format!("unknown status item {atom}")))
    }

    /// `(item ...)`, non-empty.
    pub(crate) fn parse_list(c: &mut Cursor<'_>) -> PResult<Vec<StatusItem>> {
        c.list(StatusItem::parse)
    }
}

pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<Status> {
    c.sp()?;
    let mailbox = MailboxName::parse(c)?;
    c.sp()?;
    let items = StatusItem::parse_list(c)?;
    Ok(Status { mailbox, items })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    #[test]
    fn parses_status() {
        check(&[
            (
                "a STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
                Ok(CommandBody::Status(Status {
                    mailbox: MailboxName::new("blurdybloop"),
                    items: vec![StatusItem::UidNext, StatusItem::Messages],
                })),
            ),
            (
                "a status inbox (messages recent uidvalidity unseen deleted size highestmodseq)\r\n",
                Ok(CommandBody::Status(Status {
                    mailbox: MailboxName::new("INBOX"),
                    items: vec![
                        StatusItem::Messages,
                        StatusItem::Recent,
                        StatusItem::UidValidity,
                        StatusItem::Unseen,
                        StatusItem::Deleted,
                        StatusItem::Size,
                        StatusItem::HighestModSeq,
                    ],
                })),
            ),
            (
                "a STATUS INBOX (deleted-storage DELETED)\r\n",
                Ok(CommandBody::Status(Status {
                    mailbox: MailboxName::new("INBOX"),
                    items: vec![StatusItem::DeletedStorage, StatusItem::Deleted],
                })),
            ),
            ("a STATUS INBOX ()\r\n", Err("empty list")),
            ("a STATUS INBOX (FOO)\r\n", Err("unknown status item FOO")),
            ("a STATUS INBOX\r\n", Err("expected a space")),
            ("a STATUS INBOX MESSAGES\r\n", Err("expected '('")),
        ]);
    }
}
