//! Shared by the tests that need a real MariaDB/Galera cluster: where it is, and a fresh
//! database per test so tests never see each other's rows.
//!
//! The cluster's URLs come from `EVERMAIL_TEST_MYSQL_URLS` (comma-separated; `scripts/galera
//! up` starts a local cluster and `scripts/galera urls` prints them). Without it a test
//! is skipped with a notice, except when `CI` is set: CI must never pass by skipping.

#![allow(dead_code)]

use evermail_meta::Meta;
use evermail_meta_mysql::{MysqlMeta, MysqlOptions};
use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

pub const URLS_VAR: &str = "EVERMAIL_TEST_MYSQL_URLS";

/// The cluster's node URLs, or `None` (after saying so) when there is none to test.
pub fn urls() -> Option<Vec<String>> {
    let urls: Vec<String> = std::env::var(URLS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    if !urls.is_empty() {
        return Some(urls);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{URLS_VAR} is not set, but CI is: the MariaDB/Galera tests must run in CI. \
             Start a cluster with `scripts/galera up` and export \
             {URLS_VAR}=$(scripts/galera urls)"
        );
    }
    // Written to the stderr handle, not with eprintln!, which the test harness hides
    // for passing tests; once per test binary is enough.
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {URLS_VAR} is not set, so the MariaDB/Galera tests of this binary \
             pass without running. Run `scripts/galera up` and export \
             {URLS_VAR}=$(scripts/galera urls) to run them."
        );
    });
    None
}

/// A database created for one test, dropped when the test ends (even by a panic).
pub struct TestDb {
    pub name: String,
    pub urls: Vec<String>,
}

impl TestDb {
    /// Options reaching this database through the given nodes (indexes into the URLs).
    pub fn options(&self, nodes: &[usize]) -> MysqlOptions {
        MysqlOptions {
            urls: nodes.iter().map(|&i| self.urls[i].clone()).collect(),
            database: Some(self.name.clone()),
            ..MysqlOptions::default()
        }
    }

    /// A raw connection to this database through node `i`.
    pub async fn connection(&self, i: usize) -> MySqlConnection {
        let options = MySqlConnectOptions::from_str(&self.urls[i])
            .unwrap()
            .database(&self.name);
        MySqlConnection::connect_with(&options).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.urls[0].clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself; a thread
        // with its own runtime can.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = MySqlConnection::connect(&url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Creates a uniquely named database on the cluster, or `None` when there is none.
pub async fn test_db() -> Option<TestDb> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let urls = urls()?;
    let name = format!(
        "evermail_t{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let mut conn = MySqlConnection::connect(&urls[0])
        .await
        .unwrap_or_else(|e| panic!("cannot reach the first node of {URLS_VAR}: {e}"));
    sqlx::query(&format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    // CREATE DATABASE replicates as total-order DDL, but another node may apply it a
    // moment after this one answered; a test that connects straight to that node with
    // the database's name would be refused with 1049. Wait until every node has it.
    for url in &urls {
        wait_for_database(url, &name).await;
    }
    Some(TestDb { name, urls })
}

/// Returns once the node at `url` knows database `name` (a causal read: wsrep_sync_wait
/// makes the node apply every write set the cluster had ordered before the query).
async fn wait_for_database(url: &str, name: &str) {
    let mut conn = MySqlConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {url}: {e}"));
    sqlx::query("SET SESSION wsrep_sync_wait = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    for _ in 0..100 {
        let found: Option<(String,)> = sqlx::query_as(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        if found.is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("database {name} did not reach {url} within 10 s");
}

/// A backend over every node of the cluster, on a fresh database.
pub async fn fresh() -> Option<(Meta, TestDb)> {
    let db = test_db().await?;
    let all: Vec<usize> = (0..db.urls.len()).collect();
    let meta = MysqlMeta::connect(&db.options(&all)).await.unwrap();
    Some((Meta::new(meta), db))
}

/// One backend per node, each reaching the cluster only through that node, sharing a
/// fresh database.
pub async fn fresh_per_node() -> Option<(Vec<Meta>, TestDb)> {
    let db = test_db().await?;
    let mut metas = Vec::new();
    for i in 0..db.urls.len() {
        metas.push(Meta::new(
            MysqlMeta::connect(&db.options(&[i])).await.unwrap(),
        ));
    }
    Some((metas, db))
}
