//! STARTTLS (RFC 9051 section 6.2.1, RFC 3501 section 6.2.1), and the handshake an
//! implicit-TLS session starts with.
//!
//! After the tagged `OK` the server reads nothing in plaintext again: whatever the
//! client sent behind STARTTLS is dropped, so a man in the middle cannot append
//! commands that would then run inside the encrypted session (CVE-2011-0411).

use std::io;

use evermail_imap_proto::response::{Code, StatusResponse};
use evermail_tls::TlsAcceptor;

use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn starttls(&mut self, tag: &str) -> CmdResult {
        if self.stream.is_tls() {
            return Err(CmdError::bad("TLS is already active"));
        }
        let Some(acceptor) = self.starttls.take() else {
            return Err(CmdError::no(
                Code::Cannot,
                "TLS is not available on this listener",
            ));
        };
        self.write_status(StatusResponse::ok(tag, "Begin TLS negotiation now"));
        self.flush().await?;
        let discarded = self.input.len();
        if discarded > 0 {
            tracing::info!(
                bytes = discarded,
                "discarded plaintext sent after STARTTLS before the handshake"
            );
        }
        self.consume(discarded);
        self.handshake(&acceptor).await?;
        Ok(Done::Replied)
    }

    /// Runs the server side of the TLS handshake, bounded by the pre-login timer and
    /// cut short by shutdown. An error means the connection is unusable.
    pub(crate) async fn handshake(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let timeout = self.options.pre_auth_timeout();
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

    /// Whether this connection may carry a password: always inside TLS, otherwise
    /// as `plaintext_auth` says for this peer.
    pub(crate) fn password_allowed(&self) -> bool {
        self.stream.is_tls() || self.options.plaintext_auth_allowed(self.peer.ip())
    }
}
