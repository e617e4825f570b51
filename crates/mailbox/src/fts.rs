//! SEARCH BODY and TEXT through the node's text index (`evermail_fts`), a cache under
//! `DATA/index/<account>/<mailbox>-<uidvalidity>/` that is never the truth: built the
//! first time a mailbox is searched on this node, brought up to date from the
//! session's view before every search (messages it lacks are read and added, those
//! the view shows expunged removed), and deleted whenever it fails, to be rebuilt.
//!
//! The index only narrows: every candidate is checked with `MessageText`'s own rules
//! on the text the index stored, which is the text a scan would parse, so the answer
//! is exactly the scan's. What the index cannot answer (a string shorter than three
//! characters, a body that could not be read, an index that cannot be opened) is
//! left to the caller's scan.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use evermail_fts::{FtsError, IndexedText, Scope, TextIndex};
use evermail_types::{AccountId, BlobId, MailboxId, Uid};
use futures_util::{StreamExt, stream};

use crate::{MailError, Mailstore, MessageText};

/// How many indexes a node keeps open (each holds a few file handles and maps);
/// the least recently used one not in use is closed beyond that.
const MAX_OPEN: usize = 64;

/// Bodies read at once while indexing.
const READ_AHEAD: usize = 8;

/// Messages parsed and added per blocking task.
const ADD_CHUNK: usize = 64;

/// Messages added between commits while building, so an interrupted build keeps
/// most of its work.
const COMMIT_EVERY: usize = 5_000;

pub use evermail_fts::MIN_CHARS as MIN_INDEXED_CHARS;

/// A BODY or TEXT search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextKey {
    /// `BODY string`: the body text.
    Body(String),
    /// `TEXT string`: the header and the body text.
    Text(String),
}

/// What the index answered for a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextHits {
    /// For each key, in order: the UIDs of the view whose text matches it, ascending;
    /// `None` for a key the index cannot narrow (shorter than [`MIN_INDEXED_CHARS`]).
    pub matches: Vec<Option<Vec<Uid>>>,
    /// Messages of the view the index does not hold (their body could not be read):
    /// the caller judges these by reading them, as without the index.
    pub unindexed: BTreeSet<Uid>,
}

type Slot = Arc<tokio::sync::Mutex<Option<TextIndex>>>;

/// The open text indexes of this node.
pub(crate) struct TextIndexes {
    dir: PathBuf,
    open: Mutex<HashMap<(MailboxId, u32), (Slot, Instant)>>,
}

impl TextIndexes {
    pub(crate) fn new(dir: PathBuf) -> TextIndexes {
        TextIndexes {
            dir,
            open: Mutex::new(HashMap::new()),
        }
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
}

impl Mailstore {
    /// Keeps a text index per mailbox under `dir` (a node's `DATA/index`), used by
    /// [`Mailstore::search_text`]. Call once, before the mail store is shared; a
    /// second call changes nothing.
    pub fn enable_text_index(&self, dir: PathBuf) {
        let _ = self.inner.text_indexes.set(TextIndexes::new(dir));
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

    /// Evaluates BODY and TEXT keys over `view` (a session's messages: UID and body,
    /// in UID order) with the mailbox's text index, after bringing it up to date with
    /// the view. `None` when this node keeps no index or it is unavailable; the
    /// caller then scans, as it does for what [`TextHits`] leaves open.
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
        let record = self.mailbox(account, mailbox).await?;
        let uidvalidity = record.uidvalidity.0.get();
        let path = indexes.path(account, mailbox, uidvalidity);
        let shared = indexes.slot(mailbox, uidvalidity);
        let mut slot = shared.clone().lock_owned().await;
        let open_path = path.clone();
        let result = async move {
            if slot.as_ref().is_some_and(|index| !index.exists()) {
                *slot = None;
            }
            if slot.is_none() {
                let open = open_path;
                *slot = Some(blocking(move || TextIndex::open(&open)).await?);
            }
            let (guard, unindexed) = self.update(slot, view).await?;
            slot = guard;
            let in_view: BTreeSet<u32> = view.iter().map(|(uid, _)| uid.get()).collect();
            let keys = keys.to_vec();
            // Tantivy reads its files here (and panics on some damage, which the
            // blocking task turns into an error).
            let matches = blocking(move || {
                let index = slot.as_ref().expect("opened above");
                keys.iter()
                    .map(|key| matching(index, key, &in_view))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            Ok::<_, Failure>(TextHits { matches, unindexed })
        }
        .await;
        match result {
            Ok(hits) => Ok(Some(hits)),
            Err(e) => {
                tracing::warn!(error = %e, "text index failed; deleting it, searching without it");
                metrics::counter!("evermail_text_index_failures_total").increment(1);
                // Dropping the value closes the index before its files go.
                *shared.lock().await = None;
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path)).await;
                Ok(None)
            }
        }
    }

