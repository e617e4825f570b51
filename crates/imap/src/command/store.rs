//! STORE and UID STORE: `FLAGS`, `+FLAGS`, `-FLAGS`, each with `.SILENT`, and
//! CONDSTORE's `(UNCHANGEDSINCE n)` (RFC 7162 section 3.1.3).

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::{Store, StoreMode};
use evermail_imap_proto::response::{Code, FetchItem, FetchResponse};
use evermail_mailbox::FlagChange;
use evermail_types::{Flags, ModSeq, Uid};

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn store(&mut self, store: Store) -> CmdResult {
        let account = self.account()?;
        let selected = self.selected_mut()?;
        if selected.read_only {
            return Err(CmdError::no(Code::ReadOnly, "the mailbox is read-only"));
        }
        let indices = selected.resolve(&store.set, store.uid)?;
        let uids: Vec<_> = indices.iter().map(|&i| selected.messages[i].uid).collect();
        let mailbox = selected.id;
        if store.unchanged_since.is_some() {
            self.enable_condstore();
        }
        let change = match store.mode {
            StoreMode::Replace => FlagChange::Replace,
            StoreMode::Add => FlagChange::Add,
            StoreMode::Remove => FlagChange::Remove,
        };
        let flags: Flags = store.flags.into_iter().collect();
        let selected = self.selected_mut()?;
        let mut modified: Vec<Uid> = Vec::new();
        let mut changed_uids = Vec::new();
        // A STORE that changes no flag the view shows needs no write when the view
        // is current: nothing was committed to the mailbox since the view was last
        // brought up to date (every change raises its HIGHESTMODSEQ). A change
        // committed after that check is then simply ordered after this STORE.
        // Clients send many such (\Seen on what is seen), and skipping the
        // transaction spares its round trips and the database's write lock.
        let no_op = store.unchanged_since.is_none()
            && indices.iter().all(|&i| {
                let current = &selected.messages[i].flags;
                change.apply(current, &flags) == *current
            });
        let view_modseq = selected.highest_modseq;
        let no_op = no_op
            && !uids.is_empty()
            && self
                .mailstore
                .mailbox(account.id, mailbox)
                .await?
                .highest_modseq
                == view_modseq;
        if !uids.is_empty() && !no_op {
            let changed = match store.unchanged_since {
                None => {
                    self.mailstore
                        .store_flags(account.id, mailbox, &uids, change, &flags)
                        .await?
                }
                Some(limit) => {
                    let update = self
                        .mailstore
                        .store_flags_unchanged_since(
                            account.id,
                            mailbox,
                            &uids,
                            ModSeq(limit),
                            change,
                            &flags,
                        )
                        .await?;
                    modified = update.modified;
                    update.changed
                }
            };
            let selected = self.selected_mut()?;
            // All changed messages share the command's one new MODSEQ. When it is the
            // view's plus one, nothing else was committed to the mailbox between the
            // view and this write, so with the write applied below the view is
            // current at it: the next no-op STORE needs no write and this command's
            // own announcement does not make the view read the mailbox again.
            let written = changed.iter().map(|m| m.modseq).max();
            if let Some(m) = written
                && m.0 == view_modseq.0 + 1
                && selected.highest_modseq == view_modseq
                && store.unchanged_since.is_none()
            {
                selected.highest_modseq = m;
            }
            for m in changed {
                if let Some(i) = selected.index_of(m.uid) {
                    changed_uids.push(m.uid);
                    selected.messages[i].flags = m.flags;
                    selected.messages[i].modseq = m.modseq;
                }
            }
        }
        let condstore = self.enabled.condstore;
        // Every message named gets its flags reported, changed or not, so the client's
        // view is right even where another session got there first. With CONDSTORE a
        // changed message is reported even under .SILENT, with its new MODSEQ (RFC 7162
        // section 3.1.3); a refused one is not, it is in MODIFIED.
        for i in indices {
            let Some((m, recent)) = self
                .selected
                .as_ref()
                .map(|s| (&s.messages[i], s.recent.contains(&s.messages[i].uid)))
            else {
                break;
            };
            let was_changed = changed_uids.contains(&m.uid);
            let was_refused = modified.binary_search(&m.uid).is_ok();
            if was_refused || (store.silent && !(condstore && was_changed)) {
                continue;
            }
            let mut items = Vec::with_capacity(3);
            if store.uid || condstore {
                items.push(FetchItem::Uid(m.uid.get()));
            }
            items.push(FetchItem::Flags {
                flags: &m.flags,
                recent,
            });
            if condstore {
                items.push(FetchItem::ModSeq(m.modseq.0));
            }
            FetchResponse {
                seq: i as u32 + 1,
                items,
            }
            .encode(&mut self.output);
        }
        let name = if store.uid { "UID STORE" } else { "STORE" };
        if modified.is_empty() {
            return Done::ok(format!("{name} completed"));
        }
        // MODIFIED names the refused messages the way the command named them.
        let selected = self.selected_mut()?;
        let numbers = modified.iter().filter_map(|&uid| {
            if store.uid {
                Some(uid.get())
            } else {
                selected.index_of(uid).map(|i| i as u32 + 1)
            }
        });
        match SequenceSet::from_numbers(numbers) {
            Some(set) => Done::ok_code(
                Code::Modified(set),
                format!("conditional {name} failed for some messages"),
            ),
            None => Done::ok(format!("{name} completed")),
        }
    }
}
