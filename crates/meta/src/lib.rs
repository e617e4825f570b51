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
//! - `rais`: copy states, the store registry, repair and garbage-collection rows.
//! - `membership`: the rows mailbox nodes keep about themselves (cluster membership).
//! - [`schema`]: which database schema a build may run against (rolling upgrades).
//! - [`conformance`]: the shared test suite, expanded into each backend's tests by
//!   [`meta_conformance_tests!`].

pub mod conformance;
mod error;
mod membership;
mod rais;
mod records;
pub mod schema;

pub use error::{ErrorKind, MetaError};
pub use membership::*;
pub use rais::*;
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
    /// Renames a mailbox and its children in one transaction (IMAP RENAME, RFC 9051
    /// section 6.3.6): `id` becomes `to`, and every mailbox of the account named
    /// `<old><delimiter>...` becomes `<to><delimiter>...`. Ids, UIDVALIDITY, messages
    /// and subscriptions stay. Fails, changing nothing, with `NotFound` when `id` does
    /// not exist, `AlreadyExists` when a new name is taken, and `Invalid` when `to` is
    /// the old name or under it. Returns the renamed mailboxes.
    async fn rename_mailbox(
        &self,
        id: MailboxId,
        to: &str,
        delimiter: char,
    ) -> Result<Vec<MailboxRecord>, MetaError>;
    /// Moves every message of `from` into a new mailbox of the same account, in one
    /// transaction (renaming INBOX, RFC 9051 section 6.3.6). The new mailbox gets a new
    /// UIDVALIDITY and starts its counters where `from`'s are; the messages keep their
    /// UIDs, MODSEQs, flags and dates. In `from` they are logged as expunged under one
    /// new MODSEQ, and their UIDs are never reused. Quota usage does not change. Fails
    /// with `AlreadyExists` when the name is taken.
    async fn move_all_to_new_mailbox(
        &self,
        from: MailboxId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError>;

    /// Adds one message, allocating its UID and MODSEQ from the mailbox counters.
    /// Concurrent calls may be committed together (group commit); each still succeeds
    /// or fails on its own. Fails with `OverQuota` when the account's usage plus the
    /// message would exceed its quota.
    async fn insert_message(&self, new: NewMessage) -> Result<InsertedMessage, MetaError>;
    /// `insert_message`, idempotent in `delivery`: when a message was already inserted
    /// with this delivery id, nothing is added and that message is returned. A proxy
    /// that replays an LMTP transaction on another node after the first died names
    /// it, so a delivery the dead node committed is not stored twice.
    async fn insert_message_once(
        &self,
        new: NewMessage,
        delivery: [u8; 16],
    ) -> Result<InsertedMessage, MetaError>;
    /// Adds several messages in one transaction, in order: all commit or none does
    /// (IMAP MULTIAPPEND, RFC 3502). Fails as `insert_message` would for any of them,
    /// the quota counting the earlier ones.
    async fn insert_messages(
        &self,
        new: Vec<NewMessage>,
    ) -> Result<Vec<InsertedMessage>, MetaError>;
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
    /// Claims a mailbox's \Recent messages for one session (RFC 3501 section 2.3.2):
    /// raises the mailbox's `recent_uid` mark to `up_to` if it is below, in one
    /// transaction, and returns the mark as it was. The caller's recent messages are
    /// the UIDs in `[returned, up_to)`; nobody else can claim them.
    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> Result<Uid, MetaError>;

    async fn blob(&self, id: BlobId) -> Result<Option<BlobRecord>, MetaError>;
    /// The records of those of `ids` that exist, structure and cached header included,
    /// in no particular order and each once: what FETCH, SEARCH and SORT load for a
    /// batch of messages in one read (one query per 500 ids) instead of one per message.
    async fn blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobRecord>, MetaError>;
    /// The cached header of every message of `mailbox` with a UID from `first` to
    /// `last`, in UID order, read along the mailbox's rows (not by blob id) and
    /// without the structure: what FETCH of header items over a run of UIDs reads.
    async fn message_headers(
        &self,
        mailbox: MailboxId,
        first: Uid,
        last: Uid,
    ) -> Result<Vec<MessageHeader>, MetaError>;
    async fn blob_locations(&self, id: BlobId) -> Result<Vec<BlobLocation>, MetaError>;

    // The replicated blob layer (RAIS): copy states, repair, the store registry and
    // garbage collection. `blob_locations` above lists only copies in state ok.

    /// Every recorded copy of a blob, in every state, ordered by store.
    async fn blob_copies(&self, id: BlobId) -> Result<Vec<BlobCopy>, MetaError>;
    /// Records what a read or scrub found a copy to be; `verified_at: None` keeps the
    /// previous time. A copy that has no row (removed meanwhile) is not an error.
    async fn set_copy_state(
        &self,
        id: BlobId,
        store: &str,
        state: CopyState,
        verified_at: Option<i64>,
    ) -> Result<(), MetaError>;
    /// Records a new durable copy (state ok, verified now), replacing any row for the
    /// same store. Returns false, recording nothing, when the blob is gone or being
    /// garbage-collected, so a repair never resurrects a body being deleted.
    async fn add_copy(&self, id: BlobId, copy: BlobLocation) -> Result<bool, MetaError>;
    /// Forgets one copy (moved off a draining store, or deleted).
    async fn remove_copy(&self, id: BlobId, store: &str) -> Result<(), MetaError>;
    /// Copies of live blobs in (blob, store) order, starting after `after`: the walk a
    /// scrub makes, one page at a time.
    async fn list_copies(
        &self,
        after: Option<(BlobId, String)>,
        limit: u32,
    ) -> Result<Vec<ListedCopy>, MetaError>;
    /// Live blobs with fewer than `replicas` copies in state ok, not counting copies
    /// on the `uncounted` stores (draining ones), fewest good copies first: the most
    /// endangered bodies are repaired first.
    async fn under_replicated(
        &self,
        replicas: u32,
        uncounted: &[String],
        limit: u32,
    ) -> Result<Vec<UnderReplicated>, MetaError>;
    /// The store registry, ordered by id, without removed stores.
    async fn stores(&self) -> Result<Vec<StoreRecord>, MetaError>;
    /// Registers a store unless one with that id exists or existed (a removed store's
    /// id is never reused, so a config file still naming it cannot bring it back);
    /// returns whether it was added.
    async fn add_store(&self, store: StoreRecord) -> Result<bool, MetaError>;
    /// Changes a registered store's placement settings; `NotFound` for an unknown or
    /// removed id.
    async fn change_store(&self, id: &str, change: StoreChange) -> Result<StoreRecord, MetaError>;
    /// How many live blobs have a copy on `store` and no copy in state ok anywhere else.
    async fn sole_copies(&self, store: &str) -> Result<u64, MetaError>;
    /// Marks a store removed and forgets its copies, in one transaction that first counts
    /// the live blobs it holds the only copy of: when there are any, nothing changes
    /// and the error (kind `Invalid`) gives the count.
    async fn remove_store(&self, id: &str) -> Result<(), MetaError>;
    /// Stamps `now` on every live blob no message references and that has no stamp yet,
    /// and clears the stamp of those referenced again; returns how many were stamped.
    /// The stamp starts the grace period of garbage collection.
    async fn mark_unreferenced(&self, now: i64) -> Result<u64, MetaError>;
    /// Dooms the blobs stamped unreferenced at or before `cutoff` and still
    /// unreferenced: from then on `insert_message` refuses them (kind `Unavailable`,
    /// so the delivery is retried after the body is gone). Returns up to `limit` doomed
    /// blobs, including ones doomed earlier whose deletion did not finish.
    async fn doom_unreferenced(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<DoomedBlob>, MetaError>;
    /// Drops the rows of a doomed blob once its copies are deleted. A blob that is not
    /// doomed is left alone.
    async fn forget_blob(&self, id: BlobId) -> Result<(), MetaError>;

    // Cluster membership: each mailbox node keeps its own row fresh.

    /// Writes a node's row as its heartbeat says, at `now_ms` (Unix milliseconds). A new
    /// node is added as active; a known one keeps its state, which only
    /// `set_node_state` changes. Returns the row as stored, so the node learns its
    /// state (a drain) at its next heartbeat.
    async fn node_heartbeat(
        &self,
        beat: NodeHeartbeat,
        now_ms: i64,
    ) -> Result<NodeRecord, MetaError>;
    /// Every node's row, ordered by name, up or not.
    async fn nodes(&self) -> Result<Vec<NodeRecord>, MetaError>;
    /// Sets a node's state (drain, undrain); `NotFound` for an unknown name.
    async fn set_node_state(&self, name: &str, state: NodeState) -> Result<(), MetaError>;
    /// Removes a node's row; returns whether there was one. A node still running
    /// writes it again at its next heartbeat.
    async fn forget_node(&self, name: &str) -> Result<bool, MetaError>;
    /// The HIGHEST MODSEQ of each of the given mailboxes that exists, in one read: how
    /// a node learns that a mailbox its sessions have selected was changed through
    /// another node (every delivery, flag change and expunge advances it).
    async fn highest_modseqs(
        &self,
        ids: &[MailboxId],
    ) -> Result<Vec<(MailboxId, ModSeq)>, MetaError>;

    // Leases: one holder at a time for a named job (a maintenance pass kind), so one
    // node in the cluster does it. Times are the caller's Unix milliseconds, as for
    // heartbeats, so clocks must agree to well within a lease's length.

    /// Takes the lease `name` for `holder` until `now_ms + ttl_ms` if it is free,
    /// expired at `now_ms`, or already `holder`'s (which renews it); returns whether
    /// `holder` holds it now. Atomic: of concurrent takers exactly one gets `true`,
    /// and the others `false`, not an error.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, MetaError>;
    /// Extends `holder`'s lease to `now_ms + ttl_ms`; `false` when another holder has
    /// taken it meanwhile (it had expired). Renewing is taking again.
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, MetaError> {
        self.try_lease(name, holder, now_ms, ttl_ms).await
    }
    /// Gives the lease up if `holder` holds it, so another may take it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError>;
    /// The lease's last holder and when it ends (or ended); `None` when it was never
    /// taken or was released.
    async fn lease(&self, name: &str) -> Result<Option<LeaseRecord>, MetaError>;
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
