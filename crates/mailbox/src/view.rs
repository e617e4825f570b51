//! The node's shared cache of mailbox views: what SELECT, STATUS and COPY read instead
//! of every message row of a mailbox.
//!
//! Reading a mailbox of 100,000 messages row by row costs hundreds of milliseconds,
//! and every session that selects it would pay that again and hold its own copy. So
//! the node keeps, per mailbox, one snapshot: the messages in UID order as a
//! persistent vector ([`imbl::Vector`]: a clone is O(1) and shares its tree, an index,
//! insert or removal is O(log n) and copies only the path it touches) and the MODSEQ
//! up to which it is complete. A view is that snapshot brought up to date by one
//! indexed query, `changes_since(snapshot's MODSEQ)`, which is nearly always empty; a
//! session then changes its own clone (EXISTS, EXPUNGE, flags) without copying the
//! rest.
//!
//! The database stays the truth: a snapshot is never handed out without that query,
//! and the query includes the expunge log, so a change made through another node is
//! never missed. A snapshot is keyed by mailbox id *and* UIDVALIDITY, which is never
//! reused, so a mailbox deleted and re-created under the same id is never served the
//! old one's messages. The cache is bounded by the number of message records it
//! holds, each mailbox counting one more than its messages (so empty ones cannot pile
//! up); the least recently used mailboxes go first.

use crate::{MailError, MailboxRecord, Mailstore, MessageRecord};
use evermail_types::{AccountId, Flag, Flags, MailboxId, ModSeq, UidValidity};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A mailbox's messages in UID order, cheap to clone (see the module docs).
pub type MessageList = imbl::Vector<MessageRecord>;

/// The default bound of the view cache, in message records (a record is about 100
/// bytes, so about 200 MB at most, shared by every session of the node).
pub const DEFAULT_VIEW_CACHE_MESSAGES: usize = 2_000_000;

/// A mailbox as one read saw it.
#[derive(Debug, Clone)]
pub struct MailboxView {
    /// The mailbox row, read before the messages.
    pub record: MailboxRecord,
    /// Every message, in UID order. It may hold changes newer than `highest_modseq`
    /// (made between the reads), never fewer.
    pub messages: MessageList,
    /// Every change up to this MODSEQ is in `messages`; at least the row's.
    pub highest_modseq: ModSeq,
}

/// What SELECT reports of a mailbox besides its messages, found by a pass over all of
/// them; kept with the snapshot it was found in, so a SELECT of an unchanged mailbox
/// does not walk it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewSummary {
    /// Every keyword some message carries (the FLAGS response).
    pub keywords: Flags,
    /// The sequence number of the first message without `\Seen` (rev1's UNSEEN).
    pub first_unseen: Option<u32>,
}

impl ViewSummary {
    /// One pass over `messages`.
    pub fn of(messages: &MessageList) -> ViewSummary {
        let mut summary = ViewSummary::default();
        for (i, m) in messages.iter().enumerate() {
            for k in m.flags.keywords() {
                summary.keywords.insert(&Flag::Keyword(k.to_string()));
            }
            if summary.first_unseen.is_none() && !m.flags.contains(&Flag::Seen) {
                summary.first_unseen = Some(i as u32 + 1);
            }
        }
        summary
    }
}

/// What the cache did since the node started (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewCacheStats {
    /// Views served from a snapshot (brought up to date by `changes_since`).
    pub hits: u64,
    /// Views that read every message of the mailbox.
    pub misses: u64,
    /// Snapshots dropped to stay under the bound.
    pub evictions: u64,
    /// Message records held now.
    pub messages: usize,
    /// Mailboxes held now.
    pub mailboxes: usize,
}

pub(crate) struct ViewCache {
    limit: usize,
    state: Mutex<CacheState>,
    /// One gate per mailbox being read whole: sessions that miss at once (every
    /// client reconnecting after a restart) wait for the first read instead of each
    /// reading every row.
    loading: Mutex<HashMap<MailboxId, Arc<tokio::sync::Mutex<()>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<MailboxId, Entry>,
    /// Entries by when they were last used, oldest first.
    by_use: BTreeMap<u64, MailboxId>,
    clock: u64,
    /// What all entries cost: their messages, and one each.
    total: usize,
}

struct Entry {
    uid_validity: UidValidity,
    messages: MessageList,
    highest_modseq: ModSeq,
    used: u64,
    /// The summary of exactly `messages`, once some SELECT asked for it.
    summary: Option<Arc<ViewSummary>>,
}

