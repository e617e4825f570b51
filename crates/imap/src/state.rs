//! The selected mailbox as this session sees it, and how other sessions' changes are
//! folded into it.
//!
//! IMAP numbers messages by position (message sequence numbers), so each session keeps
//! its own list of the messages it has announced, in UID order: position `i` is
//! sequence number `i + 1`. That list changes only when the session tells the client:
//! new messages when it sends EXISTS, removals when it sends EXPUNGE. A removal seen
//! while EXPUNGE may not be sent (during FETCH, STORE or SEARCH) waits in
//! `pending_expunge`, and the message stays addressable until then.
//!
//! The list is the node's shared view of the mailbox at SELECT
//! ([`Mailstore::view`]): a persistent vector, so selecting costs one query for what
//! changed since the node last looked, and the session's own later changes copy only
//! the parts of the tree they touch, never the whole mailbox.
//!
//! Changes are found by asking the mail model for everything after the highest MODSEQ
//! the session has seen. A notification from [`Mailstore::subscribe`] marks the view
//! dirty so the next safe point asks at once; without one (a change made by another
//! node) the view is re-read at most every [`POLL_INTERVAL`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::response::{
    Code, Data, FetchItem, FetchResponse, StatusKind, StatusResponse,
};
use evermail_mailbox::{
    MailError, MailboxChange, MailboxRecord, MailboxWatch, Mailstore, MessageList,
};
use evermail_types::{AccountId, MailboxId, ModSeq, Uid};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;

use crate::session::CmdError;

/// The RFC 7162 extensions this session has turned on. They only ever switch on, and
/// change what untagged responses look like from then on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enabled {
    /// CONDSTORE: every untagged FETCH carries UID and MODSEQ.
    pub(crate) condstore: bool,
    /// QRESYNC (implies CONDSTORE): removals are reported as `VANISHED uids` instead of
    /// `EXPUNGE n`.
    pub(crate) qresync: bool,
    /// UTF8=ACCEPT (RFC 6855): mailbox names are UTF-8, not modified UTF-7.
    pub(crate) utf8_accept: bool,
}

/// How stale the view may get, without a notification, before a command re-reads it.
/// Changes made through this process arrive as notifications at once; this bounds how
/// late a change made through another node is seen.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(3);

pub(crate) struct Selected {
    pub(crate) id: MailboxId,
    /// The name as stored (UTF-8).
    pub(crate) name: String,
    pub(crate) read_only: bool,
    pub(crate) uid_validity: u32,
    /// Messages as announced to the client, in UID order.
    pub(crate) messages: MessageList,
    /// UIDs removed elsewhere whose EXPUNGE has not been sent yet.
    pub(crate) pending_expunge: BTreeSet<Uid>,
    /// A MODSEQ below every pending removal's: where the view stood when the first
    /// of them was found. While removals wait, a QRESYNC client is told this as its
    /// HIGHESTMODSEQ, so a cache saved then still learns of them (RFC 7162 section
    /// 3.2).
    pending_floor: Option<ModSeq>,
    /// Every change up to this MODSEQ is reflected in `messages` or `pending_expunge`.
    pub(crate) highest_modseq: ModSeq,
    /// The UIDNEXT reported at SELECT, kept up to date as messages arrive.
    pub(crate) uid_next: u32,
    /// The result of the last `SEARCH RETURN (SAVE)`, which `$` names (RFC 5182), as
    /// UIDs in ascending order. Expunged messages drop out when `$` is resolved.
    pub(crate) saved: Vec<Uid>,
    /// Whether this session claims \Recent messages (RFC 3501 section 2.3.2): a rev1
    /// session that selected the mailbox with SELECT, not EXAMINE.
    claims_recent: bool,
    /// The UIDs that are \Recent to this session: claimed at SELECT and as new
    /// messages are announced. Expunged ones may linger; see `recent_count`.
    pub(crate) recent: BTreeSet<Uid>,
    changes: broadcast::Receiver<MailboxChange>,
    /// Keeps the mailbox in the node's watched set, so changes made through other
    /// nodes are announced here within the node's poll interval.
    _watch: Option<MailboxWatch>,
    dirty: bool,
    last_sync: Instant,
}

