//! One node of the cluster runs each kind of maintenance pass: before a pass, the
//! worker takes that kind's lease in the metadata store
//! ([`MetaBackend::try_lease`](evermail_meta::MetaBackend::try_lease)), renews it
//! while the pass runs, and skips the pass when another node holds it.
//!
//! After a pass the lease is kept for the pass's interval, so the other nodes, whose
//! timers fire at other moments, skip it until it is due again, and the holder takes
//! it again (its own) next time: every pass kind is walked once per interval in the
//! whole cluster, not once per node. A holder that stops is replaced once its lease
//! runs out: at most [`DEFAULT_LEASE_TTL`] after it stopped mid-pass, at most one
//! interval after a pass it finished. A clean shutdown releases the lease of a pass
//! it interrupts.
//!
//! Times are wall-clock milliseconds, so nodes' clocks must agree to well within the
//! lease's length (NTP does). A lease is a promise, not a lock that protects data:
//! every pass is safe to run twice at once (repair, scrub and collection already
//! race deliveries and each other's rows), so a node that loses its lease while it
//! cannot reach the metadata store does no harm by finishing a page; it stops at its
//! next renewal.

use evermail_meta::{LeaseRecord, Meta, MetaError};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a lease lasts unless renewed; a running pass renews it every third of
/// this.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(300);

/// A kind of maintenance pass, each with its own lease. Light and deep scrubs share
/// one: a deep scrub covers what a light one checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassKind {
    Repair,
    Scrub,
    Gc,
}

impl PassKind {
    pub const ALL: [PassKind; 3] = [PassKind::Repair, PassKind::Scrub, PassKind::Gc];

