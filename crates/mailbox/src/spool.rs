//! Large bodies: a message body held in a spool file instead of the heap.
//!
//! [`Body`] is what delivery and APPEND store and what FETCH serves: either bytes in
//! memory (small messages, the common case, unchanged) or an [`evermail_spool::Spool`],
//! a file read through a read-only memory map. Everything that looks at a body's bytes
//! (the MIME parse at delivery, the header cache, section slicing at FETCH) takes a
//! `&[u8]`, which both give; the map's pages are file-backed page cache that the kernel
//! can drop under pressure, not the process's anonymous memory. The trade-off: a read
//! through the map that hits a failing disk raises SIGBUS instead of an error, which is
//! why only files in the node's own data directory are mapped, never a blob store's
//! (possibly network) files.

use crate::{MailError, Mailstore};
use bytes::Bytes;
use evermail_blob::{BlobError, BlobStore, StoredCopy};
use evermail_spool::Spool;
use evermail_types::BlobId;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// Bodies at least this large are read into a spool file by
/// [`Mailstore::read_body`]; smaller ones into memory.
pub const SPOOL_THRESHOLD: u64 = 1024 * 1024;

/// A message body, in memory or in a spool file. Cheap to clone.
#[derive(Clone)]
pub enum Body {
    Memory(Bytes),
    Spooled(Arc<Spool>),
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Body::Memory(bytes) => bytes,
            Body::Spooled(spool) => spool,
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::Memory(bytes)
    }
}

impl From<Spool> for Body {
    fn from(spool: Spool) -> Body {
        Body::Spooled(Arc::new(spool))
    }
}

impl Body {
    /// Stores the body on the blob stores: from memory, or streamed from its spool
    /// file under the id computed while the file was written.
    pub(crate) async fn store(
        self,
        blobs: &BlobStore,
    ) -> Result<(BlobId, Vec<StoredCopy>), BlobError> {
        match self {
            Body::Memory(bytes) => blobs.put(bytes).await,
            Body::Spooled(spool) => {
                blobs
                    .put_file(BlobId(spool.hash()), spool.len() as u64, spool.path())
                    .await
            }
        }
    }
}

impl Mailstore {
    /// Where spool files go: the configured directory, else the system's temporary
    /// directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.options()
            .spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("evermail-spool"))
    }

    /// The body of a message of `size` bytes, verified against its content hash: in
    /// memory when small, else streamed from one copy into a spool file, hashed, and
    /// handed out only if it matches (a mismatching copy is marked, like
    /// [`body`](Self::body) does, and the next one tried).
    pub async fn read_body(&self, blob: BlobId, size: u64) -> Result<Body, MailError> {
        if size < SPOOL_THRESHOLD {
            return self.body(blob).await.map(Body::Memory);
        }
        let copies: Vec<StoredCopy> = self
            .meta()
            .blob_locations(blob)
            .await?
            .into_iter()
            .map(|l| StoredCopy {
                store: l.store,
                key: l.key,
            })
            .collect();
        let started = std::time::Instant::now();
        let dir = self.spool_dir();
        let (spool, bad) = self.blobs().get_to_spool(blob, &copies, &dir).await;
        self.mark_bad_copies(blob, bad).await;
        let spool = spool?;
        metrics::histogram!("evermail_blob_read_seconds").record(started.elapsed());
        Ok(Body::from(spool))
    }
}

impl Mailstore {
    /// Removes the spool files a crash left behind; call once at start-up, before
    /// any session runs. Returns how many were removed.
    pub fn clean_spool(&self) -> std::io::Result<usize> {
        evermail_spool::clean(&self.spool_dir())
    }
}
