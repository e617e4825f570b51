//! Opens the storage the config names. This is the one place that names backends.

use crate::config::{Config, StoreConfig};
use anyhow::Context;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobBackend, BlobStore, StoreHandle, StoreState};
use evermail_blob_s3::S3Backend;
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use std::path::Path;
use std::sync::Arc;

pub async fn open_mailstore(config: &Config, data_dir: &Path) -> anyhow::Result<Mailstore> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db_path = data_dir.join(&config.metadata.sqlite_path);
    let meta = SqliteMeta::open(&db_path)
        .await
        .with_context(|| format!("opening the metadata database {}", db_path.display()))?;

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
        let backend: Arc<dyn BlobBackend> = match store {
            StoreConfig::Fs { id, path, .. } => {
                let root = data_dir.join(path);
                let backend = FsBackend::open(&root, &node)
                    .with_context(|| format!("opening blob store {id} at {}", root.display()))?;
                Arc::new(backend)
            }
            StoreConfig::S3 { id, s3, .. } => {
                let backend = S3Backend::open(s3, &node).with_context(|| {
                    format!(
                        "opening blob store {id} at {} bucket {}",
                        s3.endpoint, s3.bucket
                    )
                })?;
                Arc::new(backend)
            }
        };
        let (zone, weight, state) = store.placement();
        handles.push(
            StoreHandle::new(store.id(), backend)
                .with_zone(zone)
                .with_weight(weight)
                .with_state(state),
        );
    }
    let blobs = BlobStore::new(
        handles,
        config.storage.replicas,
        config.storage.min_replicas,
    )
    .context("in [storage]")?;
    // Ends by itself when the last clone of `blobs` is dropped.
    blobs.spawn_health_probes(std::time::Duration::from_secs(
        config.storage.probe_interval_secs,
    ));
    let options = MailstoreOptions {
        max_message_size: config
            .lmtp
            .max_message_size
            .max(config.imap.max_message_size),
        default_quota: config.accounts.default_quota,
    };
    Ok(Mailstore::new(Meta::new(meta), blobs, options))
}
