//! COPY and MOVE (RFC 6851), with their UID forms: `COPY set mailbox`.

use crate::cursor::Cursor;
use crate::error::PResult;
use crate::mailbox::MailboxName;
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyMove {
    pub set: SequenceSet,
    pub mailbox: MailboxName,
    pub uid: bool,
}

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> PResult<CopyMove> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mailbox = MailboxName::parse(c)?;
    Ok(CopyMove { set, mailbox, uid })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn cm(set: &str, name: &str, uid: bool) -> CopyMove {
        CopyMove {
            set: set.parse().unwrap(),
            mailbox: MailboxName::new(name),
            uid,
        }
    }

    #[test]
    fn parses_copy_and_move() {
        check(&[
            (
                "a COPY 2:4 MEETING\r\n",
                Ok(CommandBody::Copy(cm("2:4", "MEETING", false))),
            ),
            (
                "a UID COPY 1,3 \"a b\"\r\n",
                Ok(CommandBody::Copy(cm("1,3", "a b", true))),
            ),
            (
                "a MOVE $ inbox\r\n",
                Ok(CommandBody::Move(cm("$", "INBOX", false))),
            ),
            (
                "a uid move 4:* Trash\r\n",
                Ok(CommandBody::Move(cm("4:*", "Trash", true))),
            ),
            ("a COPY 1\r\n", Err("expected a space")),
            ("a COPY x y\r\n", Err("expected a number")),
            ("a MOVE 1 a b\r\n", Err("expected the end of the line")),
        ]);
    }
}
