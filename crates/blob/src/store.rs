//! [`BlobStore`]: replicated writes and verified reads over several backends.

use crate::{BlobBackend, BlobError, ErrorKind, blob_id};
use bytes::Bytes;
use evermail_types::BlobId;
use futures_util::future::join_all;
use std::sync::Arc;

/// One configured store: an id (recorded in every location row) and its backend.
#[derive(Clone)]
pub struct StoreHandle {
    pub id: String,
    pub backend: Arc<dyn BlobBackend>,
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
    stores: Arc<Vec<StoreHandle>>,
    replicas: usize,
    min_replicas: usize,
}

impl BlobStore {
    /// `replicas` copies are attempted per body and at least `min_replicas` must be
    /// durable before [`put`](Self::put) succeeds.
    pub fn new(
        stores: Vec<StoreHandle>,
        replicas: usize,
        min_replicas: usize,
    ) -> Result<BlobStore, BlobError> {
        if stores.is_empty() || min_replicas == 0 || min_replicas > replicas {
            return Err(BlobError::new(
                ErrorKind::NotEnoughReplicas,
                format!(
                    "need at least one store and 1 <= min_replicas ({min_replicas}) <= \
                     replicas ({replicas})"
                ),
            ));
        }
        if replicas > stores.len() {
            return Err(BlobError::new(
                ErrorKind::NotEnoughReplicas,
                format!(
                    "replicas = {replicas} needs at least that many stores; {} configured",
                    stores.len()
                ),
            ));
        }
        Ok(BlobStore {
            stores: Arc::new(stores),
            replicas,
            min_replicas,
        })
    }

    pub fn stores(&self) -> &[StoreHandle] {
        &self.stores
    }

    /// Stores a body on `replicas` stores in parallel and returns its id and the copies
    /// that are durable. Fails with `NotEnoughReplicas` when fewer than `min_replicas`
    /// succeeded; copies that did land are left for the garbage collector, since
    /// nothing references them.
    pub async fn put(&self, body: Bytes) -> Result<(BlobId, Vec<StoredCopy>), BlobError> {
        let id = {
            let body = body.clone();
            // Hashing a large body is CPU work; keep it off the async workers.
            tokio::task::spawn_blocking(move || blob_id(&body))
                .await
                .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("hash task: {e}")))?
        };
        let size = body.len();
        let targets = self.placement(&id);
        let writes = targets.iter().map(|store| {
            let body = body.clone();
            let key = store.backend.key_for(&id);
            async move {
                let started = std::time::Instant::now();
                let result = store.backend.put(&key, body).await;
                metrics::histogram!("evermail_blob_put_seconds", "store" => store.id.clone())
                    .record(started.elapsed());
                (store, key, result)
            }
        });
        let mut copies = Vec::new();
        let mut failures = Vec::new();
        for (store, key, result) in join_all(writes).await {
            match result {
                Ok(()) => copies.push(StoredCopy {
                    store: store.id.clone(),
                    key,
                }),
                Err(e) => {
                    metrics::counter!("evermail_blob_put_errors_total", "store" => store.id.clone())
                        .increment(1);
                    tracing::warn!(store = %store.id, blob = %id, error = %e, "blob write failed");
                    failures.push(format!("{}: {e}", store.id));
                }
            }
        }
        if copies.len() < self.min_replicas {
            return Err(BlobError::new(
                ErrorKind::NotEnoughReplicas,
                format!(
                    "only {} of the {} required copies of a {size}-byte body are durable ({})",
                    copies.len(),
                    self.min_replicas,
                    failures.join("; ")
                ),
            ));
        }
        metrics::counter!("evermail_blob_bytes_written_total")
            .increment((size * copies.len()) as u64);
        Ok((id, copies))
    }

    /// The stores a new body goes to. Each blob starts at a different store (by its
    /// id), which spreads load evenly while keeping the choice deterministic.
    fn placement(&self, id: &BlobId) -> Vec<&StoreHandle> {
        let n = self.stores.len();
        let start = usize::from(id.0[0]) % n;
        (0..self.replicas)
            .map(|i| &self.stores[(start + i) % n])
            .collect()
    }

    /// Reads a body from the first copy that exists and hashes to `id`. A missing or
    /// corrupt copy is logged and counted, and the next one is tried; the caller never
    /// sees bytes that do not match the id.
    pub async fn get(&self, id: BlobId, copies: &[StoredCopy]) -> Result<Bytes, BlobError> {
        let mut problems = Vec::new();
        for copy in copies {
            let Some(store) = self.stores.iter().find(|s| s.id == copy.store) else {
                problems.push(format!("{}: store not configured", copy.store));
                continue;
            };
            match store.backend.get(&copy.key).await {
                Ok(Some(body)) => {
                    let check = body.clone();
                    let actual = tokio::task::spawn_blocking(move || blob_id(&check))
                        .await
                        .map_err(|e| {
                            BlobError::new(ErrorKind::Unavailable, format!("hash task: {e}"))
                        })?;
                    if actual == id {
                        return Ok(body);
                    }
                    metrics::counter!("evermail_blob_corrupt_reads_total", "store" => store.id.clone())
                        .increment(1);
                    tracing::error!(store = %store.id, key = %copy.key, blob = %id, "corrupt blob copy");
                    problems.push(format!("{}: content does not match its hash", store.id));
                }
                Ok(None) => {
                    metrics::counter!("evermail_blob_missing_reads_total", "store" => store.id.clone())
                        .increment(1);
                    tracing::error!(store = %store.id, key = %copy.key, blob = %id, "blob copy missing");
                    problems.push(format!("{}: missing", store.id));
                }
                Err(e) => problems.push(format!("{}: {e}", store.id)),
            }
        }
        Err(BlobError::new(
            ErrorKind::Lost,
            format!("no good copy of blob {id}: {}", problems.join("; ")),
        ))
    }
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
            .map(|(i, d)| StoreHandle {
                id: format!("s{i}"),
                backend: Arc::new(FsBackend::open(d.path(), "n").unwrap()),
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

    #[test]
    fn rejects_impossible_replication() {
        let (h, _d) = stores(1);
        assert!(BlobStore::new(h.clone(), 2, 1).is_err());
        assert!(BlobStore::new(h.clone(), 1, 2).is_err());
        assert!(BlobStore::new(h.clone(), 1, 0).is_err());
        assert!(BlobStore::new(Vec::new(), 1, 1).is_err());
        assert!(BlobStore::new(h, 1, 1).is_ok());
    }
}
