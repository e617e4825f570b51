//! The mail model of evermail: accounts, mailboxes and messages, over the metadata
//! store ([`evermail_meta::Meta`]) and the blob store ([`evermail_blob::BlobStore`]).
//!
//! Protocol sessions (IMAP, LMTP, POP3) call [`Mailstore`] and nothing below it: no
//! SQL, no file paths and no wire syntax live here or above. This layer enforces the
//! rules the protocols promise: a message is acknowledged only after its body is
//! durable on `min_replicas` stores and its rows have committed; a session can only
//! reach mailboxes of the account it authenticated as; bodies are verified against
//! their content hash on every read.
//!
//! # Layout
//! - `accounts`: accounts, password hashing, aliases, recipient resolution.
//! - `decode`: undoing a part's Content-Transfer-Encoding (IMAP BINARY).
//! - `deliver`: LMTP delivery and IMAP APPEND.
//! - `header_cache`: the header section stored with each blob row at delivery.
//! - `fts`: SEARCH BODY and TEXT through the node's text index (`evermail_fts`).
//! - `login_guard`: the failed-login lockout IMAP and POP3 share.
//! - `maildrop`: the POP3 maildrop lock.
//! - `parse`: the envelope and MIME structure, parsed once at delivery.
//! - `text`: a message's header and body text, for searching.
//! - `view`: the node's cache of mailbox views (messages as a persistent vector),
//!   brought up to date by `changes_since` on every read.
//! - `watch`: the mailboxes this node's sessions have selected, polled for changes
//!   made through other nodes.
//! - this file: [`Mailstore`], mailbox and message reads, flags, expunge, change
//!   notifications.

mod accounts;
mod decode;
mod deliver;
mod error;
mod fts;
mod header_cache;
mod login_guard;
mod maildrop;
mod parse;
mod spool;
mod text;
mod view;
mod watch;

pub use accounts::{Account, DEFAULT_MAILBOXES, LoginOutcome, check_address, hash_password};
pub use decode::decode_transfer_encoding;
pub use deliver::Delivered;
pub use error::{ErrorKind, MailError};
pub use evermail_meta::{Changes, FlagChange, FlagUpdate, MailboxRecord, MessageRecord};
pub use fts::{MIN_INDEXED_CHARS, TextHits, TextIndexOptions, TextKey};
pub use header_cache::{MAX_CACHED_HEADER, MessageSummary, filter_header_fields};
pub use login_guard::{LockScope, LoginGuardOptions};
pub use maildrop::MaildropLock;
pub use parse::{MessageStructure, parse_structure};
pub use spool::{Body, SPOOL_THRESHOLD};
pub use text::{HeaderFields, MessageText};
pub use view::{
    DEFAULT_VIEW_CACHE_MESSAGES, MailboxView, MessageList, ViewCacheStats, ViewSummary,
    apply_changes,
};
pub use watch::MailboxWatch;

use bytes::Bytes;
use evermail_blob::{BlobStore, StoredCopy};
use evermail_meta::Meta;
use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Settings of the mail model.
#[derive(Debug, Clone)]
pub struct MailstoreOptions {
    /// The largest message accepted, in bytes.
    pub max_message_size: u64,
    /// Where large bodies are spooled while they are delivered or served (a
    /// directory of the node's data directory); `None` is the system's temporary
    /// directory.
    pub spool_dir: Option<std::path::PathBuf>,
    /// The quota given to new accounts that do not name one; `None` is unlimited.
    pub default_quota: Option<u64>,
    /// When failed logins lock out (the `[auth]` section).
    pub login_guard: LoginGuardOptions,
    /// How many message records the node's view cache holds at most, over all
    /// mailboxes (least recently used mailboxes are dropped first).
    pub view_cache_messages: usize,
}

impl Default for MailstoreOptions {
    fn default() -> Self {
        MailstoreOptions {
            max_message_size: 50 * 1024 * 1024,
            spool_dir: None,
            default_quota: None,
            login_guard: LoginGuardOptions::default(),
            view_cache_messages: view::DEFAULT_VIEW_CACHE_MESSAGES,
        }
    }
}

/// A change to a mailbox, announced to every session of this process so that IDLE
/// can report it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxChange {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub modseq: ModSeq,
}

