//! `evermail store ...` and `evermail blob ...`: the store registry and the
//! maintenance passes, run from the command line against the shared metadata
//! database (while nodes serve: they pick registry changes up within
//! `registry_refresh_secs`).

use crate::config::{Config, StoreConfig};
use crate::storage::{Storage, open_storage};
use anyhow::{Context, bail};
use clap::Subcommand;
use evermail_blob::{CopyCheck, StoreState, StoredCopy};
use evermail_meta::{StoreChange, StoreRecord};
use evermail_rais::{Maintainer, Pace, PassKind, Progress};
use evermail_types::BlobId;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// List the registered stores: id, zone, weight, state and where each is.
    List,
    /// Each store as this node sees it: reachable or not, and how many bodies it
    /// holds the only copy of; then how many bodies are short of copies.
    Status,
    /// Register a new store: a filesystem one (`--path`: a local disk or an NFS/CephFS
    /// mount) or an S3 bucket (`--s3-endpoint` and the other `--s3-*` options; the
    /// secret key comes from `--s3-secret-file` or the EVERMAIL_S3_SECRET_ACCESS_KEY
    /// environment variable, never the command line). It is probed (an S3 store: a
    /// test object written, read back and deleted) before it is registered. Every node
    /// opens it within `registry_refresh_secs`; new bodies go to it by weight, old ones
    /// stay where they are. An S3 store's entry, secret included, is kept in the
    /// registry (the metadata database), which is how every node reaches it.
    Add {
        id: String,
        /// The directory; relative paths are inside each node's data directory.
        #[arg(
            long,
            conflicts_with = "s3_endpoint",
            required_unless_present = "s3_endpoint"
        )]
        path: Option<PathBuf>,
        /// The failure domain; copies go to distinct zones first (default: the id).
        #[arg(long)]
        zone: Option<String>,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// The S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com.
        #[arg(long, requires_all = ["s3_bucket", "s3_access_key_id"])]
        s3_endpoint: Option<String>,
        #[arg(long)]
        s3_bucket: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        s3_region: String,
        #[arg(long)]
        s3_access_key_id: Option<String>,
        /// A file holding the secret access key (one line); without it, the
        /// EVERMAIL_S3_SECRET_ACCESS_KEY environment variable.
        #[arg(long)]
        s3_secret_file: Option<PathBuf>,
        /// A prefix for every key (ending in '/'), to share a bucket.
        #[arg(long, default_value = "")]
        s3_prefix: String,
        /// Allow a plain http:// endpoint (a store on loopback).
        #[arg(long)]
        s3_allow_http: bool,
    },
    /// Change a store's zone, weight or state (active, read-only, draining, down).
    Set {
        id: String,
        #[arg(long)]
        zone: Option<String>,
        #[arg(long)]
        weight: Option<u32>,
        #[arg(long)]
        state: Option<String>,
    },
    /// Stop writing to a store and have repair move its copies elsewhere (the
    /// maintenance worker of every node does it; `evermail blob repair` does it now).
    Drain { id: String },
    /// Unregister a store and forget its copies. Refused, with the count, while it
    /// holds the only copy of any body: drain it first.
    Remove { id: String },
}

