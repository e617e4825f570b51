//! STATUS: counts of a mailbox without selecting it.

use evermail_imap_proto::command::{Status, StatusItem};
use evermail_imap_proto::response::{Code, Data, StatusValue};
use evermail_types::Flag;

use evermail_mailbox::MailboxRecord;

use super::objectid::mailbox_id;
use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn status(&mut self, status: Status) -> CmdResult {
        let account = self.account()?;
        let record = self
            .find_mailbox(account.id, &status.mailbox, Code::NonExistent)
            .await?;
        let items = self.status_values(&record, &status.items).await?;
        let mailbox = self.encode_name(&record.name);
        self.write_data(Data::Status { mailbox, items });
        Done::ok("STATUS completed")
    }

    /// The values of STATUS items for one mailbox (STATUS, and LIST's RETURN (STATUS)).
    pub(crate) async fn status_values(
        &mut self,
        record: &MailboxRecord,
        items: &[StatusItem],
    ) -> Result<Vec<(StatusItem, StatusValue)>, CmdError> {
        let account = self.account()?;
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore();
        }
        let needs_messages = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Messages
                    | StatusItem::Recent
                    | StatusItem::Unseen
                    | StatusItem::Deleted
                    | StatusItem::DeletedStorage
                    | StatusItem::Size
            )
        });
        // The node's shared view: one query for what changed since it was last read.
        let messages = if needs_messages {
            self.mailstore.view(account.id, record.id).await?.messages
        } else {
            Default::default()
        };
        let count = |flag: &Flag, set: bool| {
            messages
                .iter()
                .filter(|m| m.flags.contains(flag) == set)
                .count() as u64
        };
        Ok(items
            .iter()
            .map(|&item| {
                let value = match item {
                    StatusItem::Messages => messages.len() as u64,
                    // Not yet claimed by any session (RFC 3501 section 2.3.2).
                    StatusItem::Recent => messages
                        .iter()
                        .filter(|m| m.uid >= record.recent_uid)
                        .count() as u64,
                    StatusItem::UidNext => u64::from(record.uidnext.get()),
                    StatusItem::UidValidity => u64::from(record.uidvalidity.get()),
                    StatusItem::Unseen => count(&Flag::Seen, false),
                    StatusItem::Deleted => count(&Flag::Deleted, true),
                    // In the STORAGE resource's units, 1024 octets, rounded up.
                    StatusItem::DeletedStorage => messages
                        .iter()
                        .filter(|m| m.flags.contains(&Flag::Deleted))
                        .map(|m| m.size)
                        .sum::<u64>()
                        .div_ceil(1024),
                    StatusItem::Size => messages.iter().map(|m| m.size).sum(),
                    StatusItem::HighestModSeq => record.highest_modseq.0,
                    StatusItem::MailboxId => {
                        return (item, StatusValue::ObjectId(mailbox_id(record)));
                    }
                };
                (item, value.into())
            })
            .collect())
    }
}
