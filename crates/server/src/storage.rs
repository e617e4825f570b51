//! Opens the storage the config names. This and `registry` are the only places that
//! name backends.

use crate::config::{Config, MetadataBackend, StoreConfig};
use crate::registry::{self, Registry};
use anyhow::Context;
use evermail_blob::{BlobStore, StoreHandle, StoreState};
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::Meta;
use evermail_meta::schema::SchemaVersion;
use evermail_meta_mysql::{MysqlMeta, MysqlOptions};
use evermail_meta_sqlite::SqliteMeta;
use std::path::Path;

/// The metadata store, the blob store over the registered stores, and the registry
/// that keeps the two in step.
pub struct Storage {
    pub meta: Meta,
    pub blobs: BlobStore,
    pub registry: Registry,
}

impl Storage {
    /// The mail model over this storage.
    pub fn mailstore(&self, config: &Config, data_dir: &Path) -> Mailstore {
        let options = MailstoreOptions {
            spool_dir: Some(data_dir.join("spool")),
            max_message_size: config
                .lmtp
                .max_message_size
                .max(config.imap.max_message_size),
            default_quota: config.accounts.default_quota,
            login_guard: config.auth.clone(),
            view_cache_messages: config.metadata.view_cache_messages,
        };
        Mailstore::new(self.meta.clone(), self.blobs.clone(), options)
    }
}

pub async fn open_mailstore(config: &Config, data_dir: &Path) -> anyhow::Result<Mailstore> {
    Ok(open_storage(config, data_dir)
        .await?
        .mailstore(config, data_dir))
}

/// Opens the metadata store, then the blob stores: the configured ones seed the store
/// registry in the database, and the registry decides which are used (see
/// `registry`).
pub async fn open_storage(config: &Config, data_dir: &Path) -> anyhow::Result<Storage> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let meta = open_meta(config, data_dir).await?;

    let node = config.node_name();
    let default_store = [StoreConfig::Fs {
        id: "local".into(),
        zone: None,
        weight: 1,
        state: StoreState::Active,
        path: "blobs".into(),
    }];
    let stores = if config.storage.stores.is_empty() {
        &default_store[..]
    } else {
        &config.storage.stores[..]
    };
    let mut handles = Vec::new();
    for store in stores {
        let backend = registry::open_backend(store, data_dir, &node)?;
        let (zone, weight, state) = store.placement();
        handles.push(
            StoreHandle::new(store.id(), backend)
                .with_zone(zone)
                .with_weight(weight)
                .with_state(state)
                .with_reserve_percent(config.storage.min_free_percent),
        );
    }
    let blobs = BlobStore::new(
        handles.clone(),
        config.storage.replicas,
        config.storage.min_replicas,
    )
    .context("in [storage]")?;
    blobs.set_slow_copy_timeout(std::time::Duration::from_millis(
        config.storage.slow_copy_timeout_ms,
    ));
    let registry = Registry::attach(
        meta.clone(),
        blobs.clone(),
        config,
        stores,
        handles,
        data_dir,
    )
    .await?;
    // Ends by itself when the last clone of `blobs` is dropped.
    blobs.spawn_health_probes(std::time::Duration::from_secs(
        config.storage.probe_interval_secs,
    ));
    Ok(Storage {
        meta,
        blobs,
        registry,
    })
}

/// Opens the metadata store for serving.
///
/// SQLite brings its schema up to date on open: the file belongs to this one node, so
/// nobody else can be surprised by the change. MySQL does not migrate here, it only
/// checks: the database is shared by every node of a rolling upgrade, Galera runs each
/// DDL statement in total order (briefly blocking writes on every database node), and
/// which release expands the schema must be the operator's decision, made once with
/// `evermail db migrate`, not a race between nodes restarting. Both refuse a schema
/// newer than this build knows.
pub async fn open_meta(config: &Config, data_dir: &Path) -> anyhow::Result<Meta> {
    match config.metadata.backend {
        MetadataBackend::Sqlite => {
            let db_path = data_dir.join(&config.metadata.sqlite_path);
            let meta = SqliteMeta::open(&db_path)
                .await
                .with_context(|| format!("opening the metadata database {}", db_path.display()))?;
            Ok(Meta::new(meta))
        }
        MetadataBackend::Mysql => {
            let meta = connect_mysql(config).await?;
            meta.check_schema()
                .await
                .context("checking the metadata schema on the MySQL cluster")?;
            Ok(Meta::new(meta))
        }
    }
}

