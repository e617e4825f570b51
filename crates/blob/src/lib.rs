//! Message bodies, stored once per content and kept on one or more independent stores.
//!
//! A body's id is its BLAKE3 hash ([`BlobId`]); identical bodies (one delivery to fifty
//! recipients, a COPY) share one stored object. [`BlobStore`] is the only way the mail
//! model touches bodies: it writes each body to `replicas` backends, acknowledges once
//! `min_replicas` copies are durable, and verifies the hash of every byte it reads back,
//! falling back to another copy when one is missing or corrupt (RAIS: a redundant array
//! of independent stores).
//!
//! This crate does not know about the metadata database: [`BlobStore::put`] returns
//! where the copies went, and the caller records those locations in the same
//! transaction that adds the message. It must not depend on a protocol or on `meta`.
//!
//! # Layout
//! - [`BlobBackend`]: what a store must do (put, get, delete by key).
//! - [`fs`]: the filesystem backend (local disk, NFS, CephFS), with grouped directory
//!   fsyncs.
//! - [`StoreHandle`]: one store with its zone, weight, [`StoreState`] and health flag.
//! - [`placement`]: which stores a new body goes to (weighted rendezvous hashing,
//!   distinct zones first, healthy stores first).
//! - `store`: [`BlobStore`], replicated writes with fallback to the next store,
//!   verified reads, and the health probes that put a failed store back.
//! - `copies`: what repair and scrub need: check one copy, write extra copies by
//!   placement, delete a copy.

mod copies;
mod error;
pub mod fs;
mod handle;
pub mod placement;
mod store;

pub use copies::CopyCheck;
pub use error::{BlobError, ErrorKind};
pub use handle::{Capacity, StoreHandle, StoreState};
pub use store::{BadCopy, BlobStore, CopyProblem, StoredCopy};

use async_trait::async_trait;
use bytes::Bytes;
use evermail_types::BlobId;

/// The content id of a body.
pub fn blob_id(body: &[u8]) -> BlobId {
    BlobId(*blake3::hash(body).as_bytes())
}

/// What every blob backend must do; checksums, replication and metrics live once, in
/// [`BlobStore`], above all backends.
#[async_trait]
pub trait BlobBackend: Send + Sync + 'static {
    /// The object key this backend uses for a blob. It is recorded in the metadata
    /// database, so a backend may change its layout for new blobs without losing old
    /// ones.
    fn key_for(&self, id: &BlobId) -> String;
    /// Stores a body durably: when this returns `Ok`, the body survives a crash of the
    /// machine. Writing a key that already exists with the same content is not an error.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;
    /// Reads a body; `None` when the key does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;
    /// Stores the body in the file at `path` as [`put`](Self::put) would. Backends
    /// that can stream should override this; the default reads the file whole.
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), BlobError> {
        let body = tokio::fs::read(path)
            .await
            .map_err(|e| BlobError::io(format!("reading {}", path.display()), e))?;
        self.put(key, Bytes::from(body)).await
    }
    /// Writes a body into the (existing, empty) file at `path`; `false` when the key
    /// does not exist. Nothing is verified here: [`BlobStore`] hashes the file before
    /// anyone reads it. Backends that can stream should override this; the default
    /// holds the body in memory.
    async fn get_to_file(&self, key: &str, path: &std::path::Path) -> Result<bool, BlobError> {
        let Some(body) = self.get(key).await? else {
            return Ok(false);
        };
        tokio::fs::write(path, body)
            .await
            .map_err(|e| BlobError::io(format!("writing {}", path.display()), e))?;
        Ok(true)
    }
    /// Reads a stored body through and returns the id its content hashes to; `None`
    /// when the key does not exist. The deep scrub uses it. Backends that can stream
    /// should override this, hashing as the body arrives; the default holds the body
    /// in memory.
    async fn content_id(&self, key: &str) -> Result<Option<BlobId>, BlobError> {
        let Some(body) = self.get(key).await? else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || Some(blob_id(&body)))
            .await
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("hash task: {e}")))
    }
    /// Deleting what is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Free and total bytes of the store, when it can tell (a filesystem can; an S3
    /// bucket cannot and grows as needed). Placement prefers stores with more room
    /// and skips those below their reserve.
    async fn capacity(&self) -> Result<Option<Capacity>, BlobError> {
        Ok(None)
    }
    /// Keys this node wrote whose objects were last written before `cutoff`, in one of
    /// 256 shards (`shard` is the first byte of the blob id): what the collector of
    /// orphaned bodies (written, never recorded) looks at. The default lists nothing,
    /// so a backend that cannot do [`delete_if_unchanged`](Self::delete_if_unchanged)
    /// safely is never swept.
    async fn old_keys(
        &self,
        _shard: u8,
        _cutoff: std::time::SystemTime,
    ) -> Result<Vec<String>, BlobError> {
        Ok(Vec::new())
    }
    /// Deletes an object only if nothing wrote it (or, for an existing identical
    /// body, reused it) since `cutoff`, atomically with respect to a concurrent
    /// [`put`](Self::put); returns whether it was deleted.
    async fn delete_if_unchanged(
        &self,
        _key: &str,
        _cutoff: std::time::SystemTime,
    ) -> Result<bool, BlobError> {
        Ok(false)
    }
    /// The size of a stored body; `None` when the key does not exist. The light scrub
    /// uses it; backends that can answer without reading the body should.
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        Ok(self.get(key).await?.map(|b| b.len() as u64))
    }
}
