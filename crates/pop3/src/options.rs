//! The `[pop3]` section of the server's configuration file.

use evermail_tls::PlaintextAuth;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Options of the POP3 listeners; part of the server's config file under `[pop3]`.
///
/// Every field has a default, so an empty `[pop3]` section (or none) gives working
/// listeners on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Options {
    /// Addresses to listen on in plaintext, offering STLS (the role of port 110).
    /// Default: `["127.0.0.1:1110"]`.
    pub listen: Vec<SocketAddr>,
    /// Addresses to listen on with TLS from the first byte (the role of port 995, RFC
    /// 8314). The certificate comes from the `[tls]` section.
    /// Default: `["127.0.0.1:1995"]`.
    pub tls_listen: Vec<SocketAddr>,
    /// Seconds a client may stay silent before the session is closed (without deleting
    /// anything). RFC 1939 section 3 asks for at least 10 minutes; smaller values are
    /// accepted for tests and trusted setups. Default: 600.
    pub idle_timeout_secs: u64,
    /// Where USER/PASS and AUTH PLAIN may send a password over an unencrypted
    /// connection: `"loopback"` (only from a loopback peer), `"always"` or `"never"`.
    /// Elsewhere CAPA offers neither and both answer `-ERR [AUTH]` until the client has
    /// done STLS. Encrypted connections may always log in. Default: `"loopback"`.
    pub plaintext_auth: PlaintextAuth,
    /// Milliseconds to wait before answering a failed login, to slow down password
    /// guessing. Only the failing session waits. Default: 1000.
    pub auth_failure_delay_ms: u64,
    /// The cluster secret (`[cluster] secret`, copied here by the server, never read
    /// from `[pop3]`): a proxy that sends it in `XCLIENT` before login names the
    /// client's address, which the failed-login lockout and the logs then use. It
    /// never logs anyone in.
    #[serde(skip)]
    pub proxy_secret: Option<String>,
}

impl Default for Pop3Options {
    fn default() -> Self {
        Pop3Options {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1110))],
            tls_listen: vec![SocketAddr::from(([127, 0, 0, 1], 1995))],
            idle_timeout_secs: 600,
            plaintext_auth: PlaintextAuth::Loopback,
            auth_failure_delay_ms: 1000,
            proxy_secret: None,
        }
    }
}

impl Pop3Options {
    /// The autologout timer (at least one second).
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
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
        let options: Pop3Options = toml::from_str("").unwrap();
        assert_eq!(options.listen, vec!["127.0.0.1:1110".parse().unwrap()]);
        assert_eq!(options.tls_listen, vec!["127.0.0.1:1995".parse().unwrap()]);
        assert_eq!(options.idle_timeout(), Duration::from_secs(600));
        assert_eq!(options.plaintext_auth, PlaintextAuth::Loopback);
        assert_eq!(options.auth_failure_delay(), Duration::from_secs(1));
    }

    #[test]
    fn fields_are_read_and_unknown_ones_refused() {
        let options: Pop3Options = toml::from_str(
            "listen = [\"[::]:110\"]\nidle_timeout_secs = 0\nplaintext_auth = \"never\"\n",
        )
        .unwrap();
        assert_eq!(options.idle_timeout(), Duration::from_secs(1));
        assert!(!options.plaintext_auth_allowed("127.0.0.1".parse().unwrap()));
        assert!(toml::from_str::<Pop3Options>("timeout = 3\n").is_err());
        assert!(toml::from_str::<Pop3Options>("plaintext_auth = \"maybe\"\n").is_err());
    }

    #[test]
    fn loopback_peers_may_log_in_by_default() {
        let options = Pop3Options::default();
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
