//! Behaviour that only a real multi-node Galera cluster shows: writes to one mailbox
//! through every node at once, reads through one node of what another acknowledged,
//! a node that is down, and schema versions.

mod common;

use evermail_meta::*;
use evermail_meta_mysql::{MysqlMeta, SchemaVersion, latest_version};
use evermail_types::{BlobId, Flag, Flags, ModSeq, Uid};
use std::collections::{HashMap, HashSet};

fn account(address: &str) -> NewAccount {
    NewAccount {
        address: address.into(),
        password_hash: "$argon2id$test".into(),
        quota_bytes: None,
        mailboxes: vec![NewMailbox {
            name: "INBOX".into(),
            special_use: None,
            subscribed: true,
        }],
    }
}

fn message(account: &AccountRecord, inbox: &MailboxRecord, id: BlobId, size: u64) -> NewMessage {
    NewMessage {
        account: account.id,
        mailbox: inbox.id,
        blob: BlobRecord {
            id,
            size,
            structure: "{}".into(),
            header: None,
        },
        locations: vec![BlobLocation {
            store: "local".into(),
            key: id.to_hex(),
        }],
        flags: Flags::new(),
        internal_date: 1_700_000_000,
    }
}

/// One blob id per (node, task, message), so every delivery is recognisable.
fn blob_id(node: usize, task: usize, i: usize) -> BlobId {
    let mut id = [0u8; 32];
    id[0] = node as u8;
    id[1] = task as u8;
    id[2] = i as u8;
    id[31] = 0xee;
    BlobId(id)
}

#[tokio::test]
async fn hot_mailbox_through_every_node() {
    const TASKS_PER_NODE: usize = 4;
    const MESSAGES_PER_TASK: usize = 10;
    let Some((metas, db)) = common::fresh_per_node().await else {
        return;
    };
    assert!(metas.len() >= 3, "the hot-mailbox test needs 3 nodes");
    let alice = metas[0]
        .create_account(account("alice@example.com"))
        .await
        .unwrap();
    let inbox = metas[0].mailboxes(alice.id).await.unwrap().remove(0);
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let conflicts_before = conflicts(&db).await;

    // Every task delivers its messages one after another through its node, and after
    // each delivery changes the flags of that message through the same node, so
    // deliveries and flag changes from all nodes hit the same mailbox row at once.
    let mut tasks = Vec::new();
    for (node, meta) in metas.iter().enumerate() {
        for task in 0..TASKS_PER_NODE {
            let meta = meta.clone();
            let (alice, inbox, seen) = (alice.clone(), inbox.clone(), seen.clone());
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for i in 0..MESSAGES_PER_TASK {
                    let id = blob_id(node, task, i);
                    let got = meta
                        .insert_message(message(&alice, &inbox, id, 10))
                        .await
                        .unwrap_or_else(|e| panic!("delivery through node {node}: {e}"));
                    let changed = meta
                        .update_flags(inbox.id, &[got.uid], FlagChange::Add, &seen)
                        .await
                        .unwrap_or_else(|e| panic!("flag change through node {node}: {e}"));
                    assert_eq!(changed.len(), 1);
                    assert!(changed[0].modseq > got.modseq);
                    done.push((id, got, changed[0].modseq));
                }
                done
            }));
        }
    }
    let mut delivered: Vec<(BlobId, InsertedMessage, ModSeq)> = Vec::new();
    for task in tasks {
        let done = task.await.unwrap();
        // Within one task each step happened after the previous one committed, so its
        // UIDs and MODSEQs must grow in that order.
        for pair in done.windows(2) {
            assert!(pair[1].1.uid > pair[0].1.uid, "UIDs went backwards");
            assert!(pair[1].1.modseq > pair[0].2, "MODSEQ went backwards");
        }
        delivered.extend(done);
    }
    let total = metas.len() * TASKS_PER_NODE * MESSAGES_PER_TASK;
    assert_eq!(delivered.len(), total);
    // Not asserted (it depends on timing), but shows the test did what it is for:
    // transactions on different nodes collided and were replayed.
    eprintln!(
        "hot mailbox: {} certification failures and brute-force aborts were retried",
        conflicts(&db).await - conflicts_before
    );

    // Every change got its own MODSEQ: deliveries and flag changes together.
    let mut modseqs = HashSet::new();
    for (_, got, flagged) in &delivered {
        assert!(
            modseqs.insert(got.modseq),
            "MODSEQ {} handed out twice",
            got.modseq.0
        );
        assert!(
            modseqs.insert(*flagged),
            "MODSEQ {} handed out twice",
            flagged.0
        );
    }

    // Read back through a node other than the one that created the account.
    let stored = metas[1].messages(inbox.id).await.unwrap();
    assert_eq!(stored.len(), total, "a delivery was lost or doubled");
    let by_uid: HashMap<Uid, &MessageRecord> = stored.iter().map(|m| (m.uid, m)).collect();
    assert_eq!(by_uid.len(), total, "a UID appears twice");
    let uids: Vec<u32> = stored.iter().map(|m| m.uid.get()).collect();
    assert_eq!(
        uids,
        (1..=total as u32).collect::<Vec<_>>(),
        "UIDs are dense"
    );
    for (id, got, flagged) in &delivered {
        let m = by_uid[&got.uid];
        assert_eq!(
            m.blob,
            *id,
            "UID {} holds another delivery's body",
            got.uid.get()
        );
        assert!(m.flags.contains(&Flag::Seen));
        assert_eq!(m.modseq, *flagged);
    }
    let blobs: HashSet<BlobId> = stored.iter().map(|m| m.blob).collect();
    assert_eq!(blobs.len(), total, "a body was delivered twice");

    let mailbox = metas[2].mailbox(inbox.id).await.unwrap().unwrap();
    assert_eq!(mailbox.uidnext.get() as usize, total + 1);
    // The counter starts at 1 and grew once for every delivery and every flag change.
    assert_eq!(mailbox.highest_modseq.0 as usize, 1 + 2 * total);
    assert_eq!(mailbox.highest_modseq, *modseqs.iter().max().unwrap());
    let account = metas[2].account(alice.id).await.unwrap().unwrap();
    assert_eq!(account.used_bytes as usize, 10 * total);
}

