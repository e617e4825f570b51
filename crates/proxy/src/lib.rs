//! `evermail proxy`: the front door of a cluster. Clients (IMAP, POP3, LMTP) connect here;
//! the proxy learns the user from the login, picks the mailbox node by rendezvous
//! hashing of the user over the healthy nodes, and from then on copies bytes both
//! ways. It keeps no mail state, so any number of proxies can run side by side.
//!
//! Decisions, and why:
//! - The user's own credentials are passed through to the node, which checks them
//!   (and keeps the failed-login lockout) exactly as for a direct client. Before them
//!   the proxy sends `ID` with the cluster secret and the client's address, so the
//!   node's lockout and logs see the client, not the proxy. The secret therefore only
//!   vouches for an address; it can never log anyone in, and the proxy needs no
//!   account data and spends no CPU on password hashes.
//! - Healthy means: a fresh heartbeat row in state active (membership, re-read every
//!   `refresh_ms`), `/readyz` answering 200 at the proxy's own last probe, and no
//!   failed connection from this proxy in the last `failure_hold_ms`.
//! - LMTP goes to any healthy node (a rotating start). The proxy keeps each
//!   transaction (MAIL, accepted RCPTs, the message) and, when the node fails before
//!   answering, replays it on the next node before answering the client.
//!
//! This crate must not know about mailboxes or storage; it names no backend.
//!
//! # Layout
//! - `router`: membership, health, and the order of nodes to try.
//! - `imap`: the IMAP front (plaintext, STARTTLS, implicit TLS), up to login.
//! - `lmtp`: the LMTP front, transaction by transaction.
//! - `pop3`: the POP3 front (plaintext, STLS, implicit TLS), up to login.

mod imap;
mod lmtp;
mod pop3;
mod router;

pub use imap::serve_imap;
pub use lmtp::serve_lmtp;
pub use pop3::serve_pop3;
pub use router::Router;

use evermail_listener::{Connection, accept_sessions};
use serde::Deserialize;
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Accepts clients of one front (`protocol`, as the metrics and logs name it) until
/// `shutdown`, each session run by `session(connection)` in a span of its own, and
/// logs how it ended: what the IMAP, POP3 and LMTP fronts share.
async fn serve_front<F, Fut>(
    listener: TcpListener,
    protocol: &'static str,
    shutdown: CancellationToken,
    mut session: F,
) -> io::Result<()>
where
    F: FnMut(Connection) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    accept_sessions(listener, protocol, shutdown, move |conn| {
        let span = tracing::info_span!("proxy", protocol, session = conn.id, peer = %conn.peer);
        let run = session(conn);
        async move {
            if let Err(error) = run.await {
                tracing::debug!(%error, "session ended");
            }
        }
        .instrument(span)
    })
    .await
}

/// `[proxy]`: what `evermail proxy` listens on and how it judges nodes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyOptions {
    /// IMAP in plaintext with STARTTLS. Default: `["127.0.0.1:2143"]`.
    pub imap_listen: Vec<SocketAddr>,
    /// IMAP with implicit TLS. Default: `["127.0.0.1:2993"]`.
    pub imaps_listen: Vec<SocketAddr>,
    /// POP3 in plaintext with STLS. Default: `["127.0.0.1:2110"]`.
    pub pop3_listen: Vec<SocketAddr>,
    /// POP3 with implicit TLS. Default: `["127.0.0.1:2995"]`.
    pub pop3s_listen: Vec<SocketAddr>,
    /// LMTP. Default: `["127.0.0.1:2024"]`.
    pub lmtp_listen: Vec<SocketAddr>,
    /// The admin HTTP endpoint (health, readiness, metrics). Default: `127.0.0.1:2080`.
    pub admin_listen: SocketAddr,
    /// How often membership is re-read and nodes' `/readyz` probed (milliseconds).
    pub refresh_ms: u64,
    /// The longest a connection to a node may take before the next node is tried.
    pub connect_timeout_ms: u64,
    /// How long a node this proxy failed to reach is skipped (milliseconds).
    pub failure_hold_ms: u64,
    /// The largest message LMTP accepts, in bytes. Default: 50 MiB.
    pub max_message_size: u64,
    /// Seconds a client that has not logged in may stay silent. Default: 60.
    pub login_timeout_secs: u64,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            imap_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2143))],
            imaps_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2993))],
            pop3_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2110))],
            pop3s_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2995))],
            lmtp_listen: vec![SocketAddr::from(([127, 0, 0, 1], 2024))],
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 2080)),
            refresh_ms: 1_000,
            connect_timeout_ms: 2_000,
            failure_hold_ms: 3_000,
            max_message_size: 50 * 1024 * 1024,
            login_timeout_secs: 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults_and_unknown_fields_are_refused() {
        let options: ProxyOptions = toml::from_str("").unwrap();
        assert_eq!(options, ProxyOptions::default());
        assert!(toml::from_str::<ProxyOptions>("listen = []").is_err());
    }
}
