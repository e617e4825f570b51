//! [`BlobStore`]: replicated writes and verified reads over several stores.

use crate::placement::{candidates, pick_next};
use crate::{BlobError, ErrorKind, StoreHandle, StoreState, blob_id};
use bytes::Bytes;
use evermail_types::BlobId;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// A copy a read found unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCopy {
    pub copy: StoredCopy,
    pub problem: CopyProblem,
}

/// What is wrong with a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyProblem {
    /// Its store has no object under its key.
    Missing,
    /// The object's size or content does not match the blob id.
    Corrupt,
}

/// How long a put waits by default for its remaining copies once `min_replicas` are
/// durable.
pub const DEFAULT_SLOW_COPY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bodies up to this size are hashed on the async worker that has them: BLAKE3 takes
/// tens of microseconds for 64 KiB, about what handing it to a blocking thread costs.
const INLINE_HASH_BYTES: usize = 64 * 1024;

/// The id `body` hashes to. Hashing a large body is CPU work, kept off the async
/// workers; a small one is hashed in place.
async fn hash(body: &Bytes) -> Result<BlobId, BlobError> {
    if body.len() <= INLINE_HASH_BYTES {
        return Ok(blob_id(body));
    }
    let body = body.clone();
    tokio::task::spawn_blocking(move || blob_id(&body))
        .await
        .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("hash task: {e}")))
}

/// Where one durable copy of a blob went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCopy {
    pub store: String,
    pub key: String,
}

/// The replicating blob store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Replaced whole when the store registry changes; every operation works on the
    /// snapshot it took at its start.
    stores: RwLock<Arc<Vec<StoreHandle>>>,
    pub(crate) replicas: usize,
    min_replicas: usize,
    /// Milliseconds a put waits for its remaining copies once `min_replicas` are
    /// durable; 0 waits for every copy.
    slow_copy_timeout_ms: AtomicU64,
}

impl BlobStore {
    /// `replicas` copies are attempted per body, on distinct stores, and at least
    /// `min_replicas` must be durable before [`put`](Self::put) succeeds. Store ids must
    /// be unique and weights positive, and there must be at least `replicas` stores
    /// whose state allows writes.
    pub fn new(
        stores: Vec<StoreHandle>,
        replicas: usize,
        min_replicas: usize,
    ) -> Result<BlobStore, BlobError> {
        let invalid = |message: String| Err(BlobError::new(ErrorKind::NotEnoughReplicas, message));
        if stores.is_empty() || min_replicas == 0 || min_replicas > replicas {
            return invalid(format!(
                "need at least one store and 1 <= min_replicas ({min_replicas}) <= \
                 replicas ({replicas})"
            ));
        }
        for (i, s) in stores.iter().enumerate() {
            if stores[..i].iter().any(|t| t.id() == s.id()) {
                return invalid(format!("the store id {:?} is used twice", s.id()));
            }
            if s.weight() == 0 {
                return invalid(format!(
                    "store {:?} has weight 0; set its state to read-only instead",
                    s.id()
                ));
            }
        }
        let writable = stores.iter().filter(|s| s.state().writable()).count();
        if replicas > writable {
            return invalid(format!(
                "replicas = {replicas} needs at least that many active stores; {writable} of \
                 the {} configured are active",
                stores.len()
            ));
        }
        export_store_metrics(&stores);
        Ok(BlobStore {
            inner: Arc::new(Inner {
                stores: RwLock::new(Arc::new(stores)),
                replicas,
                min_replicas,
                slow_copy_timeout_ms: AtomicU64::new(DEFAULT_SLOW_COPY_TIMEOUT.as_millis() as u64),
            }),
        })
    }

