//! SEARCH BODY, TEXT and the header keys (SUBJECT, FROM, TO, CC, BCC, HEADER) through
//! the node's text index (`evermail_fts`), a cache under
//! `DATA/index/<account>/<mailbox>-<uidvalidity>/` that is never the truth.
//!
//! No search builds an index. The node's indexer ([`Mailstore::run_text_indexer`],
//! one background task) builds a mailbox's index a little after mail arrives in it
//! (debounced; [`TextIndexOptions::index_new_mail`], on by default), and brings the
//! indexes this node has up to date the same way, so a search mostly finds its index
//! current. A search of a mailbox this node has no index of (none was built yet, or
//! `index_new_mail` is off) is answered without one (the caller scans) and asks the
//! indexer to build it. The indexer runs one job at a time for the whole node, each
//! mailbox queued at most once; a build's parsing and adding runs on one thread at a
//! lower priority ([`INDEXER_NICE`]), so deliveries and sessions come first. A search
//! still brings the index up to date with the session's view (the view's expunged
//! removed, up to [`IN_SEARCH_ADDS`] missing messages read and added); with more
//! missing it leaves those to the caller's scan and asks the indexer. While the
//! indexer adds many
//! messages to an index, searches of that mailbox use what it has committed and
//! leave the rest to the caller's scan, adding nothing themselves.
//! Whatever fails, in a search or in the background, deletes the index (to be
//! rebuilt) and is logged.
//!
//! The index only narrows: every candidate is checked with `MessageText`'s own rules
//! on the text the index stored, which is the text a scan would parse, so the answer
//! is exactly the scan's. What the index cannot answer (a string shorter than three
//! characters, a body that could not be read, no index yet) is left to the caller's
//! scan.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use evermail_fts::{FtsError, IndexedText, Scope, TextIndex};
use evermail_types::{AccountId, BlobId, MailboxId, Uid};
use futures_util::{StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

use crate::{ErrorKind, MailError, Mailstore, MessageText};

/// How many indexes a node keeps open (each holds a few file handles and maps);
/// the least recently used one not in use is closed beyond that.
const MAX_OPEN: usize = 64;

/// Messages larger than this are not indexed (a search reads them, as without an
/// index): the indexer reads a body whole, and a few 50 MB messages read at once
/// would take hundreds of MB from the sessions.
pub const MAX_INDEXED_BYTES: u64 = 16 << 20;

/// Bodies read at once while indexing.
const READ_AHEAD: usize = 8;

/// Messages parsed and added per blocking task (and, while the indexer builds, per
/// hold of the index's lock).
const ADD_CHUNK: usize = 64;

/// Messages added between commits while building, so an interrupted build keeps
/// most of its work.
const COMMIT_EVERY: usize = 5_000;

/// At most this many messages an index lacks are read and added inside a search;
/// with more missing, the search leaves them to its scan and the indexer adds them.
pub const IN_SEARCH_ADDS: usize = 500;

/// How long a mailbox with new mail must be quiet before the indexer brings its
/// index up to date, and the longest a steady stream of changes delays that.
const DEBOUNCE: Duration = Duration::from_secs(2);
const MAX_DEBOUNCE: Duration = Duration::from_secs(30);

/// The most mailboxes waiting for the indexer (queued or debounced); beyond that a
/// request is dropped, and the next search asks again.
const MAX_WAITING: usize = 10_000;

pub use evermail_fts::MIN_CHARS as MIN_INDEXED_CHARS;

/// A search key the text index can answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TextKey {
    /// `BODY string`: the body text.
    Body(String),
    /// `TEXT string`: the header and the body text.
    Text(String),
    /// `HEADER field string` (SUBJECT, FROM, TO, CC and BCC are this with their
    /// field): the values of the header fields of that name, any case.
    Header(String, String),
}

/// What the index answered for a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextHits {
    /// For each key, in order: the UIDs of the view whose text matches it, ascending;
    /// `None` for a key the index cannot narrow (shorter than [`MIN_INDEXED_CHARS`]).
    pub matches: Vec<Option<Vec<Uid>>>,
    /// Messages of the view the index does not hold (their body could not be read,
    /// or the indexer has yet to add them): the caller judges these by reading them,
    /// as without the index.
    pub unindexed: BTreeSet<Uid>,
}

/// How the node's text indexes have served since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextIndexStats {
    /// Searches the index answered (but for messages it could not read).
    pub searches_indexed: u64,
    /// Searches during a build: the index answered for what the indexer had
    /// committed, the caller scanned the rest.
    pub searches_partial: u64,
    /// Searches left to a scan: no index yet.
    pub searches_unindexed: u64,
    /// Indexer jobs finished (an index built or brought up to date, or found so).
    pub jobs: u64,
    /// Indexes deleted after a failure.
    pub failures: u64,
    /// Messages added to an index by the indexer.
    pub added_in_background: u64,
    /// Messages added to an index inside a search.
    pub added_in_search: u64,
}