fn mysql_options(config: &Config) -> MysqlOptions {
    MysqlOptions {
        urls: config.metadata.mysql_urls.clone(),
        ..config.metadata.mysql.clone()
    }
}

async fn connect_mysql(config: &Config) -> anyhow::Result<MysqlMeta> {
    MysqlMeta::connect_without_migrating(&mysql_options(config))
        .await
        .context("connecting to the metadata database ([metadata] mysql_urls)")
}

/// What `evermail db status` reports.
pub struct DbStatus {
    pub backend: &'static str,
    /// The SQLite file, or the node list.
    pub location: String,
    /// The schema in the database (version, and the oldest build compatible with it);
    /// `None` when there is no database yet or it cannot be reached.
    pub schema: Option<SchemaVersion>,
    /// The newest schema version this build knows.
    pub latest: i64,
    /// Why the version could not be read.
    pub error: Option<String>,
    /// One line per database node (MySQL only).
    pub nodes: Vec<DbNode>,
}

pub struct DbNode {
    pub name: String,
    pub reachable: bool,
    /// Galera's state (`Synced`, `Joining`, ...), or `not galera`.
    pub state: String,
    pub cluster_size: String,
    /// `None` when the node takes transactions.
    pub problem: Option<String>,
}

pub async fn db_status(config: &Config, data_dir: &Path) -> anyhow::Result<DbStatus> {
    match config.metadata.backend {
        MetadataBackend::Sqlite => {
            let db_path = data_dir.join(&config.metadata.sqlite_path);
            let (schema, error) = match SqliteMeta::stored_schema(&db_path).await {
                Ok(v) => (v, None),
                Err(e) => (None, Some(e.to_string())),
            };
            Ok(DbStatus {
                backend: "sqlite",
                location: db_path.display().to_string(),
                schema,
                latest: evermail_meta_sqlite::latest_version(),
                error,
                nodes: Vec::new(),
            })
        }
        MetadataBackend::Mysql => {
            let options = mysql_options(config);
            let location = options
                .urls
                .iter()
                .map(|u| evermail_meta_mysql::redact_url(u))
                .collect::<Vec<_>>()
                .join(", ");
            let mut status = DbStatus {
                backend: "mysql",
                location,
                schema: None,
                latest: evermail_meta_mysql::latest_version(),
                error: None,
                nodes: Vec::new(),
            };
            // Connecting fails when no node is usable; the per-node lines still say
            // why, so report them rather than only the error.
            let meta = match MysqlMeta::connect_without_migrating(&options).await {
                Ok(meta) => meta,
                Err(e) => {
                    status.error = Some(e.to_string());
                    return Ok(status);
                }
            };
            match meta.schema().await {
                Ok(v) => status.schema = Some(v),
                Err(e) => status.error = Some(e.to_string()),
            }
            status.nodes = meta
                .node_status()
                .await
                .into_iter()
                .map(|n| DbNode {
                    name: n.node,
                    reachable: n.reachable,
                    state: match (n.reachable, n.galera) {
                        (false, _) => "-".into(),
                        (true, false) => "not galera".into(),
                        (true, true) => n.state,
                    },
                    cluster_size: if n.cluster_size.is_empty() {
                        "-".into()
                    } else {
                        n.cluster_size
                    },
                    problem: n.problem,
                })
                .collect();
            Ok(status)
        }
    }
}

/// Applies pending schema migrations; the version before and after.
pub async fn db_migrate(config: &Config, data_dir: &Path) -> anyhow::Result<(i64, i64)> {
    match config.metadata.backend {
        MetadataBackend::Sqlite => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
            let db_path = data_dir.join(&config.metadata.sqlite_path);
            let context = || format!("migrating the metadata database {}", db_path.display());
            let before = SqliteMeta::stored_schema_version(&db_path)
                .await
                .with_context(context)?
                .unwrap_or(0);
            let meta = SqliteMeta::open(&db_path).await.with_context(context)?;
            let after = meta.schema_version().await.with_context(context)?;
            Ok((before, after))
        }
        MetadataBackend::Mysql => {
            let meta = connect_mysql(config).await?;
            meta.migrate()
                .await
                .context("migrating the metadata schema on the MySQL cluster")
        }
    }
}
