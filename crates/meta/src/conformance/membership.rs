//! Conformance of cluster membership: heartbeats, states, and forgetting a node.

use super::{blob, inbox, message, new_account};
use crate::*;
use evermail_types::{MailboxId, ModSeq};

fn beat(name: &str, instance: &str, sessions: u32) -> NodeHeartbeat {
    NodeHeartbeat {
        name: name.into(),
        instance: instance.into(),
        addresses: vec![
            NodeAddress {
                protocol: "imap".into(),
                address: format!("127.0.0.1:{}", 1000 + sessions),
            },
            NodeAddress {
                protocol: "lmtp".into(),
                address: "127.0.0.1:24".into(),
            },
        ],
        version: "0.1.0".into(),
        sessions,
        started_at: 1_000,
    }
}

pub async fn nodes_heartbeat_and_keep_their_state(meta: Meta) {
    assert!(meta.nodes().await.unwrap().is_empty());
    let a = meta
        .node_heartbeat(beat("a", "a1", 0), 5_000)
        .await
        .unwrap();
    assert_eq!(a.state, NodeState::Active);
    assert_eq!(a.heartbeat_at, 5_000);
    assert_eq!(a.address("imap"), Some("127.0.0.1:1000"));
    meta.node_heartbeat(beat("b", "b1", 0), 5_000)
        .await
        .unwrap();

    // A drain is a row change the node sees in the answer to its next heartbeat, which
    // refreshes time, load and addresses but never the state.
    meta.set_node_state("a", NodeState::Draining).await.unwrap();
    let a = meta
        .node_heartbeat(beat("a", "a1", 7), 7_000)
        .await
        .unwrap();
    assert_eq!(a.state, NodeState::Draining);
    assert_eq!((a.sessions, a.heartbeat_at), (7, 7_000));
    assert_eq!(a.address("imap"), Some("127.0.0.1:1007"));
    assert_eq!(a.address("pop3"), None);

    // A restarted process (new instance) takes the row over and stays drained until
    // told otherwise.
    let a = meta
        .node_heartbeat(beat("a", "a2", 0), 8_000)
        .await
        .unwrap();
    assert_eq!((a.instance.as_str(), a.state), ("a2", NodeState::Draining));
    meta.set_node_state("a", NodeState::Active).await.unwrap();

    let nodes = meta.nodes().await.unwrap();
    let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(nodes[0].state, NodeState::Active);
    assert_eq!(nodes[0].started_at, 1_000);
    assert_eq!(nodes[0].version, "0.1.0");
    // b stopped heart-beating at 5 000: down for everyone from 15 000 on.
    assert!(nodes[1].is_up(14_999, 10_000));
    assert!(!nodes[1].is_up(15_000, 10_000));

    let err = meta
        .set_node_state("nobody", NodeState::Draining)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(meta.forget_node("b").await.unwrap());
    assert!(!meta.forget_node("b").await.unwrap());
    let names: Vec<_> = meta
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["a"]);
}

pub async fn highest_modseqs_follow_every_change(meta: Meta) {
    let account = meta
        .create_account(new_account("watch@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, account.id).await;
    let before = meta.highest_modseqs(&[inbox.id]).await.unwrap();
    assert_eq!(before, vec![(inbox.id, inbox.highest_modseq)]);
    let added = meta
        .insert_message(message(&account, &inbox, blob(7, 70)))
        .await
        .unwrap();
    let after = meta
        .highest_modseqs(&[inbox.id, MailboxId(i64::MAX)])
        .await
        .unwrap();
    assert_eq!(
        after,
        vec![(inbox.id, added.modseq)],
        "unknown ids are left out"
    );
    assert!(added.modseq > inbox.highest_modseq);
    meta.expunge(inbox.id, &[added.uid]).await.unwrap();
    let (_, expunged) = meta.highest_modseqs(&[inbox.id]).await.unwrap()[0];
    assert!(expunged > added.modseq, "an expunge advances it too");
    assert!(meta.highest_modseqs(&[]).await.unwrap().is_empty());
    let _: ModSeq = expunged;
}

pub async fn insert_message_once_stores_a_delivery_once(meta: Meta) {
    let account = meta
        .create_account(new_account("once@example.com"))
        .await
        .unwrap();
    let inbox = inbox(&meta, account.id).await;
    let first = meta
        .insert_message_once(message(&account, &inbox, blob(9, 90)), [1; 16])
        .await
        .unwrap();
    // The replay of the same delivery: the same message, nothing added.
    let again = meta
        .insert_message_once(message(&account, &inbox, blob(9, 90)), [1; 16])
        .await
        .unwrap();
    assert_eq!(first, again);
    // Another delivery of the same body is another message.
    let other = meta
        .insert_message_once(message(&account, &inbox, blob(9, 90)), [2; 16])
        .await
        .unwrap();
    assert!(other.uid > first.uid);
    let plain = meta
        .insert_message(message(&account, &inbox, blob(9, 90)))
        .await
        .unwrap();
    assert!(plain.uid > other.uid);
    assert_eq!(meta.messages(inbox.id).await.unwrap().len(), 3);
}
