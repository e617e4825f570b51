//! The listener: accepts connections and starts one session task each; on shutdown
//! stops accepting and waits for every session to end.

use std::sync::Arc;

use evermail_listener::accept_sessions;
use evermail_mailbox::Mailstore;
use evermail_tls::ListenerTls;
use evermail_tls::{SessionStream, TlsAcceptor};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Pop3Options;
use crate::session::Session;

/// A short name for logs and metrics: "pop3" or "pop3s".
fn protocol(tls: &ListenerTls) -> &'static str {
    if tls.is_implicit() { "pop3s" } else { "pop3" }
}

/// Accepts POP3 connections on `listener` until `shutdown` is cancelled, then waits
/// for every session to end and returns.
///
/// On shutdown the listener closes at once; each session finishes the command it is
/// running, answers `-ERR [SYS/TEMP]` to the next one (or at once when it is waiting)
/// and closes without entering the UPDATE state, so no marked message is deleted.
pub async fn serve(
    listener: TcpListener,
    mailstore: Mailstore,
    options: Arc<Pop3Options>,
    tls: ListenerTls,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let token = shutdown.clone();
    let protocol = protocol(&tls);
    let (starttls, implicit) = match tls {
        ListenerTls::Off => (None, None),
        ListenerTls::StartTls(config) => (Some(TlsAcceptor::from(config)), None),
        ListenerTls::Implicit(config) => (None, Some(TlsAcceptor::from(config))),
    };
    accept_sessions(listener, protocol, shutdown, move |conn| {
        let span = tracing::info_span!(
            "pop3",
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
            starttls.clone(),
            implicit.clone(),
            token.clone(),
        );
        session.run().instrument(span)
    })
    .await
}
