use evermail_blob::BlobError;
use evermail_meta::MetaError;

/// What went wrong, in terms a protocol session turns into a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such account, mailbox or message (or not one this account may see).
    NotFound,
    AlreadyExists,
    /// The account's quota would be exceeded (IMAP `[OVERQUOTA]`, LMTP 452 4.2.2).
    OverQuota,
    /// The message is larger than the configured limit (LMTP 552 5.3.4).
    TooLarge,
    /// The request broke a rule (a bad address, a bad mailbox name).
    Invalid,
    /// Storage is unavailable for now; nothing was acknowledged, retrying may work
    /// (IMAP `[UNAVAILABLE]`, LMTP 451 4.3.0).
    Unavailable,
    /// Stored data is unreadable or inconsistent (IMAP `[SERVERBUG]`).
    Corrupt,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    kind: ErrorKind,
    message: String,
}

impl MailError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> MailError {
        MailError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> MailError {
        MailError::new(ErrorKind::NotFound, format!("{what} does not exist"))
    }
}

impl From<MetaError> for MailError {
    fn from(e: MetaError) -> MailError {
        use evermail_meta::ErrorKind as M;
        let kind = match e.kind() {
            M::NotFound => ErrorKind::NotFound,
            M::AlreadyExists => ErrorKind::AlreadyExists,
            M::OverQuota => ErrorKind::OverQuota,
            M::Invalid => ErrorKind::Invalid,
            M::Unavailable => ErrorKind::Unavailable,
            M::Corrupt => ErrorKind::Corrupt,
        };
        MailError::new(kind, e.to_string())
    }
}

impl From<BlobError> for MailError {
    fn from(e: BlobError) -> MailError {
        use evermail_blob::ErrorKind as B;
        let kind = match e.kind() {
            B::Unavailable | B::NotEnoughReplicas => ErrorKind::Unavailable,
            B::Lost => ErrorKind::Corrupt,
        };
        MailError::new(kind, e.to_string())
    }
}