/// Galera's count of transactions it aborted for conflicts, summed over the nodes.
async fn conflicts(db: &common::TestDb) -> i64 {
    let mut total = 0;
    for i in 0..db.urls.len() {
        let mut conn = db.connection(i).await;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SHOW GLOBAL STATUS WHERE Variable_name IN
                ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (_, value) in rows {
            total += String::from_utf8(value)
                .unwrap()
                .parse::<i64>()
                .unwrap_or(0);
        }
    }
    total
}

#[tokio::test]
async fn a_write_through_one_node_is_read_through_another() {
    let Some((metas, _db)) = common::fresh_per_node().await else {
        return;
    };
    let alice = metas[0]
        .create_account(account("alice@example.com"))
        .await
        .unwrap();
    // The account itself, created through node 1, is visible through node 2 at once.
    let inbox = metas[1].mailboxes(alice.id).await.unwrap().remove(0);
    for i in 0..50 {
        let got = metas[0]
            .insert_message(message(&alice, &inbox, blob_id(9, 9, i), 1))
            .await
            .unwrap();
        let reader = &metas[1 + i % (metas.len() - 1)];
        let listed = reader.messages(inbox.id).await.unwrap();
        assert_eq!(
            listed.last().map(|m| m.uid),
            Some(got.uid),
            "a read through another node missed an acknowledged delivery"
        );
        let mailbox = reader.mailbox(inbox.id).await.unwrap().unwrap();
        assert_eq!(mailbox.highest_modseq, got.modseq);
    }
}