#[derive(Subcommand)]
pub enum BlobCommand {
    /// Check every copy of every body and record what was found: light (exists, with
    /// the right size) or --deep (read whole, BLAKE3 hash compared).
    Scrub {
        #[arg(long)]
        deep: bool,
    },
    /// Restore the replica count of every body (fewest good copies first) and move
    /// copies off draining stores. Exits non-zero if a body could not get its copies.
    Repair,
    /// Show a body's size and every copy: store, key, state, last verified.
    Stat {
        /// The body's id (64 hex digits, as in logs).
        id: BlobId,
        /// Also check each copy now (deep).
        #[arg(long)]
        check: bool,
    },
    /// Delete bodies no message has referenced for the grace period.
    Gc {
        /// Seconds unreferenced before deletion (default: [storage.maintenance]
        /// gc_grace_secs).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
}

pub async fn run_store(
    command: StoreCommand,
    config: &Config,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let storage = open_storage(config, data_dir).await?;
    let meta = &storage.meta;
    match command {
        StoreCommand::List => {
            println!(
                "{:<16} {:<12} {:>6} {:<10} where",
                "id", "zone", "weight", "state"
            );
            for s in meta.stores().await? {
                println!(
                    "{:<16} {:<12} {:>6} {:<10} {}",
                    s.id,
                    s.zone,
                    s.weight,
                    s.state,
                    describe_spec(&s.spec)
                );
            }
        }
        StoreCommand::Status => status(&storage, config).await?,
        StoreCommand::Add {
            id,
            path,
            zone,
            weight,
            s3_endpoint,
            s3_bucket,
            s3_region,
            s3_access_key_id,
            s3_secret_file,
            s3_prefix,
            s3_allow_http,
        } => {
            if id.is_empty() || weight == 0 {
                bail!("a store needs an id and a weight of at least 1");
            }
            let spec = match (path, s3_endpoint) {
                (Some(path), None) => StoreConfig::Fs {
                    id: id.clone(),
                    zone: zone.clone(),
                    weight,
                    state: StoreState::Active,
                    path,
                },
                (None, Some(endpoint)) => StoreConfig::S3 {
                    id: id.clone(),
                    zone: zone.clone(),
                    weight,
                    state: StoreState::Active,
                    s3: s3_options(
                        endpoint,
                        s3_bucket,
                        s3_region,
                        s3_access_key_id,
                        s3_secret_file.as_deref(),
                        s3_prefix,
                        s3_allow_http,
                    )?,
                },
                _ => bail!("give either --path or --s3-endpoint"),
            };
            // Open it here first, so a typo fails now rather than on every node.
            let backend = crate::registry::open_backend(&spec, data_dir, &config.node_name())?;
            if matches!(spec, StoreConfig::S3 { .. }) {
                probe(backend.as_ref(), &config.node_name())
                    .await
                    .with_context(|| format!("probing store {id}; not registered"))?;
            }
            let record: StoreRecord = crate::registry::record_of(&spec)?;
            if !meta.add_store(record).await? {
                bail!(
                    "a store {id:?} is registered, or was and has been removed (an id is \
                     never reused, since copies are recorded by it)"
                );
            }
            println!("store {id} added");
        }
        StoreCommand::Set {
            id,
            zone,
            weight,
            state,
        } => {
            let changed = set(
                &storage,
                &id,
                StoreChange {
                    zone,
                    weight,
                    state,
                },
            )
            .await?;
            println!(
                "store {}: zone {}, weight {}, state {}",
                changed.id, changed.zone, changed.weight, changed.state
            );
        }
        StoreCommand::Drain { id } => {
            let change = StoreChange {
                state: Some("draining".into()),
                ..StoreChange::default()
            };
            set(&storage, &id, change).await?;
            println!(
                "store {id} is draining: no new bodies; repair moves its copies elsewhere \
                 (run `evermail blob repair`, or let the nodes' maintenance do it), then \
                 `evermail store remove {id}`"
            );
        }
        StoreCommand::Remove { id } => {
            meta.remove_store(&id)
                .await
                .with_context(|| format!("removing store {id}"))?;
            println!("store {id} removed; its copies are forgotten");
        }
    }
    Ok(())
}

/// Where `evermail store add` reads an S3 secret from when no file is named.
const S3_SECRET_VAR: &str = "EVERMAIL_S3_SECRET_ACCESS_KEY";

/// The `s3` table of a new store's entry. The secret is read from a file or the
/// environment: a command line is visible to every user of the machine (`ps`) and
/// lands in shell histories.
fn s3_options(
    endpoint: String,
    bucket: Option<String>,
    region: String,
    access_key_id: Option<String>,
    secret_file: Option<&Path>,
    prefix: String,
    allow_http: bool,
) -> anyhow::Result<evermail_blob_s3::S3Options> {
    let secret = match secret_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the S3 secret from {}", file.display()))?,
        None => std::env::var(S3_SECRET_VAR).with_context(|| {
            format!("an S3 store needs its secret key in --s3-secret-file or {S3_SECRET_VAR}")
        })?,
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        bail!("the S3 secret key is empty");
    }
    let mut options: evermail_blob_s3::S3Options = toml::from_str(
        "endpoint = \"\"\nbucket = \"\"\naccess_key_id = \"\"\nsecret_access_key = \"\"\n",
    )
    .context("S3 defaults")?;
    options.endpoint = endpoint;
    options.bucket = bucket.context("--s3-bucket is required")?;
    options.region = region;
    options.access_key_id = access_key_id.context("--s3-access-key-id is required")?;
    options.secret_access_key = secret;
    options.prefix = prefix;
    options.allow_http = allow_http;
    Ok(options)
}

