//! The `[imap]` section of the server's configuration file.

use evermail_tls::PlaintextAuth;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Options of the IMAP listener; part of the server's config file under `[imap]`.
///
/// Every field has a default, so an empty `[imap]` section (or none) gives a working
/// listener on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapOptions {
    /// Addresses to listen on in plaintext, offering STARTTLS (the role of port 143).
    /// Default: `["127.0.0.1:1143"]`.
    pub listen: Vec<SocketAddr>,
    /// Addresses to listen on with TLS from the first byte (implicit TLS, the role of
    /// port 993, RFC 8314). The certificate comes from the `[tls]` section.
    /// Default: `["127.0.0.1:1993"]`.
    pub tls_listen: Vec<SocketAddr>,
    /// Seconds an authenticated client may stay silent (IDLE included) before it is
    /// logged out. RFC 9051 section 5.4 asks for at least 30 minutes; smaller values
    /// are accepted for tests and trusted setups. A client that has not logged in yet
    /// is given 30 seconds at most. Default: 1800.
    pub idle_timeout_secs: u64,
    /// The largest message APPEND accepts, in bytes; advertised as `APPENDLIMIT`.
    /// Default: 50 MiB.
    pub max_message_size: u64,
    /// Where LOGIN and AUTHENTICATE PLAIN may send a password over an unencrypted
    /// connection: `"loopback"` (only from a loopback peer), `"always"` or `"never"`.
    /// Elsewhere the server advertises `LOGINDISABLED` and refuses both with
    /// `NO [PRIVACYREQUIRED]` until the client has done STARTTLS. Connections that
    /// are encrypted (implicit TLS, or after STARTTLS) may always log in.
    /// Default: `"loopback"`.
    pub plaintext_auth: PlaintextAuth,
    /// Milliseconds to wait before answering a failed login, to slow down password
    /// guessing. Only the failing session waits. Default: 1000.
    pub auth_failure_delay_ms: u64,
    /// The cluster secret (`[cluster] secret`, copied here by the server, never read
    /// from `[imap]`): a client that sends it in `ID` as `x-evermail-proxy` is a proxy,
    /// and its `x-originating-ip` and `x-originating-port` become the address the
    /// failed-login lockout and the logs use. It never logs anyone in.
    #[serde(skip)]
    pub proxy_secret: Option<String>,
}

impl Default for ImapOptions {
    fn default() -> Self {
        ImapOptions {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1143))],
            tls_listen: vec![SocketAddr::from(([127, 0, 0, 1], 1993))],
            idle_timeout_secs: 1800,
            max_message_size: 50 * 1024 * 1024,
            plaintext_auth: PlaintextAuth::Loopback,
            auth_failure_delay_ms: 1000,
            proxy_secret: None,
        }
    }
}

/// How long a client that has not authenticated may stay silent.
const PRE_AUTH_TIMEOUT: Duration = Duration::from_secs(30);

impl ImapOptions {
    /// The autologout timer of an authenticated session (at least one second).
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// The autologout timer before authentication: never longer than afterwards.
    pub(crate) fn pre_auth_timeout(&self) -> Duration {
        PRE_AUTH_TIMEOUT.min(self.idle_timeout())
    }

    pub(crate) fn auth_failure_delay(&self) -> Duration {
        Duration::from_millis(self.auth_failure_delay_ms)
    }

    /// Whether a client at `peer` may send a password on a plaintext connection (an
    /// encrypted one always may).
    pub(crate) fn plaintext_auth_allowed(&self, peer: IpAddr) -> bool {
        self.plaintext_auth.allows(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults() {
        let options: ImapOptions = toml::from_str("").unwrap();
        assert_eq!(options.listen, vec!["127.0.0.1:1143".parse().unwrap()]);
        assert_eq!(options.tls_listen, vec!["127.0.0.1:1993".parse().unwrap()]);
        assert_eq!(options.idle_timeout_secs, 1800);
        assert_eq!(options.max_message_size, 50 * 1024 * 1024);
        assert_eq!(options.plaintext_auth, PlaintextAuth::Loopback);
        assert_eq!(options.pre_auth_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn fields_are_read_and_unknown_ones_refused() {
        let options: ImapOptions = toml::from_str(
            "listen = [\"[::]:143\"]\nidle_timeout_secs = 5\nplaintext_auth = \"always\"\n",
        )
        .unwrap();
        assert_eq!(options.pre_auth_timeout(), Duration::from_secs(5));
        assert!(options.plaintext_auth_allowed("192.0.2.1".parse().unwrap()));
        assert!(toml::from_str::<ImapOptions>("idle_timeout = 3\n").is_err());
        assert!(toml::from_str::<ImapOptions>("plaintext_auth = \"sometimes\"\n").is_err());
    }

    #[test]
    fn loopback_peers_may_log_in_by_default() {
        let options = ImapOptions::default();
        let cases = [
            ("127.0.0.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("192.0.2.1", false),
            ("2001:db8::1", false),
        ];
        for (peer, want) in cases {
            assert_eq!(
                options.plaintext_auth_allowed(peer.parse().unwrap()),
                want,
                "{peer}"
            );
        }
    }
}
