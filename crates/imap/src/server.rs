//! The listener: accepts connections, starts one session task each, and on shutdown
//! stops accepting and waits for every session to say BYE.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use evermail_mailbox::Mailstore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::ImapOptions;
use crate::session::Session;

/// Numbers connections for the logs; unique within the process.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Accepts IMAP connections on `listener` until `shutdown` is cancelled, then waits for
/// every session to end and returns.
///
/// On shutdown the listener closes at once. Each session finishes the command it is
/// running, then sends `* BYE [UNAVAILABLE] server shutting down` and closes; an idling
/// session is told at once. Errors accepting one connection are logged and do not end
/// the listener, so the only error is a listener that cannot report its own address.
pub async fn serve(
    listener: TcpListener,
    mailstore: Mailstore,
    options: Arc<ImapOptions>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let sessions = TaskTracker::new();
    tracing::info!(%local, "IMAP listening");
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
                tracing::warn!(%local, %error, "IMAP accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        // Responses are small and the client waits for each; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("imap", session = id, %peer, user = tracing::field::Empty);
        let session = Session::new(
            stream,
            peer,
            mailstore.clone(),
            options.clone(),
            shutdown.clone(),
        );
        metrics::counter!("evermail_imap_sessions_total").increment(1);
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
    tracing::info!(%local, active = sessions.len(), "IMAP listener closed; waiting for sessions");
    sessions.close();
    sessions.wait().await;
    tracing::info!(%local, "IMAP sessions ended");
    Ok(())
}

/// Keeps `evermail_imap_sessions_active` right however a session task ends, including
/// by a panic that unwinds through it.
struct ActiveSession;

impl ActiveSession {
    fn start() -> Self {
        metrics::gauge!("evermail_imap_sessions_active").increment(1.0);
        ActiveSession
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        metrics::gauge!("evermail_imap_sessions_active").decrement(1.0);
    }
}
