//! The listener: accepts connections, starts one session task each, and on shutdown
//! stops accepting and waits for every session to say BYE.

use std::sync::Arc;

use evermail_listener::accept_sessions;
use evermail_mailbox::Mailstore;
use evermail_tls::ListenerTls;
use evermail_tls::{SessionStream, TlsAcceptor};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ImapOptions;
use crate::session::Session;

/// A short name for logs and metrics: "imap" or "imaps".
fn protocol(tls: &ListenerTls) -> &'static str {
    if tls.is_implicit() { "imaps" } else { "imap" }
}

/// How a session starts: what it may upgrade to, and whether it must shake hands
/// before the greeting.
#[derive(Clone)]
pub(crate) enum SessionTls {
    Plain { starttls: Option<TlsAcceptor> },
    Implicit(TlsAcceptor),
}

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
    tls: ListenerTls,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let token = shutdown.clone();
    let protocol = protocol(&tls);
    let session_tls = match tls {
        ListenerTls::Off => SessionTls::Plain { starttls: None },
        ListenerTls::StartTls(config) => SessionTls::Plain {
            starttls: Some(TlsAcceptor::from(config)),
        },
        ListenerTls::Implicit(config) => SessionTls::Implicit(TlsAcceptor::from(config)),
    };
    accept_sessions(listener, protocol, shutdown, move |conn| {
        let span = tracing::info_span!(
            "imap",
            session = conn.id,
            peer = %conn.peer,
            tls = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let session = Session::new(
            SessionStream::Plain(conn.stream),
            conn.peer,
            mailstore.clone(),
            options.clone(),
            session_tls.clone(),
            token.clone(),
        );
        session.run().instrument(span)
    })
    .await
}
