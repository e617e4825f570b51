//! Cluster membership: which mailbox nodes exist, which are up, and which one serves a
//! given user.
//!
//! Every `evermail serve` writes its own row in the metadata database (see
//! `evermail_meta::NodeRecord`) and refreshes it every [`ClusterOptions::heartbeat_ms`]
//! ([`run_heartbeat`]); the answer tells it its state, so a drain set by `evermail node
//! drain` reaches it within one interval. A node whose heartbeat is older than
//! [`ClusterOptions::down_after_ms`] is down for every reader, whatever its row says.
//! Proxies read the rows and order the nodes for a user by rendezvous hashing
//! ([`rendezvous_order`]), so a user's sessions meet on one node while it lives and
//! only the users of a node that joins or leaves move.
//!
//! This crate must not know any protocol or name a database backend.
//!
//! # Layout
//! - `lib.rs`: the `[cluster]` options and the clock.
//! - `heartbeat`: the task a mailbox node runs.
//! - `rendezvous`: the order of nodes for a user.

mod heartbeat;
mod rendezvous;

pub use heartbeat::{HeartbeatSource, run_heartbeat};
pub use rendezvous::rendezvous_order;

use serde::Deserialize;

/// `[cluster]`: membership timing and the secret nodes and proxies share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterOptions {
    /// How often a node refreshes its row, in milliseconds.
    pub heartbeat_ms: u64,
    /// A node whose last heartbeat is older than this (milliseconds) is down for
    /// everyone. Several heartbeats long, so one slow database write is not an outage;
    /// clocks of nodes and proxies must agree to well within it.
    pub down_after_ms: u64,
    /// The secret a proxy proves to a node when it tells the node the address of the
    /// client it speaks for. Without it a node ignores such claims. It never logs
    /// anyone in: the node still checks the user's own password. No spaces (POP3's
    /// `XCLIENT` carries it as one word).
    pub secret: Option<String>,
    /// How often a node reads the HIGHEST MODSEQ of the mailboxes its sessions have
    /// selected, to tell them (IDLE included) of changes made through other nodes
    /// (milliseconds). One query per interval per node.
    pub change_poll_ms: u64,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            heartbeat_ms: 2_000,
            down_after_ms: 10_000,
            secret: None,
            change_poll_ms: 500,
        }
    }
}

impl ClusterOptions {
    /// Refuses settings that parse but cannot work: a secret that IMAP's `ID` or POP3's
    /// `XCLIENT` could not carry as it is, and timings that would call live nodes down.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(secret) = &self.secret
            && (secret.is_empty()
                || !secret
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
        {
            return Err(
                "[cluster] secret must be printable ASCII without spaces, quotes or \
                        backslashes (POP3's XCLIENT carries it as one word)"
                    .into(),
            );
        }
        if self.heartbeat_ms == 0 || self.change_poll_ms == 0 {
            return Err("[cluster] heartbeat_ms and change_poll_ms must be more than 0".into());
        }
        if self.down_after_ms <= self.heartbeat_ms {
            return Err(format!(
                "[cluster] down_after_ms ({}) must be longer than heartbeat_ms ({}), or \
                 every node would be called down between two of its heartbeats",
                self.down_after_ms, self.heartbeat_ms
            ));
        }
        Ok(())
    }

    /// Whether `offered` is the configured secret. Compared in time independent of
    /// where the first difference is, so the answer time does not leak a prefix.
    pub fn secret_matches(&self, offered: &str) -> bool {
        let Some(secret) = &self.secret else {
            return false;
        };
        let (a, b) = (secret.as_bytes(), offered.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0 && !a.is_empty()
    }
}

/// Unix milliseconds by this machine's clock: what heartbeats record and readers
/// compare with.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_the_secret_must_match_exactly() {
        let options: ClusterOptions = toml::from_str("secret = \"s3cret\"").unwrap();
        assert_eq!(options.heartbeat_ms, 2_000);
        for (offered, ok) in [
            ("s3cret", true),
            ("s3cre", false),
            ("s3cretx", false),
            ("", false),
        ] {
            assert_eq!(options.secret_matches(offered), ok, "{offered:?}");
        }
        assert!(!ClusterOptions::default().secret_matches(""));
        assert!(toml::from_str::<ClusterOptions>("secrets = 1").is_err());
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert_eq!(ClusterOptions::default().validate(), Ok(()));
        let good: ClusterOptions = toml::from_str("secret = \"a-long_random.string/42=\"").unwrap();
        assert_eq!(good.validate(), Ok(()));
        for text in [
            "secret = \"\"",
            "secret = \"two words\"",
            "secret = \"quo\\\"te\"",
            "secret = \"back\\\\slash\"",
            "secret = \"tab\\there\"",
            "secret = \"naïve\"",
            "heartbeat_ms = 0",
            "change_poll_ms = 0",
            "heartbeat_ms = 5000\ndown_after_ms = 5000",
        ] {
            let options: ClusterOptions = toml::from_str(text).unwrap();
            assert!(options.validate().is_err(), "{text}");
        }
    }
}
