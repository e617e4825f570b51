//! APPEND (with UIDPLUS's APPENDUID, RFC 4315, and APPENDLIMIT, RFC 7889).

use bytes::Bytes;
use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::Append;
use evermail_imap_proto::response::Code;
use evermail_types::Flags;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn append(&mut self, append: Append) -> CmdResult {
        let account = self.account()?;
        let Ok([message]) = <[_; 1]>::try_from(append.messages) else {
            return Err(CmdError::bad("MULTIAPPEND is not supported"));
        };
        // RFC 9051 section 6.3.12: TRYCREATE tells the client it may CREATE and retry.
        let record = self
            .find_mailbox(account.id, &append.mailbox, Code::TryCreate)
            .await?;
        let limit = self.options.max_message_size;
        if message.data.len() as u64 > limit {
            return Err(CmdError::no(
                Code::TooBig,
                format!("the message is larger than {limit} bytes"),
            ));
        }
        let flags: Flags = message.flags.into_iter().collect();
        let inserted = self
            .mailstore
            .append(
                account.id,
                record.id,
                Bytes::from(message.data),
                flags,
                message.date.map(|d| d.unix),
            )
            .await?;
        let uids = SequenceSet::from_numbers([inserted.uid.get()])
            .ok_or_else(|| CmdError::no(Code::ServerBug, "the new message has no UID"))?;
        // If the mailbox is selected here, the change notification makes the update
        // after this command report the new EXISTS.
        Done::ok_code(
            Code::AppendUid {
                uid_validity: inserted.uidvalidity.get(),
                uids,
            },
            "APPEND completed",
        )
    }
}
