//! What repair and scrub need from [`BlobStore`]: checking one copy, writing extra
//! copies of a body to stores chosen by placement, deleting a copy.
//!
//! The decisions (which blob needs a copy, which copy to drop) are the caller's, since
//! only it knows the locations recorded in the metadata database.

use crate::placement::{candidates, pick_next};
use crate::{BlobError, BlobStore, ErrorKind, StoredCopy};
use bytes::Bytes;
use evermail_types::BlobId;

/// What checking one copy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyCheck {
    /// Present with the right size (light check) or the right hash (deep check).
    Ok,
    /// No object under the key.
    Missing,
    /// The wrong size, or content that does not hash to the blob id.
    Corrupt,
    /// The store could not be asked (down, not configured on this node): nothing is
    /// known about the copy.
    Unknown(String),
}

impl BlobStore {
    /// Checks one copy: with `deep`, reads it through and compares its BLAKE3 hash
    /// with `id`; otherwise only asks whether it exists with `size` bytes.
    pub async fn check_copy(
        &self,
        id: BlobId,
        size: u64,
        copy: &StoredCopy,
        deep: bool,
    ) -> CopyCheck {
        let stores = self.stores();
        let Some(store) = stores.iter().find(|s| s.id() == copy.store) else {
            return CopyCheck::Unknown(format!(
                "store {} is not configured on this node",
                copy.store
            ));
        };
        let backend = store.backend();
        if !deep {
            return match backend.size(&copy.key).await {
                Ok(None) => CopyCheck::Missing,
                Ok(Some(n)) if n == size => CopyCheck::Ok,
                Ok(Some(_)) => CopyCheck::Corrupt,
                Err(e) => CopyCheck::Unknown(e.to_string()),
            };
        }
        // Hashed as it is read (fs: on a blocking thread; S3: as the GET body
        // arrives), so a large body is never held whole.
        match backend.content_id(&copy.key).await {
            Ok(None) => CopyCheck::Missing,
            Ok(Some(actual)) if actual == id => CopyCheck::Ok,
            Ok(Some(_)) => CopyCheck::Corrupt,
            Err(e) => CopyCheck::Unknown(e.to_string()),
        }
    }

    /// Writes up to `wanted` new copies of a verified `body` to writable stores that do
    /// not hold one yet (`have` lists the stores that do), chosen by placement as a new
    /// body's would be, distinct zones first. A store that fails is skipped and leaves
    /// write placement until a probe passes. Returns the copies written, possibly fewer
    /// than wanted; the caller records them.
    pub async fn replicate(
        &self,
        id: BlobId,
        body: Bytes,
        have: &[String],
        wanted: usize,
    ) -> Vec<StoredCopy> {
        self.replicate_with(id, have, wanted, |backend, key| {
            let body = body.clone();
            Box::pin(async move { backend.put(&key, body).await })
        })
        .await
    }

    /// Like [`replicate`](Self::replicate), for a verified body in the file at `path`
    /// (a spool file), which each store copies by streaming
    /// ([`BlobBackend::put_file`](crate::BlobBackend::put_file)): repair of a large
    /// body without holding it in memory.
    pub async fn replicate_file(
        &self,
        id: BlobId,
        path: &std::path::Path,
        have: &[String],
        wanted: usize,
    ) -> Vec<StoredCopy> {
        let path = std::sync::Arc::new(path.to_path_buf());
        self.replicate_with(id, have, wanted, |backend, key| {
            let path = path.clone();
            Box::pin(async move { backend.put_file(&key, &path).await })
        })
        .await
    }

    /// The placement loop of [`replicate`](Self::replicate) and
    /// [`replicate_file`](Self::replicate_file): `write_one` writes one copy.
    async fn replicate_with(
        &self,
        id: BlobId,
        have: &[String],
        wanted: usize,
        write_one: impl Fn(
            std::sync::Arc<dyn crate::BlobBackend>,
            String,
        ) -> futures_util::future::BoxFuture<'static, Result<(), BlobError>>,
    ) -> Vec<StoredCopy> {
        let stores = self.stores();
        let mut remaining: Vec<_> = candidates(&id, &stores)
            .into_iter()
            .filter(|s| !have.iter().any(|h| h == s.id()))
            .collect();
        let mut zones: Vec<&str> = stores
            .iter()
            .filter(|s| have.iter().any(|h| h == s.id()))
            .map(|s| s.zone())
            .collect();
        let mut written = Vec::new();
        while written.len() < wanted {
            let Some(i) = pick_next(&remaining, &zones) else {
                break;
            };
            let store = remaining.remove(i);
            let key = store.backend().key_for(&id);
            match write_one(store.backend().clone(), key.clone()).await {
                Ok(()) => {
                    store.mark_ok();
                    zones.push(store.zone());
                    written.push(StoredCopy {
                        store: store.id().to_string(),
                        key,
                    });
                }
                Err(e) => {
                    tracing::warn!(store = %store.id(), blob = %id, error = %e, "repair write failed; trying another store");
                    store.mark_failed(&e);
                }
            }
        }
        written
    }

    /// Deletes one copy. Deleting what is not there is not an error.
    pub async fn delete_copy(&self, copy: &StoredCopy) -> Result<(), BlobError> {
        let stores = self.stores();
        let Some(store) = stores.iter().find(|s| s.id() == copy.store) else {
            return Err(BlobError::new(
                ErrorKind::Unavailable,
                format!("store {} is not configured on this node", copy.store),
            ));
        };
        store.backend().delete(&copy.key).await
    }
}
