//! A mail transaction: MAIL, RCPT, then the message by DATA or BDAT, and the one
//! reply per accepted recipient that LMTP gives after it (RFC 2033 section 4.2).

use crate::session::{Session, Step};
use crate::spool::MessageBuffer;
use evermail_mailbox::{Delivered, ErrorKind, MailError};
use evermail_smtp_proto::{
    BdatBody, BdatFeed, BodyType, DataDecoder, Feed, ForwardPath, MailFrom, RcptTo, Reply,
};
use evermail_types::AccountId;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// The most memory reserved up front for a message, whatever SIZE the client
/// declared: the declaration is a hint, and trusting it would let any client make us
/// allocate `max_message_size` by saying a number.
const MAX_INITIAL_CAPACITY: u64 = 1024 * 1024;

/// The slowest average rate, in bytes per second, at which message data may arrive
/// once its first `timeout_secs` have passed. A 50 MiB message at this floor may take
/// 14 hours, so no real MTA meets it; a slowloris client does at once.
const MIN_DATA_RATE: u64 = 1024;

/// State from MAIL to the end of the data.
pub(crate) struct Transaction {
    /// The `SIZE=` of MAIL FROM, if any.
    declared_size: Option<u64>,
    /// Every accepted RCPT, in order; the same account may appear twice.
    recipients: Vec<Recipient>,
    /// The message so far, once the first BDAT has arrived.
    chunks: Option<Chunks>,
    /// When all of the data must have arrived; set by DATA or the first BDAT.
    data_deadline: Option<Instant>,
    /// `XDELIVERY=` of MAIL FROM: the name a proxy gave this transaction, which makes
    /// delivering it again (a replay on this or another node) store nothing twice.
    delivery: Option<[u8; 16]>,
}

struct Recipient {
    /// The address as the client gave it, for the reply text.
    address: String,
    account: AccountId,
}

struct Chunks {
    body: BdatBody,
    message: MessageBuffer,
}

/// What happened to one recipient's copy of the message.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Delivered(Delivered),
    OverQuota,
    TooLarge,
    NoSuchUser,
    TemporaryFailure,
}

impl Outcome {
    fn from_error(error: &MailError) -> Self {
        match error.kind() {
            ErrorKind::OverQuota => Outcome::OverQuota,
            ErrorKind::TooLarge => Outcome::TooLarge,
            ErrorKind::NotFound => Outcome::NoSuchUser,
            // Anything else is our problem, not the message's: a temporary failure
            // keeps the message in the MTA's queue, where a retry can succeed.
            ErrorKind::Unavailable
            | ErrorKind::Corrupt
            | ErrorKind::Invalid
            | ErrorKind::AlreadyExists => Outcome::TemporaryFailure,
        }
    }

    /// The label of `evermail_lmtp_deliveries_total`.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered(_) => "delivered",
            Outcome::OverQuota => "over_quota",
            Outcome::TooLarge => "too_large",
            Outcome::NoSuchUser => "no_such_user",
            Outcome::TemporaryFailure => "temporary_failure",
        }
    }

    fn reply(&self, address: &str) -> Reply {
        let mut reply = match self {
            Outcome::Delivered(delivered) => Reply::new(
                250,
                Some((2, 0, 0)),
                format!("Delivered as UID {}", delivered.uid),
            ),
            Outcome::OverQuota => Reply::over_quota(),
            Outcome::TooLarge => Reply::message_too_big(),
            Outcome::NoSuchUser => Reply::no_such_user(),
            Outcome::TemporaryFailure => Reply::temporary_failure(),
        };
        // Naming the recipient makes the MTA's log line for each reply self-contained.
        for line in &mut reply.lines {
            *line = format!("<{address}> {line}");
        }
        reply
    }
}

/// RFC 5321 section 4.1.1.11: parameters of an extension the server did not
/// advertise (here DSN, RFC 3461) are refused with 555.
fn dsn_not_supported() -> Reply {
    Reply::new(
        555,
        Some((5, 5, 4)),
        "DSN parameters (RET, ENVID, NOTIFY, ORCPT) are not supported",
    )
}

