//! The `[lmtp]` section of the server's configuration file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// Options of the LMTP listener; part of the server's config file under `[lmtp]`.
///
/// Every field has a default, so an empty `[lmtp]` section (or none) gives a working
/// listener on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmtpOptions {
    /// Addresses to listen on. LMTP has no authentication (RFC 2033 trusts the MTA on
    /// the other end), so keep this on loopback or a private network.
    /// Default: `["127.0.0.1:2424"]`.
    pub listen: Vec<SocketAddr>,
    /// The largest message accepted, in bytes; advertised as `SIZE` and enforced while
    /// the data arrives. Default: 50 MiB.
    pub max_message_size: u64,
    /// Messages larger than this many bytes are spooled to a file in the data
    /// directory (`spool/`) while they arrive, instead of being held in memory, and
    /// are parsed and stored from that file. Default: 1 MiB.
    pub spool_threshold: u64,
    /// Seconds a client may take to send one complete command line (counted from the
    /// start of the line, so a client trickling one byte a second is still closed), and
    /// the longest silence allowed while a message's data arrives. The whole data of
    /// one transaction must also arrive within ten times this, so a client cannot hold
    /// a session open forever by sending a byte just before each idle deadline.
    /// Values below 1 are treated as 1. Default: 300, as RFC 5321 section 4.5.3.2
    /// suggests for the server side.
    pub timeout_secs: u64,
    /// The most recipients accepted in one transaction; further `RCPT`s get
    /// `452 4.5.3` and the client sends them in a later transaction. Default: 1000.
    pub max_recipients: usize,
    /// The name in the greeting and the LHLO reply. Default: the machine's host name,
    /// or `localhost` if it cannot be found.
    pub hostname: Option<String>,
}

impl Default for LmtpOptions {
    fn default() -> Self {
        LmtpOptions {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2424))],
            max_message_size: 50 * 1024 * 1024,
            spool_threshold: 1024 * 1024,
            timeout_secs: 300,
            max_recipients: 1000,
            hostname: None,
        }
    }
}

impl LmtpOptions {
    /// How long a command line, or a silence in the data, may take.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// How long the whole data of one transaction may take to arrive.
    pub(crate) fn data_timeout(&self) -> Duration {
        self.timeout().saturating_mul(10)
    }

    /// The name the server calls itself: the configured one, else the host name.
    pub(crate) fn greeting_name(&self) -> String {
        self.hostname
            .as_deref()
            .and_then(clean_hostname)
            .or_else(system_hostname)
            .unwrap_or_else(|| "localhost".to_owned())
    }
}

/// The host name as the kernel knows it. Reading procfs (with `/etc/hostname` as a
/// fallback) avoids a dependency and an `unsafe` call to `gethostname`.
fn system_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|name| clean_hostname(&name))
}

/// A host name fit for a reply line: trimmed, non-empty, and without spaces or
/// control characters, which would break the greeting's syntax.
fn clean_hostname(name: &str) -> Option<String> {
    let name = name.trim();
    let fits = !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    fits.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults() {
        let options: LmtpOptions = toml::from_str("").unwrap();
        assert_eq!(options.listen, vec!["127.0.0.1:2424".parse().unwrap()]);
        assert_eq!(options.max_message_size, 50 * 1024 * 1024);
        assert_eq!(options.spool_threshold, 1024 * 1024);
        assert_eq!(options.timeout_secs, 300);
        assert_eq!(options.max_recipients, 1000);
        assert_eq!(options.hostname, None);
    }

    #[test]
    fn fields_are_read_and_unknown_ones_refused() {
        let options: LmtpOptions = toml::from_str(
            "listen = [\"[::1]:24\", \"10.0.0.1:2424\"]\n\
             max_message_size = 1000\ntimeout_secs = 0\nhostname = \"mx.example\"\n",
        )
        .unwrap();
        assert_eq!(options.listen.len(), 2);
        assert_eq!(options.max_message_size, 1000);
        assert_eq!(options.timeout(), Duration::from_secs(1));
        assert_eq!(options.greeting_name(), "mx.example");
        assert!(toml::from_str::<LmtpOptions>("max_size = 3\n").is_err());
    }

    #[test]
    fn host_names_are_cleaned() {
        let cases = [
            (" mx.example\n", Some("mx.example")),
            ("", None),
            ("two words", None),
            ("bad\rname", None),
        ];
        for (input, want) in cases {
            assert_eq!(clean_hostname(input).as_deref(), want, "{input:?}");
        }
        let blank = LmtpOptions {
            hostname: Some(" ".into()),
            ..LmtpOptions::default()
        };
        assert!(!blank.greeting_name().is_empty());
    }
}
