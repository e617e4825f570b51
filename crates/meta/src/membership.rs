//! Rows of cluster membership: every mailbox node (`evermail serve`) writes its own row
//! and refreshes it with a heartbeat; proxies and the `evermail node` CLI read them.
//!
//! Times are Unix milliseconds from the clock of the node that wrote them, and "up" is
//! judged with the reader's clock, so clocks must agree to well within the heartbeat
//! timeout (NTP does; the default timeout is 10 s).

use serde::{Deserialize, Serialize};

/// A lease's row (see `MetaBackend::try_lease`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    /// Unix milliseconds when it ends unless renewed.
    pub expires_at: i64,
}

/// Whether a node takes new sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    Active,
    /// Told to stop taking sessions: it ends the ones it has and takes no new ones.
    Draining,
}

impl NodeState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
        }
    }

    pub fn parse(text: &str) -> Option<NodeState> {
        match text {
            "active" => Some(NodeState::Active),
            "draining" => Some(NodeState::Draining),
            _ => None,
        }
    }
}

/// One address a node serves a protocol on, as its listener bound it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// `imap`, `imaps`, `pop3`, `pop3s`, `lmtp` or `admin`, as in the `listening` lines.
    pub protocol: String,
    /// `host:port`.
    pub address: String,
}

/// What a node says about itself at every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHeartbeat {
    /// Unique in the cluster; the row's key. A restarted node keeps its name and row.
    pub name: String,
    /// Differs for every process, so two processes started with one name show up as
    /// the row changing hands.
    pub instance: String,
    pub addresses: Vec<NodeAddress>,
    /// The evermail version the node runs.
    pub version: String,
    /// Open sessions (all protocols): the node's load.
    pub sessions: u32,
    /// Unix milliseconds when the process started.
    pub started_at: i64,
}

/// A node's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub instance: String,
    pub addresses: Vec<NodeAddress>,
    pub version: String,
    pub state: NodeState,
    pub sessions: u32,
    pub started_at: i64,
    /// Unix milliseconds of the last heartbeat.
    pub heartbeat_at: i64,
}

impl NodeRecord {
    /// Whether the node's last heartbeat is younger than `timeout_ms` at `now_ms`. A
    /// node that stopped heart-beating is down for every reader at the same moment,
    /// whatever its state says.
    pub fn is_up(&self, now_ms: i64, timeout_ms: i64) -> bool {
        now_ms.saturating_sub(self.heartbeat_at) < timeout_ms
    }

    /// The address the node serves `protocol` on, if it does.
    pub fn address(&self, protocol: &str) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.protocol == protocol)
            .map(|a| a.address.as_str())
    }
}

/// The addresses as a backend stores them (a JSON array).
pub fn encode_addresses(addresses: &[NodeAddress]) -> String {
    serde_json::to_string(addresses).unwrap_or_else(|_| "[]".into())
}

/// Reads what [`encode_addresses`] wrote; `None` for text it did not write.
pub fn decode_addresses(text: &str) -> Option<Vec<NodeAddress>> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_up_until_its_heartbeat_is_timeout_old() {
        let node = NodeRecord {
            name: "a".into(),
            instance: "i".into(),
            addresses: vec![],
            version: "0".into(),
            state: NodeState::Active,
            sessions: 0,
            started_at: 0,
            heartbeat_at: 1_000,
        };
        // (now, up)
        for (now, up) in [(1_000, true), (10_999, true), (11_000, false), (500, true)] {
            assert_eq!(node.is_up(now, 10_000), up, "at {now}");
        }
    }

    #[test]
    fn addresses_round_trip() {
        let addresses = vec![NodeAddress {
            protocol: "imap".into(),
            address: "127.0.0.1:143".into(),
        }];
        assert_eq!(
            decode_addresses(&encode_addresses(&addresses)),
            Some(addresses)
        );
        assert_eq!(decode_addresses("imap=1"), None);
        for state in [NodeState::Active, NodeState::Draining] {
            assert_eq!(NodeState::parse(state.as_str()), Some(state));
        }
    }
}