/// Writes a test object, reads it back and deletes it, so wrong credentials, a missing
/// bucket or an unreachable endpoint are refused before every node tries the store.
async fn probe(backend: &dyn evermail_blob::BlobBackend, node: &str) -> anyhow::Result<()> {
    let nonce: u64 = rand::random();
    let key = format!("{node}/probe/{nonce:016x}");
    let body = bytes::Bytes::from(format!("evermail store add probe {nonce:016x}"));
    backend
        .put(&key, body.clone())
        .await
        .context("writing a test object")?;
    let read = backend
        .get(&key)
        .await
        .context("reading the test object back")?;
    backend
        .delete(&key)
        .await
        .context("deleting the test object")?;
    if read.as_ref() != Some(&body) {
        bail!("the test object read back differs from what was written");
    }
    Ok(())
}

async fn set(storage: &Storage, id: &str, change: StoreChange) -> anyhow::Result<StoreRecord> {
    if let Some(state) = &change.state
        && StoreState::parse(state).is_none()
    {
        bail!("unknown state {state:?}: use active, read-only, draining or down");
    }
    if change.weight == Some(0) {
        bail!("weight must be at least 1 (to stop new writes, set the state to read-only)");
    }
    let changed = storage.meta.change_store(id, change).await?;
    Ok(changed)
}

/// The kind and location of a registry entry, without credentials.
fn describe_spec(spec: &str) -> String {
    match toml::from_str::<StoreConfig>(spec) {
        Ok(StoreConfig::Fs { path, .. }) => format!("fs {}", path.display()),
        Ok(StoreConfig::S3 { s3, .. }) => format!("s3 {} bucket {}", s3.endpoint, s3.bucket),
        Err(_) => "(unreadable entry)".into(),
    }
}

async fn status(storage: &Storage, config: &Config) -> anyhow::Result<()> {
    let meta = &storage.meta;
    let stores = storage.blobs.stores();
    println!(
        "{:<16} {:<10} {:<12} {:>12}",
        "id", "state", "reachable", "sole copies"
    );
    for record in meta.stores().await? {
        let reachable = match stores.iter().find(|s| s.id() == record.id) {
            None => "not opened".to_string(),
            Some(store) => {
                let probe = store
                    .backend()
                    .key_for(&evermail_blob::blob_id(b"evermail status"));
                match store.backend().size(&probe).await {
                    Ok(_) => "yes".to_string(),
                    Err(e) => format!("no: {e}"),
                }
            }
        };
        let sole = meta.sole_copies(&record.id).await?;
        println!(
            "{:<16} {:<10} {:<12} {:>12}",
            record.id, record.state, reachable, sole
        );
    }
    // As repair counts: copies on draining or down stores do not count.
    let draining: Vec<String> = stores
        .iter()
        .filter(|s| matches!(s.state(), StoreState::Draining | StoreState::Down))
        .map(|s| s.id().to_string())
        .collect();
    let short = meta
        .under_replicated(config.storage.replicas as u32, &draining, u32::MAX)
        .await?;
    let lost = short.iter().filter(|u| u.good == 0).count();
    println!(
        "bodies with fewer than {} good copies: {} ({lost} with none)",
        config.storage.replicas,
        short.len()
    );
    Ok(())
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
struct Bar {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl Bar {
    fn new(what: &str) -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(what.to_string());
        Bar {
            bar,
            bytes: AtomicU64::new(0),
        }
    }
}

impl Progress for Bar {
    fn total(&self, items: u64) {
        self.bar.set_length(items);
    }

    fn advance(&self, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.inc(1);
        self.bar
            .set_message(format!("{:.1} MB", total as f64 / 1e6));
    }
}

fn maintainer(storage: &Storage, config: &Config, data_dir: &Path) -> Maintainer {
    let options = &config.storage.maintenance;
    let maintainer = Maintainer::new(
        storage.meta.clone(),
        storage.blobs.clone(),
        Arc::new(Pace::new(options.bytes_per_sec, options.objects_per_sec)),
    );
    // Large bodies are repaired through spool files, as `serve` does (the directory
    // is shared with it; spool file names are random).
    let spool = data_dir.join("spool");
    match std::fs::create_dir_all(&spool) {
        Ok(()) => maintainer.with_spool_dir(spool),
        Err(e) => {
            tracing::warn!(dir = %spool.display(), error = %e, "no spool directory; repair reads large bodies into memory");
            maintainer
        }
    }
}

/// The admin commands run their pass whether or not a node's worker holds its lease
/// (an operator asked for it now), but say so: the two then walk the same blobs at
/// once, which is safe, only slower.
async fn note_lease(storage: &Storage, kind: PassKind) {
    match evermail_rais::lease_holder(&storage.meta, kind).await {
        Ok(Some(lease)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            println!(
                "note: node {} holds the {} lease for another {} s (its maintenance worker                  runs this pass or ran it recently); running it here anyway",
                lease.holder,
                kind.as_str(),
                (lease.expires_at - now).max(0) / 1000
            );
        }
        Ok(None) => {}
        Err(e) => println!("note: could not read the {} lease: {e}", kind.as_str()),
    }
}

fn mb_per_sec(bytes: u64, started: std::time::Instant) -> f64 {
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-6)
}

