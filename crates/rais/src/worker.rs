//! The background worker of `evermail serve`.

use crate::{Leases, Maintainer, PassKind, RaisOptions};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs repair every `repair_interval_secs`, a light scrub every
/// `scrub_interval_secs`, a deep one every `deep_scrub_interval_secs` and garbage
/// collection every `gc_interval_secs`, one pass at a time, until `shutdown`.
///
/// One pass at a time keeps maintenance within one rate limit and makes the order
/// simple: repair first after start (a store may have been lost while this node was
/// down), and a pass interrupted by shutdown simply runs again later, since every
/// pass starts from what the metadata store says.
///
/// Each pass runs only under its kind's lease ([`Leases::run`]): when another node
/// holds it, this node skips the pass and tries again an interval later, so each
/// kind of pass walks the blobs on one node at a time and once per interval in the
/// cluster.
pub fn spawn_worker(
    maintainer: Maintainer,
    options: RaisOptions,
    leases: Leases,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secs = Duration::from_secs;
        let start = Instant::now();
        let mut next_repair = start;
        let mut next_scrub = start + secs(options.scrub_interval_secs);
        let mut next_deep = start + secs(options.deep_scrub_interval_secs);
        let mut next_gc = start + secs(options.gc_interval_secs);
        loop {
            let next = next_repair.min(next_scrub).min(next_deep).min(next_gc);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            let now = Instant::now();
            let pass = async {
                if now >= next_repair {
                    next_repair = now + secs(options.repair_interval_secs);
                    let hold = secs(options.repair_interval_secs);
                    match leases
                        .run(PassKind::Repair, hold, maintainer.repair(&()))
                        .await
                    {
                        Some(Ok(r)) if r.under_replicated > 0 || r.drained > 0 => {
                            tracing::info!(?r, "repair pass")
                        }
                        Some(Ok(_)) | None => {}
                        Some(Err(e)) => tracing::warn!(error = %e, "repair pass failed"),
                    }
                }
                // Either scrub is kept until the next one of either kind is due.
                let hold = secs(options.scrub_interval_secs);
                if now >= next_deep {
                    next_deep = now + secs(options.deep_scrub_interval_secs);
                    // A deep scrub covers what the light one checks.
                    next_scrub = now + secs(options.scrub_interval_secs);
                    let pass = maintainer.scrub(true, &());
                    if let Some(result) = leases.run(PassKind::Scrub, hold, pass).await {
                        log_scrub(result, "deep");
                    }
                } else if now >= next_scrub {
                    next_scrub = now + secs(options.scrub_interval_secs);
                    let pass = maintainer.scrub(false, &());
                    if let Some(result) = leases.run(PassKind::Scrub, hold, pass).await {
                        log_scrub(result, "light");
                    }
                }
                if now >= next_gc {
                    next_gc = now + secs(options.gc_interval_secs);
                    let hold = secs(options.gc_interval_secs);
                    let pass = maintainer.collect_garbage(options.gc_grace_secs);
                    match leases.run(PassKind::Gc, hold, pass).await {
                        Some(Ok(r)) if r.deleted + r.deferred + r.orphans_deleted > 0 => {
                            tracing::info!(?r, "garbage collection pass")
                        }
                        Some(Ok(_)) | None => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "garbage collection pass failed")
                        }
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    leases.release_running().await;
                    return;
                }
                _ = pass => {}
            }
        }
    })
}

fn log_scrub(result: Result<crate::ScrubReport, evermail_meta::MetaError>, kind: &str) {
    match result {
        Ok(r) if r.missing + r.corrupt > 0 => {
            tracing::warn!(kind, ?r, "scrub found bad copies; repair will restore them")
        }
        Ok(r) => tracing::info!(kind, ?r, "scrub pass"),
        Err(e) => tracing::warn!(kind, error = %e, "scrub pass failed"),
    }
}
