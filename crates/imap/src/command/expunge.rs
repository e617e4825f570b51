//! EXPUNGE and UID EXPUNGE (RFC 4315).

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::response::Code;
use evermail_types::Flag;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn expunge(&mut self, uids: Option<SequenceSet>) -> CmdResult {
        let account = self.account()?;
        self.selected_mut()?;
        // Messages another session marked \Deleted are expunged too, so catch up first.
        self.sync_selected(true, true).await;
        let selected = self.selected_mut()?;
        if selected.read_only {
            return Err(CmdError::no(Code::ReadOnly, "the mailbox is read-only"));
        }
        let candidates = match &uids {
            Some(set) => selected.resolve(set, true)?,
            None => (0..selected.messages.len()).collect(),
        };
        let deleted: Vec<_> = candidates
            .into_iter()
            .map(|i| &selected.messages[i])
            .filter(|m| m.flags.contains(&Flag::Deleted))
            .map(|m| m.uid)
            .collect();
        let mailbox = selected.id;
        if !deleted.is_empty() {
            let gone = self
                .mailstore
                .expunge(account.id, mailbox, &deleted)
                .await?;
            // Announce what this command removed now; removals by others follow after
            // the command, with the other pending updates.
            if let Some(selected) = self.selected.as_mut() {
                selected.remove_expunged(&gone, self.enabled, &mut self.output);
            }
        }
        let text = if uids.is_some() {
            "UID EXPUNGE completed"
        } else {
            "EXPUNGE completed"
        };
        // With CONDSTORE the client learns the MODSEQ its cache is now valid at (RFC
        // 7162 section 3.2.10's examples).
        if self.enabled.condstore {
            let record = self.mailstore.mailbox(account.id, mailbox).await?;
            return Done::ok_code(Code::HighestModSeq(record.highest_modseq.0), text);
        }
        Done::ok(text)
    }
}