#[derive(Default)]
struct Counters {
    searches_indexed: AtomicU64,
    searches_partial: AtomicU64,
    searches_unindexed: AtomicU64,
    jobs: AtomicU64,
    failures: AtomicU64,
    added_in_background: AtomicU64,
    added_in_search: AtomicU64,
}

type Slot = Arc<tokio::sync::Mutex<Option<TextIndex>>>;
type Guard = tokio::sync::OwnedMutexGuard<Option<TextIndex>>;

/// A mailbox whose index the indexer is to build or bring up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Job {
    account: AccountId,
    mailbox: MailboxId,
    /// Build one when there is none (a search asked, or new mail came with
    /// [`TextIndexOptions::index_new_mail`]); otherwise only an index already on
    /// disk is brought up to date.
    create: bool,
    /// Queued after changes to the mailbox: an index holding its newest message is
    /// left alone (a search's job, which may lack older messages, is not).
    after_change: bool,
}

/// `[search]`: how the node keeps its text indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextIndexOptions {
    /// Build a mailbox's index a little after mail arrives in it (as Dovecot's
    /// `fts_autoindex` and Stalwart do), so even its first search reads an index.
    /// Off: an index is built only after a mailbox's first search, which scans.
    /// Either way an index this node has is kept up to date after new mail.
    pub index_new_mail: bool,
}

impl Default for TextIndexOptions {
    fn default() -> TextIndexOptions {
        TextIndexOptions {
            index_new_mail: true,
        }
    }
}

/// The nice value of the thread that adds messages during a build: under load
/// deliveries and sessions come first (a nice-10 thread gets about a tenth of a
/// contended core), while an idle machine builds at full speed.
const INDEXER_NICE: i32 = 10;

/// The indexer's work.
#[derive(Default)]
struct Jobs {
    queue: VecDeque<Job>,
    /// Changed mailboxes waiting out [`DEBOUNCE`]: (account, first change, last).
    changed: HashMap<MailboxId, (AccountId, Instant, Instant)>,
    /// The mailbox of the job running, if any.
    running: Option<MailboxId>,
    /// The indexes the indexer is adding many messages to: searches use what it
    /// has committed and add nothing.
    building: HashSet<(MailboxId, u32)>,
}

/// When a mailbox changed first at `first` and last at `last` is due.
fn due(debounce: Duration, first: Instant, last: Instant) -> Instant {
    (last + debounce).min(first + MAX_DEBOUNCE.max(debounce))
}

/// The open text indexes of this node, and its indexer's work.
pub(crate) struct TextIndexes {
    dir: PathBuf,
    open: Mutex<HashMap<(MailboxId, u32), (Slot, Instant)>>,
    jobs: Mutex<Jobs>,
    wake: tokio::sync::Notify,
    counters: Counters,
    /// [`DEBOUNCE`] and [`IN_SEARCH_ADDS`], but for tests.
    debounce: Duration,
    in_search_adds: usize,
    options: TextIndexOptions,
    /// The low-priority thread a build adds messages on, started with the first.
    builder: std::sync::OnceLock<Builder>,
}

impl TextIndexes {
    pub(crate) fn new(dir: PathBuf, options: TextIndexOptions) -> TextIndexes {
        TextIndexes {
            dir,
            open: Mutex::new(HashMap::new()),
            jobs: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            counters: Counters::default(),
            debounce: DEBOUNCE,
            in_search_adds: IN_SEARCH_ADDS,
            options,
            builder: std::sync::OnceLock::new(),
        }
    }

    fn builder(&self) -> &Builder {
        self.builder.get_or_init(Builder::start)
    }

    fn path(&self, account: AccountId, mailbox: MailboxId, uidvalidity: u32) -> PathBuf {
        self.dir
            .join(account.0.to_string())
            .join(format!("{}-{uidvalidity}", mailbox.0))
    }