impl CacheState {
    fn touch(&mut self, mailbox: MailboxId) {
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self.entries.get_mut(&mailbox) {
            self.by_use.remove(&entry.used);
            entry.used = now;
            self.by_use.insert(now, mailbox);
        }
    }

    fn remove(&mut self, mailbox: MailboxId) -> Option<Entry> {
        let entry = self.entries.remove(&mailbox)?;
        self.by_use.remove(&entry.used);
        self.total -= cost(&entry.messages);
        Some(entry)
    }
}

/// What a snapshot counts toward the bound.
fn cost(messages: &MessageList) -> usize {
    messages.len() + 1
}

impl ViewCache {
    pub(crate) fn new(limit: usize) -> ViewCache {
        ViewCache {
            limit,
            state: Mutex::new(CacheState::default()),
            loading: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot of a mailbox, if one is held for this UIDVALIDITY.
    fn get(&self, mailbox: MailboxId, uid_validity: UidValidity) -> Option<(MessageList, ModSeq)> {
        let mut state = self.lock();
        let entry = state.entries.get(&mailbox)?;
        if entry.uid_validity != uid_validity {
            // Another mailbox once had this id; its snapshot is worthless.
            state.remove(mailbox);
            return None;
        }
        let found = (entry.messages.clone(), entry.highest_modseq);
        state.touch(mailbox);
        Some(found)
    }

    /// Keeps a snapshot unless a newer one of the same mailbox is already held (two
    /// sessions may bring the same snapshot up to date at once), then drops the least
    /// recently used ones until the bound holds again.
    fn store(
        &self,
        mailbox: MailboxId,
        uid_validity: UidValidity,
        messages: MessageList,
        highest_modseq: ModSeq,
    ) {
        let mut state = self.lock();
        if let Some(held) = state.entries.get(&mailbox)
            && held.uid_validity == uid_validity
            && held.highest_modseq >= highest_modseq
        {
            return;
        }
        state.remove(mailbox);
        // A mailbox larger than the whole cache is read every time rather than
        // emptying the cache for nothing.
        if cost(&messages) > self.limit {
            return;
        }
        state.clock += 1;
        let used = state.clock;
        state.total += cost(&messages);
        state.by_use.insert(used, mailbox);
        state.entries.insert(
            mailbox,
            Entry {
                uid_validity,
                messages,
                highest_modseq,
                used,
                summary: None,
            },
        );
        while state.total > self.limit {
            let Some((_, oldest)) = state.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = state.entries.remove(&oldest) {
                state.total -= cost(&entry.messages);
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("evermail_view_cache_evictions_total").increment(1);
        }
        metrics::gauge!("evermail_view_cache_size").set(state.total as f64);
    }

    /// The summary of `messages`: the one kept with the snapshot when `messages` is
    /// that snapshot (the same tree), else found and, in that case, kept.
    fn summary(
        &self,
        mailbox: MailboxId,
        uid_validity: UidValidity,
        messages: &MessageList,
    ) -> Arc<ViewSummary> {
        {
            let state = self.lock();
            if let Some(entry) = state.entries.get(&mailbox)
                && entry.uid_validity == uid_validity
                && entry.messages.ptr_eq(messages)
                && let Some(summary) = &entry.summary
            {
                return summary.clone();
            }
        }
        // Found outside the lock: a pass over a large mailbox takes a while.
        let summary = Arc::new(ViewSummary::of(messages));
        let mut state = self.lock();
        if let Some(entry) = state.entries.get_mut(&mailbox)
            && entry.uid_validity == uid_validity
            && entry.messages.ptr_eq(messages)
        {
            entry.summary = Some(summary.clone());
        }
        summary
    }

    /// The gate of a mailbox's whole read, shared with whoever is reading it.
    fn gate(&self, mailbox: MailboxId) -> Arc<tokio::sync::Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        loading.entry(mailbox).or_default().clone()
    }

    /// Drops the gate once nobody else holds it (checked under the map's lock, so
    /// a waiter that took it from the map is always counted).
    fn release_gate(&self, mailbox: MailboxId, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(&mailbox);
        }
    }

    pub(crate) fn forget(&self, mailbox: MailboxId) {
        let mut state = self.lock();
        state.remove(mailbox);
        metrics::gauge!("evermail_view_cache_size").set(state.total as f64);
    }

    pub(crate) fn stats(&self) -> ViewCacheStats {
        let state = self.lock();
        ViewCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            messages: state.entries.values().map(|e| e.messages.len()).sum(),
            mailboxes: state.entries.len(),
        }
    }
}

