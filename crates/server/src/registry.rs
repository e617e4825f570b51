//! The store registry: which blob stores exist and how placement treats them, kept in
//! the metadata database so that `evermail store drain` on one machine reaches every
//! node.
//!
//! Why the database and not the config file: stores must be added, drained and
//! removed at run time on every node at once, and the metadata database is the one
//! thing every node already shares and trusts (it holds the location of every copy).
//! The config file's `[[storage.stores]]` seed the registry: a store id the registry
//! lacks is added with the file's settings; afterwards the registry wins for zone,
//! weight and state. How to reach a store (its path or endpoint and credentials) is
//! taken from this node's config when it names the store, since a mount point may
//! differ between nodes, and otherwise from the registry's copy of the entry that
//! added it. Each node re-reads the registry every `registry_refresh_secs`.

use crate::config::{Config, StoreConfig};
use anyhow::Context;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobBackend, BlobStore, StoreHandle, StoreState};
use evermail_blob_s3::S3Backend;
use evermail_meta::{Meta, StoreRecord};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The registry row a configured store seeds.
pub fn record_of(store: &StoreConfig) -> anyhow::Result<StoreRecord> {
    let (zone, weight, state) = store.placement();
    Ok(StoreRecord {
        id: store.id().to_string(),
        zone: zone.to_string(),
        weight,
        state: state.as_str().to_string(),
        spec: toml::to_string(store).context("serializing a store entry")?,
    })
}

/// Opens a store's backend as this node reaches it.
pub fn open_backend(
    store: &StoreConfig,
    data_dir: &Path,
    node: &str,
) -> anyhow::Result<Arc<dyn BlobBackend>> {
    Ok(match store {
        StoreConfig::Fs { id, path, .. } => {
            let root = data_dir.join(path);
            let backend = FsBackend::open(&root, node)
                .with_context(|| format!("opening blob store {id} at {}", root.display()))?;
            Arc::new(backend)
        }
        StoreConfig::S3 { id, s3, .. } => {
            let backend = S3Backend::open(s3, node).with_context(|| {
                format!(
                    "opening blob store {id} at {} bucket {}",
                    s3.endpoint, s3.bucket
                )
            })?;
            Arc::new(backend)
        }
    })
}

/// Keeps a [`BlobStore`]'s stores in step with the registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Meta,
    blobs: BlobStore,
    configured: Vec<StoreConfig>,
    data_dir: PathBuf,
    node: String,
    reserve_percent: u8,
    /// Handles opened so far, by id: reused so a store keeps its health flag and its
    /// backend (connections, the fs directory fsync group) across refreshes.
    opened: Mutex<HashMap<String, StoreHandle>>,
}

impl Registry {
    /// Seeds the registry with the stores `configured` (the config's, or the default
    /// `local` one when it names none) that it lacks, then applies it to `blobs`,
    /// whose initial stores (`initial`, built from the config) are reused.
    ///
    /// The default `local` store seeds only an empty registry, so an admin command run
    /// without the config file cannot add a store to a running installation.
    pub async fn attach(
        meta: Meta,
        blobs: BlobStore,
        config: &Config,
        configured: &[StoreConfig],
        initial: Vec<StoreHandle>,
        data_dir: &Path,
    ) -> anyhow::Result<Registry> {
        let implicit = config.storage.stores.is_empty();
        let configured = configured.to_vec();
        let seed = !implicit
            || meta
                .stores()
                .await
                .context("reading the store registry")?
                .is_empty();
        for store in configured.iter().filter(|_| seed) {
            let record = record_of(store)?;
            if !meta
                .add_store(record)
                .await
                .context("registering the configured stores")?
            {
                tracing::debug!(store = %store.id(), "store already registered; the registry's settings apply");
            }
        }
        let opened = initial
            .into_iter()
            .map(|h| (h.id().to_string(), h))
            .collect();
        let registry = Registry {
            inner: Arc::new(Inner {
                meta,
                blobs,
                configured,
                data_dir: data_dir.to_path_buf(),
                node: config.node_name(),
                reserve_percent: config.storage.min_free_percent,
                opened: Mutex::new(opened),
            }),
        };
        registry.refresh().await?;
        Ok(registry)
    }

    /// Re-reads the registry and replaces the blob store's stores with what it says.
    /// A store this node cannot open is left out (and logged): its copies are read
    /// from other stores, and the error repeats until it is fixed.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let inner = &self.inner;
        let records = inner
            .meta
            .stores()
            .await
            .context("reading the store registry")?;
        let mut handles = Vec::with_capacity(records.len());
        for record in records {
            match self.handle_for(&record) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    tracing::warn!(store = %record.id, error = %format!("{e:#}"), "cannot open a registered store on this node")
                }
            }
        }
        inner.blobs.set_stores(handles);
        Ok(())
    }

    fn handle_for(&self, record: &StoreRecord) -> anyhow::Result<StoreHandle> {
        let inner = &self.inner;
        let state = StoreState::parse(&record.state)
            .with_context(|| format!("unknown store state {:?}", record.state))?;
        anyhow::ensure!(record.weight > 0, "weight 0");
        let mut opened = inner.opened.lock().unwrap_or_else(|e| e.into_inner());
        let base = match opened.get(&record.id) {
            Some(handle) => handle.clone(),
            None => {
                let spec = match inner.configured.iter().find(|s| s.id() == record.id) {
                    Some(spec) => spec.clone(),
                    None => toml::from_str::<StoreConfig>(&record.spec)
                        .with_context(|| format!("the registry's entry for {}", record.id))?,
                };
                let backend = open_backend(&spec, &inner.data_dir, &inner.node)?;
                let handle = StoreHandle::new(record.id.clone(), backend)
                    .with_reserve_percent(inner.reserve_percent);
                opened.insert(record.id.clone(), handle.clone());
                tracing::info!(store = %record.id, "opened a store added to the registry");
                handle
            }
        };
        Ok(base
            .with_zone(record.zone.clone())
            .with_weight(record.weight)
            .with_state(state))
    }

    /// Refreshes every `interval` until `shutdown`.
    pub fn spawn_refresh(
        &self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = registry.refresh().await {
                    tracing::warn!(error = %format!("{e:#}"), "store registry refresh failed; keeping the stores in use");
                }
            }
        })
    }
}
