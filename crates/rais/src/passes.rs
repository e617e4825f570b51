//! The maintenance passes: repair (with drain), scrub and garbage collection.

use crate::Pace;
use evermail_blob::{BlobStore, CopyCheck, CopyProblem, StoreState, StoredCopy};
use evermail_meta::{BlobCopy, BlobLocation, CopyState, Meta, MetaError};
use evermail_types::BlobId;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

/// The youngest a body file no row records may be to count as orphaned: far longer
/// than any delivery takes between writing its body and committing its rows (LMTP
/// times out in minutes).
pub const MIN_ORPHAN_AGE_SECS: u64 = 3600;

/// How many blobs a repair pass works on at once.
const REPAIR_PARALLELISM: usize = 8;

/// How many copies a scrub checks at once.
const SCRUB_PARALLELISM: usize = 8;

/// How many rows a pass asks the metadata store for at once.
const PAGE: u32 = 256;

/// Bodies of this size and more are repaired through a spool file, when the
/// maintainer has a spool directory: read by streaming into it, verified, and copied
/// from it by streaming, never held in memory whole (eight repairs at once of 50 MB
/// bodies would otherwise hold 400 MB). The same bound as the mail model's reads.
pub const SPOOL_REPAIR_BYTES: u64 = 1024 * 1024;

/// Told how a pass advances; the admin commands draw a progress bar from it.
pub trait Progress: Send + Sync {
    /// The amount of work ahead, when known.
    fn total(&self, _items: u64) {}
    /// One item (a blob or a copy) done, with the bytes it moved or read.
    fn advance(&self, _bytes: u64) {}
}

impl Progress for () {}

/// What a repair pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Blobs found with fewer good copies than `replicas`.
    pub under_replicated: u64,
    /// New copies written and recorded.
    pub copies_added: u64,
    pub bytes_copied: u64,
    /// Blobs that could not get all their copies (no good source, too few writable
    /// stores); they stay in the queue for the next pass.
    pub still_under_replicated: u64,
    /// Blobs with no readable good copy anywhere.
    pub lost: u64,
    /// Copies deleted from draining stores after their blob had enough elsewhere.
    pub drained: u64,
    /// Bad (missing or corrupt) copies dropped after their blob was repaired.
    pub bad_copies_dropped: u64,
}

impl RepairReport {
    fn add(&mut self, other: &RepairReport) {
        self.under_replicated += other.under_replicated;
        self.copies_added += other.copies_added;
        self.bytes_copied += other.bytes_copied;
        self.still_under_replicated += other.still_under_replicated;
        self.lost += other.lost;
        self.drained += other.drained;
        self.bad_copies_dropped += other.bad_copies_dropped;
    }
}

/// What a scrub pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub checked: u64,
    pub bytes: u64,
    pub ok: u64,
    pub missing: u64,
    pub corrupt: u64,
    /// Copies on stores that could not be asked (down, not configured here).
    pub unknown: u64,
}

/// What a garbage collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs newly found unreferenced (their grace period starts now).
    pub newly_unreferenced: u64,
    /// Blobs whose copies were deleted and rows dropped.
    pub deleted: u64,
    /// Blobs whose deletion must be retried (a store did not answer).
    pub deferred: u64,
    /// Body files no location row records (from a delivery that failed or crashed
    /// between writing and committing) deleted after the grace period.
    pub orphans_deleted: u64,
}

/// Runs the maintenance passes over one metadata store and one blob store.
#[derive(Clone)]
pub struct Maintainer {
    meta: Meta,
    blobs: BlobStore,
    pace: Arc<Pace>,
    /// The orphans the last collection deleted (blob, store, key), whose rows the next
    /// one reads again (see [`Maintainer::collect_orphans`]).
    deleted_orphans: Arc<std::sync::Mutex<Vec<(BlobId, String, String)>>>,
    /// Where large bodies are spooled during repair ([`SPOOL_REPAIR_BYTES`]).
    spool_dir: Option<Arc<std::path::PathBuf>>,
}

