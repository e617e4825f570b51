//! COPY, MOVE (RFC 6851) and their UID forms, with UIDPLUS's COPYUID.
//!
//! Copies share the stored body (the mail model writes metadata only). MOVE is a copy
//! followed by an expunge of the originals: a crash in between leaves the message in
//! both mailboxes, never in neither.

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::CopyMove;
use evermail_imap_proto::response::Code;
use evermail_mailbox::ErrorKind;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn copy(&mut self, command: CopyMove, is_move: bool) -> CmdResult {
        let account = self.account()?;
        let selected = self.selected_mut()?;
        if is_move && selected.read_only {
            return Err(CmdError::no(Code::ReadOnly, "the mailbox is read-only"));
        }
        let indices = selected.resolve(&command.set, command.uid)?;
        let uids: Vec<_> = indices.iter().map(|&i| selected.messages[i].uid).collect();
        let from = selected.id;
        let name = match (command.uid, is_move) {
            (false, false) => "COPY",
            (true, false) => "UID COPY",
            (false, true) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let target = self
            .find_mailbox(account.id, &command.mailbox, Code::TryCreate)
            .await?;
        if uids.is_empty() {
            return Done::ok(format!("{name} completed; nothing to copy"));
        }
        if is_move && target.id == from {
            return Err(CmdError::no(
                Code::Cannot,
                "cannot move into the same mailbox",
            ));
        }
        let copies = match self
            .mailstore
            .copy_messages(account.id, from, &uids, target.id)
            .await
        {
            Ok(copies) => copies,
            Err((made, error)) => {
                // RFC 9051 section 6.4.7: a failed COPY leaves the target as it was.
                if !made.is_empty()
                    && let Err(undo) = self.mailstore.expunge(account.id, target.id, &made).await
                {
                    tracing::error!(error = %undo, "could not undo a partial COPY");
                }
                if error.kind() == ErrorKind::OverQuota {
                    return Err(CmdError::no(Code::OverQuota, error.to_string()));
                }
                return Err(error.into());
            }
        };
        let copy_uid = SequenceSet::from_numbers(copies.iter().map(|(from, _)| from.get()))
            .zip(SequenceSet::from_numbers(
                copies.iter().map(|(_, to)| to.uid.get()),
            ))
            .map(|(from, to)| Code::CopyUid {
                uid_validity: target.uidvalidity.get(),
                from,
                to,
            });
        if !is_move {
            return Ok(Done::Ok(copy_uid, format!("{name} completed")));
        }
        // RFC 6851 section 4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        if let Some(code) = copy_uid {
            self.untagged_ok(code, "moved");
        }
        let moved: Vec<_> = copies.iter().map(|(from, _)| *from).collect();
        let gone = self.mailstore.expunge(account.id, from, &moved).await?;
        if let Some(selected) = self.selected.as_mut() {
            selected.remove_expunged(&gone, self.enabled, &mut self.output);
        }
        Done::ok(format!("{name} completed"))
    }
}
