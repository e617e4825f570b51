//! SELECT, EXAMINE, CLOSE and UNSELECT: entering and leaving the selected state.

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::Select;
use evermail_imap_proto::response::{
    Code, Data, FetchItem, FetchResponse, ListItem, StatusKind, StatusResponse,
};
use evermail_types::Flag;

use crate::session::{CmdError, CmdResult, Done, Session};
use crate::state::Selected;

/// The system flags every mailbox supports.
const SYSTEM_FLAGS: [Flag; 5] = [
    Flag::Answered,
    Flag::Flagged,
    Flag::Deleted,
    Flag::Seen,
    Flag::Draft,
];

impl Session {
    pub(crate) async fn select(&mut self, select: Select) -> CmdResult {
        let account = self.account()?;
        // RFC 9051 section 6.3.2: a SELECT deselects the current mailbox first, even
        // when the new one cannot be selected; nothing is expunged. Clients of rev2 and
        // of QRESYNC (RFC 7162 section 3.2.11) are told where one mailbox's responses
        // end.
        if self.selected.take().is_some() && (self.rev2 || self.enabled.qresync) {
            self.write_status(
                StatusResponse::new(None, StatusKind::Ok, "previous mailbox closed")
                    .with_code(Code::Closed),
            );
        }
        // RFC 7162 section 3.2.5: QRESYNC without ENABLE QRESYNC is a client error.
        if select.qresync.is_some() && !self.enabled.qresync {
            return Err(CmdError::bad("QRESYNC is not enabled"));
        }
        if select.condstore {
            self.enable_condstore();
        }
        let record = self
            .find_mailbox(account.id, &select.mailbox, Code::NonExistent)
            .await?;
        let record_special_use = record.special_use.clone();
        let object_id = super::objectid::mailbox_id(&record);
        let uid_validity = record.uidvalidity;
        let claims_recent = !select.read_only && !self.rev2;
        let selected =
            Selected::open(&self.mailstore, record, select.read_only, claims_recent).await?;

        // The keywords in use and the first unseen message: kept with the node's
        // snapshot, so an unchanged mailbox is not walked again.
        let summary = self
            .mailstore
            .view_summary(selected.id, uid_validity, &selected.messages);
        let first_unseen = summary.first_unseen;
        let mut flags: Vec<Flag> = SYSTEM_FLAGS.to_vec();
        flags.extend(summary.keywords.iter());
        self.write_data(Data::Flags {
            flags: flags.clone(),
            recent: !self.rev2,
        });
        self.write_data(Data::Exists(selected.exists()));
        // RFC 9051 section 6.3.2: a rev2 client is told the mailbox's name as stored,
        // with its attributes.
        if self.rev2 {
            let mut attributes = Vec::new();
            if let Some(special) = &record_special_use {
                attributes.push(special.clone());
            }
            self.write_data(Data::List(ListItem {
                attributes,
                delimiter: Some(super::DELIMITER),
                name: selected.name.clone(),
                child_info_subscribed: false,
                old_name: None,
            }));
        }
        if !self.rev2 {
            self.write_data(Data::Recent(selected.recent_count()));
            if let Some(seq) = first_unseen {
                self.untagged_ok(Code::Unseen(seq), "first unseen message");
            }
        }
        let permanent = if select.read_only {
            Code::PermanentFlags {
                flags: Vec::new(),
                keywords: false,
            }
        } else {
            Code::PermanentFlags {
                flags,
                keywords: true,
            }
        };
        self.untagged_ok(permanent, "flags that can be stored");
        self.untagged_ok(Code::UidValidity(selected.uid_validity), "UIDs valid");
        self.untagged_ok(Code::UidNext(selected.uid_next), "predicted next UID");
        self.untagged_ok(
            Code::HighestModSeq(selected.highest_modseq.0),
            "highest MODSEQ",
        );
        // OBJECTID (RFC 8474 section 4.1).
        self.untagged_ok(
            Code::Other {
                name: "MAILBOXID".into(),
                value: Some(format!("({object_id})")),
            },
            "mailbox id",
        );
        let (code, verb) = if select.read_only {
            (Code::ReadOnly, "EXAMINE")
        } else {
            (Code::ReadWrite, "SELECT")
        };
        self.selected = Some(selected);
        if let Some(qresync) = select.qresync {
            self.resync(account.id, qresync).await?;
        }
        Done::ok_code(code, format!("{verb} completed"))
    }

