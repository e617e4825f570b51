//! What the maintenance tests set up alike: fs stores in a directory and their rows in
//! the store registry.

#![allow(dead_code)] // each test file uses its own part

use evermail_blob::StoreHandle;
use evermail_blob::fs::FsBackend;
use evermail_meta::{Meta, StoreRecord};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `n` fs stores `s0`, `s1`, ... under `dir`, written as node `node1`: their roots and
/// handles.
pub fn fs_stores(dir: &Path, n: usize) -> (Vec<PathBuf>, Vec<StoreHandle>) {
    let roots: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("s{i}"))).collect();
    let handles = roots
        .iter()
        .enumerate()
        .map(|(i, root)| {
            StoreHandle::new(
                format!("s{i}"),
                Arc::new(FsBackend::open(root, "node1").unwrap()),
            )
        })
        .collect();
    (roots, handles)
}

/// Each store as an active registry row of weight 1, as `serve` seeds them.
pub async fn register(meta: &Meta, handles: &[StoreHandle]) {
    for h in handles {
        meta.add_store(StoreRecord {
            id: h.id().into(),
            zone: h.zone().into(),
            weight: 1,
            state: "active".into(),
            spec: "{}".into(),
        })
        .await
        .unwrap();
    }
}