/// The mail model. Cheap to clone; every session holds one.
#[derive(Clone)]
pub struct Mailstore {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Meta,
    blobs: BlobStore,
    options: MailstoreOptions,
    changes: broadcast::Sender<MailboxChange>,
    maildrops: maildrop::MaildropLocks,
    login_guard: login_guard::LoginGuard,
    watched: watch::Watched,
    views: view::ViewCache,
    /// Set by `enable_text_index` (`serve` does; tools and most tests do not).
    text_indexes: std::sync::OnceLock<fts::TextIndexes>,
}

impl Mailstore {
    pub fn new(meta: Meta, blobs: BlobStore, options: MailstoreOptions) -> Mailstore {
        let (changes, _) = broadcast::channel(4096);
        let login_guard = login_guard::LoginGuard::new(options.login_guard.clone());
        let views = view::ViewCache::new(options.view_cache_messages);
        Mailstore {
            inner: Arc::new(Inner {
                meta,
                blobs,
                options,
                login_guard,
                changes,
                maildrops: Default::default(),
                watched: Default::default(),
                views,
                text_indexes: Default::default(),
            }),
        }
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.inner.meta
    }

    pub(crate) fn watched(&self) -> &watch::Watched {
        &self.inner.watched
    }

    pub(crate) fn views(&self) -> &view::ViewCache {
        &self.inner.views
    }

    pub(crate) fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    pub fn options(&self) -> &MailstoreOptions {
        &self.inner.options
    }

    /// Receives every mailbox change made through this process. A receiver that falls
    /// behind gets `Lagged` and should re-read the mailbox state.
    pub fn subscribe(&self) -> broadcast::Receiver<MailboxChange> {
        self.inner.changes.subscribe()
    }

    pub(crate) fn announce(&self, change: MailboxChange) {
        // No receiver is fine: nobody is idling.
        let _ = self.inner.changes.send(change);
    }

    /// Every mailbox of the account.
    pub async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, MailError> {
        Ok(self.meta().mailboxes(account).await?)
    }

    /// A mailbox by name; `INBOX` matches case-insensitively (RFC 9051 section 5.1).
    pub async fn find_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<MailboxRecord>, MailError> {
        let is_inbox = name.eq_ignore_ascii_case("INBOX");
        Ok(self.mailboxes(account).await?.into_iter().find(|m| {
            if is_inbox {
                m.name == "INBOX"
            } else {
                m.name == name
            }
        }))
    }

