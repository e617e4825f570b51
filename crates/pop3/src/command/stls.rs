//! STLS (RFC 2595 section 4), and the handshake an implicit-TLS session starts with.
//!
//! After `+OK` the server reads nothing in plaintext again: whatever the client sent
//! behind STLS is dropped, so a man in the middle cannot append commands that would
//! then run inside the encrypted session (CVE-2011-0411).

use std::io;

use evermail_pop3_proto::Response;
use evermail_tls::TlsAcceptor;

use crate::session::{CmdResult, Flow, Session, State};

impl Session {
    pub(crate) async fn stls(&mut self) -> CmdResult {
        if self.stream.is_tls() {
            self.reply(Response::err("TLS is already active"));
            return Ok(Flow::Continue);
        }
        let Some(acceptor) = self.starttls.take() else {
            self.reply(Response::err("STLS is not available on this listener"));
            return Ok(Flow::Continue);
        };
        self.reply(Response::ok("begin TLS negotiation"));
        self.flush().await?;
        let discarded = self.input.len();
        if discarded > 0 {
            tracing::info!(
                bytes = discarded,
                "discarded plaintext sent after STLS before the handshake"
            );
        }
        self.consume(discarded);
        // A USER given in plaintext is forgotten too: the encrypted session starts
        // from a clean AUTHORIZATION state.
        self.state = State::Authorization { user: None };
        self.handshake(&acceptor).await?;
        Ok(Flow::Continue)
    }

    /// Runs the server side of the TLS handshake, bounded by the autologout timer and
    /// cut short by shutdown. An error means the connection is unusable.
    pub(crate) async fn handshake(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let timeout = self.options.idle_timeout();
        let shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                return Err(io::Error::other("server shutting down during the TLS handshake"));
            }
            done = tokio::time::timeout(timeout, self.stream.start_tls(acceptor)) => match done {
                Ok(result) => result.map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?,
                Err(_) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"));
                }
            },
        }
        let summary = self.stream.tls_summary().unwrap_or_default();
        tracing::Span::current().record("tls", summary.as_str());
        tracing::debug!("TLS established");
        Ok(())
    }

    /// Whether this connection may carry a password: always inside TLS, otherwise as
    /// `plaintext_auth` says for this peer.
    pub(crate) fn password_allowed(&self) -> bool {
        self.stream.is_tls() || self.options.plaintext_auth_allowed(self.peer.ip())
    }
}