#[tokio::test]
async fn a_node_that_is_down_is_skipped() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let mut options = db.options(&[0, 1]);
    // Nothing listens on port 1: the first node refuses every connection.
    options.urls[0] = "mysql://evermail:nothing@127.0.0.1:1/evermail".into();
    options.connect_timeout_ms = 500;
    let meta = MysqlMeta::connect(&options).await.unwrap();
    let status = meta.node_status().await;
    assert!(status[0].problem.is_some(), "{status:?}");
    assert!(!status[0].reachable, "{status:?}");
    assert_eq!(status[1].problem, None);
    assert!(status[1].reachable, "{status:?}");
    let meta = Meta::new(meta);
    let alice = meta
        .create_account(account("alice@example.com"))
        .await
        .unwrap();
    let inbox = meta.mailboxes(alice.id).await.unwrap().remove(0);
    for i in 0..10 {
        meta.insert_message(message(&alice, &inbox, blob_id(1, 1, i), 1))
            .await
            .unwrap();
    }
    assert_eq!(meta.messages(inbox.id).await.unwrap().len(), 10);
}

#[tokio::test]
async fn no_usable_node_is_a_clear_error() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let mut options = db.options(&[0]);
    options.urls = vec!["mysql://evermail:nothing@127.0.0.1:1/evermail".into()];
    options.connect_timeout_ms = 500;
    let err = MysqlMeta::connect(&options).await.err().expect("must fail");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(
        !err.to_string().contains("nothing"),
        "the password leaked: {err}"
    );
}

