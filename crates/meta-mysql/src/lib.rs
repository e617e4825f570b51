//! The MariaDB/Galera backend of the metadata store: the same tables and the same
//! answers as the SQLite backend, over a cluster of database nodes that all accept
//! writes, so no database server is a single point of failure.
//!
//! How it stays correct under Galera's isolation (optimistic, certified at commit):
//! - Every trait method is one transaction (migrations aside), replayed as a whole by
//!   `retry::with_retry` when Galera reports a certification conflict (1213), a lock
//!   wait times out, or the node fails; see that function for why replay is safe.
//! - UIDs and MODSEQs come from `UPDATE mailboxes SET uidnext = uidnext + 1 ...` and a
//!   read of the row this transaction just locked; never from AUTO_INCREMENT and never
//!   from a plain SELECT followed by a write.
//! - A transaction can be rolled back by Galera without being told (see
//!   `MysqlMeta::write`): its later statements then ran outside it, and the counter
//!   value it read was handed out again (a lost update, measured on the hot mailbox).
//!   Every write transaction therefore runs with autocommit off and checks, just before
//!   COMMIT, that the savepoint it set after BEGIN still exists; if not, it is replayed.
//! - Each allocation is also written under a key that two holders of the same value
//!   would share: the `(mailbox_id, uid)` primary key of `messages` for a UID, and
//!   `(mailbox_id, modseq)` of `modseq_allocations` for a MODSEQ. A duplicate there
//!   (1062) is treated like a certification conflict: the whole transaction is replayed
//!   with fresh counters.
//! - `insert_message` gives every call a random delivery id, stored with the message
//!   under a unique key. A replay after a connection lost during COMMIT first looks for
//!   that id, so a message is never delivered twice.
//! - Every session sets `wsrep_sync_wait = 1`: reads wait until the node has applied
//!   everything committed before them, so a delivery acknowledged through one node is
//!   seen by a session reading through another.
//!
//! Connections: one pool per configured node; transactions go round robin to the nodes
//! that are up. A node is taken out on a connection error or when it is not Synced and
//! ready, and a background probe puts it back (see `nodes`).
//!
//! This crate must not be named by anything but `server`, and holds no mail logic.
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), evermail_meta::MetaError> {
//! use evermail_meta_mysql::{MysqlMeta, MysqlOptions};
//! let meta = MysqlMeta::connect(&MysqlOptions {
//!     urls: vec![
//!         "mysql://evermail:secret@db1:3306/evermail".into(),
//!         "mysql://evermail:secret@db2:3306/evermail".into(),
//!         "mysql://evermail:secret@db3:3306/evermail".into(),
//!     ],
//!     ..MysqlOptions::default()
//! })
//! .await?;
//! let meta = evermail_meta::Meta::new(meta);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `schema`: versioned, re-runnable migrations.
//! - `nodes`: per-node pools, health, the probe.
//! - `retry`: error classification and the bounded replay loop.
//! - `rows`: the statements of each transaction and the row decoders.
//! - `rais`: copy states, the store registry, repair and garbage collection.
//! - this file: [`MysqlOptions`], [`MysqlMeta`] and its [`MetaBackend`] implementation.

mod membership;
mod nodes;
mod rais;
mod rename;
mod retry;
mod rows;
mod schema;

use async_trait::async_trait;
use evermail_meta::*;
use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid};
use futures_util::future::BoxFuture;
use nodes::{Node, Nodes};
use retry::{Retry, RetryPolicy, TxError, commit_error, db, with_retry};
use rows::*;
use serde::Deserialize;
use sqlx::{Connection, MySqlConnection};
use std::sync::Arc;
use std::time::Duration;

pub use evermail_meta::schema::SchemaVersion;
pub use nodes::redact as redact_url;
pub use schema::latest_version;

/// How to reach the database cluster, in `[metadata]` of the config file.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlOptions {
    /// One URL per database node, `mysql://user:password@host:port/database`. Every node
    /// of a Galera cluster accepts writes; list them all so that losing one loses
    /// nothing but its connections.
    pub urls: Vec<String>,
    /// Overrides the database named in the URLs (tests use a fresh one per test).
    pub database: Option<String>,
    /// The most connections kept open to each node.
    pub max_connections_per_node: u32,
    /// How long to wait for a connection to a node (and for a probe's answer) before
    /// trying another node, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How often every node's health is checked, in milliseconds. A node marked down
    /// after an error gets transactions again once a probe finds it Synced.
    pub probe_interval_ms: u64,
    /// How many times one transaction is tried before the caller gets `Unavailable`
    /// (and an LMTP client a 451, so the MTA tries again later).
    pub max_attempts: u32,
    /// The longest pause between two attempts, in milliseconds; pauses start at a few
    /// milliseconds and double, with jitter.
    pub max_backoff_ms: u64,
}