    fn slot(&self, mailbox: MailboxId, uidvalidity: u32) -> Slot {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some((slot, used)) = open.get_mut(&(mailbox, uidvalidity)) {
            *used = now;
            return slot.clone();
        }
        if open.len() >= MAX_OPEN {
            // Only an index nobody is using is closed: two values over one directory
            // would fight over its writer lock.
            let idle = open
                .iter()
                .filter(|(_, (slot, _))| Arc::strong_count(slot) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| *key);
            if let Some(key) = idle {
                open.remove(&key);
            }
        }
        let slot = Slot::default();
        open.insert((mailbox, uidvalidity), (slot.clone(), now));
        slot
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job for its mailbox unless one is queued already (which then
    /// becomes a build if this one is).
    fn request(&self, job: Job) {
        let mut jobs = self.jobs();
        jobs.changed.remove(&job.mailbox);
        if let Some(queued) = jobs.queue.iter_mut().find(|j| j.mailbox == job.mailbox) {
            queued.create |= job.create;
            queued.after_change &= job.after_change;
            return;
        }
        if jobs.queue.len() + jobs.changed.len() >= MAX_WAITING {
            tracing::debug!(mailbox = job.mailbox.0, "text indexer queue full");
            return;
        }
        jobs.queue.push_back(job);
        drop(jobs);
        self.wake.notify_one();
    }

    /// Notes a change to `mailbox`: its index, if this node has one, is brought up
    /// to date once the mailbox has been quiet for [`DEBOUNCE`].
    fn changed(&self, account: AccountId, mailbox: MailboxId) {
        let now = Instant::now();
        let mut jobs = self.jobs();
        if let Some((_, _, last)) = jobs.changed.get_mut(&mailbox) {
            *last = now;
        } else if jobs.queue.len() + jobs.changed.len() < MAX_WAITING {
            jobs.changed.insert(mailbox, (account, now, now));
        }
    }

    /// When the first debounced mailbox is due.
    fn next_due(&self) -> Option<Instant> {
        let jobs = self.jobs();
        jobs.changed
            .values()
            .map(|(_, f, l)| due(self.debounce, *f, *l))
            .min()
    }

    /// Queues the debounced mailboxes that are due.
    fn queue_due(&self) {
        let now = Instant::now();
        let ready: Vec<(MailboxId, AccountId)> = self
            .jobs()
            .changed
            .iter()
            .filter(|(_, (_, f, l))| due(self.debounce, *f, *l) <= now)
            .map(|(mailbox, (account, _, _))| (*mailbox, *account))
            .collect();
        for (mailbox, account) in ready {
            self.request(Job {
                account,
                mailbox,
                create: self.options.index_new_mail,
                after_change: true,
            });
        }
    }

    /// Takes the next job, marking it running.
    fn next_job(&self) -> Option<Job> {
        let mut jobs = self.jobs();
        let job = jobs.queue.pop_front()?;
        jobs.running = Some(job.mailbox);
        Some(job)
    }

    /// Mailboxes queued, running or waiting out the debounce.
    fn pending(&self) -> usize {
        let jobs = self.jobs();
        jobs.queue.len() + jobs.changed.len() + usize::from(jobs.running.is_some())
    }

    fn is_building(&self, mailbox: MailboxId, uidvalidity: u32) -> bool {
        self.jobs().building.contains(&(mailbox, uidvalidity))
    }

    /// Whether this node has an index of `mailbox` on disk, under any UIDVALIDITY.
    async fn has_index(&self, account: AccountId, mailbox: MailboxId) -> bool {
        let prefix = format!("{}-", mailbox.0);
        let Ok(mut entries) = tokio::fs::read_dir(self.dir.join(account.0.to_string())).await
        else {
            return false;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                return true;
            }
        }
        false
    }

    fn stats(&self) -> TextIndexStats {
        let c = &self.counters;
        TextIndexStats {
            searches_indexed: c.searches_indexed.load(Ordering::Relaxed),
            searches_partial: c.searches_partial.load(Ordering::Relaxed),
            searches_unindexed: c.searches_unindexed.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            added_in_background: c.added_in_background.load(Ordering::Relaxed),
            added_in_search: c.added_in_search.load(Ordering::Relaxed),
        }
    }

    /// A search left to a scan.
    fn unindexed_search(&self) {
        self.counters
            .searches_unindexed
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!("evermail_text_index_searches_total", "index" => "none").increment(1);
    }

    /// Deletes the index after `error` (it is a cache), closing it first.
    async fn discard(&self, shared: &Slot, path: PathBuf, error: &Failure) {
        tracing::warn!(path = %path.display(), %error, "text index failed; deleting it");
        metrics::counter!("evermail_text_index_failures_total").increment(1);
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        // Dropping the value closes the index before its files go.
        *shared.lock().await = None;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path)).await;
    }

    /// Sets [`DEBOUNCE`] and [`IN_SEARCH_ADDS`] for a test.
    #[cfg(test)]
    fn with_limits(mut self, debounce: Duration, in_search_adds: usize) -> TextIndexes {
        self.debounce = debounce;
        self.in_search_adds = in_search_adds;
        self
    }
}

