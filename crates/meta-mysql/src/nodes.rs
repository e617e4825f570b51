//! The database nodes: one connection pool per node, which nodes are usable now, and
//! the background probe that decides it.
//!
//! A node is usable when it accepts connections and, if it runs Galera, is Synced and
//! ready (`wsrep_ready = ON`, `wsrep_local_state = 4`): a node outside the Primary
//! component answers every query with error 1047, and a joiner or donor may lag. A node
//! is marked down as soon as a transaction fails on it for a connection reason, and
//! comes back when the probe finds it healthy again.

use crate::MysqlOptions;
use futures_util::future::join_all;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{ConnectOptions, Executor, MySqlPool, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub(crate) struct Node {
    /// `host:port`, for logs; the URL holds a password.
    pub name: String,
    pub pool: MySqlPool,
    options: MySqlConnectOptions,
    up: AtomicBool,
}

pub(crate) struct Nodes {
    pub nodes: Vec<Node>,
    next: AtomicUsize,
    connect_timeout: Duration,
}

impl Nodes {
    pub fn new(options: &MysqlOptions) -> Result<Nodes, String> {
        if options.urls.is_empty() {
            return Err("no database URL is configured (mysql_urls)".into());
        }
        let connect_timeout = Duration::from_millis(options.connect_timeout_ms);
        let mut nodes = Vec::new();
        for url in &options.urls {
            let mut connect = MySqlConnectOptions::from_str(url)
                .map_err(|e| format!("bad database URL {}: {e}", redact(url)))?;
            if let Some(database) = &options.database {
                connect = connect.database(database);
            }
            connect = connect
                .charset("utf8mb4")
                .log_statements(tracing::log::LevelFilter::Trace);
            let name = format!("{}:{}", connect.get_host(), connect.get_port());
            let pool = MySqlPoolOptions::new()
                .max_connections(options.max_connections_per_node)
                .min_connections(0)
                .acquire_timeout(connect_timeout)
                .idle_timeout(Duration::from_secs(60))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Causal reads: a read, and the start of every transaction,
                        // waits until this node has applied every write set the cluster
                        // ordered before it, so a message acknowledged through another
                        // node is visible here. Servers without Galera do not know the
                        // variable (1193), which is fine: they have nothing to wait for.
                        if let Err(e) = conn.execute("SET SESSION wsrep_sync_wait = 1").await
                            && !is_unknown_variable(&e)
                        {
                            return Err(e);
                        }
                        // Fail a blocked transaction quickly; it is retried as a whole.
                        conn.execute("SET SESSION innodb_lock_wait_timeout = 10")
                            .await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(connect.clone());
            nodes.push(Node {
                name,
                pool,
                options: connect,
                up: AtomicBool::new(false),
            });
        }
        Ok(Nodes {
            nodes,
            next: AtomicUsize::new(0),
            connect_timeout,
        })
    }

    /// The next usable node, round robin. When none is marked up, the next node anyway:
    /// the probe may lag behind a recovery, and the attempt's error says what is wrong.
    pub fn pick(&self) -> &Node {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.nodes.len();
        (0..n)
            .map(|i| &self.nodes[(start + i) % n])
            .find(|node| node.up.load(Ordering::Relaxed))
            .unwrap_or(&self.nodes[start % n])
    }

    pub fn mark_down(&self, node: &Node, reason: &str) {
        if node.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %node.name, reason, "database node marked down");
        }
    }

    /// Probes every node at once and records the result; returns each node's problem.
    pub async fn probe_all(&self) -> Vec<Option<String>> {
        self.status_all()
            .await
            .into_iter()
            .map(|r| match r {
                Ok(status) => status.problem(),
                Err(e) => Some(e),
            })
            .collect()
    }

    /// Probes every node at once and records the result; returns what each reported,
    /// or why it could not be asked.
    pub async fn status_all(&self) -> Vec<Result<GaleraStatus, String>> {
        let statuses = join_all(self.nodes.iter().map(|node| self.probe(node))).await;
        let results: Vec<Option<String>> = statuses
            .iter()
            .map(|r| match r {
                Ok(status) => status.problem(),
                Err(e) => Some(e.clone()),
            })
            .collect();
        for (node, result) in self.nodes.iter().zip(&results) {
            let up = result.is_none();
            let was = node.up.swap(up, Ordering::Relaxed);
            match result {
                None if !was => tracing::info!(node = %node.name, "database node is up"),
                Some(reason) if was => {
                    tracing::warn!(node = %node.name, reason, "database node marked down")
                }
                _ => {}
            }
        }
        statuses
    }

    /// Asks one node for its Galera state on a fresh connection (not from the pool, so
    /// a full pool does not look like a dead node).
    async fn probe(&self, node: &Node) -> Result<GaleraStatus, String> {
        let check = async {
            let mut conn = node.options.connect().await.map_err(|e| e.to_string())?;
            let status = galera_status(&mut conn).await.map_err(|e| e.to_string())?;
            let _ = sqlx::Connection::close(conn).await;
            Ok::<_, String>(status)
        };
        match tokio::time::timeout(self.connect_timeout, check).await {
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.connect_timeout.as_millis()
            )),
            Ok(result) => result,
        }
    }

    /// Re-probes every node every `interval` until the `Nodes` are dropped.
    pub fn spawn_prober(nodes: &Arc<Nodes>, interval: Duration) {
        let weak: Weak<Nodes> = Arc::downgrade(nodes);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(nodes) = weak.upgrade() else { return };
                nodes.probe_all().await;
            }
        });
    }
}

