//! RAIS maintenance: keeps every message body on `replicas` good copies.
//!
//! [`Maintainer`] joins the blob store (which knows stores and bytes) and the metadata
//! store (which knows where each copy is and what state it was last found in). Its
//! passes are what both the background worker inside `evermail serve` and the admin
//! commands (`evermail blob repair`, `blob scrub`) run:
//! - [`Maintainer::repair`]: the blobs with fewest good copies first (as GFS
//!   re-replicates the most endangered chunks first), read from a verified copy and
//!   written to new stores chosen by placement; then copies on draining stores are
//!   deleted once the blob has enough good copies elsewhere.
//! - [`Maintainer::scrub`]: every copy re-checked, light (exists with the right size) or
//!   deep (the whole BLAKE3 hash), its state and `verified_at` recorded.
//! - [`Maintainer::collect_garbage`]: bodies no message references are deleted from
//!   every store once they stayed unreferenced for the grace period, and body files
//!   no row records (a delivery that failed or crashed before its commit) once they
//!   are older than the grace period and [`MIN_ORPHAN_AGE_SECS`].
//!
//! Every pass is paced ([`Pace`]: bytes and objects per second), so maintenance never
//! starves deliveries of disk or network.
//!
//! This crate must not know a protocol, a file path or a SQL dialect.
//!
//! # Layout
//! - `options`: [`RaisOptions`], the `[storage.maintenance]` settings.
//! - `pace`: the rate limiter.
//! - `passes`: repair, drain, scrub and garbage collection.
//! - `worker`: the background task of `evermail serve`.
//! - `lease`: [`Leases`], so one node of the cluster runs each kind of pass.

mod lease;
mod options;
mod pace;
mod passes;
mod worker;

pub use lease::{DEFAULT_LEASE_TTL, LeaseStats, Leases, PassKind, lease_holder};
pub use options::RaisOptions;
pub use pace::Pace;
pub use passes::{
    GcReport, MIN_ORPHAN_AGE_SECS, Maintainer, Progress, RepairReport, SPOOL_REPAIR_BYTES,
    ScrubReport,
};
pub use worker::spawn_worker;