pub async fn run_blob(
    command: BlobCommand,
    config: &Config,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let storage = open_storage(config, data_dir).await?;
    let started = std::time::Instant::now();
    match command {
        BlobCommand::Scrub { deep } => {
            note_lease(&storage, PassKind::Scrub).await;
            let bar = Bar::new(if deep { "deep scrub" } else { "scrub" });
            let r = maintainer(&storage, config, data_dir)
                .scrub(deep, &bar)
                .await?;
            bar.bar.finish_and_clear();
            println!(
                "scrub{}: {} copies checked, {} ok, {} missing, {} corrupt, {} on stores not \
                 reachable; {:.1} MB read in {:.1} s ({:.1} MB/s)",
                if deep { " --deep" } else { "" },
                r.checked,
                r.ok,
                r.missing,
                r.corrupt,
                r.unknown,
                r.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                mb_per_sec(r.bytes, started)
            );
            if r.missing + r.corrupt > 0 {
                println!("run `evermail blob repair` to restore the bad copies");
            }
        }
        BlobCommand::Repair => {
            note_lease(&storage, PassKind::Repair).await;
            let bar = Bar::new("repair");
            let r = maintainer(&storage, config, data_dir).repair(&bar).await?;
            bar.bar.finish_and_clear();
            println!(
                "repair: {} bodies short of copies, {} copies added ({:.1} MB in {:.1} s, \
                 {:.1} MB/s), {} copies moved off draining stores, {} bad copies dropped, \
                 {} still short, {} lost",
                r.under_replicated,
                r.copies_added,
                r.bytes_copied as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                mb_per_sec(r.bytes_copied, started),
                r.drained,
                r.bad_copies_dropped,
                r.still_under_replicated,
                r.lost
            );
            if r.still_under_replicated > 0 || r.lost > 0 {
                bail!(
                    "{} bodies still lack copies ({} have no good copy left)",
                    r.still_under_replicated,
                    r.lost
                );
            }
        }
        BlobCommand::Stat { id, check } => {
            let Some(blob) = storage.meta.blob(id).await? else {
                bail!("no body {id}");
            };
            println!("blob {id}\nsize {}", blob.size);
            for copy in storage.meta.blob_copies(id).await? {
                let verified = copy
                    .verified_at
                    .map_or_else(|| "never".to_string(), |t| format!("{t} (unix)"));
                let mut line = format!(
                    "copy {} {} state {} verified {verified}",
                    copy.store,
                    copy.key,
                    copy.state.as_str()
                );
                if check {
                    let stored = StoredCopy {
                        store: copy.store.clone(),
                        key: copy.key.clone(),
                    };
                    let found = match storage.blobs.check_copy(id, blob.size, &stored, true).await {
                        CopyCheck::Ok => "ok".to_string(),
                        CopyCheck::Missing => "missing".to_string(),
                        CopyCheck::Corrupt => "corrupt".to_string(),
                        CopyCheck::Unknown(e) => format!("unknown ({e})"),
                    };
                    line.push_str(&format!(" check {found}"));
                }
                println!("{line}");
            }
        }
        BlobCommand::Gc { grace_secs } => {
            let grace = grace_secs.unwrap_or(config.storage.maintenance.gc_grace_secs);
            note_lease(&storage, PassKind::Gc).await;
            let r = maintainer(&storage, config, data_dir)
                .collect_garbage(grace)
                .await?;
            println!(
                "gc: {} bodies newly unreferenced (deleted after {grace} s), {} deleted, {} \
                 deferred (a store did not answer), {} orphaned files deleted",
                r.newly_unreferenced, r.deleted, r.deferred, r.orphans_deleted
            );
        }
    }
    Ok(())
}