fn sequence_error(text: &str) -> Reply {
    Reply::new(503, Some((5, 5, 1)), text)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(crate) fn mail(&mut self, mail: MailFrom) -> Step {
        if !self.greeted {
            return self.refuse(&sequence_error("Send LHLO first"));
        }
        if self.transaction.is_some() {
            return self.refuse(&sequence_error("Nested MAIL command"));
        }
        if mail.body == Some(BodyType::BinaryMime) {
            // Not advertised: IMAP clients without BINARY could not read such bodies.
            return self.refuse(&Reply::new(
                555,
                Some((5, 5, 4)),
                "BODY=BINARYMIME is not supported",
            ));
        }
        if mail.ret.is_some() || mail.envid.is_some() {
            return self.refuse(&dsn_not_supported());
        }
        let max = self.options.max_message_size;
        if let Some(size) = mail.size
            && size > max
        {
            // RFC 1870 section 6.2: the declared size exceeds the fixed maximum.
            self.send(&Reply::new(
                552,
                Some((5, 3, 4)),
                format!("Message size exceeds the maximum of {max} bytes"),
            ));
            return Ok(());
        }
        self.transaction = Some(Transaction {
            declared_size: mail.size,
            recipients: Vec::new(),
            chunks: None,
            data_deadline: None,
            delivery: mail.delivery,
        });
        self.accept(&Reply::sender_ok())
    }

    pub(crate) async fn rcpt(&mut self, rcpt: RcptTo) -> Step {
        let Some(transaction) = &self.transaction else {
            return self.refuse(&sequence_error("Send MAIL before RCPT"));
        };
        if rcpt.notify.is_some() || rcpt.orcpt.is_some() {
            return self.refuse(&dsn_not_supported());
        }
        if transaction.recipients.len() >= self.options.max_recipients {
            self.send(&Reply::too_many_recipients());
            return Ok(());
        }
        let declared_size = transaction.declared_size.unwrap_or(0);
        // The stored addresses are plain `local@domain`, so the local part is looked up
        // as decoded, without the quotes Display would add.
        let (lookup, shown) = match &rcpt.forward_path {
            ForwardPath::Postmaster => ("postmaster".to_owned(), "Postmaster".to_owned()),
            ForwardPath::Mailbox(mailbox) => (
                format!("{}@{}", mailbox.local_part, mailbox.domain),
                mailbox.to_string(),
            ),
        };
        let account = match self.mailstore.resolve_recipient(&lookup).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                tracing::debug!(recipient = shown, "no such user");
                self.send(&Reply::no_such_user());
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(recipient = shown, %error, "recipient lookup failed");
                self.send(&Reply::temporary_failure());
                return Ok(());
            }
        };
        // Refusing a full mailbox here spares the MTA sending the data for nothing; a
        // message that only overflows it with its actual size is refused after DATA.
        match self.mailstore.usage(account.id).await {
            Ok((used, Some(quota)))
                if used >= quota || used.saturating_add(declared_size) > quota =>
            {
                tracing::debug!(recipient = shown, used, quota, "over quota");
                self.send(&Reply::over_quota());
                return Ok(());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(recipient = shown, %error, "quota lookup failed");
                self.send(&Reply::temporary_failure());
                return Ok(());
            }
        }
        let Some(transaction) = &mut self.transaction else {
            // Nothing between the check above and here can end the transaction.
            return Ok(());
        };
        transaction.recipients.push(Recipient {
            address: shown,
            account: account.id,
        });
        self.accept(&Reply::recipient_ok())
    }

    pub(crate) async fn data(&mut self) -> Step {
        let max = self.options.max_message_size;
        let (capacity, deadline) = match &mut self.transaction {
            None => return self.refuse(&sequence_error("Send MAIL before DATA")),
            // RFC 2033 section 4.2: DATA with no accepted recipient fails with 503.
            Some(t) if t.recipients.is_empty() => {
                return self.refuse(&sequence_error("No valid recipients"));
            }
            Some(t) if t.chunks.is_some() => {
                return self.refuse(&sequence_error("DATA cannot follow BDAT"));
            }
            Some(t) => {
                let capacity = t.declared_size.unwrap_or(0).min(max);
                let deadline = Instant::now() + self.options.data_timeout();
                t.data_deadline = Some(deadline);
                (capacity.min(MAX_INITIAL_CAPACITY) as usize, deadline)
            }
        };
        self.send(&Reply::start_data());
        let mut decoder = DataDecoder::new(max);
        let mut message = self.message_buffer(capacity);
        let oversize = loop {
            match decoder.feed(self.input(), message.memory()) {
                Feed::Done { consumed, oversize } => {
                    self.consume(consumed);
                    break oversize;
                }
                Feed::NeedMore { consumed } => {
                    self.consume(consumed);
                    if decoder.is_oversize() {
                        // What was kept will never be delivered; free it now.
                        message.discard();
                    } else {
                        message.spill();
                    }
                    self.fill_data(deadline, decoder.size()).await?;
                }
            }
        };
        self.finish(message, oversize).await
    }

    pub(crate) async fn bdat(&mut self, size: u64, last: bool) -> Step {
        let max = self.options.max_message_size;
        let refusal = match &self.transaction {
            None => Some("Send MAIL before BDAT"),
            Some(t) if t.recipients.is_empty() => Some("No valid recipients"),
            Some(_) => None,
        };
        if let Some(refusal) = refusal {
            // The chunk follows the command whether we accept it or not, and must be
            // read past so its bytes are not taken for commands.
            let deadline = Instant::now() + self.options.data_timeout();
            let mut sink = BdatBody::new(0);
            sink.begin_chunk(size, last);
            self.read_chunk(&mut sink, &mut MessageBuffer::discarding(), deadline)
                .await?;
            return self.refuse(&sequence_error(refusal));
        }
        let data_timeout = self.options.data_timeout();
        let fresh = self.message_buffer(0);
        let Some(transaction) = &mut self.transaction else {
            return Ok(());
        };
        let deadline = *transaction
            .data_deadline
            .get_or_insert_with(|| Instant::now() + data_timeout);
        let declared = transaction.declared_size.unwrap_or(0).min(max);
        // The chunks are taken out of the transaction while reading, because reading
        // needs the whole session; the transaction itself stays, which tells shutdown
        // that this session is busy.
        let mut chunks = transaction.chunks.take().unwrap_or_else(|| Chunks {
            body: BdatBody::new(max),
            message: fresh.with_capacity(declared.min(MAX_INITIAL_CAPACITY) as usize),
        });
        chunks.body.begin_chunk(size, last);
        let oversize = self
            .read_chunk(&mut chunks.body, &mut chunks.message, deadline)
            .await?;
        if oversize {
            chunks.message.discard();
        }
        if last {
            return self.finish(chunks.message, oversize).await;
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.chunks = Some(chunks);
        }
        if oversize {
            // Said at once so a client that waits for each reply stops sending; the
            // per-recipient replies after BDAT LAST will say it again.
            self.send(&Reply::message_too_big());
            Ok(())
        } else {
            self.accept(&Reply::chunk_received(size))
        }
    }

    /// Reads the current chunk of `body` into `message`; returns whether the message
    /// is now oversize.
    async fn read_chunk(
        &mut self,
        body: &mut BdatBody,
        message: &mut MessageBuffer,
        deadline: Instant,
    ) -> Result<bool, crate::session::Closing> {
        loop {
            match body.feed(self.input(), message.memory()) {
                BdatFeed::ChunkDone {
                    consumed, oversize, ..
                } => {
                    self.consume(consumed);
                    message.spill();
                    return Ok(oversize);
                }
                BdatFeed::NeedMore { consumed } => {
                    self.consume(consumed);
                    message.spill();
                    self.fill_data(deadline, body.size()).await?;
                }
            }
        }
    }

    /// Waits for more data: no longer than the idle timeout, nor past the deadline of
    /// the whole data, nor past the point where the data has arrived slower than
    /// [`MIN_DATA_RATE`] on average since its first `timeout_secs`. The rate floor is
    /// what cuts off a client trickling one byte a second, which an idle timeout alone
    /// would keep for the whole data deadline.
    async fn fill_data(&mut self, deadline: Instant, received: u64) -> Step {
        let started = deadline
            .checked_sub(self.options.data_timeout())
            .unwrap_or_else(Instant::now);
        let progress =
            started + self.options.timeout() + Duration::from_secs(received / MIN_DATA_RATE);
        let idle = Instant::now() + self.options.timeout();
        self.fill(idle.min(deadline).min(progress)).await
    }

    /// Ends the transaction after its data: delivers (unless oversize) and sends one
    /// reply per accepted recipient, in RCPT order.
    async fn finish(&mut self, message: MessageBuffer, oversize: bool) -> Step {
        let Some(transaction) = self.transaction.take() else {
            return Ok(());
        };
        let recipients = transaction.recipients;
        let outcomes = if oversize {
            vec![Outcome::TooLarge; recipients.len()]
        } else {
            self.deliver(message, &recipients, transaction.delivery)
                .await
        };
        for (recipient, outcome) in recipients.iter().zip(&outcomes) {
            metrics::counter!("evermail_lmtp_deliveries_total", "outcome" => outcome.label())
                .increment(1);
            self.send(&outcome.reply(&recipient.address));
        }
        let delivered = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Delivered(_)))
            .count();
        tracing::info!(
            recipients = recipients.len(),
            delivered,
            oversize,
            "transaction ended"
        );
        self.succeeded();
        Ok(())
    }

    /// Delivers once to every distinct account and maps the results back to each
    /// RCPT, so two addresses of one account get one copy and two replies.
    async fn deliver(
        &self,
        message: MessageBuffer,
        recipients: &[Recipient],
        delivery: Option<[u8; 16]>,
    ) -> Vec<Outcome> {
        // A spooled message is delivered from its file, which is removed when `body`
        // is dropped at the end of this function, whatever the outcome.
        let body = match message.into_body() {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "the message could not be spooled");
                return vec![Outcome::TemporaryFailure; recipients.len()];
            }
        };
        let mut accounts: Vec<AccountId> = Vec::new();
        let mut slots = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let slot = match accounts.iter().position(|&a| a == recipient.account) {
                Some(slot) => slot,
                None => {
                    accounts.push(recipient.account);
                    accounts.len() - 1
                }
            };
            slots.push(slot);
        }
        match self.mailstore.deliver_once(body, &accounts, delivery).await {
            Ok(results) => slots
                .iter()
                .map(|&slot| match results.get(slot) {
                    Some(Ok(delivered)) => Outcome::Delivered(*delivered),
                    Some(Err(error)) => {
                        log_failure(error);
                        Outcome::from_error(error)
                    }
                    // deliver() promises one result per account; if it broke that,
                    // we cannot know the message was stored.
                    None => Outcome::TemporaryFailure,
                })
                .collect(),
            Err(error) => {
                log_failure(&error);
                vec![Outcome::from_error(&error); recipients.len()]
            }
        }
    }
}