    /// A snapshot of the stores in use.
    pub fn stores(&self) -> Arc<Vec<StoreHandle>> {
        self.inner
            .stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the stores in use (after the registry changed: a store added, drained,
    /// re-weighted or removed). Operations already running finish on the old set.
    /// Unlike [`new`](Self::new) this accepts fewer writable stores than `replicas`:
    /// refusing the change would not bring a store back, and puts then write what they
    /// can and fail only below `min_replicas`.
    pub fn set_stores(&self, stores: Vec<StoreHandle>) {
        export_store_metrics(&stores);
        *self.inner.stores.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(stores);
    }

    /// How long a put waits for its remaining copies once `min_replicas` are durable
    /// (default 5 s; zero waits for every copy). A store that answers slower (an S3
    /// endpoint black-holing packets, a hung NFS mount) then costs each delivery this
    /// long once, not its full timeout: the put is acknowledged with the copies it
    /// has, the slow store leaves write placement until a probe passes, and repair adds
    /// the missing copy later.
    pub fn set_slow_copy_timeout(&self, timeout: Duration) {
        self.inner
            .slow_copy_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// Copies written of every body.
    pub fn replicas(&self) -> usize {
        self.inner.replicas
    }

    /// Stores a body on `replicas` distinct stores in parallel and returns its id and
    /// the copies that are durable.
    ///
    /// Stores are tried in [`placement`](crate::placement) order; when one fails, it is
    /// taken out of write placement and the next candidate takes its place, so one
    /// store's outage costs a retry, not the delivery. Fails with `NotEnoughReplicas`
    /// when fewer than `min_replicas` copies are durable after every candidate was
    /// tried; copies that did land are left for the garbage collector, since nothing
    /// references them.
    pub async fn put(&self, body: Bytes) -> Result<(BlobId, Vec<StoredCopy>), BlobError> {
        let id = hash(&body).await?;
        let size = body.len() as u64;
        self.put_copies(id, size, move |backend, key| {
            let body = body.clone();
            Box::pin(async move { backend.put(&key, body).await })
        })
        .await
    }

    /// Like [`put`](Self::put), for a body in the file at `path` (a spool file) whose
    /// id the caller computed while writing it; each store copies the file by
    /// streaming ([`BlobBackend::put_file`](crate::BlobBackend::put_file)), so the
    /// body is never held in memory whole.
    pub async fn put_file(
        &self,
        id: BlobId,
        size: u64,
        path: &std::path::Path,
    ) -> Result<(BlobId, Vec<StoredCopy>), BlobError> {
        let path = std::sync::Arc::new(path.to_path_buf());
        self.put_copies(id, size, move |backend, key| {
            let path = path.clone();
            Box::pin(async move { backend.put_file(&key, &path).await })
        })
        .await
    }

    /// The replicated write of [`put`](Self::put) and [`put_file`](Self::put_file):
    /// `write_one` writes one copy to a backend under a key.
    async fn put_copies(
        &self,
        id: BlobId,
        size: u64,
        write_one: impl Fn(
            Arc<dyn crate::BlobBackend>,
            String,
        ) -> futures_util::future::BoxFuture<'static, Result<(), BlobError>>,
    ) -> Result<(BlobId, Vec<StoredCopy>), BlobError> {
        let stores = self.stores();
        let mut remaining = candidates(&id, &stores);
        // Zones of the copies written or being written, one entry per copy.
        let mut zones: Vec<&str> = Vec::new();
        let mut writes = FuturesUnordered::new();
        let mut in_flight: Vec<String> = Vec::new();
        let write = |store: &StoreHandle| {
            let store = store.clone();
            let key = store.backend().key_for(&id);
            let put = write_one(store.backend().clone(), key.clone());
            async move {
                let started = std::time::Instant::now();
                let result = put.await;
                metrics::histogram!("evermail_blob_put_seconds", "store" => store.id().to_string())
                    .record(started.elapsed());
                (store, key, result)
            }
        };
        while writes.len() < self.inner.replicas {
            let Some(i) = pick_next(&remaining, &zones) else {
                break;
            };
            let store = remaining.remove(i);
            zones.push(store.zone());
            in_flight.push(store.id().to_string());
            writes.push(write(store));
        }
        let mut copies = Vec::new();
        let mut failures = Vec::new();
        let slow_copy_timeout =
            Duration::from_millis(self.inner.slow_copy_timeout_ms.load(Ordering::Relaxed));
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = if copies.len() >= self.inner.min_replicas && !slow_copy_timeout.is_zero() {
                let at = *deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + slow_copy_timeout);
                match tokio::time::timeout_at(at, writes.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Dropping the stragglers cancels them; a write that still lands
                        // is an unreferenced file, which is harmless.
                        for store in &stores[..] {
                            if in_flight.contains(&store.id().to_string()) {
                                tracing::warn!(store = %store.id(), blob = %id, "store slower than slow_copy_timeout; acknowledging without its copy");
                                store.mark_failed(&"slower than slow_copy_timeout");
                            }
                        }
                        break;
                    }
                }
            } else {
                writes.next().await
            };
            let Some((store, key, result)) = next else {
                break;
            };
            in_flight.retain(|s| s != store.id());
            match result {
                Ok(()) => {
                    store.mark_ok();
                    copies.push(StoredCopy {
                        store: store.id().to_string(),
                        key,
                    });
                }
                Err(e) => {
                    metrics::counter!("evermail_blob_put_errors_total", "store" => store.id().to_string())
                        .increment(1);
                    tracing::warn!(store = %store.id(), blob = %id, error = %e, "blob write failed");
                    store.mark_failed(&e);
                    failures.push(format!("{}: {e}", store.id()));
                    if let Some(z) = zones.iter().position(|z| *z == store.zone()) {
                        zones.remove(z);
                    }
                    if let Some(i) = pick_next(&remaining, &zones) {
                        let next = remaining.remove(i);
                        tracing::info!(failed = %store.id(), instead = %next.id(), blob = %id, "writing the copy elsewhere");
                        zones.push(next.zone());
                        in_flight.push(next.id().to_string());
                        writes.push(write(next));
                    }
                }
            }
        }
        if copies.len() < self.inner.min_replicas {
            metrics::counter!("evermail_blob_put_refused_total").increment(1);
            return Err(BlobError::new(
                ErrorKind::NotEnoughReplicas,
                format!(
                    "only {} of the {} required copies of a {size}-byte body are durable ({})",
                    copies.len(),
                    self.inner.min_replicas,
                    if failures.is_empty() {
                        "no other store may be written".to_string()
                    } else {
                        failures.join("; ")
                    }
                ),
            ));
        }
        if copies.len() < self.inner.replicas {
            // Acknowledged with min_replicas but fewer than replicas: the repair worker
            // will have to add the missing copies.
            metrics::counter!("evermail_blob_put_degraded_total").increment(1);
        }
        metrics::counter!("evermail_blob_bytes_written_total")
            .increment(size * copies.len() as u64);
        Ok((id, copies))
    }

