//! Conformance of leases: one holder at a time, renewal, expiry, release.

use crate::*;

pub async fn leases_have_one_holder_at_a_time(meta: Meta) {
    assert_eq!(meta.lease("repair").await.unwrap(), None);
    assert!(meta.try_lease("repair", "a", 1_000, 500).await.unwrap());
    // Held: another node is refused until it expires; the holder renews.
    assert!(!meta.try_lease("repair", "b", 1_200, 500).await.unwrap());
    assert!(meta.renew_lease("repair", "a", 1_400, 500).await.unwrap());
    assert!(!meta.try_lease("repair", "b", 1_800, 500).await.unwrap());
    let held = meta.lease("repair").await.unwrap().unwrap();
    assert_eq!((held.holder.as_str(), held.expires_at), ("a", 1_900));
    // Leases are independent by name.
    assert!(meta.try_lease("scrub", "b", 1_800, 500).await.unwrap());
    // Expired: taken over, and the old holder can no longer renew.
    assert!(meta.try_lease("repair", "b", 1_900, 500).await.unwrap());
    assert!(!meta.renew_lease("repair", "a", 1_950, 500).await.unwrap());
    // Released only by its holder.
    meta.release_lease("repair", "a").await.unwrap();
    assert_eq!(
        meta.lease("repair").await.unwrap().unwrap().holder,
        "b".to_string()
    );
    meta.release_lease("repair", "b").await.unwrap();
    assert_eq!(meta.lease("repair").await.unwrap(), None);
    assert!(meta.try_lease("repair", "a", 2_000, 500).await.unwrap());
}

pub async fn concurrent_takers_get_one_lease(meta: Meta) {
    for round in 0..5i64 {
        let name = format!("gc-{round}");
        let takers = (0..8).map(|i| {
            let meta = meta.clone();
            let name = name.clone();
            tokio::spawn(async move {
                meta.try_lease(&name, &format!("node{i}"), 10_000, 60_000)
                    .await
                    .unwrap()
            })
        });
        let mut won = 0;
        for taker in takers.collect::<Vec<_>>() {
            won += usize::from(taker.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
    }
}