impl Default for MysqlOptions {
    fn default() -> MysqlOptions {
        MysqlOptions {
            urls: Vec::new(),
            database: None,
            max_connections_per_node: 16,
            connect_timeout_ms: 3000,
            probe_interval_ms: 2000,
            max_attempts: 20,
            max_backoff_ms: 500,
        }
    }
}

impl std::fmt::Debug for MysqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| nodes::redact(u)).collect();
        f.debug_struct("MysqlOptions")
            .field("urls", &urls)
            .field("database", &self.database)
            .field("max_connections_per_node", &self.max_connections_per_node)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("probe_interval_ms", &self.probe_interval_ms)
            .field("max_attempts", &self.max_attempts)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .finish()
    }
}

/// What one database node reports, for `evermail db status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// `host:port`.
    pub node: String,
    /// `None` when the node is usable, else why not.
    pub problem: Option<String>,
    /// Whether the node answered at all.
    pub reachable: bool,
    /// Whether it runs Galera (`wsrep_on`); a plain MariaDB server is a cluster of one.
    pub galera: bool,
    /// `wsrep_local_state_comment` (Synced, Donor/Desynced, Joining, ...); empty when
    /// unreachable or not Galera.
    pub state: String,
    /// `wsrep_cluster_size` as this node sees it; empty when unreachable or not Galera.
    pub cluster_size: String,
}

/// The MariaDB/Galera metadata backend.
pub struct MysqlMeta {
    nodes: Arc<Nodes>,
    policy: RetryPolicy,
}

impl MysqlMeta {
    /// Connects to the nodes that answer, brings the schema up to date, and starts the
    /// background health probe. Fails when no node is usable.
    pub async fn connect(options: &MysqlOptions) -> Result<MysqlMeta, MetaError> {
        let meta = MysqlMeta::connect_without_migrating(options).await?;
        meta.migrate().await?;
        Ok(meta)
    }

    /// Connects to the nodes that answer and starts the background health probe, but
    /// leaves the schema as it is: `evermail serve` then checks it with
    /// [`MysqlMeta::check_schema`], and `evermail db migrate` calls
    /// [`MysqlMeta::migrate`]. Fails when no node is usable.
    pub async fn connect_without_migrating(options: &MysqlOptions) -> Result<MysqlMeta, MetaError> {
        let nodes =
            Arc::new(Nodes::new(options).map_err(|e| MetaError::new(ErrorKind::Invalid, e))?);
        let problems = nodes.probe_all().await;
        if problems.iter().all(Option::is_some) {
            let why: Vec<String> = nodes
                .nodes
                .iter()
                .zip(&problems)
                .map(|(n, p)| format!("{}: {}", n.name, p.as_deref().unwrap_or("")))
                .collect();
            return Err(MetaError::new(
                ErrorKind::Unavailable,
                format!("no database node is usable ({})", why.join("; ")),
            ));
        }
        Nodes::spawn_prober(
            &nodes,
            Duration::from_millis(options.probe_interval_ms.max(100)),
        );
        Ok(MysqlMeta {
            nodes,
            policy: RetryPolicy {
                max_attempts: options.max_attempts.max(1),
                first_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(options.max_backoff_ms.max(5)),
            },
        })
    }

    /// Applies every migration the database lacks; returns the schema version before
    /// and after. Refuses a database whose schema is newer than this build knows and
    /// not compatible with it.
    pub async fn migrate(&self) -> Result<(i64, i64), MetaError> {
        let before = self.schema_version().await?;
        // Migrations are re-runnable statement by statement (see `schema`), so a replay
        // after any failure is safe.
        let after = self
            .on_node(true, |conn, _| Box::pin(schema::migrate(conn)))
            .await?;
        Ok((before, after))
    }

    /// Checks the database's schema for a node about to serve: the one this build
    /// knows, or a newer one compatible with it (a rolling upgrade's expand step, see
    /// `evermail_meta::schema`). A newer incompatible one is refused, an older one asks
    /// for `evermail db migrate`. Returns the version.
    pub async fn check_schema(&self) -> Result<i64, MetaError> {
        let schema = self.schema().await?;
        schema.check_runnable(latest_version())?;
        let current = schema.version;
        if current < latest_version() {
            return Err(MetaError::new(
                ErrorKind::Invalid,
                format!(
                    "the database schema is version {current}, older than this evermail \
                     needs ({}); run `evermail db migrate` once (from any node), then \
                     start the nodes",
                    latest_version()
                ),
            ));
        }
        Ok(current)
    }

