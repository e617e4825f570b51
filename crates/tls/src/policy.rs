//! The TLS policy a listener applies, shared by every protocol front end (IMAP, POP3,
//! later submission) so that each means the same thing by the same setting.

use rustls::ServerConfig;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;

/// How a listener uses TLS.
#[derive(Debug, Clone)]
pub enum ListenerTls {
    /// Plaintext only; STARTTLS/STLS is refused. For tests, or behind a proxy that
    /// terminates TLS.
    Off,
    /// Plaintext that offers STARTTLS/STLS (the role of ports 143 and 110).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (the role of ports 993 and 995, RFC 8314).
    Implicit(Arc<ServerConfig>),
}

impl ListenerTls {
    pub fn is_implicit(&self) -> bool {
        matches!(self, ListenerTls::Implicit(_))
    }
}

/// Where a password may travel in the clear: the `plaintext_auth` setting of the
/// `[imap]` and `[pop3]` sections. An encrypted connection may always log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextAuth {
    /// Only from a loopback peer (127.0.0.0/8, ::1).
    Loopback,
    Always,
    Never,
}

impl PlaintextAuth {
    /// Whether a client at `peer` may send a password on a plaintext connection.
    pub fn allows(self, peer: IpAddr) -> bool {
        match self {
            PlaintextAuth::Always => true,
            PlaintextAuth::Never => false,
            // An IPv4 client of a dual-stack socket shows up as ::ffff:127.0.0.1.
            PlaintextAuth::Loopback => peer.to_canonical().is_loopback(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_auth_by_peer() {
        let cases = [
            (PlaintextAuth::Loopback, "127.0.0.1", true),
            (PlaintextAuth::Loopback, "127.8.9.1", true),
            (PlaintextAuth::Loopback, "::1", true),
            (PlaintextAuth::Loopback, "::ffff:127.0.0.1", true),
            (PlaintextAuth::Loopback, "192.0.2.7", false),
            (PlaintextAuth::Loopback, "2001:db8::1", false),
            (PlaintextAuth::Always, "192.0.2.7", true),
            (PlaintextAuth::Never, "127.0.0.1", false),
        ];
        for (policy, peer, want) in cases {
            assert_eq!(
                policy.allows(peer.parse().unwrap()),
                want,
                "{policy:?} {peer}"
            );
        }
    }
}
