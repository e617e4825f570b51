//! Conformance of the RAIS methods: copy states, the repair queue, the store
//! registry and garbage collection.

use super::{blob, inbox, message, new_account};
use crate::*;

fn location(store: &str, id: BlobId) -> BlobLocation {
    BlobLocation {
        store: store.into(),
        key: format!("n/{}", id.to_hex()),
    }
}

fn store_record(id: &str) -> StoreRecord {
    StoreRecord {
        id: id.into(),
        zone: format!("zone-{id}"),
        weight: 1,
        state: "active".into(),
        spec: format!("{{\"kind\":\"fs\",\"path\":\"{id}\"}}"),
    }
}

/// Delivers one message whose body has copies on `stores`.
async fn deliver(meta: &Meta, byte: u8, stores: &[&str]) -> (AccountRecord, MailboxRecord, BlobId) {
    let account = match meta.account_by_address("rais@example.com").await.unwrap() {
        Some(a) => a,
        None => meta
            .create_account(new_account("rais@example.com"))
            .await
            .unwrap(),
    };
    let inbox = inbox(meta, account.id).await;
    let body = blob(byte, 100 + u64::from(byte));
    let id = body.id;
    let mut new = message(&account, &inbox, body);
    new.locations = stores.iter().map(|s| location(s, id)).collect();
    meta.insert_message(new).await.unwrap();
    (account, inbox, id)
}

pub async fn copy_states_feed_the_repair_queue(meta: Meta) {
    let (_, _, a) = deliver(&meta, 1, &["s1", "s2"]).await;
    let (_, _, b) = deliver(&meta, 2, &["s1", "s2"]).await;
    let copies = meta.blob_copies(a).await.unwrap();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|c| c.state == CopyState::Ok));
    assert!(copies.iter().all(|c| c.verified_at.is_some()));
    assert!(meta.under_replicated(2, &[], 10).await.unwrap().is_empty());

    // A missing copy leaves the readable locations and puts the blob in the queue;
    // a blob with no good copy at all comes first.
    meta.set_copy_state(a, "s1", CopyState::Missing, None)
        .await
        .unwrap();
    meta.set_copy_state(b, "s1", CopyState::Corrupt, Some(5))
        .await
        .unwrap();
    meta.set_copy_state(b, "s2", CopyState::Missing, None)
        .await
        .unwrap();
    assert_eq!(meta.blob_locations(a).await.unwrap(), [location("s2", a)]);
    let copies = meta.blob_copies(b).await.unwrap();
    assert_eq!(copies[0].state, CopyState::Corrupt);
    assert_eq!(copies[0].verified_at, Some(5));
    assert_eq!(copies[1].state, CopyState::Missing);
    let queue = meta.under_replicated(2, &[], 10).await.unwrap();
    let order: Vec<(BlobId, u32)> = queue.iter().map(|u| (u.blob, u.good)).collect();
    assert_eq!(order, [(b, 0), (a, 1)]);
    assert_eq!(queue[1].size, 101);
    assert_eq!(meta.under_replicated(2, &[], 1).await.unwrap().len(), 1);
    // Unknown copies are not an error.
    meta.set_copy_state(a, "nowhere", CopyState::Missing, None)
        .await
        .unwrap();

    // A repaired copy counts again; copies on uncounted (draining) stores do not.
    assert!(meta.add_copy(a, location("s3", a)).await.unwrap());
    assert!(meta.add_copy(b, location("s1", b)).await.unwrap());
    assert!(meta.add_copy(b, location("s3", b)).await.unwrap());
    assert!(meta.under_replicated(2, &[], 10).await.unwrap().is_empty());
    let draining = vec!["s3".to_string()];
    let queue = meta.under_replicated(2, &draining, 10).await.unwrap();
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert!(queue.iter().all(|u| u.good == 1));
    meta.remove_copy(a, "s3").await.unwrap();
    assert_eq!(meta.blob_copies(a).await.unwrap().len(), 2);
    assert!(
        !meta
            .add_copy(BlobId([99; 32]), location("s1", BlobId([99; 32])))
            .await
            .unwrap(),
        "a copy of an unknown blob is not recorded"
    );

    // The scrub walk visits every copy once, in pages.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = meta.list_copies(after.clone(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        after = Some((last.blob, last.copy.store.clone()));
        seen.extend(page.into_iter().map(|c| (c.blob, c.copy.store, c.size)));
    }
    let mut expected = vec![
        (a, "s1".to_string(), 101),
        (a, "s2".to_string(), 101),
        (b, "s1".to_string(), 102),
        (b, "s2".to_string(), 102),
        (b, "s3".to_string(), 102),
    ];
    expected.sort();
    assert_eq!(seen, expected);
}

