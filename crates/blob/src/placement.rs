//! Which stores a new body goes to.
//!
//! Each writable store gets a score for each blob by weighted rendezvous hashing
//! (`weight / -ln(u)`, `u` a hash of the blob and store ids), and candidates are tried
//! in score order. The choice is deterministic per blob, so tests are reproducible and
//! every node places a body the same way; a store's share of new bodies follows its
//! weight; and adding a store moves only the share the new store takes, since every
//! other pair keeps its score.
//!
//! Healthy stores come before unhealthy ones, and among those the next copy goes to a
//! zone no other copy is in, when there is one.
//!
//! Free space counts where it is known (fs stores): a store's weight is scaled by its
//! free fraction, and a store below its reserve is tried only after the others, like an
//! unhealthy one. This
//! makes placement drift slowly as disks fill, which is harmless: reads follow the
//! location rows, not placement.

use crate::StoreHandle;
use evermail_types::BlobId;

/// The writable stores in the order they should be tried for `id`: healthy ones with
/// room by score, then unhealthy or nearly full ones by score (a last resort, not an
/// exclusion: when every store has failed lately, trying them beats refusing mail on
/// a stale flag).
pub(crate) fn candidates<'a>(id: &BlobId, stores: &'a [StoreHandle]) -> Vec<&'a StoreHandle> {
    let mut scored: Vec<(bool, f64, &StoreHandle)> = stores
        .iter()
        .filter(|s| s.state().writable())
        .map(|s| (preferred(s), score(id, s.id(), s.effective_weight()), s))
        .collect();
    // Healthy first, then the highest score; ids break (improbable) ties so the order
    // never depends on the configuration's order.
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then_with(|| a.2.id().cmp(b.2.id()))
    });
    scored.into_iter().map(|(_, _, s)| s).collect()
}

/// Picks the next store to try among `remaining` (in [`candidates`] order): the first
/// healthy one with room in a zone not in `zones`, else the first healthy one with
/// room, else the same among the others. Health outranks zones: a copy in a store that is probably
/// down protects nothing.
pub(crate) fn pick_next(remaining: &[&StoreHandle], zones: &[&str]) -> Option<usize> {
    for healthy in [true, false] {
        let tier = || {
            remaining
                .iter()
                .enumerate()
                .filter(move |(_, s)| preferred(s) == healthy)
        };
        if let Some((i, _)) = tier()
            .find(|(_, s)| !zones.contains(&s.zone()))
            .or_else(|| tier().next())
        {
            return Some(i);
        }
    }
    None
}

/// Healthy and not below its free-space reserve: the stores tried first. The others
/// are a last resort, not an exclusion: when every store has failed lately or is
/// nearly full, trying them beats refusing mail.
fn preferred(store: &StoreHandle) -> bool {
    store.healthy() && !store.full()
}

