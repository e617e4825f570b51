//! APPEND (with MULTIAPPEND, RFC 3502; UIDPLUS's APPENDUID, RFC 4315; APPENDLIMIT,
//! RFC 7889).
//!
//! A message literal of 1 MiB or more arrives here as a marker for a spool file the
//! session wrote while reading it (`literal.rs`); it is stored streamed from that file.

use bytes::Bytes;
use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::Append;
use evermail_imap_proto::response::Code;
use evermail_mailbox::Body;
use evermail_types::Flags;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    /// APPEND of one message, or of several with MULTIAPPEND (RFC 3502): all are
    /// stored in one transaction, so either all are in the mailbox or none is.
    pub(crate) async fn append(&mut self, append: Append) -> CmdResult {
        let account = self.account()?;
        // RFC 9051 section 6.3.12: TRYCREATE tells the client it may CREATE and retry.
        let record = self
            .find_mailbox(account.id, &append.mailbox, Code::TryCreate)
            .await?;
        let limit = self.options.max_message_size;
        let mut messages = Vec::with_capacity(append.messages.len());
        for m in append.messages {
            let body = match self.take_spooled(&m.data) {
                Some(Ok(spool)) => Body::from(spool),
                Some(Err(reason)) => {
                    return Err(CmdError::no(
                        Code::Unavailable,
                        format!("the message could not be received: {reason}"),
                    ));
                }
                None => Body::from(Bytes::from(m.data)),
            };
            if body.len() as u64 > limit {
                return Err(CmdError::no(
                    Code::TooBig,
                    format!("a message is larger than {limit} bytes"),
                ));
            }
            let flags: Flags = m.flags.into_iter().collect();
            messages.push((body, flags, m.date.map(|d| d.unix)));
        }
        let inserted = self
            .mailstore
            .append_all(account.id, record.id, messages)
            .await?;
        let uid_validity = inserted
            .first()
            .map(|i| i.uidvalidity.get())
            .unwrap_or(record.uidvalidity.get());
        let uids = SequenceSet::from_numbers(inserted.iter().map(|i| i.uid.get()))
            .ok_or_else(|| CmdError::no(Code::ServerBug, "the new message has no UID"))?;
        // If the mailbox is selected here, the change notification makes the update
        // after this command report the new EXISTS.
        Done::ok_code(Code::AppendUid { uid_validity, uids }, "APPEND completed")
    }
}