pub async fn store_registry_refuses_removing_a_sole_copy(meta: Meta) {
    assert!(meta.stores().await.unwrap().is_empty());
    for id in ["s2", "s1", "s3"] {
        assert!(meta.add_store(store_record(id)).await.unwrap());
    }
    let mut changed = store_record("s1");
    changed.weight = 7;
    assert!(
        !meta.add_store(changed).await.unwrap(),
        "add_store keeps an existing store"
    );
    let ids: Vec<String> = meta
        .stores()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert_eq!(meta.stores().await.unwrap()[0], store_record("s1"));

    let updated = meta
        .change_store(
            "s2",
            StoreChange {
                state: Some("draining".into()),
                weight: Some(3),
                zone: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.state, "draining");
    assert_eq!(updated.weight, 3);
    assert_eq!(updated.zone, "zone-s2");
    let err = meta
        .change_store("nope", StoreChange::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // s2 holds the only copy of one body and the only good copy of another.
    let (_, _, only) = deliver(&meta, 1, &["s2"]).await;
    let (_, _, bad_elsewhere) = deliver(&meta, 2, &["s1", "s2"]).await;
    let (_, _, _safe) = deliver(&meta, 3, &["s1", "s2"]).await;
    meta.set_copy_state(bad_elsewhere, "s1", CopyState::Corrupt, None)
        .await
        .unwrap();
    assert_eq!(meta.sole_copies("s2").await.unwrap(), 2);
    assert_eq!(meta.sole_copies("s1").await.unwrap(), 0);
    let err = meta.remove_store("s2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains(" 2 "), "{err}");
    assert_eq!(meta.stores().await.unwrap().len(), 3, "nothing removed");

    assert!(meta.add_copy(only, location("s3", only)).await.unwrap());
    assert!(
        meta.add_copy(bad_elsewhere, location("s1", bad_elsewhere))
            .await
            .unwrap()
    );
    assert_eq!(meta.sole_copies("s2").await.unwrap(), 0);
    meta.remove_store("s2").await.unwrap();
    let ids: Vec<String> = meta
        .stores()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["s1", "s3"]);
    for id in [only, bad_elsewhere] {
        assert!(
            meta.blob_copies(id)
                .await
                .unwrap()
                .iter()
                .all(|c| c.store != "s2"),
            "the removed store's copies are forgotten"
        );
    }
    let err = meta.remove_store("s2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A removed store's id is not registered again (a config file may still name it)
    // and cannot be changed.
    assert!(!meta.add_store(store_record("s2")).await.unwrap());
    assert_eq!(meta.stores().await.unwrap().len(), 2);
    let err = meta
        .change_store("s2", StoreChange::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub async fn garbage_collection_waits_and_refuses_doomed_bodies(meta: Meta) {
    let (account, inbox, kept) = deliver(&meta, 1, &["s1"]).await;
    let (_, _, dropped) = deliver(&meta, 2, &["s1", "s2"]).await;
    let messages = meta.messages(inbox.id).await.unwrap();
    let uid_of = |blob: BlobId| messages.iter().find(|m| m.blob == blob).unwrap().uid;
    meta.expunge(inbox.id, &[uid_of(dropped)]).await.unwrap();

    assert_eq!(meta.mark_unreferenced(1000).await.unwrap(), 1);
    assert_eq!(
        meta.mark_unreferenced(2000).await.unwrap(),
        0,
        "stamped once"
    );
    // Within the grace period nothing is doomed.
    assert!(meta.doom_unreferenced(999, 10).await.unwrap().is_empty());
    assert!(meta.blob(dropped).await.unwrap().is_some());

    // Referenced again before the grace period ends: the stamp is cleared.
    let mut again = message(&account, &inbox, meta.blob(dropped).await.unwrap().unwrap());
    again.locations = vec![location("s1", dropped)];
    meta.insert_message(again.clone()).await.unwrap();
    assert!(meta.doom_unreferenced(5000, 10).await.unwrap().is_empty());
    let uid = meta
        .messages(inbox.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.blob == dropped)
        .unwrap()
        .uid;
    meta.expunge(inbox.id, &[uid]).await.unwrap();
    assert_eq!(meta.mark_unreferenced(3000).await.unwrap(), 1);

    let doomed = meta.doom_unreferenced(3000, 10).await.unwrap();
    assert_eq!(doomed.len(), 1);
    assert_eq!(doomed[0].blob, dropped);
    let stores: Vec<&str> = doomed[0].copies.iter().map(|c| c.store.as_str()).collect();
    assert_eq!(stores, ["s1", "s2"]);
    // A doomed body cannot be referenced or repaired until it is gone...
    let err = meta.insert_message(again.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        !meta
            .add_copy(dropped, location("s3", dropped))
            .await
            .unwrap()
    );
    assert!(
        meta.under_replicated(5, &[], 10)
            .await
            .unwrap()
            .iter()
            .all(|u| u.blob != dropped)
    );
    // ...and stays doomed until forgotten, so an interrupted collection resumes.
    assert_eq!(meta.doom_unreferenced(0, 10).await.unwrap().len(), 1);
    meta.forget_blob(dropped).await.unwrap();
    assert!(meta.blob(dropped).await.unwrap().is_none());
    assert!(meta.blob_copies(dropped).await.unwrap().is_empty());
    assert!(meta.doom_unreferenced(5000, 10).await.unwrap().is_empty());
    // Afterwards the same content is delivered afresh.
    meta.insert_message(again).await.unwrap();
    assert_eq!(meta.blob_locations(dropped).await.unwrap().len(), 1);

    // A referenced blob is never doomed, and forgetting it does nothing.
    meta.forget_blob(kept).await.unwrap();
    assert!(meta.blob(kept).await.unwrap().is_some());
}