/// Marks an index as being built by the indexer while it lives.
struct Building<'a> {
    indexes: &'a TextIndexes,
    key: (MailboxId, u32),
}

impl<'a> Building<'a> {
    fn start(indexes: &'a TextIndexes, key: (MailboxId, u32)) -> Building<'a> {
        indexes.jobs().building.insert(key);
        Building { indexes, key }
    }
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.indexes.jobs().building.remove(&self.key);
    }
}

/// What an index lacks of `view`, and what it holds that the view shows expunged.
struct Delta {
    gone: Vec<u32>,
    missing: Vec<(Uid, BlobId)>,
}

/// `view` must be in UID order. One walk over the view and the index's UIDs.
fn delta(index: &TextIndex, view: &[(Uid, BlobId)]) -> Delta {
    // A UID below the view's largest that the view lacks was expunged before the
    // view was taken (UIDs are handed out in commit order); one above it may be a
    // delivery this view has not seen yet, and stays.
    let (mut gone, mut missing) = (Vec::new(), Vec::new());
    let mut held = index.uids().iter().copied().peekable();
    for &(uid, blob) in view {
        let uid_n = uid.get();
        while let Some(h) = held.next_if(|h| *h < uid_n) {
            gone.push(h);
        }
        if held.next_if_eq(&uid_n).is_none() {
            missing.push((uid, blob));
        }
    }
    Delta { gone, missing }
}

/// Whether `view` is in strictly ascending UID order, as sessions keep it.
fn in_uid_order(view: &[(Uid, BlobId)]) -> bool {
    view.windows(2).all(|w| w[0].0 < w[1].0)
}

fn sort_view(mut view: Vec<(Uid, BlobId)>) -> Vec<(Uid, BlobId)> {
    if !in_uid_order(&view) {
        view.sort_unstable_by_key(|(uid, _)| *uid);
        view.dedup_by_key(|(uid, _)| *uid);
    }
    view
}

impl Mailstore {
    /// Keeps a text index per mailbox under `dir` (a node's `DATA/index`), used by
    /// [`Mailstore::search_text`] and built by [`Mailstore::run_text_indexer`]. Call
    /// once, before the mail store is shared; a second call changes nothing.
    pub fn enable_text_index(&self, dir: PathBuf, options: TextIndexOptions) {
        let _ = self.inner.text_indexes.set(TextIndexes::new(dir, options));
    }

    /// How the text indexes have served so far (all zero without them).
    pub fn text_index_stats(&self) -> TextIndexStats {
        self.inner
            .text_indexes
            .get()
            .map(TextIndexes::stats)
            .unwrap_or_default()
    }

