//! Rows of the replicated blob layer (RAIS): the state of each copy of a body, the
//! store registry, and what repair and garbage collection work from.

use evermail_types::BlobId;

/// What the last read or scrub found a copy to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyState {
    /// Present and, when `verified_at` is set, matching its hash at that time.
    Ok,
    /// Not in its store: a read or scrub found no object under the key.
    Missing,
    /// In its store but with the wrong size or content; never served.
    Corrupt,
}

impl CopyState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyState::Ok => "ok",
            CopyState::Missing => "missing",
            CopyState::Corrupt => "corrupt",
        }
    }

    pub fn parse(text: &str) -> Option<CopyState> {
        match text {
            "ok" => Some(CopyState::Ok),
            "missing" => Some(CopyState::Missing),
            "corrupt" => Some(CopyState::Corrupt),
            _ => None,
        }
    }
}

/// One copy of a blob with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCopy {
    pub store: String,
    pub key: String,
    pub state: CopyState,
    /// Unix seconds of the last time the copy was written or found intact.
    pub verified_at: Option<i64>,
}

/// A copy as a scrub walks them: ordered by blob, then store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCopy {
    pub blob: BlobId,
    /// The size of the body, which a light scrub compares with the object's.
    pub size: u64,
    pub copy: BlobCopy,
}

/// A blob with fewer good copies than wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderReplicated {
    pub blob: BlobId,
    pub size: u64,
    /// Copies in state ok on stores that count (not draining or removed).
    pub good: u32,
}

/// One store in the registry every node reads: where it is (`spec`, as the server
/// writes it) and how placement should treat it. The metadata layer stores these as
/// they are; the server checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    pub id: String,
    pub zone: String,
    pub weight: u32,
    /// `active`, `read-only`, `draining` or `down`.
    pub state: String,
    /// How to open the store (the server's serialized store entry).
    pub spec: String,
}

/// Which settings of a registered store to change; `None` keeps the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreChange {
    pub zone: Option<String>,
    pub weight: Option<u32>,
    pub state: Option<String>,
}

/// A blob garbage collection is deleting: no message references it, its grace period
/// is over, and no delivery may reference it again until its copies are deleted and
/// [`forget_blob`](crate::MetaBackend::forget_blob) drops its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoomedBlob {
    pub blob: BlobId,
    pub copies: Vec<BlobCopy>,
}
