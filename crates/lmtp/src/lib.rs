//! The LMTP front end of evermail (RFC 2033): an MTA such as Postfix hands messages to
//! [`serve`], which delivers them through the mail model ([`Mailstore::deliver`]) and
//! answers once per recipient.
//!
//! The session speaks LMTP with PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034),
//! 8BITMIME (RFC 6152), SIZE (RFC 1870), CHUNKING (RFC 3030) and SMTPUTF8 (RFC 6531).
//! The wire syntax comes from `evermail-smtp-proto`; this crate adds what needs a
//! socket, a clock and a mail store: session state, timeouts, shutdown, and the choice
//! of reply for every outcome.
//!
//! ```no_run
//! # async fn run(mailstore: evermail_mailbox::Mailstore) -> std::io::Result<()> {
//! use evermail_lmtp::{LmtpOptions, serve};
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//!
//! let options = Arc::new(LmtpOptions::default());
//! let listener = tokio::net::TcpListener::bind(options.listen[0]).await?;
//! let shutdown = CancellationToken::new();
//! // Cancelling `shutdown` (on SIGTERM, say) makes `serve` stop accepting, lets every
//! // transaction in flight finish, and returns once all sessions have ended.
//! serve(listener, mailstore, options, shutdown).await
//! # }
//! ```
//!
//! # The promise behind a 250
//! A recipient hears `250` after the data only once [`Mailstore::deliver`] returned
//! success for it, which happens only after the body is durable and the metadata has
//! committed. Storage trouble is always a temporary `451 4.3.0`, so the MTA keeps the
//! message and retries; a client that disconnects before the end of the data causes no
//! delivery at all.
//!
//! # Layout
//! - `options`: [`LmtpOptions`], the `[lmtp]` section of the configuration file.
//! - this file: [`serve`], the accept loop, shutdown and per-connection bookkeeping.
//! - `session`: one connection: reading lines and data with deadlines, writing replies,
//!   the command dispatch and the session-level commands (LHLO, RSET, QUIT, ...).
//! - `spool`: the message while its data arrives, moved to a spool file past
//!   `spool_threshold`.
//! - `transaction`: MAIL, RCPT, DATA and BDAT, and turning delivery results into the
//!   per-recipient replies.
//!
//! # What this crate must not do
//! - No SQL, no file paths, no blob keys: everything goes through [`Mailstore`].
//! - No parsing of wire syntax by hand beyond the lenient LHLO argument: commands,
//!   dot-unstuffing and chunk counting belong to `evermail-smtp-proto`.
//! - No `250` before `deliver` has returned success for that recipient, and no
//!   permanent (5xx) reply for a storage failure.
//! - No panics on any input, and no unbounded buffers: command lines, messages and
//!   waiting times all have limits.

mod options;
mod session;
mod spool;
mod transaction;

pub use options::LmtpOptions;

use evermail_listener::accept_sessions;
use evermail_mailbox::Mailstore;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Accepts LMTP connections on `listener` until `shutdown` is cancelled, then waits for
/// every session to end and returns.
///
/// On shutdown the listener is closed at once. A session waiting for a command gets
/// `421 4.3.2` and is closed; a session inside a transaction may finish it (its
/// delivery completes and its replies are sent) for up to `timeout_secs` (at most 30
/// seconds) before it, too, gets `421 4.3.2`. Nothing acknowledged is ever lost by
/// closing: a transaction cut short was never answered with `250`.
///
/// Errors accepting one connection (a client that reset, too many open files) are
/// logged and do not end the listener, so the only error is a listener that cannot
/// report its own address.
pub async fn serve(
    listener: TcpListener,
    mailstore: Mailstore,
    options: Arc<LmtpOptions>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let hostname: Arc<str> = options.greeting_name().into();
    tracing::info!(%hostname, "LMTP greeting name");
    let token = shutdown.clone();
    accept_sessions(listener, "lmtp", shutdown, move |conn| {
        let span = tracing::info_span!("lmtp", session = conn.id, peer = %conn.peer);
        let session = session::Session::new(
            conn.stream,
            mailstore.clone(),
            options.clone(),
            hostname.clone(),
            token.clone(),
        );
        session.run().instrument(span)
    })
    .await
}