    /// The node's indexer: builds the indexes searches asked for and brings those
    /// this node has up to date after new mail, one mailbox at a time. Runs until
    /// the mail store's change channel closes; returns at once without text indexes.
    /// Without it running, searches do without an index where there is none.
    pub async fn run_text_indexer(&self) {
        let Some(indexes) = self.inner.text_indexes.get() else {
            return;
        };
        let mut changes = self.subscribe();
        let mut running: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            metrics::gauge!("evermail_text_index_pending").set(indexes.pending() as f64);
            if running.is_none()
                && let Some(job) = indexes.next_job()
            {
                let me = self.clone();
                running = Some(tokio::spawn(async move { me.index_job(job).await }));
            }
            let next = indexes.next_due();
            let until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => indexes.changed(change.account, change.mailbox),
                    // Missed changes: their indexes catch up at the next search.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                () = indexes.wake.notified() => {}
                () = tokio::time::sleep_until(until.into()), if next.is_some() => indexes.queue_due(),
                done = async { running.as_mut().expect("checked").await }, if running.is_some() => {
                    running = None;
                    indexes.jobs().running = None;
                    if let Err(error) = done {
                        tracing::error!(%error, "text indexer job failed");
                    }
                }
            }
        }
    }

    /// Waits until the indexer has no job queued or running (for tests and tools);
    /// mailboxes waiting out the debounce after new mail are not waited for.
    pub async fn text_indexer_idle(&self) {
        let Some(indexes) = self.inner.text_indexes.get() else {
            return;
        };
        loop {
            {
                let jobs = indexes.jobs();
                if jobs.queue.is_empty() && jobs.running.is_none() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One indexer job; what fails deletes the index and is logged.
    async fn index_job(&self, job: Job) {
        let Some(indexes) = self.inner.text_indexes.get() else {
            return;
        };
        if !job.create && !indexes.has_index(job.account, job.mailbox).await {
            return;
        }
        let record = match self.mailbox(job.account, job.mailbox).await {
            Ok(record) => record,
            // Deleted: the sweep removes its index.
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(error) => {
                tracing::warn!(mailbox = job.mailbox.0, %error, "text indexer cannot read the mailbox");
                return;
            }
        };
        let uidvalidity = record.uidvalidity.0.get();
        let path = indexes.path(job.account, job.mailbox, uidvalidity);
        if !job.create && !path.join("meta.json").exists() {
            return;
        }
        let shared = indexes.slot(job.mailbox, uidvalidity);
        let started = Instant::now();
        let key = (job.mailbox, uidvalidity);
        let uidnext = record.uidnext.get();
        match self
            .bring_up_to_date(indexes, &shared, &path, key, job, uidnext)
            .await
        {
            Ok(added) => {
                let counters = &indexes.counters;
                counters.jobs.fetch_add(1, Ordering::Relaxed);
                counters
                    .added_in_background
                    .fetch_add(added as u64, Ordering::Relaxed);
                if added >= 1_000 {
                    tracing::info!(
                        mailbox = job.mailbox.0,
                        added,
                        seconds = started.elapsed().as_secs_f64(),
                        "text index built"
                    );
                }
            }
            Err(error) => indexes.discard(&shared, path, &error).await,
        }
    }

    /// Brings the index in `shared` up to date with the mailbox: a few missing
    /// messages are added holding its lock, as a search would; many are added with
    /// the index marked as building, taking the lock per [`ADD_CHUNK`], so searches
    /// meanwhile wait little and use what is committed. Returns how many were added.
    async fn bring_up_to_date(
        &self,
        indexes: &TextIndexes,
        shared: &Slot,
        path: &Path,
        key: (MailboxId, u32),
        job: Job,
        uidnext: u32,
    ) -> Result<usize, Failure> {
        let mut slot = shared.clone().lock_owned().await;
        if slot.as_ref().is_some_and(|index| !index.exists()) {
            *slot = None;
        }
        if slot.is_none() {
            if !job.create && !path.join("meta.json").exists() {
                return Ok(0);
            }
            let open = path.to_path_buf();
            *slot = Some(blocking(move || TextIndex::open(&open)).await?);
        }
        // After new mail only: expunged messages cost a scan nothing (the index
        // answers for the view's messages only) and a search removes them.
        let newest = slot.as_ref().and_then(|i| i.uids().last().copied());
        if (!job.create || job.after_change)
            && newest.is_some_and(|uid| u64::from(uid) + 1 >= u64::from(uidnext))
        {
            return Ok(0);
        }
        let messages = self.messages(job.account, job.mailbox).await?;
        let view = sort_view(messages.iter().map(|m| (m.uid, m.blob)).collect());
        drop(messages);
        let Updated {
            slot,
            added,
            behind,
            ..
        } = self.update(slot, &view, indexes.in_search_adds).await?;
        if behind.is_empty() {
            return Ok(added);
        }
        // Marked before the lock goes, so no search starts adding them itself.
        let _building = Building::start(indexes, key);
        drop(slot);
        let (mut added, mut since_commit) = (0, 0);
        for chunk in behind.chunks(ADD_CHUNK) {
            let (readable, _) = self.read_bodies(chunk).await;
            let mut slot = shared.clone().lock_owned().await;
            if !slot.as_ref().is_some_and(TextIndex::exists) {
                return Err(Failure::Gone);
            }
            added += readable.len();
            since_commit += readable.len();
            let commit = since_commit >= COMMIT_EVERY;
            slot = indexes
                .builder()
                .run(move || add_all(slot, readable, commit))
                .await?;
            drop(slot);
            if commit {
                since_commit = 0;
            }
        }
        let slot = shared.clone().lock_owned().await;
        if !slot.as_ref().is_some_and(TextIndex::exists) {
            return Err(Failure::Gone);
        }
        indexes
            .builder()
            .run(move || add_all(slot, Vec::new(), true))
            .await?;
        metrics::counter!("evermail_text_index_added_total").increment(added as u64);
        Ok(added)
    }

    /// Removes the index directories of mailboxes that are gone or were recreated
    /// under another UIDVALIDITY, whichever node deleted them: the index is keyed by
    /// mailbox and UIDVALIDITY, so such a directory would never be used again and
    /// would stay on disk for good. An index some search holds open is left for the
    /// next sweep. Returns how many directories were removed.
    pub async fn sweep_text_indexes(&self) -> Result<u64, MailError> {
        let Some(indexes) = self.inner.text_indexes.get() else {
            return Ok(0);
        };
        let mut removed = 0;
        for (account_dir, mailbox, uidvalidity) in index_dirs(&indexes.dir).await {
            let current = self.inner.meta.mailbox(mailbox).await?;
            if current.is_some_and(|m| m.uidvalidity.0.get() == uidvalidity) {
                continue;
            }
            {
                let mut open = indexes.open.lock().unwrap_or_else(|e| e.into_inner());
                let in_use = open
                    .get(&(mailbox, uidvalidity))
                    .is_some_and(|(slot, _)| Arc::strong_count(slot) > 1);
                if in_use {
                    continue;
                }
                open.remove(&(mailbox, uidvalidity));
            }
            let path = account_dir.join(format!("{}-{uidvalidity}", mailbox.0));
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale text index");
                    continue;
                }
            }
            // The account's directory goes with its last index; one a search is
            // creating an index in right now is not empty, or is made again.
            let _ = tokio::fs::remove_dir(&account_dir).await;
        }
        if removed > 0 {
            metrics::counter!("evermail_text_index_swept_total").increment(removed);
        }
        Ok(removed)
    }

    /// Evaluates text keys over `view` (a session's messages: UID and body, in UID
    /// order) with the mailbox's text index, after bringing it up to date with the
    /// view. `None` when this node keeps no index, has none of this mailbox yet (the
    /// indexer is asked to build it) or it is unavailable; the caller then scans, as
    /// it does for what [`TextHits`] leaves open.
    pub async fn search_text(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        view: &[(Uid, BlobId)],
        keys: &[TextKey],
    ) -> Result<Option<TextHits>, MailError> {
        let Some(indexes) = self.inner.text_indexes.get() else {
            return Ok(None);
        };
        let sorted;
        let view = if in_uid_order(view) {
            view
        } else {
            sorted = sort_view(view.to_vec());
            &sorted[..]
        };
        let record = self.mailbox(account, mailbox).await?;
        let uidvalidity = record.uidvalidity.0.get();
        let path = indexes.path(account, mailbox, uidvalidity);
        let shared = indexes.slot(mailbox, uidvalidity);
        // While building, the indexer takes the lock per few messages only.
        let mut slot = shared.clone().lock_owned().await;
        let building = indexes.is_building(mailbox, uidvalidity);
        if slot.as_ref().is_some_and(|index| !index.exists()) {
            *slot = None;
        }
        if slot.is_none() && building {
            // Deleted under the indexer, which notices and starts again.
            indexes.unindexed_search();
            return Ok(None);
        }
        if slot.is_none() && !path.join("meta.json").exists() {
            drop(slot);
            indexes.request(Job {
                account,
                mailbox,
                create: true,
                after_change: false,
            });
            indexes.unindexed_search();
            return Ok(None);
        }
        let open_path = path.clone();
        let result = async move {
            if slot.is_none() {
                let open = open_path;
                *slot = Some(blocking(move || TextIndex::open(&open)).await?);
            }
            let updated = if building {
                // The indexer is adding to it: what it has committed answers, the
                // caller scans the rest, and nothing is added or removed here.
                let index = slot.as_ref().expect("opened above");
                let unindexed = view
                    .iter()
                    .map(|(uid, _)| *uid)
                    .filter(|uid| !index.committed().contains(&uid.get()))
                    .collect();
                Updated {
                    slot,
                    unindexed,
                    added: 0,
                    behind: Vec::new(),
                }
            } else {
                self.update(slot, view, indexes.in_search_adds).await?
            };
            indexes
                .counters
                .added_in_search
                .fetch_add(updated.added as u64, Ordering::Relaxed);
            let slot = updated.slot;
            let mut unindexed = updated.unindexed;
            unindexed.extend(updated.behind.iter().map(|(uid, _)| *uid));
            // The view's UIDs, ascending, for a binary search per candidate.
            let in_view: Vec<u32> = view.iter().map(|(uid, _)| uid.get()).collect();
            let skip = unindexed.clone();
            let keys = keys.to_vec();
            // Tantivy reads its files here (and panics on some damage, which the
            // blocking task turns into an error).
            let matches = blocking(move || {
                let index = slot.as_ref().expect("opened above");
                let wanted = |uid: u32| {
                    in_view.binary_search(&uid).is_ok()
                        && Uid::new(uid).is_some_and(|u| !skip.contains(&u))
                };
                keys.iter()
                    .map(|key| matching(index, key, &wanted))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            Ok::<_, Failure>((TextHits { matches, unindexed }, !updated.behind.is_empty()))
        }
        .await;
        match result {
            Ok((hits, behind)) => {
                if behind {
                    indexes.request(Job {
                        account,
                        mailbox,
                        create: true,
                        after_change: false,
                    });
                }
                let (counter, label) = if building {
                    (&indexes.counters.searches_partial, "partial")
                } else {
                    (&indexes.counters.searches_indexed, "used")
                };
                counter.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("evermail_text_index_searches_total", "index" => label)
                    .increment(1);
                Ok(Some(hits))
            }
            Err(e) => {
                indexes.discard(&shared, path, &e).await;
                indexes.unindexed_search();
                Ok(None)
            }
        }
    }

    /// Removes from the index what the view shows expunged and adds the messages of
    /// `view` it lacks, when there are at most `limit`; commits.
    async fn update(
        &self,
        mut slot: Guard,
        view: &[(Uid, BlobId)],
        limit: usize,
    ) -> Result<Updated, Failure> {
        let index = slot.as_mut().expect("opened by the caller");
        let Delta { gone, missing } = delta(index, view);
        for uid in &gone {
            index.remove(*uid)?;
        }
        if missing.len() > limit {
            if !gone.is_empty() {
                slot = commit(slot).await?;
            }
            return Ok(Updated {
                slot,
                unindexed: BTreeSet::new(),
                added: 0,
                behind: missing,
            });
        }
        let mut unindexed = BTreeSet::new();
        let mut added = 0;
        for chunk in missing.chunks(ADD_CHUNK) {
            let (readable, failed) = self.read_bodies(chunk).await;
            unindexed.extend(failed);
            added += readable.len();
            slot = add_to(slot, readable, false).await?;
        }
        if !gone.is_empty() || !missing.is_empty() {
            slot = commit(slot).await?;
            metrics::counter!("evermail_text_index_added_total").increment(added as u64);
        }
        Ok(Updated {
            slot,
            unindexed,
            added,
            behind: Vec::new(),
        })
    }

    /// The bodies of `chunk`, and the UIDs of those that could not be read or are
    /// larger than [`MAX_INDEXED_BYTES`] (those are left to the caller's scan).
    async fn read_bodies(&self, chunk: &[(Uid, BlobId)]) -> (Vec<(Uid, Bytes)>, Vec<Uid>) {
        let bodies: Vec<_> = stream::iter(chunk.iter().copied())
            .map(|(uid, blob)| async move { (uid, self.indexable_body(blob).await) })
            .buffered(READ_AHEAD)
            .collect()
            .await;
        let mut readable = Vec::with_capacity(bodies.len());
        let mut failed = Vec::new();
        for (uid, body) in bodies {
            match body {
                Ok(body) => readable.push((uid, body)),
                Err(e) if e.kind() == ErrorKind::TooLarge => {
                    tracing::debug!(uid = uid.get(), "message too large to index");
                    failed.push(uid);
                }
                Err(e) => {
                    tracing::warn!(uid = uid.get(), error = %e, "message not indexed");
                    failed.push(uid);
                }
            }
        }
        (readable, failed)
    }
}

impl Mailstore {
    /// A body to index: read whole, so one over [`MAX_INDEXED_BYTES`] is refused
    /// (`TooLarge`) before it is read, rather than held in memory by the background
    /// indexer (up to [`READ_AHEAD`] at a time) while sessions are served.
    async fn indexable_body(&self, blob: BlobId) -> Result<Bytes, MailError> {
        let size = self.meta().blob(blob).await?.map(|b| b.size);
        if size.is_some_and(|size| size > MAX_INDEXED_BYTES) {
            return Err(MailError::new(
                ErrorKind::TooLarge,
                "message too large for the text index",
            ));
        }
        self.body(blob).await
    }
}

/// What [`Mailstore::update`] did.
struct Updated {
    slot: Guard,
    /// Messages that could not be read.
    unindexed: BTreeSet<Uid>,
    added: usize,
    /// The missing messages, when there were more than it may add.
    behind: Vec<(Uid, BlobId)>,
}

/// Parses and adds `readable` to the index in `slot`, and commits if asked.
async fn add_to(slot: Guard, readable: Vec<(Uid, Bytes)>, commit: bool) -> Result<Guard, Failure> {
    blocking(move || add_all(slot, readable, commit)).await
}

fn add_all(mut slot: Guard, readable: Vec<(Uid, Bytes)>, commit: bool) -> Result<Guard, FtsError> {
    let index = slot.as_mut().expect("opened by the caller");
    for (uid, body) in readable {
        let text = MessageText::parse(&body);
        let (headers, body) = text.searchable();
        index.add(IndexedText {
            uid: uid.get(),
            headers: headers.to_vec(),
            body: body.to_string(),
        })?;
    }
    if commit {
        index.commit()?;
    }
    Ok(slot)
}

type Work = Box<dyn FnOnce() + Send>;

/// One thread at [`INDEXER_NICE`] for a build's parsing and adding (tokio's blocking
/// pool is shared with the sessions' work, and a pooled thread cannot be given back
/// its priority without privileges). Tantivy's writer is created on it when a build
/// adds the first message, so the writer's own thread inherits its nice value too.
struct Builder {
    work: std::sync::mpsc::Sender<Work>,
}

impl Builder {
    fn start() -> Builder {
        let (work, queue) = std::sync::mpsc::channel::<Work>();
        let spawned = std::thread::Builder::new()
            .name("evermail-index".into())
            .spawn(move || {
                // On Linux the nice value is the calling thread's; threads it starts
                // inherit it. Failing to lower the priority costs only fairness.
                if let Err(error) = rustix::process::setpriority_process(None, INDEXER_NICE) {
                    tracing::debug!(%error, "text indexer keeps its priority");
                }
                for job in queue {
                    job();
                }
            });
        if let Err(error) = spawned {
            // Without the thread every run fails at once and the build is retried later.
            tracing::error!(%error, "cannot start the text indexer's thread");
        }
        Builder { work }
    }

    /// Runs `work` on the builder's thread; a panic there (tantivy panics on some
    /// damage) comes back as an error, as from the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, FtsError> + Send + 'static,
    ) -> Result<T, Failure> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Work = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = done.send(outcome);
        });
        if self.work.send(job).is_err() {
            return Err(Failure::Builder("the indexer's thread is gone"));
        }
        match result.await {
            Ok(Ok(outcome)) => Ok(outcome?),
            Ok(Err(_panic)) => Err(Failure::Builder("the indexer's thread panicked")),
            Err(_) => Err(Failure::Builder("the indexer's thread is gone")),
        }
    }
}

