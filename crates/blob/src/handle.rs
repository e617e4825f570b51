//! [`StoreHandle`]: one configured store, with what placement needs to know about it.

use crate::BlobBackend;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the operator allows a store to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreState {
    /// New bodies are written to it and copies on it are read.
    #[default]
    Active,
    /// Copies on it are read; nothing new is written (a full disk, a bucket being
    /// migrated away from).
    ReadOnly,
    /// Like read-only; later the repair worker also moves its copies elsewhere so the
    /// store can be removed.
    Draining,
    /// Not used for writes and read only as a last resort, after every other copy.
    Down,
}

impl StoreState {
    /// Whether new bodies may be placed on a store in this state.
    pub fn writable(self) -> bool {
        self == StoreState::Active
    }

    /// The state named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(name: &str) -> Option<StoreState> {
        [
            StoreState::Active,
            StoreState::ReadOnly,
            StoreState::Draining,
            StoreState::Down,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The name used in the configuration file and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Active => "active",
            StoreState::ReadOnly => "read-only",
            StoreState::Draining => "draining",
            StoreState::Down => "down",
        }
    }
}

/// Free and total bytes of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub free: u64,
    pub total: u64,
}

/// One configured store: its id (recorded in every location row), its zone, weight and
/// state from the configuration, its backend, and whether it answered lately. Cheap to
/// clone; clones share the health flag.
#[derive(Clone)]
pub struct StoreHandle {
    id: String,
    zone: String,
    weight: u32,
    state: StoreState,
    backend: Arc<dyn BlobBackend>,
    health: Arc<Health>,
    /// Percent of the store kept free: below it, no new bodies are placed there.
    reserve_percent: u8,
}

impl StoreHandle {
    /// An active store of weight 1 that is its own zone.
    pub fn new(id: impl Into<String>, backend: Arc<dyn BlobBackend>) -> StoreHandle {
        let id = id.into();
        StoreHandle {
            zone: id.clone(),
            id,
            weight: 1,
            state: StoreState::Active,
            backend,
            health: Arc::new(Health::default()),
            reserve_percent: 0,
        }
    }

    /// Stores in one zone share a failure domain (a data centre, a rack, a NAS); copies
    /// of a body go to distinct zones first.
    pub fn with_zone(mut self, zone: impl Into<String>) -> StoreHandle {
        self.zone = zone.into();
        self
    }

    /// Relative share of new bodies; a store of weight 2 gets about twice as many as
    /// one of weight 1.
    pub fn with_weight(mut self, weight: u32) -> StoreHandle {
        self.weight = weight;
        self
    }

    /// Keeps `percent` of the store free: once free space falls below it, new bodies
    /// go to other stores first (it remains a last resort, as an unhealthy store is).
    pub fn with_reserve_percent(mut self, percent: u8) -> StoreHandle {
        self.reserve_percent = percent.min(100);
        self
    }

    pub fn with_state(mut self, state: StoreState) -> StoreHandle {
        self.state = state;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn weight(&self) -> u32 {
        self.weight
    }

    pub fn state(&self) -> StoreState {
        self.state
    }

    pub fn backend(&self) -> &Arc<dyn BlobBackend> {
        &self.backend
    }

    /// False from the store's last failed operation until its next successful write
    /// or probe. An unhealthy store gets new bodies only when the healthy ones are not
    /// enough.
    pub fn healthy(&self) -> bool {
        self.health.ok.load(Ordering::Acquire)
    }

    /// The capacity the last check found; `None` when unknown (S3, or not checked yet).
    pub fn capacity(&self) -> Option<Capacity> {
        let total = self.health.total.load(Ordering::Relaxed);
        (total > 0).then(|| Capacity {
            free: self.health.free.load(Ordering::Relaxed),
            total,
        })
    }

    /// Records a capacity check (shared by clones).
    pub fn set_capacity(&self, capacity: Capacity) {
        self.health.free.store(capacity.free, Ordering::Relaxed);
        self.health.total.store(capacity.total, Ordering::Relaxed);
        metrics::gauge!("evermail_blob_store_free_bytes", "store" => self.id.clone())
            .set(capacity.free as f64);
        metrics::gauge!("evermail_blob_store_total_bytes", "store" => self.id.clone())
            .set(capacity.total as f64);
    }

    /// Whether free space is below the reserve, so new bodies go elsewhere.
    pub fn full(&self) -> bool {
        self.capacity().is_some_and(|c| {
            (c.free as u128) * 100 < (c.total as u128) * u128::from(self.reserve_percent)
        })
    }

    /// The weight placement uses: the configured weight scaled by the free fraction,
    /// so fuller stores get fewer new bodies and a store added empty gets more.
    pub(crate) fn effective_weight(&self) -> f64 {
        let weight = f64::from(self.weight);
        match self.capacity() {
            Some(c) => weight * (c.free as f64 / c.total as f64).max(0.01),
            None => weight,
        }
    }

    /// Takes the store out of write placement at once, after an error.
    pub(crate) fn mark_failed(&self, error: &dyn std::fmt::Display) {
        if self.health.ok.swap(false, Ordering::AcqRel) {
            tracing::warn!(store = %self.id, %error, "blob store failed; out of write placement until a probe passes");
            metrics::gauge!("evermail_blob_store_healthy", "store" => self.id.clone()).set(0.0);
        }
    }

    pub(crate) fn mark_ok(&self) {
        if !self.health.ok.swap(true, Ordering::AcqRel) {
            tracing::info!(store = %self.id, "blob store answers again; back in write placement");
            metrics::gauge!("evermail_blob_store_healthy", "store" => self.id.clone()).set(1.0);
        }
    }
}

struct Health {
    ok: AtomicBool,
    /// Bytes free and in total at the last capacity check; total 0 is unknown.
    free: AtomicU64,
    total: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ok: AtomicBool::new(true),
            free: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, StrDeserializer};

    #[test]
    fn state_names_match_the_configuration() {
        for state in [
            StoreState::Active,
            StoreState::ReadOnly,
            StoreState::Draining,
            StoreState::Down,
        ] {
            let de: StrDeserializer<'_, Error> = state.as_str().into_deserializer();
            assert_eq!(StoreState::deserialize(de).unwrap(), state);
        }
        let de: StrDeserializer<'_, Error> = "readonly".into_deserializer();
        assert!(StoreState::deserialize(de).is_err());
    }
}