    /// The schema version of the database; 0 before the first migration.
    pub async fn schema_version(&self) -> Result<i64, MetaError> {
        self.on_node(true, |conn, _| Box::pin(schema::current_version(conn)))
            .await
    }

    /// The database's schema: its version and the oldest build compatible with it.
    pub async fn schema(&self) -> Result<SchemaVersion, MetaError> {
        self.on_node(true, |conn, _| Box::pin(schema::current_schema(conn)))
            .await
    }

    /// Probes every node now and reports what each says.
    pub async fn node_status(&self) -> Vec<NodeStatus> {
        let statuses = self.nodes.status_all().await;
        self.nodes
            .nodes
            .iter()
            .zip(statuses)
            .map(|(n, status)| match status {
                Ok(s) => NodeStatus {
                    node: n.name.clone(),
                    problem: s.problem(),
                    reachable: true,
                    galera: s.galera,
                    state: s.state_comment,
                    cluster_size: s.cluster_size,
                },
                Err(e) => NodeStatus {
                    node: n.name.clone(),
                    problem: Some(e),
                    reachable: false,
                    galera: false,
                    state: String::new(),
                    cluster_size: String::new(),
                },
            })
            .collect()
    }

    /// Runs `f` on a connection of a usable node, outside any transaction, replaying it
    /// on another node after failures `with_retry` allows.
    async fn on_node<T, F>(&self, replay_unknown_outcome: bool, f: F) -> Result<T, MetaError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut MySqlConnection, u32) -> BoxFuture<'c, Result<T, TxError>>
            + Send
            + Sync,
    {
        with_retry(self.policy, replay_unknown_outcome, |attempt| {
            let f = &f;
            async move {
                let node = self.nodes.pick();
                let result = async {
                    let mut conn = node.pool.acquire().await.map_err(db)?;
                    f(&mut conn, attempt).await
                }
                .await;
                self.note_failure(node, &result);
                result
            }
        })
        .await
    }

    /// Runs `f` as one transaction on a usable node and commits it, replaying the whole
    /// transaction after failures `with_retry` allows. `f` gets the attempt number.
    ///
    /// Guarded against a rollback nobody is told about. Galera's applier rolls back a
    /// local transaction that holds a lock a replicated write set needs (a brute-force
    /// abort), and the next statement should then fail with 1213. Measured on MariaDB
    /// 10.11 with sqlx's prepared statements, it sometimes does not: a statement returns
    /// an ordinary (or empty) result, the connection is back in autocommit mode, every
    /// later statement of the "transaction" commits on its own, and COMMIT succeeds with
    /// nothing to commit. The transaction's counter increment is gone while its UID or
    /// MODSEQ is used anyway: the lost update the backstops in `rows` catch when they
    /// can. So each transaction runs with autocommit off (statements after such a
    /// rollback join a new transaction instead of committing one by one) and sets a
    /// savepoint right after BEGIN; if that savepoint is gone just before COMMIT (1305),
    /// the transaction was rolled back, and it is rolled back again and replayed.
    async fn write<T, F>(&self, replay_unknown_outcome: bool, f: F) -> Result<T, MetaError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut MySqlConnection, u32) -> BoxFuture<'c, Result<T, TxError>>
            + Send
            + Sync,
    {
        with_retry(self.policy, replay_unknown_outcome, |attempt| {
            let f = &f;
            async move {
                let node = self.nodes.pick();
                let result = async {
                    let mut conn = Checkout(node.pool.acquire().await.map_err(db)?, false);
                    sqlx::Executor::execute(&mut *conn, "SET autocommit = 0")
                        .await
                        .map_err(db)?;
                    let mut tx = conn.begin().await.map_err(db)?;
                    sqlx::Executor::execute(&mut *tx, "SAVEPOINT evermail_tx")
                        .await
                        .map_err(db)?;
                    let outcome = match f(&mut tx, attempt).await {
                        Ok(value) => match still_open(&mut tx).await {
                            Ok(true) => Ok(value),
                            Ok(false) => Err(silently_rolled_back()),
                            Err(e) => Err(e),
                        },
                        // A final error may itself come from such a rollback (a row the
                        // transaction had just updated, not found by its next SELECT).
                        Err(e) if e.retry == Retry::Never => match still_open(&mut tx).await {
                            Ok(false) => Err(silently_rolled_back()),
                            _ => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    let outcome = match outcome {
                        Ok(value) => tx.commit().await.map(|()| value).map_err(commit_error),
                        Err(e) => {
                            // A failed rollback means a broken connection, which is
                            // closed (see `Checkout`); the server rolls back on its own.
                            let _ = tx.rollback().await;
                            Err(e)
                        }
                    };
                    // Only a connection back in autocommit mode goes back to the pool.
                    if sqlx::Executor::execute(&mut *conn, "SET autocommit = 1")
                        .await
                        .is_ok()
                    {
                        conn.1 = true;
                    }
                    outcome
                }
                .await;
                self.note_failure(node, &result);
                result
            }
        })
        .await
    }
}

/// A pooled connection used by `write`, which turns autocommit off for its transaction:
/// unless `write` got to turn it back on (`.1`), the connection is closed when dropped
/// (an error or a cancelled future on the way) rather than handed to the next user, whose
/// reads would then run inside a transaction that never ends.
struct Checkout(sqlx::pool::PoolConnection<sqlx::MySql>, bool);

impl std::ops::Deref for Checkout {
    type Target = MySqlConnection;
    fn deref(&self) -> &MySqlConnection {
        &self.0
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut MySqlConnection {
        &mut self.0
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.1 {
            self.0.close_on_drop();
        }
    }
}

/// Whether the transaction `write` began is still the one running: false when its
/// savepoint is gone because the server rolled it back (see `write`).
async fn still_open(conn: &mut MySqlConnection) -> Result<bool, TxError> {
    /// "SAVEPOINT does not exist".
    const ER_SP_DOES_NOT_EXIST: u16 = 1305;
    match sqlx::Executor::execute(conn, "RELEASE SAVEPOINT evermail_tx").await {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d))
            if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == ER_SP_DOES_NOT_EXIST) =>
        {
            Ok(false)
        }
        Err(e) => Err(db(e)),
    }
}