async fn commit(mut slot: Guard) -> Result<Guard, Failure> {
    blocking(move || {
        slot.as_mut().expect("opened by the caller").commit()?;
        Ok(slot)
    })
    .await
}

/// The UIDs in `in_view` whose text matches `key`, by the scan's rules.
fn matching(
    index: &TextIndex,
    key: &TextKey,
    wanted: &impl Fn(u32) -> bool,
) -> Result<Option<Vec<Uid>>, FtsError> {
    let (scope, needle) = match key {
        TextKey::Body(s) => (Scope::Body, s),
        TextKey::Text(s) => (Scope::Text, s),
        TextKey::Header(name, s) => (Scope::Header(name.to_lowercase()), s),
    };
    let Some(candidates) = index.candidates(&scope, needle, wanted)? else {
        return Ok(None);
    };
    Ok(Some(
        candidates
            .into_iter()
            .filter_map(|c| {
                let text = MessageText::from_searchable(c.headers, c.body);
                let found = match key {
                    TextKey::Body(s) => text.body_contains(s),
                    TextKey::Text(s) => text.text_contains(s),
                    TextKey::Header(name, s) => text.header_contains(name, s),
                };
                found.then(|| Uid::new(c.uid)).flatten()
            })
            .collect(),
    ))
}

/// Why the index could not answer; the search then goes on without it.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Index(#[from] FtsError),
    #[error("text index task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("text index deleted while it was being built")]
    Gone,
    #[error("text index build failed: {0}")]
    Builder(&'static str),
}

