//! The TRANSACTION state's view of the maildrop (the INBOX): a snapshot of its
//! messages taken at login, numbered from 1 in UID order, with the session's deletion
//! marks. It holds the maildrop lock for as long as it lives.

use std::num::NonZeroU32;

use evermail_mailbox::{Account, MaildropLock, MessageRecord};
use evermail_types::{BlobId, MailboxId, Uid, UidValidity};

/// One message as the session numbers it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) uid: Uid,
    pub(crate) size: u64,
    pub(crate) blob: BlobId,
    pub(crate) deleted: bool,
}

/// Why a message number cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    NoSuchMessage,
    Deleted,
}

impl Missing {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Missing::NoSuchMessage => "no such message",
            Missing::Deleted => "message is marked as deleted",
        }
    }
}

pub(crate) struct Maildrop {
    pub(crate) account: Account,
    pub(crate) inbox: MailboxId,
    uidvalidity: UidValidity,
    entries: Vec<Entry>,
    /// Released when the session ends, however it ends.
    _lock: MaildropLock,
}

impl Maildrop {
    pub(crate) fn new(
        account: Account,
        inbox: MailboxId,
        uidvalidity: UidValidity,
        messages: impl IntoIterator<Item = MessageRecord>,
        lock: MaildropLock,
    ) -> Maildrop {
        let mut entries: Vec<Entry> = messages
            .into_iter()
            .map(|m| Entry {
                uid: m.uid,
                size: m.size,
                blob: m.blob,
                deleted: false,
            })
            .collect();
        // Message numbers follow UID order, so they also follow arrival order.
        entries.sort_by_key(|e| e.uid);
        Maildrop {
            account,
            inbox,
            uidvalidity,
            entries,
            _lock: lock,
        }
    }

    /// A message that is not marked as deleted.
    pub(crate) fn get(&self, number: NonZeroU32) -> Result<&Entry, Missing> {
        let entry = self
            .entries
            .get(number.get() as usize - 1)
            .ok_or(Missing::NoSuchMessage)?;
        if entry.deleted {
            return Err(Missing::Deleted);
        }
        Ok(entry)
    }

    /// Every message not marked as deleted, with its number.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// `(messages, octets)` of the messages not marked as deleted.
    pub(crate) fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.size))
    }

    /// The unique id: `UIDVALIDITY.UID` of the INBOX. Both numbers are fixed for the
    /// life of the mailbox and a UID is never reused, so the id is stable across
    /// sessions and restarts and never names another message (RFC 1939 section 7).
    pub(crate) fn unique_id(&self, entry: &Entry) -> String {
        format!("{}.{}", self.uidvalidity, entry.uid)
    }

    pub(crate) fn mark_deleted(&mut self, number: NonZeroU32) -> Result<(), Missing> {
        self.get(number)?;
        self.entries[number.get() as usize - 1].deleted = true;
        Ok(())
    }

    pub(crate) fn unmark_all(&mut self) {
        for entry in &mut self.entries {
            entry.deleted = false;
        }
    }

    pub(crate) fn marked(&self) -> Vec<Uid> {
        self.entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect()
    }
}