/// The conflict a transaction found rolled back behind its back is replayed as.
fn silently_rolled_back() -> TxError {
    metrics::counter!("evermail_meta_silent_rollbacks_total").increment(1);
    tracing::warn!(
        "a metadata transaction was rolled back without an error reaching it; replaying it"
    );
    TxError {
        error: MetaError::new(
            ErrorKind::Unavailable,
            "the transaction was rolled back by a replicated write without an error reaching              it (a Galera brute-force abort)",
        ),
        retry: Retry::Conflict,
    }
}

impl MysqlMeta {
    /// Reads are always safe to replay; they go through `on_node` without a transaction.
    async fn read<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send,
        F: for<'c> Fn(&'c mut MySqlConnection) -> BoxFuture<'c, Result<T, TxError>> + Send + Sync,
    {
        self.on_node(true, |conn, _| f(conn)).await
    }

    fn note_failure<T>(&self, node: &Node, result: &Result<T, TxError>) {
        if let Err(e) = result
            && matches!(e.retry, Retry::NodeDown | Retry::UnknownOutcome)
        {
            self.nodes.mark_down(node, &e.error.to_string());
        }
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn not_found_account(id: AccountId) -> TxError {
    MetaError::not_found(format!("account {}", id.0)).into()
}

#[async_trait]
impl MetaBackend for MysqlMeta {
    async fn create_account(&self, new: NewAccount) -> Result<AccountRecord, MetaError> {
        let address = normalize_address(&new.address)?;
        // Not replayed after an unknown COMMIT outcome: the replay would report the
        // account it may itself have created as AlreadyExists.
        self.write(false, |conn, _| {
            let address = address.clone();
            let new = new.clone();
            Box::pin(async move {
                ensure_address_free(conn, &address).await?;
                let id = sqlx::query(
                    "INSERT INTO accounts (address, password_hash, quota_bytes, created_at)
                     VALUES (?, ?, ?, ?)",
                )
                .bind(&address)
                .bind(&new.password_hash)
                .bind(new.quota_bytes.map(|q| q as i64))
                .bind(now())
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .last_insert_id() as i64;
                for mailbox in &new.mailboxes {
                    insert_mailbox(conn, AccountId(id), mailbox).await?;
                }
                Ok(AccountRecord {
                    id: AccountId(id),
                    address,
                    password_hash: new.password_hash,
                    quota_bytes: new.quota_bytes,
                    used_bytes: 0,
                })
            })
        })
        .await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError> {
        let address = address.trim().to_ascii_lowercase();
        self.read(|conn| {
            let address = address.clone();
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?"
                ))
                .bind(&address)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
                row.as_ref().map(account_from_row).transpose()
            })
        })
        .await
    }

    async fn account(&self, id: AccountId) -> Result<Option<AccountRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
                ))
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
                row.as_ref().map(account_from_row).transpose()
            })
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address"
                ))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter().map(account_from_row).collect()
            })
        })
        .await
    }

    async fn set_password_hash(&self, id: AccountId, hash: &str) -> Result<(), MetaError> {
        let hash = hash.to_string();
        // Setting the same value twice is harmless, so an unknown outcome may replay.
        self.write(true, |conn, _| {
            let hash = hash.clone();
            Box::pin(async move {
                let found = sqlx::query("SELECT id FROM accounts WHERE id = ? FOR UPDATE")
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if found.is_none() {
                    return Err(not_found_account(id));
                }
                sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
                    .bind(&hash)
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Ok(())
            })
        })
        .await
    }

    async fn set_quota(&self, id: AccountId, quota_bytes: Option<u64>) -> Result<(), MetaError> {
        self.write(true, |conn, _| {
            Box::pin(async move {
                // MariaDB counts changed rows, not matched ones, so an UPDATE to the
                // same value affects 0 rows; existence is checked separately.
                let found = sqlx::query("SELECT id FROM accounts WHERE id = ? FOR UPDATE")
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if found.is_none() {
                    return Err(not_found_account(id));
                }
                sqlx::query("UPDATE accounts SET quota_bytes = ? WHERE id = ?")
                    .bind(quota_bytes.map(|q| q as i64))
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_account(&self, id: AccountId) -> Result<(), MetaError> {
        self.write(false, |conn, _| {
            Box::pin(async move {
                let mailboxes: Vec<i64> =
                    sqlx::query_scalar("SELECT id FROM mailboxes WHERE account_id = ?")
                        .bind(id.0)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db)?;
                for mailbox in mailboxes {
                    delete_mailbox_rows(conn, MailboxId(mailbox)).await?;
                }
                sqlx::query("DELETE FROM aliases WHERE account_id = ?")
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                let done = sqlx::query("DELETE FROM accounts WHERE id = ?")
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                if done.rows_affected() == 0 {
                    return Err(not_found_account(id));
                }
                Ok(())
            })
        })
        .await
    }

    async fn resolve_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError> {
        let address = address.trim().to_ascii_lowercase();
        let Some((_, domain)) = address.split_once('@') else {
            return Ok(None);
        };
        let catch_all = format!("@{domain}");
        self.read(|conn| {
            let address = address.clone();
            let catch_all = catch_all.clone();
            Box::pin(async move {
                // Exact account first, then an exact alias, then the domain's catch-all.
                let row = sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS}, 0 AS pick FROM accounts WHERE address = ?
                     UNION ALL
                     SELECT a.id, a.address, a.password_hash, a.quota_bytes, a.used_bytes,
                            CASE WHEN l.alias = ? THEN 1 ELSE 2 END AS pick
                       FROM aliases l JOIN accounts a ON a.id = l.account_id
                      WHERE l.alias = ? OR l.alias = ?
                     ORDER BY pick LIMIT 1"
                ))
                .bind(&address)
                .bind(&address)
                .bind(&address)
                .bind(&catch_all)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
                row.as_ref().map(account_from_row).transpose()
            })
        })
        .await
    }

    async fn add_alias(&self, alias: &str, target: AccountId) -> Result<(), MetaError> {
        let alias = alias.trim().to_ascii_lowercase();
        if !alias.starts_with('@') {
            normalize_address(&alias)?;
        } else if alias.len() < 2 || alias[1..].contains('@') {
            return Err(MetaError::new(
                ErrorKind::Invalid,
                format!("{alias:?} is neither name@domain nor a catch-all @domain"),
            ));
        }
        self.write(false, |conn, _| {
            let alias = alias.clone();
            Box::pin(async move {
                ensure_address_free(conn, &alias).await?;
                sqlx::query("INSERT INTO aliases (alias, account_id) VALUES (?, ?)")
                    .bind(&alias)
                    .bind(target.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<bool, MetaError> {
        let alias = alias.trim().to_ascii_lowercase();
        self.write(false, |conn, _| {
            let alias = alias.clone();
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM aliases WHERE alias = ?")
                    .bind(&alias)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn list_aliases(&self) -> Result<Vec<AliasRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT l.alias, a.address FROM aliases l
                       JOIN accounts a ON a.id = l.account_id
                     ORDER BY l.alias",
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        Ok(AliasRecord {
                            alias: text(r, "alias")?,
                            target: text(r, "address")?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn list_domains(&self) -> Result<Vec<String>, MetaError> {
        let addresses = self
            .read(|conn| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT address AS a FROM accounts UNION ALL SELECT alias FROM aliases",
                    )
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?;
                    rows.iter()
                        .map(|r| text(r, "a"))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .await?;
        let mut domains: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
            .collect();
        domains.sort();
        domains.dedup();
        Ok(domains)
    }

    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY id"
                ))
                .bind(account.0)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter().map(mailbox_from_row).collect()
            })
        })
        .await
    }

    async fn mailbox(&self, id: MailboxId) -> Result<Option<MailboxRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?"
                ))
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
                row.as_ref().map(mailbox_from_row).transpose()
            })
        })
        .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError> {
        self.write(false, |conn, _| {
            let new = new.clone();
            Box::pin(async move { insert_mailbox(conn, account, &new).await })
        })
        .await
    }

    async fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<(), MetaError> {
        // Setting a flag to a value is the same the second time, so an unknown outcome
        // may replay.
        self.write(true, |conn, _| {
            Box::pin(async move {
                // MariaDB counts changed rows, not matched ones; check existence first.
                let found = sqlx::query("SELECT id FROM mailboxes WHERE id = ? FOR UPDATE")
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if found.is_none() {
                    return Err(MetaError::not_found(format!("mailbox {}", id.0)).into());
                }
                sqlx::query("UPDATE mailboxes SET subscribed = ? WHERE id = ?")
                    .bind(subscribed as i8)
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                Ok(())
            })
        })
        .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> Result<Uid, MetaError> {
        // A replay after an unknown outcome would find the mark already raised and
        // claim nothing; losing a claim only makes messages not recent, so that is
        // allowed.
        self.write(true, |conn, _| {
            Box::pin(async move {
                let mark: Option<i64> =
                    sqlx::query_scalar("SELECT recent_uid FROM mailboxes WHERE id = ? FOR UPDATE")
                        .bind(mailbox.0)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db)?;
                let mark =
                    mark.ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))?;
                let mark = u32::try_from(mark)
                    .ok()
                    .and_then(Uid::new)
                    .ok_or_else(|| rows::corrupt("recent UID mark"))?;
                if mark < up_to {
                    sqlx::query("UPDATE mailboxes SET recent_uid = ? WHERE id = ?")
                        .bind(i64::from(up_to.get()))
                        .bind(mailbox.0)
                        .execute(&mut *conn)
                        .await
                        .map_err(db)?;
                }
                Ok(mark)
            })
        })
        .await
    }

    async fn delete_mailbox(&self, id: MailboxId) -> Result<(), MetaError> {
        // Deleting again what is gone deletes nothing, so an unknown outcome may replay.
        self.write(true, |conn, _| {
            Box::pin(async move { delete_mailbox_rows(conn, id).await })
        })
        .await
    }

    async fn rename_mailbox(
        &self,
        id: MailboxId,
        to: &str,
        delimiter: char,
    ) -> Result<Vec<MailboxRecord>, MetaError> {
        self.write(false, |conn, _| {
            let to = to.to_string();
            Box::pin(async move { rename::rename_rows(conn, id, &to, delimiter).await })
        })
        .await
    }

    async fn move_all_to_new_mailbox(
        &self,
        from: MailboxId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError> {
        self.write(false, |conn, _| {
            let new = new.clone();
            Box::pin(async move { rename::move_all_rows(conn, from, &new).await })
        })
        .await
    }

    async fn insert_message(&self, new: NewMessage) -> Result<InsertedMessage, MetaError> {
        // Chosen once per call, so every replay of this delivery carries the same id.
        let delivery: [u8; 16] = rand::random();
        self.write(true, |conn, attempt| {
            let new = new.clone();
            Box::pin(async move {
                // Only a replay can find its own earlier commit.
                if attempt > 1
                    && let Some(done) = delivered(conn, &delivery).await?
                {
                    tracing::info!(
                        mailbox = done.mailbox.0,
                        uid = done.uid.get(),
                        "a replayed delivery had committed before its connection was lost"
                    );
                    return Ok(done);
                }
                insert_message_rows(conn, &new, &delivery).await
            })
        })
        .await
    }

    async fn insert_message_once(
        &self,
        new: NewMessage,
        delivery: [u8; 16],
    ) -> Result<InsertedMessage, MetaError> {
        self.write(true, |conn, _| {
            let new = new.clone();
            Box::pin(async move {
                // Any attempt may find it: the caller's earlier call may have committed.
                if let Some(done) = delivered(conn, &delivery).await? {
                    return Ok(done);
                }
                insert_message_rows(conn, &new, &delivery).await
            })
        })
        .await
    }

    async fn insert_messages(
        &self,
        new: Vec<NewMessage>,
    ) -> Result<Vec<InsertedMessage>, MetaError> {
        // One delivery id per message, chosen once: a replay after a lost COMMIT finds
        // either all of them (the transaction committed) or none.
        let deliveries: Vec<[u8; 16]> = new.iter().map(|_| rand::random()).collect();
        self.write(true, |conn, attempt| {
            let new = new.clone();
            let deliveries = deliveries.clone();
            Box::pin(async move {
                if attempt > 1 && !deliveries.is_empty() {
                    let mut done = Vec::with_capacity(deliveries.len());
                    for delivery in &deliveries {
                        match delivered(conn, delivery).await? {
                            Some(message) => done.push(message),
                            None => break,
                        }
                    }
                    if done.len() == deliveries.len() {
                        return Ok(done);
                    }
                }
                let mut inserted = Vec::with_capacity(new.len());
                for (message, delivery) in new.iter().zip(&deliveries) {
                    inserted.push(insert_message_rows(conn, message, delivery).await?);
                }
                Ok(inserted)
            })
        })
        .await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid"
                ))
                .bind(mailbox.0)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter().map(message_from_row).collect()
            })
        })
        .await
    }

    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Changes, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                // One read transaction (a REPEATABLE READ snapshot), so the three
                // answers describe the same instant.
                let mut tx = conn.begin().await.map_err(db)?;
                let rows = sqlx::query(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND modseq > ?
                     ORDER BY uid"
                ))
                .bind(mailbox.0)
                .bind(since.0 as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let expunged: Vec<i64> = sqlx::query_scalar(
                    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                )
                .bind(mailbox.0)
                .bind(since.0 as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let highest: Option<i64> =
                    sqlx::query_scalar("SELECT highest_modseq FROM mailboxes WHERE id = ?")
                        .bind(mailbox.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                tx.commit().await.map_err(db)?;
                let highest = highest
                    .ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))?;
                Ok(Changes {
                    messages: rows
                        .iter()
                        .map(message_from_row)
                        .collect::<Result<_, _>>()?,
                    expunged: expunged
                        .into_iter()
                        .map(uid_from)
                        .collect::<Result<_, _>>()?,
                    highest_modseq: ModSeq(highest as u64),
                })
            })
        })
        .await
    }

    async fn update_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        change: FlagChange,
        flags: &Flags,
    ) -> Result<Vec<MessageRecord>, MetaError> {
        // Not replayed after an unknown outcome: the replay would find nothing left to
        // change and report no changed messages, hiding the new MODSEQ from the caller.
        self.write(false, |conn, _| {
            let uids = uids.to_vec();
            let flags = flags.clone();
            Box::pin(async move {
                update_flag_rows(conn, mailbox, &uids, None, change, &flags)
                    .await
                    .map(|u| u.changed)
            })
        })
        .await
    }

    async fn update_flags_unchanged_since(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        unchanged_since: ModSeq,
        change: FlagChange,
        flags: &Flags,
    ) -> Result<FlagUpdate, MetaError> {
        // Not replayed, for the reason `update_flags` gives.
        self.write(false, |conn, _| {
            let uids = uids.to_vec();
            let flags = flags.clone();
            let limit = Some(unchanged_since);
            Box::pin(
                async move { update_flag_rows(conn, mailbox, &uids, limit, change, &flags).await },
            )
        })
        .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, MetaError> {
        self.write(false, |conn, _| {
            let uids = uids.to_vec();
            Box::pin(async move { expunge_rows(conn, mailbox, &uids).await })
        })
        .await
    }

    async fn blob(&self, id: BlobId) -> Result<Option<BlobRecord>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let row = sqlx::query("SELECT id, size, structure, header FROM blobs WHERE id = ?")
                    .bind(id.0.to_vec())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                row.as_ref().map(blob_from_row).transpose()
            })
        })
        .await
    }

    async fn blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobRecord>, MetaError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BLOBS_PER_QUERY) {
            let chunk: Vec<Vec<u8>> = chunk.iter().map(|id| id.0.to_vec()).collect();
            let records = self
                .read(|conn| {
                    let chunk = chunk.clone();
                    Box::pin(async move {
                        let sql = format!(
                            "SELECT id, size, structure, header FROM blobs WHERE id IN ({})",
                            vec!["?"; chunk.len()].join(", ")
                        );
                        let mut query = sqlx::query(&sql);
                        for id in chunk {
                            query = query.bind(id);
                        }
                        let rows = query.fetch_all(&mut *conn).await.map_err(db)?;
                        rows.iter()
                            .map(blob_from_row)
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .await?;
            out.extend(records);
        }
        Ok(out)
    }

    async fn message_headers(
        &self,
        mailbox: MailboxId,
        first: Uid,
        last: Uid,
    ) -> Result<Vec<MessageHeader>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT m.uid, m.blob_id, b.size, b.header
                     FROM messages m JOIN blobs b ON b.id = m.blob_id
                     WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid",
                )
                .bind(mailbox.0)
                .bind(i64::from(first.get()))
                .bind(i64::from(last.get()))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter().map(message_header_from_row).collect()
            })
        })
        .await
    }

    async fn blob_locations(&self, id: BlobId) -> Result<Vec<BlobLocation>, MetaError> {
        self.read(|conn| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT store, object_key FROM blob_locations
                     WHERE blob_id = ? AND state = 'ok' ORDER BY store",
                )
                .bind(id.0.to_vec())
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        Ok(BlobLocation {
                            store: text(r, "store")?,
                            key: text(r, "object_key")?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn blob_copies(&self, id: BlobId) -> Result<Vec<BlobCopy>, MetaError> {
        rais::blob_copies(self, id).await
    }

    async fn set_copy_state(
        &self,
        id: BlobId,
        store: &str,
        state: CopyState,
        verified_at: Option<i64>,
    ) -> Result<(), MetaError> {
        rais::set_copy_state(self, id, store, state, verified_at).await
    }

    async fn add_copy(&self, id: BlobId, copy: BlobLocation) -> Result<bool, MetaError> {
        rais::add_copy(self, id, copy).await
    }

    async fn remove_copy(&self, id: BlobId, store: &str) -> Result<(), MetaError> {
        rais::remove_copy(self, id, store).await
    }

    async fn list_copies(
        &self,
        after: Option<(BlobId, String)>,
        limit: u32,
    ) -> Result<Vec<ListedCopy>, MetaError> {
        rais::list_copies(self, after, limit).await
    }

    async fn under_replicated(
        &self,
        replicas: u32,
        uncounted: &[String],
        limit: u32,
    ) -> Result<Vec<UnderReplicated>, MetaError> {
        rais::under_replicated(self, replicas, uncounted, limit).await
    }

    async fn stores(&self) -> Result<Vec<StoreRecord>, MetaError> {
        rais::stores(self).await
    }

    async fn add_store(&self, store: StoreRecord) -> Result<bool, MetaError> {
        rais::add_store(self, store).await
    }

    async fn change_store(&self, id: &str, change: StoreChange) -> Result<StoreRecord, MetaError> {
        rais::change_store(self, id, change).await
    }

    async fn sole_copies(&self, store: &str) -> Result<u64, MetaError> {
        rais::sole_copies(self, store).await
    }

    async fn remove_store(&self, id: &str) -> Result<(), MetaError> {
        rais::remove_store(self, id).await
    }

    async fn mark_unreferenced(&self, now: i64) -> Result<u64, MetaError> {
        rais::mark_unreferenced(self, now).await
    }

    async fn doom_unreferenced(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<DoomedBlob>, MetaError> {
        rais::doom_unreferenced(self, cutoff, limit).await
    }

    async fn forget_blob(&self, id: BlobId) -> Result<(), MetaError> {
        rais::forget_blob(self, id).await
    }

    async fn node_heartbeat(
        &self,
        beat: NodeHeartbeat,
        now_ms: i64,
    ) -> Result<NodeRecord, MetaError> {
        membership::node_heartbeat(self, beat, now_ms).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, MetaError> {
        membership::nodes(self).await
    }

    async fn set_node_state(&self, name: &str, state: NodeState) -> Result<(), MetaError> {
        membership::set_node_state(self, name, state).await
    }

    async fn forget_node(&self, name: &str) -> Result<bool, MetaError> {
        membership::forget_node(self, name).await
    }

    async fn highest_modseqs(
        &self,
        ids: &[MailboxId],
    ) -> Result<Vec<(MailboxId, ModSeq)>, MetaError> {
        membership::highest_modseqs(self, ids).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, MetaError> {
        membership::try_lease(self, name, holder, now_ms, ttl_ms).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        membership::release_lease(self, name, holder).await
    }

    async fn lease(&self, name: &str) -> Result<Option<LeaseRecord>, MetaError> {
        membership::lease(self, name).await
    }
}
