//! Delivery (LMTP) and APPEND (IMAP): the two ways a message enters a mailbox.
//!
//! The order is what makes a reply trustworthy: first the body is made durable on the
//! blob stores, then one metadata transaction per recipient adds the message row and
//! the body's location rows. Only when that commits does the caller hear success. A
//! crash in between leaves at worst an unreferenced body, which the garbage collector
//! removes; never a message row without its body.

use crate::{Body, ErrorKind, MailError, MailboxChange, Mailstore, parse_structure};
use bytes::Bytes;
use evermail_meta::{BlobLocation, BlobRecord, InsertedMessage, NewMessage};
use evermail_types::{AccountId, Flags, MailboxId};
use futures_util::future::join_all;

/// Where a delivered message landed.
pub type Delivered = InsertedMessage;

/// The delivery id of one recipient's message within a named delivery.
fn recipient_delivery(delivery: &[u8; 16], account: AccountId) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"evermail delivery\0");
    hasher.update(delivery);
    hasher.update(&account.0.to_le_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    id
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Mailstore {
    fn check_size(&self, size: usize) -> Result<(), MailError> {
        let max = self.options().max_message_size;
        if size as u64 > max {
            return Err(MailError::new(
                ErrorKind::TooLarge,
                format!("the message is {size} bytes; the limit is {max}"),
            ));
        }
        Ok(())
    }

    /// Stores the body once and describes it for the metadata rows.
    async fn store_body(&self, body: Body) -> Result<(BlobRecord, Vec<BlobLocation>), MailError> {
        self.check_size(body.len())?;
        let size = body.len() as u64;
        let parse_input = body.clone();
        let structure = tokio::task::spawn_blocking(move || parse_structure(&parse_input))
            .await
            .map_err(|e| MailError::new(ErrorKind::Unavailable, format!("parser task: {e}")))?;
        let header = crate::header_cache::cut(&body, &structure);
        let structure = serde_json::to_string(&structure)
            .map_err(|e| MailError::new(ErrorKind::Corrupt, e.to_string()))?;
        let (id, copies) = body.store(self.blobs()).await?;
        Ok((
            BlobRecord {
                id,
                size,
                structure,
                header,
            },
            copies
                .into_iter()
                .map(|c| BlobLocation {
                    store: c.store,
                    key: c.key,
                })
                .collect(),
        ))
    }

    async fn insert(&self, new: NewMessage) -> Result<InsertedMessage, MailError> {
        self.insert_once(new, None).await
    }

    /// `insert`, idempotent in `delivery` when given (see `deliver_once`).
    async fn insert_once(
        &self,
        new: NewMessage,
        delivery: Option<[u8; 16]>,
    ) -> Result<InsertedMessage, MailError> {
        let account = new.account;
        let inserted = match delivery {
            Some(delivery) => self.meta().insert_message_once(new, delivery).await?,
            None => self.meta().insert_message(new).await?,
        };
        self.announce(MailboxChange {
            account,
            mailbox: inserted.mailbox,
            modseq: inserted.modseq,
        });
        Ok(inserted)
    }

    /// Delivers one message to the INBOX of each recipient, storing the body once.
    ///
    /// The outer error means nobody got the message (too large, or the body could not
    /// be made durable); otherwise there is one result per recipient, in order, each
    /// committed or refused on its own (over quota, say).
    pub async fn deliver(
        &self,
        body: Bytes,
        recipients: &[AccountId],
    ) -> Result<Vec<Result<Delivered, MailError>>, MailError> {
        self.deliver_once(body, recipients, None).await
    }

    /// `deliver`, made idempotent by `delivery`, a name the sender gives the whole
    /// delivery (an LMTP transaction; see `evermail-proxy`): each recipient's message
    /// gets an id derived from it and the account, and delivering again under the
    /// same name stores nothing new and reports the messages stored the first time.
    /// A large body comes as a spool file ([`Body::Spooled`]) and is parsed through
    /// its memory map and stored by streaming.
    pub async fn deliver_once(
        &self,
        body: impl Into<Body>,
        recipients: &[AccountId],
        delivery: Option<[u8; 16]>,
    ) -> Result<Vec<Result<Delivered, MailError>>, MailError> {
        let started = std::time::Instant::now();
        let (blob, locations) = self.store_body(body.into()).await?;
        let internal_date = now();
        // An account named twice (an alias and its target, say) gets one copy; both
        // positions report that copy's outcome.
        let mut unique: Vec<AccountId> = recipients.to_vec();
        unique.sort();
        unique.dedup();
        let inserts = unique.iter().map(|&account| {
            let blob = blob.clone();
            let locations = locations.clone();
            async move {
                let inbox = self
                    .find_mailbox(account, "INBOX")
                    .await?
                    .ok_or_else(|| MailError::not_found("INBOX"))?;
                let once = delivery.map(|d| recipient_delivery(&d, account));
                let new = NewMessage {
                    account,
                    mailbox: inbox.id,
                    blob,
                    locations,
                    flags: Flags::new(),
                    internal_date,
                };
                self.insert_once(new, once).await
            }
        });
        let outcomes = join_all(inserts).await;
        let results: Vec<Result<Delivered, MailError>> = recipients
            .iter()
            .map(|account| {
                let i = unique
                    .binary_search(account)
                    .expect("every recipient is in unique");
                match &outcomes[i] {
                    Ok(delivered) => Ok(*delivered),
                    Err(e) => Err(MailError::new(e.kind(), e.to_string())),
                }
            })
            .collect();
        for r in &results {
            let outcome = match r {
                Ok(_) => "delivered",
                Err(e) if e.kind() == ErrorKind::OverQuota => "over_quota",
                Err(_) => "failed",
            };
            metrics::counter!("evermail_deliveries_total", "outcome" => outcome).increment(1);
        }
        metrics::histogram!("evermail_delivery_seconds").record(started.elapsed());
        Ok(results)
    }

    /// Adds several messages to a mailbox of `account`, all or none (IMAP MULTIAPPEND,
    /// RFC 3502): every body is made durable first, then one metadata transaction adds
    /// every row. Each message is `(body, flags, internal date)`; a large body comes as
    /// a spool file ([`Body::Spooled`]) and is stored streamed from it.
    pub async fn append_all<B: Into<Body>>(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        messages: Vec<(B, Flags, Option<i64>)>,
    ) -> Result<Vec<InsertedMessage>, MailError> {
        let messages: Vec<(Body, Flags, Option<i64>)> = messages
            .into_iter()
            .map(|(body, flags, date)| (body.into(), flags, date))
            .collect();
        self.mailbox(account, mailbox).await?;
        // Sizes first, so an oversized last message costs no upload of the others.
        for (body, _, _) in &messages {
            self.check_size(body.len())?;
        }
        let mut rows = Vec::with_capacity(messages.len());
        for (body, flags, internal_date) in messages {
            let (blob, locations) = self.store_body(body).await?;
            rows.push(NewMessage {
                account,
                mailbox,
                blob,
                locations,
                flags,
                internal_date: internal_date.unwrap_or_else(now),
            });
        }
        let inserted = self.meta().insert_messages(rows).await?;
        if let Some(last) = inserted.last() {
            self.announce(MailboxChange {
                account,
                mailbox,
                modseq: last.modseq,
            });
        }
        Ok(inserted)
    }

    /// Adds a message to a mailbox of `account` (IMAP APPEND).
    pub async fn append(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        body: Bytes,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<InsertedMessage, MailError> {
        self.mailbox(account, mailbox).await?;
        let (blob, locations) = self.store_body(body.into()).await?;
        self.insert(NewMessage {
            account,
            mailbox,
            blob,
            locations,
            flags,
            internal_date: internal_date.unwrap_or_else(now),
        })
        .await
    }
}
