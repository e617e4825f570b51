//! CREATE, DELETE, SUBSCRIBE and UNSUBSCRIBE.

use evermail_imap_proto::MailboxName;
use evermail_imap_proto::command::Create;
use evermail_imap_proto::response::Code;
use evermail_mailbox::ErrorKind;

use super::DELIMITER;
use crate::session::{CmdError, CmdResult, Done, Session};

/// RFC 6154's special-use attributes; CREATE may ask for one of them.
const SPECIAL_USES: &[&str] = &[
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

impl Session {
    pub(crate) async fn create(&mut self, create: Create) -> CmdResult {
        let account = self.account()?;
        let decoded = self.decode_name(&create.mailbox)?;
        // RFC 9051 section 6.3.4: a trailing delimiter only says the client means to
        // create children under the name; the name itself is what is created.
        let name = decoded.strip_suffix(DELIMITER).unwrap_or(&decoded);
        check_name(name)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(CmdError::no(Code::AlreadyExists, "INBOX always exists"));
        }
        let special_use = match create.special_use.as_slice() {
            [] => None,
            [one] => Some(
                *SPECIAL_USES
                    .iter()
                    .find(|s| s.eq_ignore_ascii_case(one))
                    .ok_or_else(|| {
                        CmdError::no(Code::UseAttr, format!("{one} is not a special use"))
                    })?,
            ),
            _ => {
                return Err(CmdError::no(
                    Code::UseAttr,
                    "only one special use per mailbox",
                ));
            }
        };
        match self
            .mailstore
            .create_mailbox(account.id, name, special_use)
            .await
        {
            // OBJECTID (RFC 8474 section 4.1): the new mailbox's id.
            Ok(record) => Done::ok_code(
                Code::Other {
                    name: "MAILBOXID".into(),
                    value: Some(format!("({})", super::objectid::mailbox_id(&record))),
                },
                "CREATE completed",
            ),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(CmdError::no(
                Code::AlreadyExists,
                format!("{name} already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// DELETE removes the mailbox and its messages. Children stay; the name then shows
    /// as `\Noselect` while they exist, as RFC 9051 section 6.3.5 describes.
    pub(crate) async fn delete(&mut self, name: MailboxName) -> CmdResult {
        let account = self.account()?;
        if name.is_inbox() {
            return Err(CmdError::no(Code::Cannot, "INBOX cannot be deleted"));
        }
        let record = self
            .find_mailbox(account.id, &name, Code::NonExistent)
            .await?;
        self.mailstore.delete_mailbox(account.id, record.id).await?;
        // A session that deletes its own selected mailbox has nothing selected left.
        if self.selected.as_ref().is_some_and(|s| s.id == record.id) {
            self.selected = None;
        }
        Done::ok("DELETE completed")
    }

    /// The subscription is a flag on the mailbox row, so only an existing mailbox can
    /// be subscribed (`NO [NONEXISTENT]` otherwise, which RFC 9051 section 6.3.7
    /// allows). CREATE does not subscribe.
    pub(crate) async fn subscribe(&mut self, name: MailboxName, subscribe: bool) -> CmdResult {
        let account = self.account()?;
        let record = self
            .find_mailbox(account.id, &name, Code::NonExistent)
            .await?;
        if record.subscribed != subscribe {
            self.mailstore
                .set_subscribed(account.id, record.id, subscribe)
                .await?;
        }
        if subscribe {
            Done::ok("SUBSCRIBE completed")
        } else {
            Done::ok("UNSUBSCRIBE completed")
        }
    }
}

/// Names are `/`-separated UTF-8 with no empty level and no wildcard (which LIST could
/// never match exactly) or control character.
pub(crate) fn check_name(name: &str) -> Result<(), CmdError> {
    let bad = name.is_empty()
        || name.len() > 1024
        || name.split(DELIMITER).any(str::is_empty)
        || name.chars().any(|c| c == '*' || c == '%' || c.is_control());
    if bad {
        Err(CmdError::no(
            Code::Cannot,
            format!("{name:?} is not a valid mailbox name"),
        ))
    } else {
        Ok(())
    }
}