#[tokio::test]
async fn migrations_rerun_and_a_newer_schema_is_refused() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let first = MysqlMeta::connect(&db.options(&[0])).await.unwrap();
    assert_eq!(first.schema_version().await.unwrap(), latest_version());
    // A second node starting on the same database finds the schema done.
    let second = MysqlMeta::connect(&db.options(&[1])).await.unwrap();
    assert_eq!(second.schema_version().await.unwrap(), latest_version());

    let mut conn = db.connection(2).await;
    // Node 3 may still be applying the migrations' own rows, written through node 1;
    // their applier can brute-force abort this insert (1213), which a client retries.
    let mut attempt = 0;
    while let Err(e) =
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
            .execute(&mut conn)
            .await
    {
        attempt += 1;
        assert!(attempt < 20 && e.to_string().contains("1213"), "{e}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = MysqlMeta::connect(&db.options(&[0]))
        .await
        .err()
        .expect("must refuse a newer schema");
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Adds a migration row as a newer build would, through node `node`, retrying the
/// brute-force aborts (1213) an applier of an earlier write may cause.
async fn record_migration(db: &common::TestDb, node: usize, version: i64, down_to: i64) {
    let mut conn = db.connection(node).await;
    let mut attempt = 0;
    while let Err(e) = sqlx::query(
        "INSERT INTO schema_migrations (version, applied_at, compatible_down_to) \
         VALUES (?, 0, ?)",
    )
    .bind(version)
    .bind(down_to)
    .execute(&mut conn)
    .await
    {
        attempt += 1;
        assert!(attempt < 20 && e.to_string().contains("1213"), "{e}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_node_runs_on_a_newer_schema_only_while_it_is_compatible() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let latest = latest_version();
    let meta = MysqlMeta::connect(&db.options(&[0])).await.unwrap();
    // The newest migration may itself be compatible with older builds.
    assert_eq!(meta.schema().await.unwrap().version, latest);

    // The expand step of a rolling upgrade: release N+1 added what N ignores. N checks
    // it (as `serve` does) through another node, and `migrate` leaves it alone.
    record_migration(&db, 1, latest + 1, latest).await;
    let n = MysqlMeta::connect_without_migrating(&db.options(&[2]))
        .await
        .unwrap();
    assert_eq!(n.check_schema().await.unwrap(), latest + 1);
    assert_eq!(
        n.schema().await.unwrap(),
        SchemaVersion {
            version: latest + 1,
            compatible_down_to: latest
        }
    );
    assert_eq!(n.migrate().await.unwrap(), (latest + 1, latest + 1));

    // Its contract step: N can no longer run, and says which versions are involved.
    record_migration(&db, 1, latest + 2, latest + 2).await;
    for err in [
        n.check_schema().await.expect_err("check must refuse"),
        n.migrate().await.expect_err("migrate must refuse"),
    ] {
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        let text = err.to_string();
        assert!(text.contains(&format!("version {}", latest + 2)), "{text}");
        assert!(text.contains(&format!("({latest})")), "{text}");
        assert!(text.contains(&format!("{} or newer", latest + 2)), "{text}");
    }
}

#[tokio::test]
async fn an_unmigrated_database_is_reported_then_migrated_explicitly() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let meta = MysqlMeta::connect_without_migrating(&db.options(&[0, 1, 2]))
        .await
        .unwrap();
    assert_eq!(meta.schema_version().await.unwrap(), 0);
    let err = meta
        .check_schema()
        .await
        .expect_err("must ask for a migration");
    assert!(err.to_string().contains("evermail db migrate"), "{err}");
    assert_eq!(meta.migrate().await.unwrap(), (0, latest_version()));
    assert_eq!(meta.check_schema().await.unwrap(), latest_version());
    assert_eq!(
        meta.migrate().await.unwrap(),
        (latest_version(), latest_version()),
        "a second migrate has nothing to do"
    );
    let status = meta.node_status().await;
    assert_eq!(status.len(), 3);
    for node in &status {
        assert!(node.reachable && node.galera, "{node:?}");
        assert_eq!(node.problem, None);
        assert_eq!(node.state, "Synced");
        assert_eq!(node.cluster_size, "3");
    }
}

#[tokio::test]
async fn every_table_has_a_primary_key_and_uses_innodb() {
    let Some(db) = common::test_db().await else {
        return;
    };
    drop(MysqlMeta::connect(&db.options(&[0])).await.unwrap());
    let mut conn = db.connection(0).await;
    let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT t.table_name, t.engine,
                (SELECT COUNT(*) FROM information_schema.table_constraints c
                  WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                    AND c.constraint_type = 'PRIMARY KEY')
           FROM information_schema.tables t WHERE t.table_schema = ?",
    )
    .bind(&db.name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(rows.len() >= 8, "{} tables", rows.len());
    for (table, engine, keys) in rows {
        let table = String::from_utf8(table).unwrap();
        assert_eq!(engine, b"InnoDB", "{table}");
        assert_eq!(keys, 1, "{table} has no primary key");
    }
}

/// The backstops that catch a UID or MODSEQ handed out twice, which Galera's
/// certification does not always prevent: another transaction is made to hold the value
/// the next allocation will get (a `modseq_allocations` row, a `messages` row), exactly
/// as a lost update leaves things. The allocation must hit the key, roll back and
/// replay, and once the counter has moved on (as it has after a real lost update, when
/// the other holder committed) the replay must get a fresh value, not fail the call.
#[tokio::test]
async fn a_counter_value_held_by_another_transaction_is_replayed_with_a_fresh_one() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let meta = Meta::new(MysqlMeta::connect(&db.options(&[0])).await.unwrap());
    let alice = meta
        .create_account(account("alice@example.com"))
        .await
        .unwrap();
    let inbox = meta.mailboxes(alice.id).await.unwrap().remove(0);
    let first = meta
        .insert_message(message(&alice, &inbox, blob_id(1, 1, 1), 1))
        .await
        .unwrap();
    let mut conn = db.connection(0).await;

    // MODSEQ: the next one is already claimed by "another transaction".
    let taken = first.modseq.0 + 1;
    sqlx::query("INSERT INTO modseq_allocations (mailbox_id, modseq) VALUES (?, ?)")
        .bind(inbox.id.0)
        .bind(taken as i64)
        .execute(&mut conn)
        .await
        .unwrap();
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let flagging = {
        let (meta, seen, uid, mailbox) = (meta.clone(), seen.clone(), first.uid, inbox.id);
        tokio::spawn(async move {
            meta.update_flags(mailbox, &[uid], FlagChange::Add, &seen)
                .await
        })
    };
    // Let it collide a few times, then let the counter move past the taken value, as
    // the other holder's commit does.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!flagging.is_finished(), "the taken MODSEQ was not caught");
    sqlx::query("UPDATE mailboxes SET highest_modseq = ? WHERE id = ?")
        .bind(taken as i64)
        .bind(inbox.id.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let changed = flagging.await.unwrap().unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].modseq,
        ModSeq(taken + 1),
        "replayed with a fresh MODSEQ"
    );

    // UID: the next one is already stored by "another transaction".
    let mailbox = meta.mailbox(inbox.id).await.unwrap().unwrap();
    let taken_uid = mailbox.uidnext.get();
    let other = blob_id(2, 2, 2);
    sqlx::query("INSERT INTO blobs (id, size, structure, created_at) VALUES (?, 1, '{}', 0)")
        .bind(other.0.to_vec())
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, size, internal_date,
                               blob_id, saved_at, delivery_id)
         VALUES (?, ?, ?, 0, '', 1, 0, ?, 0, ?)",
    )
    .bind(inbox.id.0)
    .bind(taken_uid as i64)
    .bind(mailbox.highest_modseq.0 as i64)
    .bind(other.0.to_vec())
    .bind(vec![0xabu8; 16])
    .execute(&mut conn)
    .await
    .unwrap();
    let delivering = {
        let (meta, new) = (meta.clone(), message(&alice, &inbox, blob_id(3, 3, 3), 1));
        tokio::spawn(async move { meta.insert_message(new).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!delivering.is_finished(), "the taken UID was not caught");
    sqlx::query("UPDATE mailboxes SET uidnext = ? WHERE id = ?")
        .bind(taken_uid as i64 + 1)
        .bind(inbox.id.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let got = delivering.await.unwrap().unwrap();
    assert_eq!(got.uid.get(), taken_uid + 1, "replayed with a fresh UID");
    let stored = meta.messages(inbox.id).await.unwrap();
    assert_eq!(
        stored.iter().filter(|m| m.blob == blob_id(3, 3, 3)).count(),
        1,
        "the delivery is stored once"
    );
}

/// The backstop table stays small: each allocation deletes the row a fixed window
/// below its own, and deleting a mailbox deletes its rows.
#[tokio::test]
async fn modseq_allocations_are_pruned() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let meta = Meta::new(MysqlMeta::connect(&db.options(&[0])).await.unwrap());
    let alice = meta
        .create_account(account("alice@example.com"))
        .await
        .unwrap();
    let inbox = meta.mailboxes(alice.id).await.unwrap().remove(0);
    let mut conn = db.connection(0).await;
    // Jump the counter close to the window, then allocate past it.
    sqlx::query("UPDATE mailboxes SET highest_modseq = 995 WHERE id = ?")
        .bind(inbox.id.0)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO modseq_allocations (mailbox_id, modseq) VALUES (?, 2), (?, 3)")
        .bind(inbox.id.0)
        .bind(inbox.id.0)
        .execute(&mut conn)
        .await
        .unwrap();
    for i in 0..8 {
        meta.insert_message(message(&alice, &inbox, blob_id(4, 4, i), 1))
            .await
            .unwrap();
    }
    // MODSEQs 996..=1003 were allocated; 1002 and 1003 pruned rows 2 and 3.
    let kept: Vec<i64> = sqlx::query_scalar(
        "SELECT modseq FROM modseq_allocations WHERE mailbox_id = ? ORDER BY modseq",
    )
    .bind(inbox.id.0)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(kept, (996..=1003).collect::<Vec<i64>>());
    meta.delete_mailbox(inbox.id).await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM modseq_allocations WHERE mailbox_id = ?")
            .bind(inbox.id.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(left, 0);
}
