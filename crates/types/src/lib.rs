//! Plain data shared by every evermail crate: identifiers, message flags and the
//! MIME structure and envelope of a message as parsed once at delivery.
//!
//! This crate must stay free of I/O, async runtimes and storage concerns, so that the
//! protocol crates (`imap-proto`, `smtp-proto`) can depend on it and nothing else.
//!
//! # Layout
//! - [`ids`]: newtypes for account, mailbox, UID, MODSEQ, UIDVALIDITY and blob ids.
//! - [`flags`]: system flags and keywords of a message.
//! - [`mime`]: the envelope and body structure of a message, with byte offsets of each
//!   part so that `BODY[section]` can be served from the raw body without re-parsing.

pub mod flags;
pub mod ids;
pub mod mime;

pub use flags::{Flag, Flags};
pub use ids::{AccountId, BlobId, MailboxId, ModSeq, Uid, UidValidity};
pub use mime::{Address, Envelope, MimeBody, MimePart};
