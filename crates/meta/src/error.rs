use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    /// The account's quota would be exceeded.
    OverQuota,
    /// The input broke a rule (a bad name, an empty address).
    Invalid,
    /// The database could not be reached or refused the transaction for now; retrying
    /// later may succeed. Nothing was committed.
    Unavailable,
    /// Stored data is not what this version understands.
    Corrupt,
}

/// An error from a metadata backend.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct MetaError {
    kind: ErrorKind,
    message: String,
}

impl MetaError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> MetaError {
        MetaError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn not_found(what: impl fmt::Display) -> MetaError {
        MetaError::new(ErrorKind::NotFound, format!("{what} does not exist"))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::OverQuota => "over quota",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corrupt => "corrupt",
        })
    }
}
