//! The listener: accepts connections, starts one session task each, and on shutdown
//! stops accepting and waits for every session to say BYE.

use std::sync::Arc;

use evermail_listener::accept_sessions;
use evermail_mailbox::Mailstore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ImapOptions;
use crate::session::Session;

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
    let token = shutdown.clone();
    accept_sessions(listener, "imap", shutdown, move |conn| {
        let span = tracing::info_span!(
            "imap",
            session = conn.id,
            peer = %conn.peer,
            user = tracing::field::Empty
        );
        let session = Session::new(
            conn.stream,
            conn.peer,
            mailstore.clone(),
            options.clone(),
            token.clone(),
        );
        session.run().instrument(span)
    })
    .await
}
