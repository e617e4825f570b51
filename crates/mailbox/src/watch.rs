//! Change notification across nodes. Sessions hear of changes made through their own
//! process at once (`Mailstore::subscribe`); a change made through another node is
//! found here: the node keeps the set of mailboxes its sessions have selected, and
//! one read per interval (`Mailstore::poll_watched`) compares their HIGHEST MODSEQ
//! with what it last saw, announcing each mailbox that moved as if the change had been
//! made locally. The cost is one query per node per interval, however many sessions,
//! and nothing for mailboxes nobody has selected.

use crate::{MailError, MailboxChange, Mailstore};
use evermail_types::{AccountId, MailboxId, ModSeq};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Watched(Mutex<HashMap<MailboxId, Entry>>);

struct Entry {
    account: AccountId,
    sessions: usize,
    /// The HIGHEST MODSEQ last seen or announced.
    seen: ModSeq,
}

/// Keeps a mailbox in the watched set while it lives (a session's selection).
pub struct MailboxWatch {
    mailstore: Mailstore,
    mailbox: MailboxId,
}

impl Drop for MailboxWatch {
    fn drop(&mut self) {
        let mut watched = self.mailstore.watched().lock();
        if let Some(entry) = watched.get_mut(&self.mailbox) {
            entry.sessions -= 1;
            if entry.sessions == 0 {
                watched.remove(&self.mailbox);
            }
        }
    }
}

impl Watched {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MailboxId, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Mailstore {
    /// Watches `mailbox` for changes made through other nodes until the returned
    /// guard is dropped; `seen` is the HIGHEST MODSEQ the caller already knows.
    pub fn watch(&self, account: AccountId, mailbox: MailboxId, seen: ModSeq) -> MailboxWatch {
        let mut watched = self.watched().lock();
        let entry = watched.entry(mailbox).or_insert(Entry {
            account,
            sessions: 0,
            seen,
        });
        entry.sessions += 1;
        entry.seen = entry.seen.min(seen);
        MailboxWatch {
            mailstore: self.clone(),
            mailbox,
        }
    }

    /// Reads the HIGHEST MODSEQ of every watched mailbox and announces those that
    /// grew; returns how many were announced.
    pub async fn poll_watched(&self) -> Result<usize, MailError> {
        let ids: Vec<MailboxId> = self.watched().lock().keys().copied().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let current = self.meta().highest_modseqs(&ids).await?;
        let mut changed = Vec::new();
        {
            let mut watched = self.watched().lock();
            for (mailbox, modseq) in current {
                if let Some(entry) = watched.get_mut(&mailbox)
                    && modseq > entry.seen
                {
                    entry.seen = modseq;
                    changed.push(MailboxChange {
                        account: entry.account,
                        mailbox,
                        modseq,
                    });
                }
            }
        }
        let n = changed.len();
        for change in changed {
            self.announce(change);
        }
        Ok(n)
    }
}