    /// CLOSE: expunge `\Deleted` messages without EXPUNGE responses (in a read-write
    /// selection), then deselect.
    pub(crate) async fn close(&mut self) -> CmdResult {
        let account = self.account()?;
        let selected = self.selected_mut()?;
        if !selected.read_only {
            let deleted: Vec<_> = selected
                .messages
                .iter()
                .filter(|m| m.flags.contains(&Flag::Deleted))
                .map(|m| m.uid)
                .collect();
            if !deleted.is_empty() {
                let id = selected.id;
                self.mailstore.expunge(account.id, id, &deleted).await?;
            }
        }
        self.selected = None;
        Done::ok("CLOSE completed")
    }

    /// UNSELECT (RFC 3691): deselect without expunging.
    pub(crate) fn unselect(&mut self) -> CmdResult {
        self.selected_mut()?;
        self.selected = None;
        Done::ok("UNSELECT completed")
    }

    /// QRESYNC's part of SELECT (RFC 7162 section 3.2.5): what the client's cache, valid
    /// at `mod_seq`, lacks. A different UIDVALIDITY means the cache is useless and the
    /// client will start over, so nothing is sent. Every expunge is kept in the log, so
    /// the answer is exact and the client's `seq-match` hint is not needed.
    async fn resync(
        &mut self,
        account: evermail_types::AccountId,
        qresync: evermail_imap_proto::command::Qresync,
    ) -> Result<(), CmdError> {
        let selected = self.selected_mut()?;
        if qresync.uid_validity != selected.uid_validity {
            return Ok(());
        }
        let (id, highest) = (selected.id, selected.highest_modseq);
        let since = evermail_types::ModSeq(qresync.mod_seq);
        let changes = self.mailstore.changes_since(account, id, since).await?;
        let largest = highest_uid_bound(self.selected_mut()?);
        let vanished: Vec<u32> = changes
            .expunged
            .iter()
            .map(|u| u.get())
            .filter(|&u| {
                qresync
                    .known_uids
                    .as_ref()
                    .is_none_or(|known| known.contains(u, largest))
            })
            .collect();
        if let Some(uids) = SequenceSet::from_numbers(vanished) {
            self.write_data(Data::Vanished {
                earlier: true,
                uids,
            });
        }
        // The view may be newer than `changes` (or older, by a change it will report
        // itself), so each message is reported as the view holds it.
        let selected = self.selected_mut()?;
        let mut out = Vec::new();
        for m in changes.messages {
            let Some(i) = selected.index_of(m.uid) else {
                continue;
            };
            let m = &selected.messages[i];
            if m.modseq <= since || m.modseq > highest {
                continue;
            }
            FetchResponse {
                seq: i as u32 + 1,
                items: vec![
                    FetchItem::Uid(m.uid.get()),
                    FetchItem::Flags {
                        flags: &m.flags,
                        recent: selected.recent.contains(&m.uid),
                    },
                    FetchItem::ModSeq(m.modseq.0),
                ],
            }
            .encode(&mut out);
        }
        self.output.extend_from_slice(&out);
        Ok(())
    }

    pub(crate) fn untagged_ok(&mut self, code: Code, text: &str) {
        self.write_status(StatusResponse::new(None, StatusKind::Ok, text).with_code(code));
    }
}

/// The largest UID a `*` in a client's UID set stands for: the last UID ever handed
/// out in the mailbox, present or not.
pub(crate) fn highest_uid_bound(selected: &Selected) -> u32 {
    selected.uid_next.saturating_sub(1).max(1)
}
