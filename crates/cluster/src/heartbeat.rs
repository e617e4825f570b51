//! The heartbeat a mailbox node runs: write its row every interval, and pass on the
//! state the database answers with.

use crate::ClusterOptions;
use evermail_meta::{Meta, NodeHeartbeat, NodeState};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the node says at each beat (its load changes between beats).
pub type HeartbeatSource = Box<dyn Fn() -> NodeHeartbeat + Send + Sync>;

/// Writes the node's row now and then every `heartbeat_ms` until `shutdown`, sending
/// the state the database holds for it to `state` whenever it changes. A failed write
/// is logged and retried at the next beat: the node keeps serving, and others see it
/// down only if the database stays unreachable for `down_after_ms`.
pub async fn run_heartbeat(
    meta: Meta,
    source: HeartbeatSource,
    options: ClusterOptions,
    state: watch::Sender<NodeState>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(Duration::from_millis(options.heartbeat_ms.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let beat = source();
        let name = beat.name.clone();
        match meta.node_heartbeat(beat, crate::now_ms()).await {
            Ok(row) => {
                if failing {
                    tracing::info!(node = %name, "heartbeat written again");
                    failing = false;
                }
                state.send_if_modified(|current| {
                    let changed = *current != row.state;
                    if changed {
                        tracing::info!(node = %name, state = row.state.as_str(), "node state changed");
                    }
                    *current = row.state;
                    changed
                });
            }
            Err(error) => {
                metrics::counter!("evermail_heartbeat_failures_total").increment(1);
                if !failing {
                    tracing::warn!(node = %name, %error, "heartbeat not written");
                }
                failing = true;
            }
        }
    }
}