    /// Reads a body from the first copy that exists and hashes to `id`, trying copies
    /// on healthy stores first and on stores marked down last. A missing, corrupt or
    /// unreadable copy is logged and counted with its store id, and the next one is
    /// tried; the caller never sees bytes that do not match the id.
    pub async fn get(&self, id: BlobId, copies: &[StoredCopy]) -> Result<Bytes, BlobError> {
        self.get_checked(id, copies).await.0
    }

    /// Like [`get`](Self::get), and also says which copies were found missing or
    /// corrupt on the way, so the caller can mark them for repair. A copy that could
    /// not be read (a store down, a timeout) is not reported: it may well be intact.
    pub async fn get_checked(
        &self,
        id: BlobId,
        copies: &[StoredCopy],
    ) -> (Result<Bytes, BlobError>, Vec<BadCopy>) {
        self.read_checked(id, copies, |backend, key| {
            Box::pin(async move {
                let Some(body) = backend.get(&key).await? else {
                    return Ok(None);
                };
                let actual = hash(&body).await?;
                Ok(Some((body, actual)))
            })
        })
        .await
    }

    /// Like [`get_checked`](Self::get_checked), into a spool file in `dir` instead of
    /// memory: each copy tried is streamed into a new spool file
    /// ([`BlobBackend::get_to_file`](crate::BlobBackend::get_to_file)), hashed, and
    /// handed out only if it hashes to `id`; a mismatching file is removed and the
    /// next copy tried, exactly as for in-memory reads. The caller reads the body
    /// through the spool's memory map; dropping it removes the file.
    pub async fn get_to_spool(
        &self,
        id: BlobId,
        copies: &[StoredCopy],
        dir: &std::path::Path,
    ) -> (Result<evermail_spool::Spool, BlobError>, Vec<BadCopy>) {
        let dir = Arc::new(dir.to_path_buf());
        self.read_checked(id, copies, move |backend, key| {
            let dir = dir.clone();
            Box::pin(async move {
                let path = evermail_spool::temp_path_in(&dir).map_err(|e| {
                    BlobError::io(format!("creating a spool file in {}", dir.display()), e)
                })?;
                if !backend.get_to_file(&key, &path).await? {
                    return Ok(None);
                }
                let spool = tokio::task::spawn_blocking(move || evermail_spool::Spool::open(path))
                    .await
                    .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("hash task: {e}")))?
                    .map_err(|e| BlobError::io("mapping a spool file", e))?;
                let actual = BlobId(spool.hash());
                Ok(Some((spool, actual)))
            })
        })
        .await
    }

    /// The verified read of [`get_checked`](Self::get_checked) and
    /// [`get_to_spool`](Self::get_to_spool): `read_one` reads one copy and returns it
    /// with the id its content hashes to.
    async fn read_checked<T>(
        &self,
        id: BlobId,
        copies: &[StoredCopy],
        read_one: impl Fn(
            Arc<dyn crate::BlobBackend>,
            String,
        ) -> futures_util::future::BoxFuture<
            'static,
            Result<Option<(T, BlobId)>, BlobError>,
        >,
    ) -> (Result<T, BlobError>, Vec<BadCopy>) {
        let stores = self.stores();
        let mut bad = Vec::new();
        let mut problems = Vec::new();
        let mut order: Vec<(u8, &StoredCopy, Option<&StoreHandle>)> = copies
            .iter()
            .map(|c| {
                let store = stores.iter().find(|s| s.id() == c.store);
                let rank = match store {
                    Some(s) if s.state() == StoreState::Down => 2,
                    Some(s) if !s.healthy() => 1,
                    _ => 0,
                };
                (rank, c, store)
            })
            .collect();
        order.sort_by_key(|(rank, _, _)| *rank);
        for (_, copy, store) in order {
            let Some(store) = store else {
                problems.push(format!("{}: store not configured", copy.store));
                continue;
            };
            let label = store.id().to_string();
            match read_one(store.backend().clone(), copy.key.clone()).await {
                Ok(Some((body, actual))) => {
                    if actual == id {
                        return (Ok(body), bad);
                    }
                    bad.push(BadCopy {
                        copy: copy.clone(),
                        problem: CopyProblem::Corrupt,
                    });
                    metrics::counter!("evermail_blob_corrupt_reads_total", "store" => label)
                        .increment(1);
                    tracing::error!(store = %store.id(), key = %copy.key, blob = %id, "corrupt blob copy; trying another");
                    problems.push(format!("{}: content does not match its hash", store.id()));
                }
                Ok(None) => {
                    bad.push(BadCopy {
                        copy: copy.clone(),
                        problem: CopyProblem::Missing,
                    });
                    metrics::counter!("evermail_blob_missing_reads_total", "store" => label)
                        .increment(1);
                    tracing::error!(store = %store.id(), key = %copy.key, blob = %id, "blob copy missing; trying another");
                    problems.push(format!("{}: missing", store.id()));
                }
                Err(e) => {
                    metrics::counter!("evermail_blob_read_errors_total", "store" => label)
                        .increment(1);
                    tracing::warn!(store = %store.id(), key = %copy.key, blob = %id, error = %e, "blob read failed; trying another copy");
                    if e.kind() == ErrorKind::Unavailable {
                        store.mark_failed(&e);
                    }
                    problems.push(format!("{}: {e}", store.id()));
                }
            }
        }
        let lost = BlobError::new(
            ErrorKind::Lost,
            format!("no good copy of blob {id}: {}", problems.join("; ")),
        );
        (Err(lost), bad)
    }

    /// Probes every store marked unhealthy (except those configured down) and puts
    /// back those that pass; returns how many came back. A writable store must take a
    /// small probe body, return it intact and delete it, which is the whole write path;
    /// any other store must answer a read.
    pub async fn probe_unhealthy(&self) -> usize {
        let stores = self.stores();
        let probes = stores
            .iter()
            .filter(|s| !s.healthy() && s.state() != StoreState::Down)
            .map(|s| async move {
                match probe(s).await {
                    Ok(()) => {
                        s.mark_ok();
                        true
                    }
                    Err(e) => {
                        tracing::debug!(store = %s.id(), error = %e, "store probe failed");
                        false
                    }
                }
            });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .filter(|&ok| ok)
            .count()
    }

    /// Asks every store for its free space, for placement and the metrics.
    pub async fn refresh_capacity(&self) {
        let stores = self.stores();
        let checks = stores.iter().map(|s| async move {
            match s.backend().capacity().await {
                Ok(Some(capacity)) => s.set_capacity(capacity),
                Ok(None) => {}
                Err(e) => tracing::debug!(store = %s.id(), error = %e, "capacity check failed"),
            }
        });
        futures_util::future::join_all(checks).await;
    }

    /// Starts a task that runs [`probe_unhealthy`](Self::probe_unhealthy) and
    /// [`refresh_capacity`](Self::refresh_capacity) at once and then every
    /// `interval`. It stops by itself when the last clone of this store is dropped.
    ///
    /// Why a background probe rather than trying a failed store again on the next
    /// delivery after a cool-down: a delivery never waits on a store believed broken
    /// (an S3 endpoint that drops packets costs a full timeout per attempt); a store
    /// comes back within one interval even when no mail arrives; and the probe runs the
    /// whole write path, so a store that accepts connections but cannot write stays out.
    pub fn spawn_health_probes(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let blobs = BlobStore { inner };
                blobs.probe_unhealthy().await;
                blobs.refresh_capacity().await;
            }
        })
    }
}