/// Folds changes into a list in UID order: a record replaces the one with its UID or
/// is inserted in its place; an expunged UID is removed. Returns whether anything
/// was touched.
pub fn apply_changes(messages: &mut MessageList, changes: crate::Changes) -> bool {
    let touched = !changes.messages.is_empty() || !changes.expunged.is_empty();
    for uid in changes.expunged {
        if let Ok(i) = messages.binary_search_by_key(&uid, |m| m.uid) {
            messages.remove(i);
        }
    }
    for message in changes.messages {
        match messages.binary_search_by_key(&message.uid, |m| m.uid) {
            Ok(i) => messages[i] = message,
            // New messages nearly always come last, where this is a push.
            Err(i) => messages.insert(i, message),
        }
    }
    touched
}

impl Mailstore {
    /// A mailbox of `account` and its messages, from the node's view cache brought up
    /// to date with one `changes_since` query, or read whole when it is not cached.
    /// What SELECT, EXAMINE and STATUS read: O(changes), not O(messages), once warm.
    pub async fn view(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<MailboxView, MailError> {
        let record = self.mailbox(account, mailbox).await?;
        self.view_of(record).await
    }

    /// [`view`](Self::view) of a mailbox row the caller has just read (and checked
    /// belongs to the account, as [`find_mailbox`](Self::find_mailbox) does): SELECT
    /// finds the mailbox by name and need not read its row again.
    pub async fn view_of(&self, record: MailboxRecord) -> Result<MailboxView, MailError> {
        let mailbox = record.id;
        let cache = self.views();
        if let Some(snapshot) = cache.get(mailbox, record.uidvalidity) {
            return self.refresh(record, snapshot).await;
        }
        let gate = cache.gate(mailbox);
        let loaded = {
            let _reading = gate.lock().await;
            // Whoever held the gate before may have just read it.
            match cache.get(mailbox, record.uidvalidity) {
                Some(snapshot) => self.refresh(record, snapshot).await,
                None => self.read_whole(record).await,
            }
        };
        cache.release_gate(mailbox, gate);
        loaded
    }

    /// A held snapshot brought up to date with one `changes_since` query.
    async fn refresh(
        &self,
        record: MailboxRecord,
        (mut messages, since): (MessageList, ModSeq),
    ) -> Result<MailboxView, MailError> {
        let cache = self.views();
        cache.hits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("evermail_view_cache_hits_total").increment(1);
        let changes = self.meta().changes_since(record.id, since).await?;
        let highest_modseq = since.max(changes.highest_modseq);
        if apply_changes(&mut messages, changes) || highest_modseq > since {
            cache.store(
                record.id,
                record.uidvalidity,
                messages.clone(),
                highest_modseq,
            );
        }
        Ok(MailboxView {
            record,
            messages,
            highest_modseq,
        })
    }

    /// Every message row of the mailbox, kept as its snapshot.
    async fn read_whole(&self, record: MailboxRecord) -> Result<MailboxView, MailError> {
        let cache = self.views();
        cache.misses.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("evermail_view_cache_misses_total").increment(1);
        // The row was read first, so the messages hold every change up to its MODSEQ
        // (and perhaps later ones, which the next `changes_since` reports again and
        // `apply_changes` writes over harmlessly).
        let messages: MessageList = self.meta().messages(record.id).await?.into_iter().collect();
        let highest_modseq = record.highest_modseq;
        cache.store(
            record.id,
            record.uidvalidity,
            messages.clone(),
            highest_modseq,
        );
        Ok(MailboxView {
            record,
            messages,
            highest_modseq,
        })
    }

    /// What SELECT reports of `messages` (a view of `mailbox` this node's cache
    /// handed out) besides the messages: kept with the cached snapshot, so it is
    /// found by a pass over the messages only when the mailbox changed.
    pub fn view_summary(
        &self,
        mailbox: MailboxId,
        uid_validity: UidValidity,
        messages: &MessageList,
    ) -> Arc<ViewSummary> {
        self.views().summary(mailbox, uid_validity, messages)
    }

    /// What the view cache did so far.
    pub fn view_cache_stats(&self) -> ViewCacheStats {
        self.views().stats()
    }
}

#[cfg(test)]
mod tests;
