//! One node per maintenance pass: two nodes' workers on one SQLite metadata store
//! (and the same fs stores), each pass kind walked by the one holding its lease.

mod common;

use bytes::Bytes;
use evermail_blob::BlobStore;
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use evermail_rais::{Leases, Maintainer, Pace, PassKind, RaisOptions, spawn_worker};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct World {
    _dir: tempfile::TempDir,
    roots: Vec<PathBuf>,
    meta: Meta,
    /// One maintainer per node.
    nodes: [Maintainer; 2],
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::new(
        SqliteMeta::open(&dir.path().join("meta.sqlite"))
            .await
            .unwrap(),
    );
    let (roots, handles) = common::fs_stores(dir.path(), 3);
    common::register(&meta, &handles).await;
    let blobs = BlobStore::new(handles, 2, 2).unwrap();
    let mail = Mailstore::new(meta.clone(), blobs.clone(), MailstoreOptions::default());
    let account = mail
        .create_account("lease@example.com", "pw", None)
        .await
        .unwrap()
        .id;
    for i in 0..20 {
        let body = Bytes::from(format!("Subject: {i}\r\n\r\nbody {i}\r\n"));
        assert!(mail.deliver(body, &[account]).await.unwrap()[0].is_ok());
    }
    let node = || {
        Maintainer::new(
            meta.clone(),
            blobs.clone(),
            Arc::new(Pace::new(u64::MAX, u64::MAX)),
        )
    };
    let nodes = [node(), node()];
    World {
        _dir: dir,
        roots,
        meta,
        nodes,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn of_two_nodes_one_walks_each_pass() {
    let w = world().await;
    // Work for repair: every copy on s0 is lost.
    std::fs::remove_dir_all(&w.roots[0]).unwrap();
    let a = Leases::new(w.meta.clone(), "node1");
    let b = Leases::new(w.meta.clone(), "node2");
    let [na, nb] = &w.nodes;

    // Each pass kind has a lease of its own. Both nodes' scrubs start at once: one
    // walks (and finds the lost copies), the other skips.
    for kind in [PassKind::Scrub, PassKind::Gc] {
        let pass = |n: &Maintainer| {
            let n = n.clone();
            async move {
                match kind {
                    PassKind::Scrub => n.scrub(false, &()).await.map(|r| r.missing),
                    _ => n.collect_garbage(0).await.map(|r| r.deleted),
                }
            }
        };
        let (ra, rb) = tokio::join!(a.run(kind, HOUR, pass(na)), b.run(kind, HOUR, pass(nb)));
        assert!(ra.is_some() != rb.is_some(), "{kind:?}: {ra:?} {rb:?}");
        let walked = ra.or(rb).unwrap().unwrap();
        if kind == PassKind::Scrub {
            assert!(walked > 0, "the copies on s0 were found missing");
        }
        assert_eq!(a.stats().ran(kind) + b.stats().ran(kind), 1, "{kind:?}");
        assert_eq!(
            a.stats().skipped(kind) + b.stats().skipped(kind),
            1,
            "{kind:?}"
        );
    }

    // Likewise repair, which restores those copies.
    let (ra, rb) = tokio::join!(
        a.run(PassKind::Repair, HOUR, na.repair(&())),
        b.run(PassKind::Repair, HOUR, nb.repair(&()))
    );
    let (winner, loser, report) = match (ra, rb) {
        (Some(r), None) => (&a, &b, r),
        (None, Some(r)) => (&b, &a, r),
        other => panic!("exactly one node must repair: {other:?}"),
    };
    let report = report.unwrap();
    assert!(report.copies_added > 0, "{report:?}");
    assert_eq!(report.still_under_replicated, 0, "{report:?}");
    assert_eq!(
        (
            winner.stats().ran(PassKind::Repair),
            loser.stats().skipped(PassKind::Repair)
        ),
        (1, 1)
    );
    assert_eq!(
        w.meta.lease("rais-repair").await.unwrap().unwrap().holder,
        winner.holder()
    );
    // Kept after the pass, for its interval: the holder walks it again, the other
    // node keeps skipping.
    assert!(
        loser
            .run(PassKind::Repair, HOUR, nb.repair(&()))
            .await
            .is_none()
    );
    let again = winner.run(PassKind::Repair, HOUR, na.repair(&())).await;
    assert_eq!(again.unwrap().unwrap().under_replicated, 0);
    assert_eq!(winner.stats().ran(PassKind::Repair), 2);
    assert_eq!(loser.stats().ran(PassKind::Repair), 0);
    assert_eq!(loser.stats().skipped(PassKind::Repair), 2);
}

#[tokio::test]
async fn two_workers_on_one_database_repair_once() {
    let w = world().await;
    std::fs::remove_dir_all(&w.roots[0]).unwrap();
    let found = w.nodes[0].scrub(false, &()).await.unwrap();
    assert!(found.missing > 0);
    // Only the repair at start is due within the test.
    let options = RaisOptions {
        repair_interval_secs: 3600,
        scrub_interval_secs: 3600,
        deep_scrub_interval_secs: 3600,
        gc_interval_secs: 3600,
        ..RaisOptions::default()
    };
    let shutdown = CancellationToken::new();
    let leases = [
        Leases::new(w.meta.clone(), "node1"),
        Leases::new(w.meta.clone(), "node2"),
    ];
    let workers: Vec<_> = w
        .nodes
        .iter()
        .zip(&leases)
        .map(|(n, l)| spawn_worker(n.clone(), options.clone(), l.clone(), shutdown.clone()))
        .collect();
    let tried = |l: &Leases| l.stats().ran(PassKind::Repair) + l.stats().skipped(PassKind::Repair);
    for _ in 0..600 {
        if leases.iter().all(|l| tried(l) == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        leases.iter().all(|l| tried(l) == 1),
        "both workers tried their repair"
    );
    let ran: Vec<u64> = leases
        .iter()
        .map(|l| l.stats().ran(PassKind::Repair))
        .collect();
    assert_eq!(ran.iter().sum::<u64>(), 1, "one worker repaired: {ran:?}");
    // And that one pass restored every copy.
    assert!(
        w.meta
            .under_replicated(2, &[], 10)
            .await
            .unwrap()
            .is_empty()
    );
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
}

#[tokio::test]
async fn a_pass_stops_when_its_lease_is_taken_and_a_lapsed_lease_is_taken_over() {
    let w = world().await;
    let ttl = Duration::from_millis(300);
    let a = Leases::new(w.meta.clone(), "node1").with_ttl(ttl);
    let b = Leases::new(w.meta.clone(), "node2").with_ttl(ttl);

    // node1's pass never ends; it renews its lease meanwhile.
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.run(PassKind::Gc, ttl, std::future::pending::<()>()).await }
    });
    while w.meta.lease("rais-gc").await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(ttl).await;
    assert!(
        b.run(PassKind::Gc, ttl, async {}).await.is_none(),
        "renewed past its first ttl, still node1's"
    );
    // Taken by node2 behind node1's back: node1 stops its pass at its next renewal.
    w.meta.release_lease("rais-gc", "node1").await.unwrap();
    assert!(
        w.meta
            .try_lease("rais-gc", "node2", now_ms(), 60_000)
            .await
            .unwrap()
    );
    let stopped = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the pass stops")
        .unwrap();
    assert_eq!(stopped, None);
    assert_eq!(a.stats().lost(PassKind::Gc), 1);

    // A pass that ended keeps its lease for `hold`, then another node takes it.
    assert!(a.run(PassKind::Scrub, ttl, async {}).await.is_some());
    assert!(b.run(PassKind::Scrub, ttl, async {}).await.is_none());
    tokio::time::sleep(ttl * 2).await;
    assert!(b.run(PassKind::Scrub, ttl, async {}).await.is_some());
    assert_eq!(
        w.meta.lease("rais-scrub").await.unwrap().unwrap().holder,
        "node2"
    );
}

#[tokio::test]
async fn shutdown_releases_the_lease_of_an_interrupted_pass() {
    let w = world().await;
    let a = Leases::new(w.meta.clone(), "node1");
    let running = tokio::spawn({
        let a = a.clone();
        async move {
            a.run(PassKind::Repair, HOUR, std::future::pending::<()>())
                .await
        }
    });
    while w.meta.lease("rais-repair").await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What the worker does when shutdown interrupts a pass: drop it, release.
    running.abort();
    let _ = running.await;
    a.release_running().await;
    assert_eq!(w.meta.lease("rais-repair").await.unwrap(), None);
    let b = Leases::new(w.meta.clone(), "node2");
    assert!(b.run(PassKind::Repair, HOUR, async {}).await.is_some());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