    /// A mailbox by id, but only if it belongs to `account`: the one check every
    /// mailbox operation goes through, so no session can reach another account's mail.
    pub async fn mailbox(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<MailboxRecord, MailError> {
        match self.meta().mailbox(mailbox).await? {
            Some(m) if m.account == account => Ok(m),
            _ => Err(MailError::not_found("mailbox")),
        }
    }

    /// Creates a mailbox for `account`, not subscribed: subscribing is the client's
    /// own SUBSCRIBE (RFC 9051 section 6.3.7), as in Dovecot and Cyrus, so a client that
    /// shows only subscribed mailboxes does not see every folder another client made.
    /// Fails with `AlreadyExists` when the name is taken; the name's syntax (hierarchy,
    /// wildcards) is the protocol's concern.
    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<MailboxRecord, MailError> {
        Ok(self
            .meta()
            .create_mailbox(
                account,
                evermail_meta::NewMailbox {
                    name: name.to_string(),
                    special_use: special_use.map(str::to_string),
                    subscribed: false,
                },
            )
            .await?)
    }

    /// Deletes a mailbox of `account` and its messages. Its UIDVALIDITY is never reused,
    /// so a client that cached the old mailbox cannot mistake a new one of the same name
    /// for it.
    pub async fn delete_mailbox(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<(), MailError> {
        self.mailbox(account, mailbox).await?;
        self.meta().delete_mailbox(mailbox).await?;
        self.views().forget(mailbox);
        Ok(())
    }

    /// Renames a mailbox of `account` and the mailboxes under it (`delimiter` separates
    /// levels), keeping their messages and UIDVALIDITY. Fails with `AlreadyExists`
    /// when a new name is taken, changing nothing.
    pub async fn rename_mailbox(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        to: &str,
        delimiter: char,
    ) -> Result<Vec<MailboxRecord>, MailError> {
        self.mailbox(account, mailbox).await?;
        Ok(self.meta().rename_mailbox(mailbox, to, delimiter).await?)
    }

    /// Moves every message of a mailbox of `account` into a new mailbox `to`, leaving
    /// it empty: RENAME of INBOX (RFC 9051 section 6.3.6). Sessions with the source
    /// selected see the messages expunged.
    pub async fn move_all_to_new_mailbox(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        to: &str,
    ) -> Result<MailboxRecord, MailError> {
        let source = self.mailbox(account, mailbox).await?;
        let new = evermail_meta::NewMailbox {
            name: to.to_string(),
            special_use: None,
            subscribed: source.subscribed,
        };
        let created = self.meta().move_all_to_new_mailbox(mailbox, new).await?;
        let source = self.mailbox(account, mailbox).await?;
        self.announce(MailboxChange {
            account,
            mailbox,
            modseq: source.highest_modseq,
        });
        Ok(created)
    }

    /// Subscribes to a mailbox of `account`, or unsubscribes (IMAP SUBSCRIBE,
    /// UNSUBSCRIBE; LSUB and LIST (SUBSCRIBED) report it).
    pub async fn set_subscribed(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        subscribed: bool,
    ) -> Result<(), MailError> {
        self.mailbox(account, mailbox).await?;
        Ok(self.meta().set_subscribed(mailbox, subscribed).await?)
    }

    /// Every message of a mailbox, in UID order.
    pub async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageRecord>, MailError> {
        self.mailbox(account, mailbox).await?;
        Ok(self.meta().messages(mailbox).await?)
    }

    /// What changed in a mailbox after `since`.
    pub async fn changes_since(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Changes, MailError> {
        self.mailbox(account, mailbox).await?;
        Ok(self.meta().changes_since(mailbox, since).await?)
    }

    /// Claims the mailbox's \Recent messages below `up_to` for the calling session
    /// (RFC 3501 section 2.3.2): returns where the claim starts, so the caller's recent
    /// UIDs are those in `[returned, up_to)`; none when it is not below `up_to`.
    pub async fn claim_recent(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        up_to: Uid,
    ) -> Result<Uid, MailError> {
        self.mailbox(account, mailbox).await?;
        Ok(self.meta().claim_recent(mailbox, up_to).await?)
    }

    /// The envelope and MIME structure of a body.
    pub async fn structure(&self, blob: BlobId) -> Result<MessageStructure, MailError> {
        let record = self.meta().blob(blob).await?.ok_or_else(|| {
            MailError::new(ErrorKind::Corrupt, format!("blob {blob} has no record"))
        })?;
        serde_json::from_str(&record.structure).map_err(|e| {
            MailError::new(
                ErrorKind::Corrupt,
                format!("stored structure of blob {blob} is unreadable: {e}"),
            )
        })
    }

    /// The body of a message, verified against its content hash.
    pub async fn body(&self, blob: BlobId) -> Result<Bytes, MailError> {
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
        let (body, bad) = self.blobs().get_checked(blob, &copies).await;
        self.mark_bad_copies(blob, bad).await;
        let body = body?;
        metrics::histogram!("evermail_blob_read_seconds").record(started.elapsed());
        Ok(body)
    }

    /// Marks what a read found broken, so the copy is no longer offered to reads and
    /// the repair worker, which looks for blobs with too few good copies, restores it.
    /// Failing to mark only delays the repair until the next scrub.
    pub(crate) async fn mark_bad_copies(&self, blob: BlobId, bad: Vec<evermail_blob::BadCopy>) {
        for b in bad {
            let state = match b.problem {
                evermail_blob::CopyProblem::Missing => evermail_meta::CopyState::Missing,
                evermail_blob::CopyProblem::Corrupt => evermail_meta::CopyState::Corrupt,
            };
            if let Err(e) = self
                .meta()
                .set_copy_state(blob, &b.copy.store, state, None)
                .await
            {
                tracing::warn!(blob = %blob, store = %b.copy.store, error = %e, "could not mark a bad copy");
            }
        }
    }

    /// The searchable text of a body (IMAP SEARCH on headers and text, SORT, THREAD),
    /// read from the verified body and parsed on every call. Without `with_body` only
    /// the header is parsed, so an attachment is never decoded for a SUBJECT search.
    pub async fn message_text(
        &self,
        blob: BlobId,
        with_body: bool,
    ) -> Result<MessageText, MailError> {
        let body = self.body(blob).await?;
        Ok(if with_body {
            MessageText::parse(&body)
        } else {
            MessageText::parse_header(&body)
        })
    }

    /// Changes flags; returns the messages whose flags changed, with their new MODSEQ.
    pub async fn store_flags(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        change: FlagChange,
        flags: &Flags,
    ) -> Result<Vec<MessageRecord>, MailError> {
        self.mailbox(account, mailbox).await?;
        let changed = self
            .meta()
            .update_flags(mailbox, uids, change, flags)
            .await?;
        if let Some(last) = changed.iter().map(|m| m.modseq).max() {
            self.announce(MailboxChange {
                account,
                mailbox,
                modseq: last,
            });
        }
        Ok(changed)
    }

    /// Changes flags of the messages whose MODSEQ is at most `unchanged_since` (IMAP
    /// `STORE (UNCHANGEDSINCE n)`); the others are returned as modified, untouched.
    pub async fn store_flags_unchanged_since(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        unchanged_since: ModSeq,
        change: FlagChange,
        flags: &Flags,
    ) -> Result<FlagUpdate, MailError> {
        self.mailbox(account, mailbox).await?;
        let update = self
            .meta()
            .update_flags_unchanged_since(mailbox, uids, unchanged_since, change, flags)
            .await?;
        if let Some(last) = update.changed.iter().map(|m| m.modseq).max() {
            self.announce(MailboxChange {
                account,
                mailbox,
                modseq: last,
            });
        }
        Ok(update)
    }

    /// Copies messages of one mailbox of `account` into another of its mailboxes (IMAP
    /// COPY and MOVE), in UID order; returns each source UID with where its copy landed.
    /// UIDs that do not exist are skipped. Only metadata is written: a copy shares the
    /// stored body, so nothing is re-uploaded. The quota is charged as for any new
    /// message. All copies commit in one transaction, as RFC 9051 wants COPY atomic: on
    /// an error none was made (the list in the error is then always empty; it stays in
    /// the signature for callers written when copies were made one by one).
    pub async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, evermail_meta::InsertedMessage)>, (Vec<Uid>, MailError)> {
        let fail = |e: MailError| (Vec::new(), e);
        self.mailbox(account, to).await.map_err(fail)?;
        // Reading the source through `view` checks that it is the account's own.
        let mut wanted: Vec<Uid> = uids.to_vec();
        wanted.sort();
        wanted.dedup();
        let source = self.view(account, from).await.map_err(fail)?.messages;
        let sources: Vec<MessageRecord> = wanted
            .iter()
            .filter_map(|&uid| {
                let i = source.binary_search_by_key(&uid, |m| m.uid).ok()?;
                Some(source[i].clone())
            })
            .collect();
        let mut rows = Vec::with_capacity(sources.len());
        for message in &sources {
            rows.push(self.copy_row(account, message, to).await.map_err(fail)?);
        }
        let inserted = self.meta().insert_messages(rows).await;
        let inserted = inserted.map_err(|e| fail(e.into()))?;
        if let Some(last) = inserted.last() {
            self.announce(MailboxChange {
                account,
                mailbox: to,
                modseq: last.modseq,
            });
        }
        Ok(sources.iter().map(|m| m.uid).zip(inserted).collect())
    }

    /// The row of a copy of `message` in `to`, sharing its body.
    async fn copy_row(
        &self,
        account: AccountId,
        message: &MessageRecord,
        to: MailboxId,
    ) -> Result<evermail_meta::NewMessage, MailError> {
        let blob = self.meta().blob(message.blob).await?.ok_or_else(|| {
            MailError::new(
                ErrorKind::Corrupt,
                format!("blob {} has no record", message.blob),
            )
        })?;
        let locations = self.meta().blob_locations(message.blob).await?;
        Ok(evermail_meta::NewMessage {
            account,
            mailbox: to,
            blob,
            locations,
            flags: message.flags.clone(),
            internal_date: message.internal_date,
        })
    }

    /// Removes messages; returns the UIDs that were removed.
    pub async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<Uid>, MailError> {
        self.mailbox(account, mailbox).await?;
        let gone = self.meta().expunge(mailbox, uids).await?;
        if !gone.is_empty() {
            let record = self.mailbox(account, mailbox).await?;
            self.announce(MailboxChange {
                account,
                mailbox,
                modseq: record.highest_modseq,
            });
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests;
