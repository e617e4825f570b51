//! One file per command or small group of commands, each an `impl Session` block with
//! the handlers `Session::dispatch` calls. Helpers shared by several commands (mailbox
//! names, looking a mailbox up) live here.

mod append;
mod capability;
mod compress;
mod copy;
mod expunge;
mod fetch;
mod idle;
mod list;
mod login;
mod manage;
mod objectid;
mod quota;
mod rename;
mod search;
mod select;
mod sort;
mod starttls;
mod status;
mod store;
mod thread;

use evermail_imap_proto::response::Code;
use evermail_imap_proto::{MailboxName, mutf7};
use evermail_mailbox::MailboxRecord;
use evermail_types::AccountId;

use crate::session::{CmdError, Session};

/// The one hierarchy delimiter of our namespace.
pub(crate) const DELIMITER: char = '/';

impl Session {
    /// Whether mailbox names travel as UTF-8: after ENABLE IMAP4rev2 or UTF8=ACCEPT.
    pub(crate) fn utf8_names(&self) -> bool {
        self.rev2 || self.enabled.utf8_accept
    }

    /// A mailbox name from the client as stored: rev1 clients send modified UTF-7
    /// (RFC 3501 section 5.1.3), rev2 clients UTF-8.
    pub(crate) fn decode_name(&self, name: &MailboxName) -> Result<String, CmdError> {
        if self.utf8_names() || name.is_inbox() {
            return Ok(name.as_str().to_string());
        }
        mutf7::decode(name.as_str())
            .map_err(|_| CmdError::bad("mailbox name is not valid modified UTF-7"))
    }

    /// A stored mailbox name as this client expects to see it.
    pub(crate) fn encode_name(&self, name: &str) -> String {
        if self.utf8_names() {
            name.to_string()
        } else {
            mutf7::encode(name)
        }
    }

    /// Looks a mailbox up by the client's name; `NO [NONEXISTENT]` (or the code given)
    /// when the account has none of that name.
    pub(crate) async fn find_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        missing: Code,
    ) -> Result<MailboxRecord, CmdError> {
        let decoded = self.decode_name(name)?;
        self.mailstore
            .find_mailbox(account, &decoded)
            .await?
            .ok_or_else(|| CmdError::no(missing, format!("no mailbox named {decoded}")))
    }
}