    /// The lease's name in the metadata store.
    pub fn lease_name(self) -> &'static str {
        match self {
            PassKind::Repair => "rais-repair",
            PassKind::Scrub => "rais-scrub",
            PassKind::Gc => "rais-gc",
        }
    }

    /// The `pass` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Repair => "repair",
            PassKind::Scrub => "scrub",
            PassKind::Gc => "gc",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What happened to the leases of one worker, per pass kind (tests read it; the same
/// counts are exported as `evermail_rais_lease_*` metrics).
#[derive(Debug, Default)]
pub struct LeaseStats {
    ran: [AtomicU64; 3],
    skipped: [AtomicU64; 3],
    lost: [AtomicU64; 3],
}

impl LeaseStats {
    /// Passes this worker ran holding the lease.
    pub fn ran(&self, kind: PassKind) -> u64 {
        self.ran[kind.index()].load(Ordering::Relaxed)
    }
    /// Passes skipped because another node held the lease (or it could not be asked).
    pub fn skipped(&self, kind: PassKind) -> u64 {
        self.skipped[kind.index()].load(Ordering::Relaxed)
    }
    /// Passes stopped because the lease could not be renewed.
    pub fn lost(&self, kind: PassKind) -> u64 {
        self.lost[kind.index()].load(Ordering::Relaxed)
    }
}

/// The leases one node's worker takes. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    meta: Meta,
    holder: String,
    ttl: Duration,
    stats: Arc<LeaseStats>,
    /// The pass running under a lease now, released if shutdown interrupts it.
    running: Arc<Mutex<Option<PassKind>>>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Leases {
    /// Leases held as `holder` (the node's name).
    pub fn new(meta: Meta, holder: impl Into<String>) -> Leases {
        Leases {
            meta,
            holder: holder.into(),
            ttl: DEFAULT_LEASE_TTL,
            stats: Arc::default(),
            running: Arc::default(),
        }
    }

    /// A lease length other than [`DEFAULT_LEASE_TTL`] (tests).
    pub fn with_ttl(mut self, ttl: Duration) -> Leases {
        self.ttl = ttl;
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn stats(&self) -> &LeaseStats {
        &self.stats
    }

    /// Runs `pass` if this node gets the lease of `kind`, renewing it every third of
    /// its length while the pass runs, and keeps it for `hold` after the pass ends
    /// (the pass's interval; see the module documentation). `None` when the pass did
    /// not run (another node holds the lease, or it could not be asked) or was
    /// stopped because the lease could not be renewed.
    pub async fn run<T>(
        &self,
        kind: PassKind,
        hold: Duration,
        pass: impl Future<Output = T>,
    ) -> Option<T> {
        let name = kind.lease_name();
        let label = kind.as_str();
        let taken = now_ms();
        match self
            .meta
            .try_lease(name, &self.holder, taken, ms(self.ttl))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.stats.skipped[kind.index()].fetch_add(1, Ordering::Relaxed);
                metrics::counter!("evermail_rais_lease_skipped_total", "pass" => label)
                    .increment(1);
                let holder = self.meta.lease(name).await.ok().flatten();
                tracing::debug!(pass = label, holder = ?holder.map(|l| l.holder), "another node holds the lease; skipping the pass");
                return None;
            }
            Err(e) => {
                self.stats.skipped[kind.index()].fetch_add(1, Ordering::Relaxed);
                metrics::counter!("evermail_rais_lease_errors_total", "pass" => label).increment(1);
                tracing::warn!(pass = label, error = %e, "could not take the lease; skipping the pass");
                return None;
            }
        }
        metrics::counter!("evermail_rais_lease_acquired_total", "pass" => label).increment(1);
        metrics::gauge!("evermail_rais_lease_held", "pass" => label).set(1.0);
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(kind);
        let outcome = tokio::select! {
            out = pass => Some(out),
            () = self.keep(kind, taken) => None,
        };
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        metrics::gauge!("evermail_rais_lease_held", "pass" => label).set(0.0);
        match outcome {
            Some(out) => {
                self.stats.ran[kind.index()].fetch_add(1, Ordering::Relaxed);
                // Kept until the pass is due again, so no other node walks it meanwhile.
                // The holder's own timer fires before that (the interval counts from the
                // pass's start), so it keeps the pass; only if it is late (down, or busy
                // with a long pass of another kind) does another node take over.
                let hold = ms(hold);
                if let Err(e) = self
                    .meta
                    .renew_lease(name, &self.holder, now_ms(), hold)
                    .await
                {
                    tracing::warn!(pass = label, error = %e, "could not keep the lease after the pass; another node may run it early");
                }
                Some(out)
            }
            None => {
                self.stats.lost[kind.index()].fetch_add(1, Ordering::Relaxed);
                metrics::counter!("evermail_rais_lease_lost_total", "pass" => label).increment(1);
                tracing::warn!(
                    pass = label,
                    "lost the lease during the pass; stopped it (another node takes over)"
                );
                None
            }
        }
    }

    /// Renews the lease every third of its length; returns once it is lost: another
    /// holder has it, or it ran out while the metadata store could not be reached.
    async fn keep(&self, kind: PassKind, taken: i64) {
        let name = kind.lease_name();
        let mut valid_until = taken.saturating_add(ms(self.ttl));
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            let now = now_ms();
            match self
                .meta
                .renew_lease(name, &self.holder, now, ms(self.ttl))
                .await
            {
                Ok(true) => valid_until = now.saturating_add(ms(self.ttl)),
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(pass = kind.as_str(), error = %e, "could not renew the lease");
                    if now_ms() >= valid_until {
                        return;
                    }
                }
            }
        }
    }

    /// Releases the lease of a pass that shutdown interrupts, so another node takes
    /// it over without waiting for it to run out.
    pub async fn release_running(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(kind) = running {
            metrics::gauge!("evermail_rais_lease_held", "pass" => kind.as_str()).set(0.0);
            if let Err(e) = self
                .meta
                .release_lease(kind.lease_name(), &self.holder)
                .await
            {
                tracing::warn!(pass = kind.as_str(), error = %e, "could not release the lease at shutdown; it runs out by itself");
            }
        }
    }
}

/// The node holding the lease of `kind` now, if any: what `evermail blob
/// scrub|repair|gc` mention before running the pass themselves.
pub async fn lease_holder(meta: &Meta, kind: PassKind) -> Result<Option<LeaseRecord>, MetaError> {
    Ok(meta
        .lease(kind.lease_name())
        .await?
        .filter(|l| l.expires_at > now_ms()))
}