    /// Adds the messages of `view` the index lacks, removes those the view shows
    /// expunged, and commits. Returns the slot and the messages that could not be
    /// read.
    async fn update(
        &self,
        mut slot: tokio::sync::OwnedMutexGuard<Option<TextIndex>>,
        view: &[(Uid, BlobId)],
    ) -> Result<
        (
            tokio::sync::OwnedMutexGuard<Option<TextIndex>>,
            BTreeSet<Uid>,
        ),
        Failure,
    > {
        let index = slot.as_mut().expect("opened by the caller");
        // A UID below the view's largest that the view lacks was expunged before the
        // view was taken (UIDs are handed out in commit order); one above it may be
        // a delivery this view has not seen yet, and stays.
        let largest = view.last().map_or(0, |(uid, _)| uid.get());
        let in_view: BTreeSet<u32> = view.iter().map(|(uid, _)| uid.get()).collect();
        let gone: Vec<u32> = index
            .uids()
            .range(..largest)
            .filter(|uid| !in_view.contains(uid))
            .copied()
            .collect();
        for uid in &gone {
            index.remove(*uid)?;
        }
        let missing: Vec<(Uid, BlobId)> = view
            .iter()
            .filter(|(uid, _)| !index.uids().contains(&uid.get()))
            .copied()
            .collect();
        let started = Instant::now();
        let mut unindexed = BTreeSet::new();
        let mut since_commit = 0;
        for chunk in missing.chunks(ADD_CHUNK) {
            let bodies: Vec<_> = stream::iter(chunk.iter().copied())
                .map(|(uid, blob)| async move { (uid, self.body(blob).await) })
                .buffered(READ_AHEAD)
                .collect()
                .await;
            let mut readable = Vec::with_capacity(bodies.len());
            for (uid, body) in bodies {
                match body {
                    Ok(body) => readable.push((uid, body)),
                    Err(e) => {
                        tracing::warn!(uid = uid.get(), error = %e, "message not indexed");
                        unindexed.insert(uid);
                    }
                }
            }
            since_commit += readable.len();
            let commit = since_commit >= COMMIT_EVERY;
            slot = blocking(move || {
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
            })
            .await?;
            if commit {
                since_commit = 0;
            }
        }
        if !gone.is_empty() || !missing.is_empty() {
            slot = blocking(move || {
                slot.as_mut().expect("opened by the caller").commit()?;
                Ok(slot)
            })
            .await?;
            metrics::counter!("evermail_text_index_added_total")
                .increment((missing.len() - unindexed.len()) as u64);
            if missing.len() >= 1_000 {
                tracing::info!(
                    added = missing.len() - unindexed.len(),
                    removed = gone.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "text index updated"
                );
            }
        }
        Ok((slot, unindexed))
    }
}

/// The UIDs in `in_view` whose text matches `key`, by the scan's rules.
fn matching(
    index: &TextIndex,
    key: &TextKey,
    in_view: &BTreeSet<u32>,
) -> Result<Option<Vec<Uid>>, FtsError> {
    let (scope, needle) = match key {
        TextKey::Body(s) => (Scope::Body, s),
        TextKey::Text(s) => (Scope::Text, s),
    };
    let Some(candidates) = index.candidates(scope, needle, |uid| in_view.contains(&uid))? else {
        return Ok(None);
    };
    Ok(Some(
        candidates
            .into_iter()
            .filter_map(|c| {
                let text = MessageText::from_searchable(c.headers, c.body);
                let found = match scope {
                    Scope::Body => text.body_contains(needle),
                    Scope::Text => text.text_contains(needle),
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
}

/// Runs tantivy's blocking work off the async threads.
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

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FtsError> + Send + 'static,
) -> Result<T, Failure> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

#[cfg(test)]
mod tests;