/// What a node says about its Galera state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GaleraStatus {
    /// `wsrep_on`; `false` for a plain MariaDB server, which is always usable.
    pub galera: bool,
    pub ready: String,
    pub local_state: String,
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, ...
    pub state_comment: String,
    pub cluster_size: String,
}

impl GaleraStatus {
    pub fn problem(&self) -> Option<String> {
        if !self.galera || (self.ready == "ON" && self.local_state == "4") {
            None
        } else {
            Some(format!(
                "not Synced and ready (wsrep_ready={}, wsrep_local_state={})",
                self.ready, self.local_state
            ))
        }
    }
}

pub(crate) async fn galera_status(
    conn: &mut sqlx::MySqlConnection,
) -> Result<GaleraStatus, sqlx::Error> {
    let on = sqlx::query("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        .fetch_optional(&mut *conn)
        .await?;
    let galera = match on {
        Some(row) => text(&row, 1)? == "ON",
        None => false,
    };
    let mut status = GaleraStatus {
        galera,
        ready: String::new(),
        local_state: String::new(),
        state_comment: String::new(),
        cluster_size: String::new(),
    };
    if !galera {
        return Ok(status);
    }
    let rows = sqlx::query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN
            ('wsrep_ready', 'wsrep_local_state', 'wsrep_local_state_comment',
             'wsrep_cluster_size')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let value = text(&row, 1)?;
        match text(&row, 0)?.to_ascii_lowercase().as_str() {
            "wsrep_ready" => status.ready = value,
            "wsrep_local_state" => status.local_state = value,
            "wsrep_local_state_comment" => status.state_comment = value,
            "wsrep_cluster_size" => status.cluster_size = value,
            _ => {}
        }
    }
    Ok(status)
}

/// Reads a text column as bytes: sqlx refuses to decode `String` from columns with a
/// binary collation (`utf8mb4_bin`, which every evermail table uses).
pub(crate) fn text(row: &sqlx::mysql::MySqlRow, column: usize) -> Result<String, sqlx::Error> {
    let bytes: Vec<u8> = row.try_get(column)?;
    String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn is_unknown_variable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|m| m.number() == 1193))
}

/// A URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords() {
        for (url, want) in [
            (
                "mysql://evermail:secret@127.0.0.1:33061/evermail",
                "mysql://evermail:***@127.0.0.1:33061/evermail",
            ),
            (
                "mysql://evermail@db/evermail",
                "mysql://evermail@db/evermail",
            ),
            ("mysql://db/evermail", "mysql://db/evermail"),
        ] {
            assert_eq!(redact(url), want);
        }
    }

    #[test]
    fn only_synced_and_ready_galera_nodes_are_usable() {
        let status = |galera, ready: &str, state: &str| GaleraStatus {
            galera,
            ready: ready.into(),
            local_state: state.into(),
            state_comment: String::new(),
            cluster_size: "3".into(),
        };
        assert_eq!(status(true, "ON", "4").problem(), None);
        assert!(status(true, "OFF", "4").problem().is_some());
        assert!(status(true, "ON", "2").problem().is_some(), "a donor lags");
        assert_eq!(status(false, "", "").problem(), None);
    }
}
