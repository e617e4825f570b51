//! `evermail proxy`: the startup script of a proxy. Logging, metrics, membership,
//! listeners, then wait for a signal and stop.

use crate::config::Config;
use crate::frontends::bind;
use crate::storage::open_meta;
use anyhow::Context;
use evermail_admin::{Readiness, RenderMetrics};
use evermail_proxy::Router;
use evermail_tls::ListenerTls;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub async fn proxy(config: Config, data_dir: PathBuf) -> anyhow::Result<()> {
    crate::serve::init_logging();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let meta = open_meta(&config, &data_dir).await?;
    let tls = evermail_tls::server_config(&config.tls, &data_dir, &config.node_name())
        .context("setting up TLS (the [tls] section)")?;
    metrics::describe_counter!(
        "evermail_proxy_failovers_total",
        "Times a node could not be used and the next was tried, by node"
    );
    metrics::describe_counter!(
        "evermail_proxy_routed_total",
        "Logins routed to a node, by protocol and node"
    );
    metrics::describe_gauge!(
        "evermail_proxy_healthy_nodes",
        "Nodes the proxy judged healthy at its last refresh"
    );
    metrics::describe_counter!(
        "evermail_sessions_total",
        "Connections accepted, by protocol"
    );
    metrics::describe_gauge!("evermail_sessions_active", "Open sessions, by protocol");
    let options = &config.proxy;
    let router = Router::new(meta, options.clone(), config.cluster.clone());
    router.refresh().await;

    let mut imap = Vec::new();
    for addr in &options.imap_listen {
        imap.push((
            bind("imap", *addr).await?,
            ListenerTls::StartTls(tls.clone()),
        ));
    }
    for addr in &options.imaps_listen {
        imap.push((
            bind("imaps", *addr).await?,
            ListenerTls::Implicit(tls.clone()),
        ));
    }
    let mut pop3 = Vec::new();
    for addr in &options.pop3_listen {
        pop3.push((
            bind("pop3", *addr).await?,
            ListenerTls::StartTls(tls.clone()),
        ));
    }
    for addr in &options.pop3s_listen {
        pop3.push((
            bind("pop3s", *addr).await?,
            ListenerTls::Implicit(tls.clone()),
        ));
    }
    let mut lmtp = Vec::new();
    for addr in &options.lmtp_listen {
        lmtp.push(bind("lmtp", *addr).await?);
    }
    let admin_listener = bind("admin", options.admin_listen).await?;

    let shutdown = CancellationToken::new();
    let services = TaskTracker::new();
    for (listener, tls) in imap {
        let (r, s) = (router.clone(), shutdown.clone());
        let plaintext_auth = config.imap.plaintext_auth;
        services.spawn(async move {
            if let Err(e) = evermail_proxy::serve_imap(listener, r, tls, plaintext_auth, s).await {
                tracing::error!(error = %e, "IMAP proxy listener failed");
            }
        });
    }
    for (listener, tls) in pop3 {
        let (r, s) = (router.clone(), shutdown.clone());
        let plaintext_auth = config.pop3.plaintext_auth;
        services.spawn(async move {
            if let Err(e) = evermail_proxy::serve_pop3(listener, r, tls, plaintext_auth, s).await {
                tracing::error!(error = %e, "POP3 proxy listener failed");
            }
        });
    }
    for listener in lmtp {
        let (r, s) = (router.clone(), shutdown.clone());
        services.spawn(async move {
            if let Err(e) = evermail_proxy::serve_lmtp(listener, r, s).await {
                tracing::error!(error = %e, "LMTP proxy listener failed");
            }
        });
    }
    services.spawn(router.clone().run_refresh(shutdown.clone()));
    // Ready while at least one node is healthy.
    let readiness = Readiness::default();
    {
        let (r, ready, s) = (router.clone(), readiness.clone(), shutdown.clone());
        let period = Duration::from_millis(options.refresh_ms.max(50));
        services.spawn(async move {
            loop {
                ready.set(r.has_nodes());
                tokio::select! {
                    () = s.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
            }
        });
    }
    services.close();
    let render: RenderMetrics = Arc::new(move || metrics.render());
    let admin_shutdown = CancellationToken::new();
    let admin = tokio::spawn(evermail_admin::serve(
        admin_listener,
        readiness.clone(),
        render,
        admin_shutdown.clone(),
    ));
    println!("ready");

    crate::serve::wait_for_signal().await?;
    tracing::info!("proxy shutting down");
    readiness.set(false);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), services.wait()).await;
    admin_shutdown.cancel();
    let _ = admin.await;
    Ok(())
}