impl Selected {
    /// Reads a mailbox for SELECT or EXAMINE. With `claims_recent` (SELECT by a rev1
    /// session) the messages nobody has claimed yet become \Recent to this session.
    pub(crate) async fn open(
        mailstore: &Mailstore,
        record: MailboxRecord,
        read_only: bool,
        claims_recent: bool,
    ) -> Result<Selected, MailError> {
        // Subscribe before reading, so a change committed in between is at worst
        // reported twice (and then found to be no change), never missed.
        let changes = mailstore.subscribe();
        // The row was read just now, by name; it is not read again.
        let account = record.account;
        let view = mailstore.view_of(record).await?;
        let (fresh, messages) = (view.record, view.messages);
        // A message added between the reads is in `messages`, and its change will be
        // seen again after `highest_modseq`; `sync` ignores what it already has.
        let uid_next = messages
            .last()
            .map_or(0, |m| m.uid.get().saturating_add(1))
            .max(fresh.uidnext.get());
        let watch = mailstore.watch(account, fresh.id, fresh.highest_modseq);
        let mut recent = BTreeSet::new();
        // The mark only rises, so one already at UIDNEXT leaves nothing to claim and
        // the SELECT writes nothing.
        if claims_recent
            && let Some(up_to) = Uid::new(uid_next)
            && fresh.recent_uid < up_to
        {
            let from = mailstore.claim_recent(account, fresh.id, up_to).await?;
            recent.extend(
                messages
                    .iter()
                    .map(|m| m.uid)
                    .filter(|&uid| uid >= from && uid < up_to),
            );
        }
        Ok(Selected {
            id: fresh.id,
            name: fresh.name,
            read_only,
            uid_validity: fresh.uidvalidity.get(),
            messages,
            pending_expunge: BTreeSet::new(),
            pending_floor: None,
            highest_modseq: view.highest_modseq,
            uid_next,
            saved: Vec::new(),
            claims_recent,
            recent,
            changes,
            _watch: Some(watch),
            dirty: false,
            last_sync: Instant::now(),
        })
    }

    /// The HIGHESTMODSEQ a client may save its cache at: below any removal it has not
    /// been told of yet.
    pub(crate) fn reportable_modseq(&self) -> ModSeq {
        match self.pending_floor {
            Some(floor) if !self.pending_expunge.is_empty() => floor,
            _ => self.highest_modseq,
        }
    }

    pub(crate) fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    /// How many of the messages in the view are \Recent to this session.
    pub(crate) fn recent_count(&self) -> u32 {
        self.recent
            .iter()
            .filter(|&&uid| self.index_of(uid).is_some())
            .count() as u32
    }