/// A verified body repair copies from.
enum Source {
    Memory(bytes::Bytes),
    Spool(evermail_spool::Spool),
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn stored(copy: &BlobCopy) -> StoredCopy {
    StoredCopy {
        store: copy.store.clone(),
        key: copy.key.clone(),
    }
}

impl Maintainer {
    pub fn new(meta: Meta, blobs: BlobStore, pace: Arc<Pace>) -> Maintainer {
        Maintainer {
            meta,
            blobs,
            pace,
            deleted_orphans: Arc::default(),
            spool_dir: None,
        }
    }

    /// Repairs bodies of [`SPOOL_REPAIR_BYTES`] and more through spool files in `dir`
    /// (which must exist), by streaming; without it every body is read into memory.
    pub fn with_spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Maintainer {
        self.spool_dir = Some(Arc::new(dir.into()));
        self
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The ids of the stores in one of `states`.
    fn stores_in(&self, states: &[StoreState]) -> Vec<String> {
        self.blobs
            .stores()
            .iter()
            .filter(|s| states.contains(&s.state()))
            .map(|s| s.id().to_string())
            .collect()
    }

    /// Restores the replica count of every blob, most endangered first, then deletes
    /// copies on draining stores whose blobs have enough good copies elsewhere.
    pub async fn repair(&self, progress: &dyn Progress) -> Result<RepairReport, MetaError> {
        let replicas = self.blobs.replicas() as u32;
        // Copies on these stores do not count toward a blob's replicas: a draining
        // store is being emptied, and one marked down by the operator may never come
        // back (its copies are still read, as a last resort, and kept).
        let uncounted = self.stores_in(&[StoreState::Draining, StoreState::Down]);
        let draining = self.stores_in(&[StoreState::Draining]);
        let mut report = RepairReport::default();
        // Blobs already tried in this pass: one that cannot be repaired now stays at
        // the head of the queue, and must not be tried again and again.
        let mut tried: HashSet<BlobId> = HashSet::new();
        let first = self
            .meta
            .under_replicated(replicas, &uncounted, u32::MAX)
            .await?;
        progress.total(first.len() as u64);
        metrics::gauge!("evermail_rais_under_replicated_blobs").set(first.len() as f64);
        loop {
            let queue = self
                .meta
                .under_replicated(replicas, &uncounted, PAGE + tried.len() as u32)
                .await?;
            let fresh: Vec<_> = queue
                .into_iter()
                .filter(|u| !tried.contains(&u.blob))
                .collect();
            if fresh.is_empty() {
                break;
            }
            // Several blobs at once: each repair is a read, a durable write and a
            // metadata commit, and concurrent ones share fsyncs (the fs store's
            // directory sync, SQLite's group commit).
            let mut repairs = futures_util::stream::iter(fresh)
                .map(|blob| {
                    tried.insert(blob.blob);
                    let uncounted = &uncounted;
                    async move {
                        let mut one = RepairReport {
                            under_replicated: 1,
                            ..RepairReport::default()
                        };
                        let done = self
                            .repair_one(blob.blob, blob.size, replicas, uncounted, &mut one)
                            .await;
                        (blob.size, one, done)
                    }
                })
                .buffer_unordered(REPAIR_PARALLELISM);
            while let Some((size, one, done)) = repairs.next().await {
                report.add(&one);
                progress.advance(size);
                done?;
            }
        }
        self.drain(replicas, &draining, &uncounted, &mut report)
            .await?;
        let left = self
            .meta
            .under_replicated(replicas, &uncounted, u32::MAX)
            .await?
            .len();
        metrics::gauge!("evermail_rais_under_replicated_blobs").set(left as f64);
        metrics::gauge!("evermail_rais_lost_blobs").set(report.lost as f64);
        Ok(report)
    }

    async fn repair_one(
        &self,
        id: BlobId,
        size: u64,
        replicas: u32,
        uncounted: &[String],
        report: &mut RepairReport,
    ) -> Result<(), MetaError> {
        let copies = self.meta.blob_copies(id).await?;
        let sources: Vec<StoredCopy> = copies
            .iter()
            .filter(|c| c.state == CopyState::Ok)
            .map(stored)
            .collect();
        let good = copies
            .iter()
            .filter(|c| c.state == CopyState::Ok && !uncounted.contains(&c.store))
            .count() as u32;
        if good >= replicas {
            return Ok(());
        }
        self.pace.take(size).await;
        let (body, bad) = match &self.spool_dir {
            Some(dir) if size >= SPOOL_REPAIR_BYTES => {
                let (spool, bad) = self.blobs.get_to_spool(id, &sources, dir).await;
                (spool.map(Source::Spool), bad)
            }
            _ => {
                let (body, bad) = self.blobs.get_checked(id, &sources).await;
                (body.map(Source::Memory), bad)
            }
        };
        self.mark_bad(id, &bad).await;
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                if e.kind() == evermail_blob::ErrorKind::Lost && bad.len() == sources.len() {
                    tracing::error!(blob = %id, error = %e, "no good copy of a body is left");
                    report.lost += 1;
                } else {
                    tracing::warn!(blob = %id, error = %e, "no copy could be read for repair; retrying later");
                }
                report.still_under_replicated += 1;
                return Ok(());
            }
        };
        let have: Vec<String> = sources
            .iter()
            .filter(|c| !bad.iter().any(|b| b.copy == **c))
            .map(|c| c.store.clone())
            .collect();
        // A corrupt object is never served, so it is worth nothing; delete it now, or a
        // new copy placed on the same store would find a file of the right size and
        // keep it.
        let corrupt = copies
            .iter()
            .filter(|c| c.state == CopyState::Corrupt)
            .map(stored)
            .chain(
                bad.iter()
                    .filter(|b| b.problem == CopyProblem::Corrupt)
                    .map(|b| b.copy.clone()),
            );
        for copy in corrupt {
            if let Err(e) = self.blobs.delete_copy(&copy).await {
                tracing::warn!(blob = %id, store = %copy.store, error = %e, "could not delete a corrupt copy");
            }
        }
        let wanted = (replicas - good) as usize;
        self.pace.take(size * wanted as u64).await;
        let written = match body {
            Source::Memory(body) => self.blobs.replicate(id, body, &have, wanted).await,
            Source::Spool(spool) => {
                self.blobs
                    .replicate_file(id, spool.path(), &have, wanted)
                    .await
            }
        };
        let mut added = 0;
        for copy in written {
            let location = BlobLocation {
                store: copy.store.clone(),
                key: copy.key.clone(),
            };
            if self.meta.add_copy(id, location).await? {
                added += 1;
            } else {
                // The blob was doomed by garbage collection meanwhile: the copy is
                // nobody's, so take it back.
                let _ = self.blobs.delete_copy(&copy).await;
            }
        }
        report.copies_added += added;
        report.bytes_copied += size * added;
        metrics::counter!("evermail_rais_copies_repaired_total").increment(added);
        if (added as usize) < wanted {
            report.still_under_replicated += 1;
            tracing::warn!(blob = %id, added, wanted, "could not restore every copy; too few writable stores");
            return Ok(());
        }
        // Enough good copies now: drop the rows (and any objects) of bad copies.
        for copy in copies.iter().filter(|c| c.state != CopyState::Ok) {
            let copy_written_again = self
                .meta
                .blob_copies(id)
                .await?
                .iter()
                .any(|c| c.store == copy.store && c.state == CopyState::Ok);
            if copy_written_again {
                continue;
            }
            if self.blobs.delete_copy(&stored(copy)).await.is_ok() {
                self.meta.remove_copy(id, &copy.store).await?;
                report.bad_copies_dropped += 1;
            }
        }
        Ok(())
    }

