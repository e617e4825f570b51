//! STORE and UID STORE: `FLAGS`, `+FLAGS`, `-FLAGS`, each with `.SILENT`.

use evermail_imap_proto::command::{Store, StoreMode};
use evermail_imap_proto::response::{Code, FetchItem, FetchResponse};
use evermail_mailbox::FlagChange;
use evermail_types::Flags;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn store(&mut self, store: Store) -> CmdResult {
        let account = self.account()?;
        let selected = self.selected_mut()?;
        if selected.read_only {
            return Err(CmdError::no(Code::ReadOnly, "the mailbox is read-only"));
        }
        if store.unchanged_since.is_some() {
            return Err(CmdError::bad("CONDSTORE is not enabled"));
        }
        let indices = selected.resolve(&store.set, store.uid)?;
        let uids: Vec<_> = indices.iter().map(|&i| selected.messages[i].uid).collect();
        let mailbox = selected.id;
        let change = match store.mode {
            StoreMode::Replace => FlagChange::Replace,
            StoreMode::Add => FlagChange::Add,
            StoreMode::Remove => FlagChange::Remove,
        };
        let flags: Flags = store.flags.into_iter().collect();
        if !uids.is_empty() {
            let changed = self
                .mailstore
                .store_flags(account.id, mailbox, &uids, change, &flags)
                .await?;
            let selected = self.selected_mut()?;
            for m in changed {
                if let Some(i) = selected.index_of(m.uid) {
                    selected.messages[i].flags = m.flags;
                    selected.messages[i].modseq = m.modseq;
                }
            }
        }
        if !store.silent {
            // Every message named gets its flags reported, changed or not, so the
            // client's view is right even where another session got there first.
            for i in indices {
                let Some(m) = self.selected.as_ref().map(|s| &s.messages[i]) else {
                    break;
                };
                let mut items = Vec::with_capacity(2);
                if store.uid {
                    items.push(FetchItem::Uid(m.uid.get()));
                }
                items.push(FetchItem::Flags {
                    flags: &m.flags,
                    recent: false,
                });
                FetchResponse {
                    seq: i as u32 + 1,
                    items,
                }
                .encode(&mut self.output);
            }
        }
        Done::ok(if store.uid {
            "UID STORE completed"
        } else {
            "STORE completed"
        })
    }
}