    /// The index of a UID in `messages`.
    pub(crate) fn index_of(&self, uid: Uid) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// How many messages in the view have a UID below `uid`.
    fn count_below(&self, uid: u64) -> usize {
        // Never `Equal`, so the search ends at the boundary.
        self.messages
            .binary_search_by(|m| {
                if u64::from(m.uid.get()) < uid {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i)
    }

    /// The positions in `messages` a command's set names, ascending and without
    /// duplicates. UIDs that do not exist are skipped (RFC 9051 section 6.4.9); a
    /// sequence number beyond the last message is a client error.
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, CmdError> {
        // `$` means the same messages whichever form of the command uses it.
        if set.is_last_result() {
            return Ok(self
                .saved
                .iter()
                .filter_map(|&uid| self.index_of(uid))
                .collect());
        }
        let mut out = Vec::new();
        if uid {
            let largest = self.messages.last().map_or(0, |m| m.uid.get());
            for range in set.normalized(largest) {
                let lo = self.count_below(u64::from(*range.start()));
                let hi = self.count_below(u64::from(*range.end()) + 1);
                out.extend(lo..hi);
            }
            return Ok(out);
        }
        let exists = self.exists();
        for range in set.ranges() {
            use evermail_imap_proto::SeqBound::Value;
            if let (Value(a), Value(b)) = (range.start, range.end)
                && a.get().max(b.get()) > exists
            {
                return Err(CmdError::bad(format!(
                    "no message with sequence number {} (there are {exists})",
                    a.get().max(b.get())
                )));
            }
        }
        for range in set.normalized(exists) {
            let end = (*range.end()).min(exists);
            out.extend((*range.start() as usize).saturating_sub(1)..end as usize);
        }
        Ok(out)
    }

    /// Marks the view stale when a notification for this mailbox arrived.
    fn drain_notifications(&mut self) {
        loop {
            match self.changes.try_recv() {
                Ok(change) if change.mailbox == self.id && change.modseq > self.highest_modseq => {
                    self.dirty = true
                }
                Ok(_) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
                // We missed some: assume one of them was ours.
                Err(TryRecvError::Lagged(_)) => self.dirty = true,
            }
        }
    }

    /// Waits until a change to this mailbox is announced (for IDLE). Cancel-safe.
    pub(crate) async fn changed(&mut self) {
        loop {
            match self.changes.recv().await {
                Ok(change) if change.mailbox == self.id && change.modseq > self.highest_modseq => {
                    self.dirty = true;
                    return;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.dirty = true;
                    return;
                }
                // The mail store is gone; nothing will ever be announced again.
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// Reads what changed since the view was last brought up to date and writes the
    /// untagged EXPUNGE, EXISTS and FETCH responses for it to `out`. With `force` unset
    /// the mail store is asked only if a notification arrived or the view is older than
    /// [`POLL_INTERVAL`]. Expunges are held back unless `expunge_allowed`.
    pub(crate) async fn sync(
        &mut self,
        mailstore: &Mailstore,
        account: AccountId,
        enabled: Enabled,
        expunge_allowed: bool,
        force: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), MailError> {
        self.drain_notifications();
        let mut flag_changes = Vec::new();
        let mut grew = false;
        if force || self.dirty || self.last_sync.elapsed() >= POLL_INTERVAL {
            let changes = mailstore
                .changes_since(account, self.id, self.highest_modseq)
                .await?;
            self.dirty = false;
            self.last_sync = Instant::now();
            for uid in changes.expunged {
                if self.index_of(uid).is_some() {
                    self.pending_expunge.insert(uid);
                    self.pending_floor.get_or_insert(self.highest_modseq);
                }
            }
            for message in changes.messages {
                if self.pending_expunge.contains(&message.uid) {
                    continue;
                }
                match self.index_of(message.uid) {
                    Some(i) => {
                        if self.messages[i].flags != message.flags {
                            flag_changes.push(message.uid);
                        }
                        self.messages[i] = message;
                    }
                    // UIDs only grow, so a message we do not have is new unless it is
                    // older than the newest we have (which cannot happen, but must not
                    // break the sequence numbering if it ever did).
                    None if self.messages.last().is_none_or(|m| m.uid < message.uid) => {
                        self.uid_next = self.uid_next.max(message.uid.get().saturating_add(1));
                        self.messages.push_back(message);
                        grew = true;
                    }
                    None => {}
                }
            }
            self.highest_modseq = self.highest_modseq.max(changes.highest_modseq);
        }
        if expunge_allowed {
            self.announce_expunges(enabled, out);
        }
        if grew {
            // The view already holds the new messages: a failed claim leaves them not
            // recent rather than unannounced.
            if self.claims_recent
                && let Err(e) = self.claim_new_recent(mailstore, account).await
            {
                tracing::warn!(mailbox = self.id.0, "could not claim recent messages: {e}");
            }
            Data::Exists(self.exists()).encode(out);
            if self.claims_recent {
                Data::Recent(self.recent_count()).encode(out);
            }
        }
        for uid in flag_changes {
            if let Some(i) = self.index_of(uid) {
                let m = &self.messages[i];
                let mut items = vec![
                    FetchItem::Uid(m.uid.get()),
                    FetchItem::Flags {
                        flags: &m.flags,
                        recent: self.recent.contains(&m.uid),
                    },
                ];
                if enabled.condstore {
                    items.push(FetchItem::ModSeq(m.modseq.0));
                }
                FetchResponse {
                    seq: i as u32 + 1,
                    items,
                }
                .encode(out);
            }
        }
        // FETCH responses may have carried MODSEQs above a removal the client has not
        // been told of; this lower HIGHESTMODSEQ keeps a cache saved now from
        // skipping it.
        if let (true, Some(floor)) = (enabled.qresync, self.pending_floor)
            && !self.pending_expunge.is_empty()
        {
            StatusResponse::new(None, StatusKind::Ok, "expunges pending")
                .with_code(Code::HighestModSeq(floor.0))
                .encode(out);
        }
        Ok(())
    }

    /// Claims the messages that arrived since the last claim, up to the view's UIDNEXT;
    /// another session that selected the mailbox meanwhile may have claimed them first.
    async fn claim_new_recent(
        &mut self,
        mailstore: &Mailstore,
        account: AccountId,
    ) -> Result<(), MailError> {
        let Some(up_to) = Uid::new(self.uid_next) else {
            return Ok(());
        };
        let from = mailstore.claim_recent(account, self.id, up_to).await?;
        let claimed = self
            .messages
            .iter()
            .map(|m| m.uid)
            .filter(|&uid| uid >= from && uid < up_to);
        self.recent.extend(claimed);
        Ok(())
    }

    /// Sends EXPUNGE for every pending removal and drops the messages from the view.
    /// Highest first, so each number sent is still valid for the client when it reads
    /// it without renumbering in between. With QRESYNC one `VANISHED` names them all by
    /// UID instead (RFC 7162 section 3.2.10).
    fn announce_expunges(&mut self, enabled: Enabled, out: &mut Vec<u8>) {
        let pending = std::mem::take(&mut self.pending_expunge);
        self.pending_floor = None;
        if enabled.qresync {
            let gone: Vec<u32> = pending
                .iter()
                .filter(|&&uid| self.index_of(uid).is_some())
                .map(|uid| uid.get())
                .collect();
            self.messages.retain(|m| !pending.contains(&m.uid));
            if let Some(uids) = SequenceSet::from_numbers(gone) {
                Data::Vanished {
                    earlier: false,
                    uids,
                }
                .encode(out);
            }
            return;
        }
        for uid in pending.into_iter().rev() {
            if let Some(i) = self.index_of(uid) {
                self.messages.remove(i);
                Data::Expunge(i as u32 + 1).encode(out);
            }
        }
    }

    /// Removes messages this session expunged itself, announcing each.
    pub(crate) fn remove_expunged(&mut self, uids: &[Uid], enabled: Enabled, out: &mut Vec<u8>) {
        self.pending_expunge.extend(uids.iter().copied());
        self.announce_expunges(enabled, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evermail_mailbox::MessageRecord;

    fn uids(selected: &Selected, set: &str, uid: bool) -> Result<Vec<u32>, String> {
        selected
            .resolve(&set.parse().unwrap(), uid)
            .map(|ix| ix.iter().map(|&i| selected.messages[i].uid.get()).collect())
            .map_err(|e| format!("{e:?}"))
    }

    fn view(uid_list: &[u32]) -> Selected {
        let (_tx, rx) = broadcast::channel(1);
        Selected {
            id: MailboxId(1),
            name: "INBOX".into(),
            read_only: false,
            uid_validity: 1,
            messages: uid_list
                .iter()
                .map(|&u| MessageRecord {
                    uid: Uid::new(u).unwrap(),
                    modseq: ModSeq(1),
                    flags: Default::default(),
                    size: 10,
                    internal_date: 0,
                    blob: evermail_types::BlobId([0; 32]),
                })
                .collect(),
            pending_expunge: BTreeSet::new(),
            pending_floor: None,
            highest_modseq: ModSeq(1),
            uid_next: 100,
            saved: Vec::new(),
            claims_recent: false,
            recent: BTreeSet::new(),
            changes: rx,
            _watch: None,
            dirty: false,
            last_sync: Instant::now(),
        }
    }

    #[test]
    fn resolves_sequence_numbers_and_uids() {
        let v = view(&[3, 5, 9, 10]);
        // (set, is a UID set, the UIDs it names or None for an error)
        let cases: &[(&str, bool, Option<Vec<u32>>)] = &[
            ("1", false, Some(vec![3])),
            ("2:3", false, Some(vec![5, 9])),
            ("3:2", false, Some(vec![5, 9])),
            ("*", false, Some(vec![10])),
            ("1:*", false, Some(vec![3, 5, 9, 10])),
            ("4,1,2,1", false, Some(vec![3, 5, 10])),
            ("5", false, None),
            ("1:5", false, None),
            ("5", true, Some(vec![5])),
            ("4", true, Some(vec![])),
            ("1:4294967295", true, Some(vec![3, 5, 9, 10])),
            ("6:*", true, Some(vec![9, 10])),
            // `559:*` always includes the last UID, even when 559 is larger.
            ("559:*", true, Some(vec![10])),
            ("*", true, Some(vec![10])),
        ];
        for (set, uid, want) in cases {
            let got = uids(&v, set, *uid);
            match want {
                Some(want) => assert_eq!(got.as_ref(), Ok(want), "{set} uid={uid}"),
                None => assert!(got.is_err(), "{set} uid={uid}: {got:?}"),
            }
        }
        let mut saved = view(&[3, 5, 9, 10]);
        saved.saved = [9, 4, 3].map(|u| Uid::new(u).unwrap()).to_vec();
        saved.saved.sort();
        assert_eq!(uids(&saved, "$", false), Ok(vec![3, 9]));
        assert_eq!(uids(&saved, "$", true), Ok(vec![3, 9]));
        let empty = view(&[]);
        assert_eq!(uids(&empty, "1:*", false), Ok(vec![]));
        assert_eq!(uids(&empty, "*", true), Ok(vec![]));
        assert!(uids(&empty, "1", false).is_err());
    }

    #[test]
    fn expunges_are_announced_highest_first() {
        let mut v = view(&[3, 5, 9, 10]);
        let mut out = Vec::new();
        let gone = [Uid::new(5).unwrap(), Uid::new(10).unwrap()];
        v.remove_expunged(&gone, Enabled::default(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n"
        );
        assert_eq!(v.exists(), 2);
        assert_eq!(v.index_of(Uid::new(9).unwrap()), Some(1));
    }

    #[test]
    fn qresync_reports_expunges_as_vanished_uids() {
        let mut v = view(&[3, 5, 9, 10, 11]);
        let mut out = Vec::new();
        let enabled = Enabled {
            condstore: true,
            qresync: true,
            ..Enabled::default()
        };
        // 4 was never in the view and is not reported.
        let gone: Vec<Uid> = [4, 5, 10, 11].map(|u| Uid::new(u).unwrap()).to_vec();
        v.remove_expunged(&gone, enabled, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "* VANISHED 5,10:11\r\n");
        assert_eq!(v.exists(), 2);
    }
}
