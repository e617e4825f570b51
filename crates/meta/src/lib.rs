//! The metadata store of evermail: what every database backend must do, in the terms
//! of the mail model (accounts, mailboxes, messages, blob locations), never in SQL.
//!
//! The mail model (`evermail-mailbox`) talks to a [`Meta`] handle; SQLite and
//! MariaDB/Galera implement [`MetaBackend`]. Backends must give the same answers, which
//! [`conformance`] checks: every backend's tests run the whole suite.
//!
//! Rules every backend keeps, because the IMAP invariants depend on them:
//! - UIDs and MODSEQs come from counters on the mailbox row, advanced inside the same
//!   transaction that adds or changes messages; never from auto-increment columns,
//!   which Galera spaces by node.
//! - UIDVALIDITY is unique for every mailbox ever created, so a recreated mailbox never
//!   repeats one.
//! - A message row, its blob row and its blob location rows commit together or not at
//!   all, and quota usage is updated in that same transaction.
//!
//! This crate must not name a backend, a file path or a protocol.
//!
//! # Layout
//! - [`MetaBackend`] and [`Meta`]: the trait and the cheap handle over it.
//! - `records`: the rows going in and out.
//! - [`conformance`]: the shared test suite, expanded into each backend's tests by
//!   [`meta_conformance_tests!`].

pub mod conformance;
mod error;
mod records;

pub use error::{ErrorKind, MetaError};
pub use records::*;

use async_trait::async_trait;
use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid};
use std::sync::Arc;

/// What a metadata backend must do. Methods are whole transactions: a backend never
/// leaves one half-applied, and retries serialization conflicts itself.
#[async_trait]
pub trait MetaBackend: Send + Sync + 'static {
    /// Creates an account with its first mailboxes. Fails with `AlreadyExists` when the
    /// address is taken by an account or an alias.
    async fn create_account(&self, new: NewAccount) -> Result<AccountRecord, MetaError>;
    /// Looks an account up by its own address (not by alias), case-insensitively.
    async fn account_by_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError>;
    async fn account(&self, id: AccountId) -> Result<Option<AccountRecord>, MetaError>;
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MetaError>;
    async fn set_password_hash(&self, id: AccountId, hash: &str) -> Result<(), MetaError>;
    async fn set_quota(&self, id: AccountId, quota_bytes: Option<u64>) -> Result<(), MetaError>;
    /// Removes an account, its aliases, mailboxes and message rows. Bodies are left to
    /// the blob garbage collector, which deletes unreferenced ones after a grace period.
    async fn remove_account(&self, id: AccountId) -> Result<(), MetaError>;

    /// Maps an address to the account that receives its mail: the account itself, an
    /// alias, or a catch-all alias `@domain`, in that order.
    async fn resolve_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError>;
    async fn add_alias(&self, alias: &str, target: AccountId) -> Result<(), MetaError>;
    /// Returns whether the alias existed.
    async fn remove_alias(&self, alias: &str) -> Result<bool, MetaError>;
    async fn list_aliases(&self) -> Result<Vec<AliasRecord>, MetaError>;
    /// Every domain that has an account or an alias.
    async fn list_domains(&self) -> Result<Vec<String>, MetaError>;

    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, MetaError>;
    async fn mailbox(&self, id: MailboxId) -> Result<Option<MailboxRecord>, MetaError>;
    async fn create_mailbox(
        &self,
        account: AccountId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError>;
    /// Marks a mailbox subscribed or not (IMAP SUBSCRIBE, UNSUBSCRIBE).
    async fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<(), MetaError>;
    /// Deletes a mailbox and its messages. Its UIDVALIDITY is never handed out again.
    async fn delete_mailbox(&self, id: MailboxId) -> Result<(), MetaError>;

    /// Adds one message, allocating its UID and MODSEQ from the mailbox counters.
    /// Concurrent calls may be committed together (group commit); each still succeeds
    /// or fails on its own. Fails with `OverQuota` when the account's usage plus the
    /// message would exceed its quota.
    async fn insert_message(&self, new: NewMessage) -> Result<InsertedMessage, MetaError>;
    /// Every message of a mailbox in UID order.
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>, MetaError>;
    /// Messages changed or added, and UIDs expunged, after `since`.
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Changes, MetaError>;
    /// Changes the flags of the given messages, giving every changed message one new
    /// MODSEQ; returns the changed messages. Messages that are gone are skipped.
    async fn update_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        change: FlagChange,
        flags: &Flags,
    ) -> Result<Vec<MessageRecord>, MetaError>;
    /// Like `update_flags`, but only for messages whose MODSEQ is at most
    /// `unchanged_since` (CONDSTORE's `STORE (UNCHANGEDSINCE n)`, RFC 7162 section
    /// 3.1.3). The test and the change happen in one transaction, so a concurrent change
    /// either comes first and refuses the message, or comes after.
    async fn update_flags_unchanged_since(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        unchanged_since: ModSeq,
        change: FlagChange,
        flags: &Flags,
    ) -> Result<FlagUpdate, MetaError>;
    /// Removes messages, records them in the expunge log and returns the UIDs removed.
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, MetaError>;

    async fn blob(&self, id: BlobId) -> Result<Option<BlobRecord>, MetaError>;
    async fn blob_locations(&self, id: BlobId) -> Result<Vec<BlobLocation>, MetaError>;
}

/// A cheap, cloneable handle to a metadata backend.
#[derive(Clone)]
pub struct Meta(Arc<dyn MetaBackend>);

impl Meta {
    pub fn new(backend: impl MetaBackend) -> Meta {
        Meta(Arc::new(backend))
    }
}

impl std::ops::Deref for Meta {
    type Target = dyn MetaBackend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
