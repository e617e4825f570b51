//! Which mailbox nodes a proxy may use, and in which order for a user.

use crate::ProxyOptions;
use evermail_cluster::{ClusterOptions, now_ms, rendezvous_order};
use evermail_meta::{Meta, NodeRecord, NodeState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A node to try: its name (for marking it failed) and the address of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    pub address: String,
}

/// Cheap to clone; every session holds one.
#[derive(Clone)]
pub struct Router(Arc<Inner>);

struct Inner {
    meta: Meta,
    options: ProxyOptions,
    cluster: ClusterOptions,
    /// The nodes judged healthy at the last refresh.
    healthy: RwLock<Vec<NodeRecord>>,
    /// When this proxy last failed to reach each node.
    failed: Mutex<HashMap<String, Instant>>,
    next_any: AtomicUsize,
}

impl Router {
    pub fn new(meta: Meta, options: ProxyOptions, cluster: ClusterOptions) -> Router {
        Router(Arc::new(Inner {
            meta,
            options,
            cluster,
            healthy: RwLock::new(Vec::new()),
            failed: Mutex::new(HashMap::new()),
            next_any: AtomicUsize::new(0),
        }))
    }

    pub fn options(&self) -> &ProxyOptions {
        &self.0.options
    }

    pub fn cluster(&self) -> &ClusterOptions {
        &self.0.cluster
    }

    /// Re-reads membership and probes each candidate's `/readyz`. On a database error
    /// the last known set stays: nodes keep serving while the database recovers.
    pub async fn refresh(&self) {
        let nodes = match self.0.meta.nodes().await {
            Ok(nodes) => nodes,
            Err(error) => {
                tracing::warn!(%error, "cannot read membership; keeping the last known nodes");
                return;
            }
        };
        let now = now_ms();
        let down_after = i64::try_from(self.0.cluster.down_after_ms).unwrap_or(i64::MAX);
        let mut healthy = Vec::new();
        for node in nodes {
            if node.state != NodeState::Active || !node.is_up(now, down_after) {
                continue;
            }
            if let Some(admin) = node.address("admin")
                && !self.ready(admin).await
            {
                continue;
            }
            healthy.push(node);
        }
        let names: Vec<&str> = healthy.iter().map(|n| n.name.as_str()).collect();
        tracing::debug!(healthy = ?names, "membership refreshed");
        metrics::gauge!("evermail_proxy_healthy_nodes").set(healthy.len() as f64);
        *self.0.healthy.write().unwrap_or_else(|e| e.into_inner()) = healthy;
    }

    /// Refreshes every `refresh_ms` until `shutdown`.
    pub async fn run_refresh(self, shutdown: CancellationToken) {
        let period = Duration::from_millis(self.0.options.refresh_ms.max(50));
        loop {
            self.refresh().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    }

    /// A minimal HTTP/1.0 `GET /readyz`: a 200 within the connect timeout.
    async fn ready(&self, admin: &str) -> bool {
        let probe = async {
            let mut stream = TcpStream::connect(admin).await.ok()?;
            stream
                .write_all(b"GET /readyz HTTP/1.0\r\nHost: node\r\n\r\n")
                .await
                .ok()?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.ok()?;
            Some(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
        };
        tokio::time::timeout(self.connect_timeout(), probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.0.options.connect_timeout_ms.max(1))
    }

    /// Whether any node is healthy (the proxy's readiness).
    pub fn has_nodes(&self) -> bool {
        !self
            .0
            .healthy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The nodes serving `protocol` to try for `user`, best first: rendezvous order,
    /// with nodes this proxy failed to reach recently moved to the end (still tried
    /// last, in case they were the only ones). `None` for the user spreads the load
    /// (LMTP).
    pub fn targets(&self, user: Option<&str>, protocol: &str) -> Vec<Target> {
        let healthy = self.0.healthy.read().unwrap_or_else(|e| e.into_inner());
        let ordered: Vec<&NodeRecord> = match user {
            Some(user) => rendezvous_order(user, &healthy),
            None => {
                let start = self.0.next_any.fetch_add(1, Ordering::Relaxed);
                let n = healthy.len().max(1);
                (0..healthy.len())
                    .map(|i| &healthy[(start + i) % n])
                    .collect()
            }
        };
        let hold = Duration::from_millis(self.0.options.failure_hold_ms);
        let failed = self.0.failed.lock().unwrap_or_else(|e| e.into_inner());
        let recently_failed = |name: &str| failed.get(name).is_some_and(|at| at.elapsed() < hold);
        let (mut good, mut bad): (Vec<Target>, Vec<Target>) = (Vec::new(), Vec::new());
        for node in ordered {
            let Some(address) = node.address(protocol) else {
                continue;
            };
            let target = Target {
                node: node.name.clone(),
                address: address.to_string(),
            };
            if recently_failed(&node.name) {
                bad.push(target);
            } else {
                good.push(target);
            }
        }
        good.extend(bad);
        good
    }

    /// Records that this proxy could not use `node`; it goes to the end of every
    /// order for `failure_hold_ms`.
    pub fn mark_failed(&self, node: &str) {
        metrics_failover(node);
        self.0
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_string(), Instant::now());
    }
}

fn metrics_failover(node: &str) {
    tracing::warn!(node, "node failed; trying the next");
    metrics::counter!("evermail_proxy_failovers_total", "node" => node.to_string()).increment(1);
}
