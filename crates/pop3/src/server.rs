//! The listener: accepts connections and starts one session task each; on shutdown
//! stops accepting and waits for every session to end.

use std::sync::Arc;

use evermail_listener::accept_sessions;
use evermail_mailbox::Mailstore;
use evermail_tls::rustls::ServerConfig;
use evermail_tls::{SessionStream, TlsAcceptor};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Pop3Options;
use crate::session::Session;

/// How a listener uses TLS. (The same three roles as IMAP's listeners; each protocol
/// crate names its own so neither depends on the other.)
#[derive(Debug, Clone)]
pub enum ListenerTls {
    /// Plaintext only; STLS is refused. For tests, or behind a proxy that terminates
    /// TLS.
    Off,
    /// Plaintext that offers STLS (the role of port 110).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (the role of port 995, RFC 8314).
    Implicit(Arc<ServerConfig>),
}

impl ListenerTls {
    /// A short name for logs and metrics: `pop3` or `pop3s`.
    pub fn protocol(&self) -> &'static str {
        match self {
            ListenerTls::Off | ListenerTls::StartTls(_) => "pop3",
            ListenerTls::Implicit(_) => "pop3s",
        }
    }
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
    let protocol = tls.protocol();
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