/// Exports each store's health and state as gauges.
fn export_store_metrics(stores: &[StoreHandle]) {
    for s in stores {
        let healthy = if s.healthy() { 1.0 } else { 0.0 };
        metrics::gauge!("evermail_blob_store_healthy", "store" => s.id().to_string()).set(healthy);
        // One series per possible state, 1 for the store's own, so a dashboard can
        // count stores by state with a plain sum.
        for state in [
            StoreState::Active,
            StoreState::ReadOnly,
            StoreState::Draining,
            StoreState::Down,
        ] {
            let on = if state == s.state() { 1.0 } else { 0.0 };
            metrics::gauge!(
                "evermail_blob_store_state",
                "store" => s.id().to_string(),
                "state" => state.as_str()
            )
            .set(on);
        }
    }
}

async fn probe(store: &StoreHandle) -> Result<(), BlobError> {
    let backend = store.backend();
    if !store.state().writable() {
        let key = backend.key_for(&blob_id(b"evermail store probe"));
        return backend.get(&key).await.map(|_| ());
    }
    // Unique content, so the key can never be a real body's and deleting it is safe.
    let body = Bytes::from(format!(
        "evermail store probe {:016x}\n",
        rand::random::<u64>()
    ));
    let id = blob_id(&body);
    let key = backend.key_for(&id);
    backend.put(&key, body.clone()).await?;
    let back = backend.get(&key).await?;
    let deleted = backend.delete(&key).await;
    if back.as_ref() != Some(&body) {
        return Err(BlobError::new(
            ErrorKind::Unavailable,
            "the probe body did not read back intact",
        ));
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsBackend;

    fn stores(n: usize) -> (Vec<StoreHandle>, Vec<tempfile::TempDir>) {
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let handles = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                StoreHandle::new(
                    format!("s{i}"),
                    Arc::new(FsBackend::open(d.path(), "n").unwrap()),
                )
            })
            .collect();
        (handles, dirs)
    }

    #[tokio::test]
    async fn writes_replicas_and_reads_back() {
        let (handles, _dirs) = stores(3);
        let store = BlobStore::new(handles, 2, 2).unwrap();
        let body = Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n");
        let (id, copies) = store.put(body.clone()).await.unwrap();
        assert_eq!(id, blob_id(&body));
        assert_eq!(copies.len(), 2);
        assert_ne!(copies[0].store, copies[1].store);
        assert_eq!(store.get(id, &copies).await.unwrap(), body);
    }

    #[tokio::test]
    async fn falls_back_past_missing_and_corrupt_copies() {
        let (handles, dirs) = stores(2);
        let store = BlobStore::new(handles, 2, 2).unwrap();
        let body = Bytes::from_static(b"precious");
        let (id, copies) = store.put(body.clone()).await.unwrap();
        let path = |i: usize| {
            let copy = &copies[i];
            let dir = &dirs[copy.store[1..].parse::<usize>().unwrap()];
            dir.path().join(&copy.key)
        };
        std::fs::write(path(0), b"prEcious").unwrap();
        assert_eq!(store.get(id, &copies).await.unwrap(), body);
        std::fs::remove_file(path(0)).unwrap();
        assert_eq!(store.get(id, &copies).await.unwrap(), body);
        std::fs::write(path(1), b"garbage!").unwrap();
        let err = store.get(id, &copies).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Lost);
    }

    fn spool_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[tokio::test]
    async fn a_spooled_body_is_put_from_its_file_and_read_back_into_a_spool() {
        let (handles, _dirs) = stores(3);
        let store = BlobStore::new(handles, 2, 2).unwrap();
        let spool_dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut writer = evermail_spool::SpoolWriter::create_in(spool_dir.path()).unwrap();
        for chunk in body.chunks(64 * 1024) {
            writer.write(chunk).unwrap();
        }
        let written = writer.finish().unwrap();
        let id = BlobId(written.hash());
        let (put_id, copies) = store
            .put_file(id, body.len() as u64, written.path())
            .await
            .unwrap();
        assert_eq!(put_id, blob_id(&body));
        assert_eq!(copies.len(), 2);
        drop(written);
        assert_eq!(spool_files(spool_dir.path()), 0);
        // Both copies are the body, as an in-memory read sees them.
        assert_eq!(store.get(id, &copies).await.unwrap(), body);
        let (read, bad) = store.get_to_spool(id, &copies, spool_dir.path()).await;
        let read = read.unwrap();
        assert!(bad.is_empty());
        assert_eq!(&read[..], &body[..]);
        assert_eq!(spool_files(spool_dir.path()), 1);
        drop(read);
        assert_eq!(
            spool_files(spool_dir.path()),
            0,
            "the spool file is removed"
        );
    }

    #[tokio::test]
    async fn a_corrupt_copy_is_caught_at_the_end_of_the_stream_and_the_next_served() {
        let (handles, dirs) = stores(2);
        let store = BlobStore::new(handles, 2, 2).unwrap();
        let spool_dir = tempfile::tempdir().unwrap();
        let body = Bytes::from(vec![b'x'; 1_000_000]);
        let (id, copies) = store.put(body.clone()).await.unwrap();
        let path = |i: usize| {
            let copy = &copies[i];
            let dir = &dirs[copy.store[1..].parse::<usize>().unwrap()];
            dir.path().join(&copy.key)
        };
        // The last byte of the first copy tried: only the whole stream can tell.
        let mut rotten = body.to_vec();
        *rotten.last_mut().unwrap() = b'y';
        std::fs::write(path(0), &rotten).unwrap();
        let (read, bad) = store.get_to_spool(id, &copies, spool_dir.path()).await;
        assert_eq!(&read.unwrap()[..], &body[..]);
        assert_eq!(
            bad,
            [BadCopy {
                copy: copies[0].clone(),
                problem: CopyProblem::Corrupt
            }]
        );
        assert_eq!(spool_files(spool_dir.path()), 0);
        // With no good copy left nothing is handed out and no file stays behind.
        std::fs::write(path(1), &rotten).unwrap();
        let (read, bad) = store.get_to_spool(id, &copies, spool_dir.path()).await;
        assert_eq!(read.err().map(|e| e.kind()), Some(ErrorKind::Lost));
        assert_eq!(bad.len(), 2);
        assert_eq!(spool_files(spool_dir.path()), 0);
    }

    #[test]
    fn rejects_impossible_replication() {
        let (h, _d) = stores(1);
        assert!(BlobStore::new(h.clone(), 2, 1).is_err());
        assert!(BlobStore::new(h.clone(), 1, 2).is_err());
        assert!(BlobStore::new(h.clone(), 1, 0).is_err());
        assert!(BlobStore::new(Vec::new(), 1, 1).is_err());
        assert!(BlobStore::new(h.clone(), 1, 1).is_ok());
        let (mut two, _d2) = stores(2);
        two[1] = two[1].clone().with_state(StoreState::ReadOnly);
        assert!(
            BlobStore::new(two.clone(), 2, 1).is_err(),
            "one active store"
        );
        assert!(BlobStore::new(two.clone(), 1, 1).is_ok());
        two[1] = StoreHandle::new("s0", two[1].backend().clone());
        assert!(BlobStore::new(two, 1, 1).is_err(), "duplicate id");
        let zero = vec![h[0].clone().with_weight(0)];
        assert!(BlobStore::new(zero, 1, 1).is_err(), "weight 0");
    }
}
