//! `evermail node list|drain|undrain|forget`: the mailbox nodes of the cluster, as
//! their heartbeats in the metadata database describe them.

use crate::config::Config;
use crate::storage;
use anyhow::bail;
use clap::Subcommand;
use evermail_meta::{NodeRecord, NodeState};
use std::path::Path;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Every node with its state, whether it is up (heartbeat younger than
    /// [cluster] down_after_ms), open sessions, version and addresses.
    List,
    /// Stop a node taking sessions: within one heartbeat it closes its listeners,
    /// ends its IMAP sessions with BYE [UNAVAILABLE] (clients reconnect, through a
    /// proxy to another node), lets deliveries in progress finish, and answers
    /// /readyz with 503. It keeps running, drained, until undrained or stopped.
    Drain { name: String },
    /// Let a drained node take sessions again (within one heartbeat).
    Undrain { name: String },
    /// Remove a node that is gone for good from the list. A node still up is
    /// refused unless --force (it would come back at its next heartbeat anyway).
    Forget {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(command: NodeCommand, config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    let meta = storage::open_meta(config, data_dir).await?;
    let now = evermail_cluster::now_ms();
    let down_after = i64::try_from(config.cluster.down_after_ms).unwrap_or(i64::MAX);
    match command {
        NodeCommand::List => {
            let nodes = meta.nodes().await?;
            if nodes.is_empty() {
                println!("no nodes (a running `evermail serve` registers within seconds)");
            }
            for node in nodes {
                println!("{}", describe(&node, now, down_after));
            }
            Ok(())
        }
        NodeCommand::Drain { name } => {
            meta.set_node_state(&name, NodeState::Draining).await?;
            println!("node {name}: draining (takes effect at its next heartbeat)");
            Ok(())
        }
        NodeCommand::Undrain { name } => {
            meta.set_node_state(&name, NodeState::Active).await?;
            println!("node {name}: active (takes effect at its next heartbeat)");
            Ok(())
        }
        NodeCommand::Forget { name, force } => {
            let node = meta.nodes().await?.into_iter().find(|n| n.name == name);
            let Some(node) = node else {
                bail!("no node named {name:?}");
            };
            if node.is_up(now, down_after) && !force {
                bail!(
                    "node {name} is up (last heartbeat {} ms ago): stop it first, or \
                     --force (it registers again at its next heartbeat)",
                    now - node.heartbeat_at
                );
            }
            meta.forget_node(&name).await?;
            println!("node {name}: forgotten");
            Ok(())
        }
    }
}

/// One line per node: `name state up|down sessions=N version=V heartbeat=Nms ago
/// imap=host:port ...`.
fn describe(node: &NodeRecord, now: i64, down_after: i64) -> String {
    let up = if node.is_up(now, down_after) {
        "up"
    } else {
        "down"
    };
    let addresses: Vec<String> = node
        .addresses
        .iter()
        .map(|a| format!("{}={}", a.protocol, a.address))
        .collect();
    format!(
        "{} {} {up} sessions={} version={} heartbeat={}ms-ago {}",
        node.name,
        node.state.as_str(),
        node.sessions,
        node.version,
        now.saturating_sub(node.heartbeat_at),
        addresses.join(" ")
    )
}
