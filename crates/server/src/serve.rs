//! `evermail serve`: the startup script of a node. It reads top to bottom: logging,
//! metrics, storage, listeners, services, then wait for a signal and shut down.

use crate::config::Config;
use crate::frontends::{FrontEnds, bind};
use crate::storage::open_storage;
use anyhow::Context;
use evermail_admin::{Readiness, RenderMetrics};
use evermail_cluster::HeartbeatSource;
use evermail_meta::{NodeAddress, NodeHeartbeat, NodeState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for sessions and in-flight deliveries before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Logs to stderr, filtered by `EVERMAIL_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EVERMAIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub async fn serve(config: Config, data_dir: PathBuf) -> anyhow::Result<()> {
    init_logging();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe_metrics();

    let storage = open_storage(&config, &data_dir).await?;
    let mailstore = storage.mailstore(&config, &data_dir);
    // SEARCH BODY/TEXT's index: a cache, rebuilt when deleted (`mailbox::fts`).
    mailstore.enable_text_index(data_dir.join("index"), config.search);
    let stale = mailstore
        .clean_spool()
        .context("removing stale spool files")?;
    if stale > 0 {
        tracing::info!(stale, "removed spool files left by a crash");
    }
    tracing::info!(data_dir = %data_dir.display(), node = %config.node_name(), "storage open");

    // Before any listener: a broken certificate must fail the start, not the first
    // client's handshake.
    let tls = evermail_tls::server_config(&config.tls, &data_dir, &config.node_name())
        .context("setting up TLS (the [tls] section)")?;
    let (cert_path, _) = config.tls.files(&data_dir)?;
    if config.tls.is_self_signed() {
        println!(
            "tls certificate {} (self-signed: clients must be told to trust it)",
            cert_path.display()
        );
    } else {
        println!("tls certificate {}", cert_path.display());
    }

    // Bind everything before serving anything, so a port conflict fails the start
    // instead of leaving a half-running node.
    let (frontends, listeners) = FrontEnds::bind(&config, mailstore.clone(), tls).await?;
    let admin_listener = bind("admin", config.admin.listen).await?;

    let shutdown = CancellationToken::new();
    let services = TaskTracker::new();
    let readiness = Readiness::default();

    // The front ends stop on `sessions`, a child of `shutdown`: a drain cancels only
    // it, SIGTERM both.
    let mut sessions = shutdown.child_token();
    let admin_addr = admin_listener.local_addr()?;
    frontends.start(listeners, &sessions, &services);
    let render: RenderMetrics = Arc::new(move || metrics.render());
    // The admin endpoint outlives the mail services during shutdown, so /readyz can
    // answer 503 while sessions drain.
    let admin_shutdown = CancellationToken::new();
    let admin = tokio::spawn(evermail_admin::serve(
        admin_listener,
        readiness.clone(),
        render,
        admin_shutdown.clone(),
    ));
    // Every node re-reads the store registry and runs the maintenance worker (each
    // pass only while it holds that pass's lease); both stop with the mail services.
    services.spawn(storage.registry.spawn_refresh(
        Duration::from_secs(config.storage.registry_refresh_secs),
        shutdown.clone(),
    ));
    if config.storage.maintenance.enabled {
        let options = &config.storage.maintenance;
        let pace = Arc::new(evermail_rais::Pace::new(
            options.bytes_per_sec,
            options.objects_per_sec,
        ));
        let mut maintainer =
            evermail_rais::Maintainer::new(storage.meta.clone(), storage.blobs.clone(), pace);
        // Large bodies are repaired through the spool, as they are read for clients.
        let spool = data_dir.join("spool");
        match std::fs::create_dir_all(&spool) {
            Ok(()) => maintainer = maintainer.with_spool_dir(spool),
            Err(e) => {
                tracing::warn!(dir = %spool.display(), error = %e, "no spool directory; repair reads large bodies into memory")
            }
        }
        // Under a lease per pass kind, so one node at a time walks the blobs.
        let leases = evermail_rais::Leases::new(storage.meta.clone(), config.node_name());
        services.spawn(evermail_rais::spawn_worker(
            maintainer,
            options.clone(),
            leases,
            shutdown.clone(),
        ));
    }
    services.close();

    readiness.set(true);
    println!("ready");
    println!(
        "add a user:  echo 'a-password' | evermail --data-dir {} account add you@example.com",
        data_dir.display()
    );

    // Membership: the row other nodes and proxies read, and how a drain arrives.
    let (state_tx, mut state) = tokio::sync::watch::channel(NodeState::Active);
    let heartbeat = node_heartbeat(
        &config,
        frontends.published(&config.node_name(), admin_addr),
    );
    services.spawn(evermail_cluster::run_heartbeat(
        storage.meta.clone(),
        heartbeat,
        config.cluster.clone(),
        state_tx,
        shutdown.clone(),
    ));

    // Text indexes of mailboxes deleted (through any node) or recreated: at start,
    // then hourly.
    {
        let (m, s) = (mailstore.clone(), shutdown.clone());
        services.spawn(async move {
            loop {
                match m.sweep_text_indexes().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "removed stale text indexes"),
                    Err(error) => tracing::warn!(%error, "text index sweep failed"),
                }
                tokio::select! {
                    () = s.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
            }
        });
    }

    // The text indexer: builds the indexes searches ask for and keeps those this
    // node has up to date after new mail, one mailbox at a time (`mailbox::fts`).
    {
        let (m, s) = (mailstore.clone(), shutdown.clone());
        services.spawn(async move {
            tokio::select! {
                () = s.cancelled() => {}
                () = m.run_text_indexer() => {}
            }
        });
    }

    // Changes made through other nodes to mailboxes selected here.
    {
        let (m, s) = (mailstore.clone(), shutdown.clone());
        let period = Duration::from_millis(config.cluster.change_poll_ms.max(10));
        services.spawn(async move {
            loop {
                tokio::select! {
                    () = s.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
                match m.poll_watched().await {
                    Ok(n) => {
                        metrics::counter!("evermail_watched_changes_total").increment(n as u64)
                    }
                    Err(error) => tracing::debug!(%error, "change poll failed"),
                }
            }
        });
    }

    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            result = &mut signal => { result?; break; }
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *state.borrow_and_update();
                match now {
                    NodeState::Draining if !sessions.is_cancelled() => {
                        // What SIGTERM does, minus the exit: the node keeps its admin
                        // endpoint and its heartbeat, and can be undrained.
                        tracing::info!("draining: no new sessions; ending the open ones");
                        println!("draining");
                        metrics::gauge!("evermail_node_draining").set(1.0);
                        readiness.set(false);
                        sessions.cancel();
                    }
                    NodeState::Active if sessions.is_cancelled() => {
                        let listeners = frontends.rebind().await?;
                        sessions = shutdown.child_token();
                        frontends.start(listeners, &sessions, &services);
                        readiness.set(true);
                        metrics::gauge!("evermail_node_draining").set(0.0);
                        tracing::info!("undrained: taking sessions again");
                        println!("ready");
                    }
                    _ => {}
                }
            }
        }
    }
    tracing::info!("shutting down: no new connections; finishing in-flight work");
    readiness.set(false);
    shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, services.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "sessions still open after the grace period; exiting anyway"
        );
    }
    admin_shutdown.cancel();
    let _ = admin.await;
    tracing::info!("stopped");
    Ok(())
}

/// What this node says about itself at every heartbeat.
fn node_heartbeat(config: &Config, addresses: Vec<NodeAddress>) -> HeartbeatSource {
    let name = config.node_name();
    let instance = format!("{:x}-{}", evermail_cluster::now_ms(), std::process::id());
    let started_at = evermail_cluster::now_ms();
    Box::new(move || NodeHeartbeat {
        name: name.clone(),
        instance: instance.clone(),
        addresses: addresses.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        sessions: u32::try_from(evermail_listener::active_sessions()).unwrap_or(u32::MAX),
        started_at,
    })
}

pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn describe_metrics() {
    metrics::describe_counter!(
        "evermail_deliveries_total",
        "Messages delivered into mailboxes, per recipient, by outcome"
    );
    metrics::describe_histogram!(
        "evermail_delivery_seconds",
        "Time from a complete message to its durable commit"
    );
    metrics::describe_counter!(
        "evermail_lmtp_deliveries_total",
        "LMTP per-recipient replies after DATA, by outcome"
    );
    metrics::describe_counter!(
        "evermail_sessions_total",
        "Connections accepted, by protocol"
    );
    metrics::describe_gauge!("evermail_sessions_active", "Open sessions, by protocol");
    metrics::describe_gauge!(
        "evermail_node_draining",
        "1 while this node is drained (evermail node drain), else 0"
    );
    metrics::describe_gauge!(
        "evermail_text_index_pending",
        "Mailboxes the text indexer has yet to build or bring up to date (queued, running, or waiting out the quiet time after new mail)"
    );
    metrics::gauge!("evermail_text_index_pending").set(0.0);
    metrics::describe_counter!(
        "evermail_heartbeat_failures_total",
        "Membership heartbeats this node could not write"
    );
    metrics::gauge!("evermail_node_draining").set(0.0);
    metrics::describe_counter!(
        "evermail_watched_changes_total",
        "Selected mailboxes found changed by the cross-node poll (mostly changes made through other nodes)"
    );
    metrics::describe_counter!(
        "evermail_meta_commits_total",
        "Metadata write transactions committed (each one WAL fsync)"
    );
    metrics::describe_counter!(
        "evermail_meta_commit_jobs_total",
        "Metadata writes committed; divided by commits, the group-commit factor"
    );
    for (name, help) in [
        ("evermail_imap_commands_total", "IMAP commands, by command"),
        ("evermail_imap_auth_failures_total", "Failed IMAP logins"),
        (
            "evermail_login_lockouts_total",
            "Failed-login lockouts started, IMAP and POP3, by scope (pair, address, user)",
        ),
        (
            "evermail_login_refused_total",
            "Logins refused during a lockout without checking the password, by scope",
        ),
        ("evermail_pop3_commands_total", "POP3 commands, by command"),
        ("evermail_pop3_auth_failures_total", "Failed POP3 logins"),
        (
            "evermail_blob_put_errors_total",
            "Failed body writes, by store",
        ),
        (
            "evermail_blob_put_degraded_total",
            "Bodies stored with at least min_replicas but fewer than replicas copies",
        ),
        (
            "evermail_blob_put_refused_total",
            "Bodies refused because fewer than min_replicas copies were durable",
        ),
        (
            "evermail_blob_corrupt_reads_total",
            "Body copies whose hash did not match, by store",
        ),
        (
            "evermail_blob_missing_reads_total",
            "Body copies missing from their store, by store",
        ),
        (
            "evermail_blob_read_errors_total",
            "Body reads that failed, by store",
        ),
        (
            "evermail_blob_dir_fsync_shared_total",
            "Body writes whose directory fsync another writer's fsync covered",
        ),
        (
            "evermail_meta_retries_total",
            "MySQL metadata transactions replayed, by reason (conflict, node_down, unknown_outcome)",
        ),
        (
            "evermail_meta_retries_exhausted_total",
            "MySQL metadata transactions that failed after their last attempt",
        ),
        (
            "evermail_meta_counter_duplicates_total",
            "UIDs or MODSEQs Galera let two transactions allocate, caught by a unique key and replayed",
        ),
        (
            "evermail_meta_silent_rollbacks_total",
            "MySQL transactions Galera rolled back without an error reaching them, caught before COMMIT and replayed",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
    for (name, help) in [
        (
            "evermail_rais_copies_repaired_total",
            "Body copies written by repair to restore the replica count",
        ),
        (
            "evermail_rais_copies_drained_total",
            "Body copies deleted from draining stores after their body had enough elsewhere",
        ),
        (
            "evermail_rais_scrub_checked_total",
            "Copies checked by scrubs, by kind (light, deep) and result",
        ),
        (
            "evermail_rais_scrub_passes_total",
            "Scrub passes finished, by kind",
        ),
        (
            "evermail_rais_gc_deleted_total",
            "Unreferenced bodies deleted after their grace period",
        ),
        (
            "evermail_rais_gc_orphans_deleted_total",
            "Body files no location row records deleted after the grace period",
        ),
        (
            "evermail_rais_lease_acquired_total",
            "Maintenance passes this node ran holding the pass's lease, by pass (repair, scrub, gc)",
        ),
        (
            "evermail_rais_lease_skipped_total",
            "Maintenance passes this node skipped because another node held the lease, by pass",
        ),
        (
            "evermail_rais_lease_lost_total",
            "Maintenance passes stopped because their lease could not be renewed, by pass",
        ),
        (
            "evermail_rais_lease_errors_total",
            "Maintenance passes skipped because the lease could not be asked for, by pass",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
    metrics::describe_gauge!(
        "evermail_rais_lease_held",
        "1 while this node runs a maintenance pass under its lease, by pass"
    );
    metrics::describe_gauge!(
        "evermail_rais_under_replicated_blobs",
        "Bodies with fewer good copies than replicas, as the last repair pass found"
    );
    metrics::describe_gauge!(
        "evermail_rais_lost_blobs",
        "Bodies the last repair pass found with no readable good copy"
    );
    metrics::describe_gauge!(
        "evermail_rais_scrub_pass_checked",
        "Copies checked so far by the running (or last) scrub pass, by kind"
    );
    metrics::describe_gauge!(
        "evermail_blob_store_state",
        "1 for each store's current state (active, read-only, draining, down)"
    );
    metrics::describe_gauge!(
        "evermail_blob_store_healthy",
        "1 while a store takes writes, 0 after a failure until a probe passes"
    );
    // Registered at zero so dashboards and tests see the series before the first mail.
    metrics::counter!("evermail_lmtp_deliveries_total", "outcome" => "delivered").absolute(0);
}