fn score(id: &BlobId, store: &str, weight: f64) -> f64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&id.0);
    hasher.update(store.as_bytes());
    let hash = hasher.finalize();
    let h = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    // u in (0, 1): never 0 (ln would be -inf) and never 1 (ln would be 0).
    let u = (h as f64 + 0.5) / (u64::MAX as f64 + 1.0);
    weight / -u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlobBackend, BlobError, StoreState, blob_id};
    use async_trait::async_trait;
    use bytes::Bytes;
    use std::collections::HashMap;
    use std::sync::Arc;

    struct Nothing;

    #[async_trait]
    impl BlobBackend for Nothing {
        fn key_for(&self, id: &BlobId) -> String {
            id.to_hex()
        }
        async fn put(&self, _: &str, _: Bytes) -> Result<(), BlobError> {
            Ok(())
        }
        async fn get(&self, _: &str) -> Result<Option<Bytes>, BlobError> {
            Ok(None)
        }
        async fn delete(&self, _: &str) -> Result<(), BlobError> {
            Ok(())
        }
    }

    fn store(id: &str, zone: &str, weight: u32) -> StoreHandle {
        StoreHandle::new(id, Arc::new(Nothing))
            .with_zone(zone)
            .with_weight(weight)
    }

    fn ids(list: &[&StoreHandle]) -> Vec<String> {
        list.iter().map(|s| s.id().to_string()).collect()
    }

    /// The stores the first `n` picks land on, with nothing failing.
    fn first_picks(id: &BlobId, stores: &[StoreHandle], n: usize) -> Vec<String> {
        let mut remaining = candidates(id, stores);
        let mut zones = Vec::new();
        let mut picked = Vec::new();
        while picked.len() < n {
            let Some(i) = pick_next(&remaining, &zones) else {
                break;
            };
            let s = remaining.remove(i);
            zones.push(s.zone());
            picked.push(s.id().to_string());
        }
        picked
    }

    #[test]
    fn deterministic_and_independent_of_configuration_order() {
        let a = vec![store("a", "a", 1), store("b", "b", 1), store("c", "c", 1)];
        let b = vec![store("c", "c", 1), store("a", "a", 1), store("b", "b", 1)];
        for i in 0..50u32 {
            let id = blob_id(&i.to_le_bytes());
            assert_eq!(ids(&candidates(&id, &a)), ids(&candidates(&id, &b)));
        }
    }

    #[test]
    fn spreads_by_weight() {
        let stores = vec![store("a", "a", 1), store("b", "b", 1), store("c", "c", 2)];
        let mut first: HashMap<String, u32> = HashMap::new();
        for i in 0..4000u32 {
            let id = blob_id(&i.to_le_bytes());
            *first
                .entry(candidates(&id, &stores)[0].id().into())
                .or_default() += 1;
        }
        // Expected 1000, 1000, 2000.
        for (s, lo, hi) in [("a", 850, 1150), ("b", 850, 1150), ("c", 1800, 2200)] {
            let n = first[s];
            assert!(
                (lo..=hi).contains(&n),
                "{s} first for {n} of 4000: {first:?}"
            );
        }
    }

    #[test]
    fn adding_a_store_moves_only_its_share() {
        let three = vec![store("a", "a", 1), store("b", "b", 1), store("c", "c", 1)];
        let mut four = three.clone();
        four.push(store("d", "d", 1));
        let mut moved = 0;
        for i in 0..1000u32 {
            let id = blob_id(&i.to_le_bytes());
            let before = candidates(&id, &three)[0].id().to_string();
            let after = candidates(&id, &four)[0].id().to_string();
            if before != after {
                assert_eq!(after, "d", "a body may only move to the new store");
                moved += 1;
            }
        }
        assert!((150..=350).contains(&moved), "{moved} of 1000 moved");
    }

    #[test]
    fn distinct_zones_first() {
        // Two zones, two stores each: two copies always land in both zones.
        let stores = vec![
            store("a1", "A", 1),
            store("a2", "A", 1),
            store("b1", "B", 1),
            store("b2", "B", 1),
        ];
        for i in 0..200u32 {
            let picks = first_picks(&blob_id(&i.to_le_bytes()), &stores, 2);
            assert_ne!(picks[0][..1], picks[1][..1], "{picks:?}");
        }
        // One zone left with two stores: both still get used.
        let stores = vec![store("a1", "A", 1), store("a2", "A", 1)];
        assert_eq!(first_picks(&blob_id(b"x"), &stores, 2).len(), 2);
    }

    #[test]
    fn unhealthy_and_unwritable_stores_come_last_or_never() {
        let stores = vec![
            store("a", "a", 1),
            store("b", "b", 1),
            store("c", "c", 1).with_state(StoreState::ReadOnly),
            store("d", "d", 1).with_state(StoreState::Draining),
            store("e", "e", 1).with_state(StoreState::Down),
        ];
        stores[0].mark_failed(&"test");
        for i in 0..100u32 {
            let order = ids(&candidates(&blob_id(&i.to_le_bytes()), &stores));
            assert_eq!(order, ["b", "a"]);
        }
        stores[0].mark_ok();
        let mut seen_a_first = false;
        for i in 0..100u32 {
            let order = ids(&candidates(&blob_id(&i.to_le_bytes()), &stores));
            assert_eq!(order.len(), 2);
            seen_a_first |= order[0] == "a";
        }
        assert!(seen_a_first);
    }

    #[test]
    fn free_space_scales_the_share_and_a_full_store_gets_nothing() {
        use crate::Capacity;
        let stores = vec![
            store("a", "a", 1).with_reserve_percent(5),
            store("b", "b", 1).with_reserve_percent(5),
            store("c", "c", 1).with_reserve_percent(5),
        ];
        stores[0].set_capacity(Capacity {
            free: 90,
            total: 100,
        });
        stores[1].set_capacity(Capacity {
            free: 30,
            total: 100,
        });
        // c is unknown (an S3 bucket): its configured weight counts in full.
        let mut first: HashMap<String, u32> = HashMap::new();
        for i in 0..3000u32 {
            let id = blob_id(&i.to_le_bytes());
            *first
                .entry(candidates(&id, &stores)[0].id().into())
                .or_default() += 1;
        }
        // Weights 0.9 : 0.3 : 1, so about 1216 : 405 : 1351.
        assert!((1050..=1400).contains(&first["a"]), "{first:?}");
        assert!((300..=520).contains(&first["b"]), "{first:?}");
        // Below the reserve: tried only after every other store.
        stores[1].set_capacity(Capacity {
            free: 4,
            total: 100,
        });
        assert!(stores[1].full());
        for i in 0..200u32 {
            let id = blob_id(&i.to_le_bytes());
            let order = ids(&candidates(&id, &stores));
            assert_eq!(order.last().map(String::as_str), Some("b"), "{order:?}");
            let picks = first_picks(&id, &stores, 2);
            assert!(!picks.contains(&"b".to_string()), "{picks:?}");
        }
    }

    #[test]
    fn health_outranks_zone() {
        let stores = vec![store("a1", "A", 1), store("a2", "A", 1), store("b", "B", 1)];
        stores[2].mark_failed(&"test");
        for i in 0..50u32 {
            let mut picks = first_picks(&blob_id(&i.to_le_bytes()), &stores, 2);
            picks.sort();
            assert_eq!(picks, ["a1", "a2"]);
        }
    }
}
