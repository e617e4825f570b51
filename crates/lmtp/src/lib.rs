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
mod transaction;

pub use options::LmtpOptions;

use evermail_mailbox::Mailstore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Numbers connections for the logs; unique within the process.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

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
    let local = listener.local_addr()?;
    let hostname: Arc<str> = options.greeting_name().into();
    let sessions = TaskTracker::new();
    tracing::info!(%local, %hostname, "LMTP listening");
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Mostly EMFILE/ENFILE: pausing lets sessions end and free descriptors
                // instead of spinning on an error that repeats at once.
                tracing::warn!(%local, %error, "LMTP accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        // Replies are small and the client waits for each; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("lmtp", session = id, %peer);
        let session = session::Session::new(
            stream,
            mailstore.clone(),
            options.clone(),
            hostname.clone(),
            shutdown.clone(),
        );
        metrics::counter!("evermail_lmtp_sessions_total").increment(1);
        let active = ActiveSession::start();
        sessions.spawn(
            async move {
                session.run().await;
                drop(active);
            }
            .instrument(span),
        );
    }
    drop(listener);
    tracing::info!(%local, active = sessions.len(), "LMTP listener closed; waiting for sessions");
    sessions.close();
    sessions.wait().await;
    tracing::info!(%local, "LMTP sessions ended");
    Ok(())
}

/// Keeps `evermail_lmtp_sessions_active` right however a session task ends, including
/// by a panic that unwinds through it.
struct ActiveSession;

impl ActiveSession {
    fn start() -> Self {
        metrics::gauge!("evermail_lmtp_sessions_active").increment(1.0);
        ActiveSession
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        metrics::gauge!("evermail_lmtp_sessions_active").decrement(1.0);
    }
}
