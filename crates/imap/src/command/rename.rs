//! RENAME (RFC 9051 section 6.3.6).
//!
//! A mailbox keeps its messages, UIDVALIDITY and subscription, and the mailboxes under
//! it move with it. INBOX is special: renaming it moves all its messages into a new
//! mailbox of the new name (with a new UIDVALIDITY) and leaves INBOX empty, with its
//! own children where they were.

use evermail_imap_proto::command::Rename;
use evermail_imap_proto::response::Code;

use super::DELIMITER;
use super::manage::check_name;
use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn rename(&mut self, rename: Rename) -> CmdResult {
        let account = self.account()?;
        let source = self
            .find_mailbox(account.id, &rename.from, Code::NonExistent)
            .await?;
        let to = self.decode_name(&rename.to)?;
        check_name(&to)?;
        if to.eq_ignore_ascii_case("INBOX") {
            return Err(CmdError::no(Code::AlreadyExists, "INBOX always exists"));
        }
        // A taken name comes back as NO [ALREADYEXISTS], a rename under itself as
        // NO [CANNOT], through the usual mapping of mail errors.
        if rename.from.is_inbox() {
            self.mailstore
                .move_all_to_new_mailbox(account.id, source.id, &to)
                .await?;
        } else {
            self.mailstore
                .rename_mailbox(account.id, source.id, &to, DELIMITER)
                .await?;
        }
        Done::ok("RENAME completed")
    }
}