    async fn mark_bad(&self, id: BlobId, bad: &[evermail_blob::BadCopy]) {
        for b in bad {
            let state = match b.problem {
                CopyProblem::Missing => CopyState::Missing,
                CopyProblem::Corrupt => CopyState::Corrupt,
            };
            if let Err(e) = self
                .meta
                .set_copy_state(id, &b.copy.store, state, None)
                .await
            {
                tracing::warn!(blob = %id, store = %b.copy.store, error = %e, "could not mark a bad copy");
            }
        }
    }

    /// Deletes copies on draining stores whose blob has `replicas` good copies on
    /// counted stores, so the store empties and can be removed.
    async fn drain(
        &self,
        replicas: u32,
        draining: &[String],
        uncounted: &[String],
        report: &mut RepairReport,
    ) -> Result<(), MetaError> {
        if draining.is_empty() {
            return Ok(());
        }
        let mut after = None;
        loop {
            let page = self.meta.list_copies(after.clone(), PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some((last.blob, last.copy.store.clone()));
            for listed in page.iter().filter(|l| draining.contains(&l.copy.store)) {
                let elsewhere: Vec<BlobCopy> = self
                    .meta
                    .blob_copies(listed.blob)
                    .await?
                    .into_iter()
                    .filter(|c| c.state == CopyState::Ok && !uncounted.contains(&c.store))
                    .collect();
                if (elsewhere.len() as u32) < replicas {
                    continue;
                }
                // The rows may be older than the last scrub: before deleting what may
                // be the last real copy, make sure the others are there.
                let mut present = 0;
                for copy in &elsewhere {
                    self.pace.take(0).await;
                    let check = self
                        .blobs
                        .check_copy(listed.blob, listed.size, &stored(copy), false)
                        .await;
                    match check {
                        CopyCheck::Ok => present += 1,
                        CopyCheck::Missing | CopyCheck::Corrupt => {
                            let state = if check == CopyCheck::Missing {
                                CopyState::Missing
                            } else {
                                CopyState::Corrupt
                            };
                            self.meta
                                .set_copy_state(listed.blob, &copy.store, state, None)
                                .await?;
                        }
                        CopyCheck::Unknown(_) => {}
                    }
                }
                if present < replicas {
                    continue;
                }
                self.pace.take(0).await;
                // The row goes first: a copy with a row but no object would be found
                // missing, one with an object but no row is merely unused space.
                self.meta
                    .remove_copy(listed.blob, &listed.copy.store)
                    .await?;
                if let Err(e) = self.blobs.delete_copy(&stored(&listed.copy)).await {
                    tracing::warn!(blob = %listed.blob, store = %listed.copy.store, error = %e, "could not delete a drained copy; its space stays used");
                }
                report.drained += 1;
                metrics::counter!("evermail_rais_copies_drained_total").increment(1);
            }
        }
        Ok(())
    }

    /// Re-checks every copy of every live blob and records what it found. `deep`
    /// reads and hashes each copy; otherwise only existence and size are checked.
    pub async fn scrub(
        &self,
        deep: bool,
        progress: &dyn Progress,
    ) -> Result<ScrubReport, MetaError> {
        let kind = if deep { "deep" } else { "light" };
        let mut report = ScrubReport::default();
        let mut after = None;
        loop {
            let page = self.meta.list_copies(after.clone(), PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some((last.blob, last.copy.store.clone()));
            // Several copies at once, so reads overlap and the state updates share
            // commits.
            let mut checks = futures_util::stream::iter(page)
                .map(|listed| async move {
                    self.pace.take(if deep { listed.size } else { 0 }).await;
                    let check = self
                        .blobs
                        .check_copy(listed.blob, listed.size, &stored(&listed.copy), deep)
                        .await;
                    let state = match check {
                        CopyCheck::Ok => Some(CopyState::Ok),
                        CopyCheck::Missing => Some(CopyState::Missing),
                        CopyCheck::Corrupt => Some(CopyState::Corrupt),
                        CopyCheck::Unknown(_) => None,
                    };
                    if let Some(state) = state {
                        if state != CopyState::Ok {
                            tracing::error!(blob = %listed.blob, store = %listed.copy.store, result = state.as_str(), "scrub found a bad copy");
                        }
                        let verified = (state == CopyState::Ok).then(now);
                        self.meta
                            .set_copy_state(listed.blob, &listed.copy.store, state, verified)
                            .await?;
                    }
                    Ok::<_, MetaError>((state, listed.size))
                })
                .buffer_unordered(SCRUB_PARALLELISM);
            while let Some(checked) = checks.next().await {
                let (state, size) = checked?;
                report.checked += 1;
                let label = match state {
                    Some(CopyState::Ok) => {
                        report.ok += 1;
                        "ok"
                    }
                    Some(CopyState::Missing) => {
                        report.missing += 1;
                        "missing"
                    }
                    Some(CopyState::Corrupt) => {
                        report.corrupt += 1;
                        "corrupt"
                    }
                    None => {
                        report.unknown += 1;
                        "unknown"
                    }
                };
                let bytes = if deep { size } else { 0 };
                report.bytes += bytes;
                metrics::counter!("evermail_rais_scrub_checked_total", "kind" => kind, "result" => label)
                    .increment(1);
                progress.advance(bytes);
            }
            metrics::gauge!("evermail_rais_scrub_pass_checked", "kind" => kind)
                .set(report.checked as f64);
        }
        metrics::counter!("evermail_rais_scrub_passes_total", "kind" => kind).increment(1);
        Ok(report)
    }

    /// Deletes the bodies that no message has referenced for `grace_secs`.
    ///
    /// Safe against a delivery of the same content racing it: the metadata store dooms a
    /// blob in the transaction that checks it is unreferenced, and refuses a delivery
    /// that would reference a doomed blob (the MTA retries it later, and it stores the
    /// body afresh); copies are deleted only after the doom, and the rows only after the
    /// copies.
    pub async fn collect_garbage(&self, grace_secs: u64) -> Result<GcReport, MetaError> {
        let mut report = GcReport::default();
        let now = now();
        report.newly_unreferenced = self.meta.mark_unreferenced(now).await?;
        let cutoff = now.saturating_sub(grace_secs as i64);
        let mut deferred: HashSet<BlobId> = HashSet::new();
        loop {
            let doomed = self
                .meta
                .doom_unreferenced(cutoff, PAGE + deferred.len() as u32)
                .await?;
            let fresh: Vec<_> = doomed
                .into_iter()
                .filter(|d| !deferred.contains(&d.blob))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for blob in fresh {
                let mut all_gone = true;
                for copy in &blob.copies {
                    self.pace.take(0).await;
                    if let Err(e) = self.blobs.delete_copy(&stored(copy)).await {
                        tracing::warn!(blob = %blob.blob, store = %copy.store, error = %e, "could not delete an unreferenced body; retrying later");
                        all_gone = false;
                    }
                }
                if all_gone {
                    self.meta.forget_blob(blob.blob).await?;
                    report.deleted += 1;
                    metrics::counter!("evermail_rais_gc_deleted_total").increment(1);
                } else {
                    deferred.insert(blob.blob);
                    report.deferred += 1;
                }
            }
        }
        report.orphans_deleted = self.collect_orphans(grace_secs).await?;
        Ok(report)
    }

    /// Deletes the body files this node wrote more than `grace_secs` ago that no
    /// location row records: what a delivery leaves when it fails (fewer than
    /// `min_replicas` copies, a refused commit) or crashes between writing and
    /// committing. Returns how many were deleted.
    ///
    /// The grace period is at least [`MIN_ORPHAN_AGE_SECS`], whatever is asked: a file
    /// younger than that may belong to a delivery that has written its body and not
    /// committed yet.
    ///
    /// A delivery of the same content may race the collector: it writes the object
    /// again and commits a row naming it. fs stores decide atomically
    /// (`delete_if_unchanged` moves the file aside first); S3 cannot (a PUT between
    /// its HEAD and DELETE is deleted), so for every store the collector holds the
    /// body, verified against its id, while it deletes, and re-reads the rows after:
    /// a row that now names the copy gets the body back at once. A row committed
    /// later than that re-read (a delivery that wrote before the DELETE and commits
    /// after it) is caught by the next pass, which re-reads the rows of what this one
    /// deleted and marks such a copy missing, so repair restores it from another
    /// replica; meanwhile reads fall back to the other copies.
    pub async fn collect_orphans(&self, grace_secs: u64) -> Result<u64, MetaError> {
        self.recheck_deleted_orphans().await?;
        let age = grace_secs.max(MIN_ORPHAN_AGE_SECS);
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        let mut deleted = 0;
        for store in self.blobs.stores().iter() {
            for shard in 0..=255u8 {
                let keys = match store.backend().old_keys(shard, cutoff).await {
                    Ok(keys) => keys,
                    Err(e) => {
                        tracing::warn!(store = %store.id(), error = %e, "cannot list a store for orphaned bodies");
                        break;
                    }
                };
                for key in keys {
                    let Some(id) = key
                        .rsplit('/')
                        .next()
                        .and_then(|name| name.parse::<BlobId>().ok())
                    else {
                        continue;
                    };
                    if self.records(id, store.id(), &key).await? {
                        continue;
                    }
                    self.pace.take(0).await;
                    let body = match store.backend().get(&key).await {
                        Ok(Some(body)) => body,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(store = %store.id(), key, error = %e, "could not read an orphaned body");
                            continue;
                        }
                    };
                    match store.backend().delete_if_unchanged(&key, cutoff).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(store = %store.id(), key, error = %e, "could not delete an orphaned body");
                            continue;
                        }
                    }
                    if self.records(id, store.id(), &key).await? {
                        self.put_back(id, store, &key, body).await?;
                        continue;
                    }
                    deleted += 1;
                    metrics::counter!("evermail_rais_gc_orphans_deleted_total").increment(1);
                    self.deleted_orphans
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id, store.id().to_string(), key));
                }
            }
        }
        Ok(deleted)
    }

    /// Whether a location row names this copy.
    async fn records(&self, id: BlobId, store: &str, key: &str) -> Result<bool, MetaError> {
        Ok(self
            .meta
            .blob_copies(id)
            .await?
            .iter()
            .any(|c| c.store == store && c.key == key))
    }

    /// A delivery committed a row naming an orphan the collector just deleted: write
    /// the body back, or, when that fails or the body read was not this blob, mark the
    /// copy missing so repair restores it from another copy.
    async fn put_back(
        &self,
        id: BlobId,
        store: &evermail_blob::StoreHandle,
        key: &str,
        body: bytes::Bytes,
    ) -> Result<(), MetaError> {
        let intact = evermail_blob::blob_id(&body) == id;
        let restored = intact && store.backend().put(key, body).await.is_ok();
        tracing::warn!(blob = %id, store = %store.id(), restored, "a delivery recorded an orphaned body while it was collected");
        metrics::counter!("evermail_rais_gc_orphans_raced_total").increment(1);
        if !restored {
            self.meta
                .set_copy_state(id, store.id(), CopyState::Missing, None)
                .await?;
        }
        Ok(())
    }

    /// The rows of the orphans the previous pass deleted, read again: a delivery that
    /// wrote one just before its DELETE may have committed after the pass looked.
    async fn recheck_deleted_orphans(&self) -> Result<(), MetaError> {
        let deleted = std::mem::take(
            &mut *self
                .deleted_orphans
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (id, store, key) in deleted {
            if !self.records(id, &store, &key).await? {
                continue;
            }
            let gone = match self.blobs.stores().iter().find(|s| s.id() == store) {
                Some(handle) => matches!(handle.backend().size(&key).await, Ok(None)),
                None => false,
            };
            if gone {
                tracing::warn!(blob = %id, store, "a delivery recorded an orphaned body after it was collected; marked missing for repair");
                metrics::counter!("evermail_rais_gc_orphans_raced_total").increment(1);
                self.meta
                    .set_copy_state(id, &store, CopyState::Missing, None)
                    .await?;
            }
        }
        Ok(())
    }
}
