/// What went wrong with a blob operation, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The store failed (I/O error, full, unreachable); another copy or a later retry
    /// may work.
    Unavailable,
    /// Fewer than `min_replicas` copies could be written; nothing may be acknowledged.
    NotEnoughReplicas,
    /// No readable copy with the right hash exists.
    Lost,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BlobError {
    kind: ErrorKind,
    message: String,
}

impl BlobError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> BlobError {
        BlobError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub(crate) fn io(context: impl std::fmt::Display, e: std::io::Error) -> BlobError {
        BlobError::new(ErrorKind::Unavailable, format!("{context}: {e}"))
    }
}