/// Every `<account>/<mailbox>-<uidvalidity>` directory under `dir`, with its
/// account directory; names of another shape are not ours and are left alone.
async fn index_dirs(dir: &std::path::Path) -> Vec<(PathBuf, MailboxId, u32)> {
    let mut found = Vec::new();
    let Ok(mut accounts) = tokio::fs::read_dir(dir).await else {
        return found;
    };
    while let Ok(Some(account)) = accounts.next_entry().await {
        let is_account = account
            .file_name()
            .to_str()
            .is_some_and(|name| name.parse::<i64>().is_ok());
        if !is_account {
            continue;
        }
        let Ok(mut mailboxes) = tokio::fs::read_dir(account.path()).await else {
            continue;
        };
        while let Ok(Some(entry)) = mailboxes.next_entry().await {
            let parsed = entry.file_name().to_str().and_then(|name| {
                let (mailbox, uidvalidity) = name.split_once('-')?;
                Some((
                    mailbox.parse::<i64>().ok()?,
                    uidvalidity.parse::<u32>().ok()?,
                ))
            });
            if let Some((mailbox, uidvalidity)) = parsed {
                found.push((account.path(), MailboxId(mailbox), uidvalidity));
            }
        }
    }
    found
}

/// Runs tantivy's blocking work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FtsError> + Send + 'static,
) -> Result<T, Failure> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

#[cfg(test)]
mod tests;