impl<S> Session<S> {
    /// A buffer for the data of a message, spooled to a file past `spool_threshold`.
    fn message_buffer(&self, capacity: usize) -> MessageBuffer {
        MessageBuffer::new(
            capacity,
            self.options.spool_threshold,
            self.mailstore.spool_dir(),
        )
    }
}

fn log_failure(error: &MailError) {
    match error.kind() {
        ErrorKind::OverQuota | ErrorKind::TooLarge | ErrorKind::NotFound => {
            tracing::debug!(%error, "delivery refused");
        }
        _ => tracing::warn!(%error, "delivery failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_delivery_error_maps_to_a_reply_and_a_label() {
        let cases = [
            (ErrorKind::OverQuota, 452, (4, 2, 2), "over_quota"),
            (ErrorKind::TooLarge, 552, (5, 3, 4), "too_large"),
            (ErrorKind::NotFound, 550, (5, 1, 1), "no_such_user"),
            (ErrorKind::Unavailable, 451, (4, 3, 0), "temporary_failure"),
            (ErrorKind::Corrupt, 451, (4, 3, 0), "temporary_failure"),
            (ErrorKind::Invalid, 451, (4, 3, 0), "temporary_failure"),
            (
                ErrorKind::AlreadyExists,
                451,
                (4, 3, 0),
                "temporary_failure",
            ),
        ];
        let mut failures = Vec::new();
        for (kind, code, enhanced, label) in cases {
            let outcome = Outcome::from_error(&MailError::new(kind, "test"));
            let reply = outcome.reply("a@example.com");
            let got = (reply.code, reply.enhanced, outcome.label());
            if got != (code, Some(enhanced), label) {
                failures.push(format!("{kind:?}: got {got:?}"));
            }
            if !reply.lines[0].starts_with("<a@example.com> ") {
                failures.push(format!("{kind:?}: text {:?}", reply.lines));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
