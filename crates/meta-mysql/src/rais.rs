//! The RAIS tables: copy states, the store registry, repair queries and garbage
//! collection, mirroring the SQLite backend's `rais` statement by statement.
//!
//! Garbage collection and deliveries race on the blob row: `doom_unreferenced` writes
//! it, and `insert_message` reads it and inserts a message row whose foreign key names
//! it. Galera certifies a foreign key's parent row as a shared key, which conflicts with
//! the doom's exclusive one, so across nodes one of the two transactions is rolled back
//! and replayed (and then sees the other's outcome); on one node the `FOR UPDATE` read
//! of `claim_blob` orders them.

use crate::MysqlMeta;
use crate::retry::{TxError, db};
use crate::rows::{corrupt, text};
use evermail_meta::*;
use evermail_types::BlobId;
use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row};

fn blob_id(row: &MySqlRow, column: &str) -> Result<BlobId, TxError> {
    let bytes: Vec<u8> = row.try_get(column).map_err(db)?;
    Ok(BlobId(bytes.try_into().map_err(|_| corrupt("blob id"))?))
}

fn copy_from_row(row: &MySqlRow) -> Result<BlobCopy, TxError> {
    let state = text(row, "state")?;
    Ok(BlobCopy {
        store: text(row, "store")?,
        key: text(row, "object_key")?,
        state: CopyState::parse(&state).ok_or_else(|| corrupt("copy state"))?,
        verified_at: row.try_get("verified_at").map_err(db)?,
    })
}

fn store_from_row(row: &MySqlRow) -> Result<StoreRecord, TxError> {
    let weight: i64 = row.try_get("weight").map_err(db)?;
    Ok(StoreRecord {
        id: text(row, "id")?,
        zone: text(row, "zone")?,
        weight: u32::try_from(weight).map_err(|_| corrupt("store weight"))?,
        state: text(row, "state")?,
        spec: text(row, "spec")?,
    })
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

async fn copies_of(conn: &mut MySqlConnection, id: BlobId) -> Result<Vec<BlobCopy>, TxError> {
    sqlx::query(
        "SELECT store, object_key, state, verified_at FROM blob_locations
         WHERE blob_id = ? ORDER BY store",
    )
    .bind(id.0.to_vec())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(copy_from_row)
    .collect()
}

pub(crate) async fn blob_copies(meta: &MysqlMeta, id: BlobId) -> Result<Vec<BlobCopy>, MetaError> {
    meta.read(|conn| Box::pin(async move { copies_of(conn, id).await }))
        .await
}

pub(crate) async fn set_copy_state(
    meta: &MysqlMeta,
    id: BlobId,
    store: &str,
    state: CopyState,
    verified_at: Option<i64>,
) -> Result<(), MetaError> {
    // Setting a state is idempotent, so an unknown commit outcome may be replayed.
    meta.write(true, |conn, _| {
        let store = store.to_string();
        Box::pin(async move {
            sqlx::query(
                "UPDATE blob_locations SET state = ?, verified_at = COALESCE(?, verified_at)
                 WHERE blob_id = ? AND store = ?",
            )
            .bind(state.as_str())
            .bind(verified_at)
            .bind(id.0.to_vec())
            .bind(&store)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(())
        })
    })
    .await
}

pub(crate) async fn add_copy(
    meta: &MysqlMeta,
    id: BlobId,
    copy: BlobLocation,
) -> Result<bool, MetaError> {
    meta.write(true, |conn, _| {
        let copy = copy.clone();
        Box::pin(async move {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NULL FOR UPDATE",
            )
            .bind(id.0.to_vec())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if live.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO blob_locations (blob_id, store, object_key, state, verified_at)
                 VALUES (?, ?, ?, 'ok', ?)
                 ON DUPLICATE KEY UPDATE
                    object_key = VALUES(object_key), state = 'ok',
                    verified_at = VALUES(verified_at)",
            )
            .bind(id.0.to_vec())
            .bind(&copy.store)
            .bind(&copy.key)
            .bind(crate::now())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(true)
        })
    })
    .await
}

pub(crate) async fn remove_copy(
    meta: &MysqlMeta,
    id: BlobId,
    store: &str,
) -> Result<(), MetaError> {
    meta.write(true, |conn, _| {
        let store = store.to_string();
        Box::pin(async move {
            sqlx::query("DELETE FROM blob_locations WHERE blob_id = ? AND store = ?")
                .bind(id.0.to_vec())
                .bind(&store)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    })
    .await
}

pub(crate) async fn list_copies(
    meta: &MysqlMeta,
    after: Option<(BlobId, String)>,
    limit: u32,
) -> Result<Vec<ListedCopy>, MetaError> {
    meta.read(|conn| {
        let after = after.clone();
        Box::pin(async move {
            let columns = "SELECT l.blob_id, b.size, l.store, l.object_key, l.state, l.verified_at
                 FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
                 WHERE b.deleting_at IS NULL";
            let with_after = format!(
                "{columns} AND (l.blob_id > ? OR (l.blob_id = ? AND l.store > ?))
                 ORDER BY l.blob_id, l.store LIMIT ?"
            );
            let without = format!("{columns} ORDER BY l.blob_id, l.store LIMIT ?");
            let rows = match after {
                Some((blob, store)) => sqlx::query(&with_after)
                    .bind(blob.0.to_vec())
                    .bind(blob.0.to_vec())
                    .bind(store),
                None => sqlx::query(&without),
            }
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok(ListedCopy {
                        blob: blob_id(r, "blob_id")?,
                        size: r.try_get::<i64, _>("size").map_err(db)? as u64,
                        copy: copy_from_row(r)?,
                    })
                })
                .collect()
        })
    })
    .await
}

pub(crate) async fn under_replicated(
    meta: &MysqlMeta,
    replicas: u32,
    uncounted: &[String],
    limit: u32,
) -> Result<Vec<UnderReplicated>, MetaError> {
    let exclude = if uncounted.is_empty() {
        String::new()
    } else {
        format!("AND l.store NOT IN ({})", placeholders(uncounted.len()))
    };
    let sql = format!(
        "SELECT id, size, good FROM (
            SELECT b.id, b.size,
                (SELECT COUNT(*) FROM blob_locations l
                 WHERE l.blob_id = b.id AND l.state = 'ok' {exclude}) AS good
            FROM blobs b WHERE b.deleting_at IS NULL
         ) AS counted WHERE good < ? ORDER BY good, id LIMIT ?"
    );
    let uncounted = uncounted.to_vec();
    meta.read(|conn| {
        let (sql, uncounted) = (sql.clone(), uncounted.clone());
        Box::pin(async move {
            let mut query = sqlx::query(&sql);
            for store in &uncounted {
                query = query.bind(store);
            }
            let rows = query
                .bind(i64::from(replicas))
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok(UnderReplicated {
                        blob: blob_id(r, "id")?,
                        size: r.try_get::<i64, _>("size").map_err(db)? as u64,
                        good: r.try_get::<i64, _>("good").map_err(db)? as u32,
                    })
                })
                .collect()
        })
    })
    .await
}

pub(crate) async fn stores(meta: &MysqlMeta) -> Result<Vec<StoreRecord>, MetaError> {
    meta.read(|conn| {
        Box::pin(async move {
            sqlx::query("SELECT id, zone, weight, state, spec FROM stores WHERE state <> 'removed' ORDER BY id")
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?
                .iter()
                .map(store_from_row)
                .collect()
        })
    })
    .await
}

pub(crate) async fn add_store(meta: &MysqlMeta, store: StoreRecord) -> Result<bool, MetaError> {
    // Not replayed after an unknown outcome: the replay would report the store it may
    // itself have added as already there.
    meta.write(false, |conn, _| {
        let store = store.clone();
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT IGNORE INTO stores (id, zone, weight, state, spec, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&store.id)
            .bind(&store.zone)
            .bind(i64::from(store.weight))
            .bind(&store.state)
            .bind(&store.spec)
            .bind(crate::now())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(done.rows_affected() == 1)
        })
    })
    .await
}

pub(crate) async fn change_store(
    meta: &MysqlMeta,
    id: &str,
    change: StoreChange,
) -> Result<StoreRecord, MetaError> {
    meta.write(true, |conn, _| {
        let (id, change) = (id.to_string(), change.clone());
        Box::pin(async move {
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM stores WHERE id = ? AND state <> 'removed' FOR UPDATE",
            )
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if exists.is_none() {
                return Err(MetaError::not_found(format!("store {id:?}")).into());
            }
            sqlx::query(
                "UPDATE stores SET zone = COALESCE(?, zone), weight = COALESCE(?, weight),
                    state = COALESCE(?, state), updated_at = ?
                 WHERE id = ?",
            )
            .bind(&change.zone)
            .bind(change.weight.map(i64::from))
            .bind(&change.state)
            .bind(crate::now())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let row = sqlx::query("SELECT id, zone, weight, state, spec FROM stores WHERE id = ?")
                .bind(&id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            store_from_row(&row)
        })
    })
    .await
}

const SOLE_COPIES: &str = "SELECT COUNT(*) FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
     WHERE l.store = ? AND b.deleting_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM blob_locations o
        WHERE o.blob_id = l.blob_id AND o.store <> l.store AND o.state = 'ok')";

pub(crate) async fn sole_copies(meta: &MysqlMeta, store: &str) -> Result<u64, MetaError> {
    meta.read(|conn| {
        let store = store.to_string();
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar(SOLE_COPIES)
                .bind(&store)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            Ok(n as u64)
        })
    })
    .await
}

pub(crate) async fn remove_store(meta: &MysqlMeta, id: &str) -> Result<(), MetaError> {
    meta.write(false, |conn, _| {
        let id = id.to_string();
        Box::pin(async move {
            // Locking the store row first orders this against a concurrent change of it.
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM stores WHERE id = ? AND state <> 'removed' FOR UPDATE",
            )
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            let sole: i64 = sqlx::query_scalar(SOLE_COPIES)
                .bind(&id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            if sole > 0 {
                return Err(MetaError::new(
                    ErrorKind::Invalid,
                    format!(
                        "store {id:?} holds the only copy of {sole} bodies; drain it and let \
                         repair copy them elsewhere first"
                    ),
                )
                .into());
            }
            if exists.is_none() {
                return Err(MetaError::not_found(format!("store {id:?}")).into());
            }
            // The row stays, marked removed, so that a config file still naming the
            // store cannot bring it back by seeding the registry.
            for sql in [
                "DELETE FROM blob_locations WHERE store = ?",
                "UPDATE stores SET state = 'removed' WHERE id = ?",
            ] {
                sqlx::query(sql)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
            }
            Ok(())
        })
    })
    .await
}

pub(crate) async fn mark_unreferenced(meta: &MysqlMeta, now: i64) -> Result<u64, MetaError> {
    meta.write(true, |conn, _| {
        Box::pin(async move {
            sqlx::query(
                "UPDATE blobs SET unreferenced_since = NULL
                 WHERE unreferenced_since IS NOT NULL AND deleting_at IS NULL
                   AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
            )
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let done = sqlx::query(
                "UPDATE blobs SET unreferenced_since = ?
                 WHERE unreferenced_since IS NULL AND deleting_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
            )
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(done.rows_affected())
        })
    })
    .await
}

pub(crate) async fn doom_unreferenced(
    meta: &MysqlMeta,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<DoomedBlob>, MetaError> {
    meta.write(true, |conn, _| {
        Box::pin(async move {
            sqlx::query(
                "UPDATE blobs SET deleting_at = ?
                 WHERE deleting_at IS NULL AND unreferenced_since <= ?
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
            )
            .bind(crate::now())
            .bind(cutoff)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let ids = sqlx::query(
                "SELECT id FROM blobs WHERE deleting_at IS NOT NULL ORDER BY id LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
            let mut doomed = Vec::with_capacity(ids.len());
            for row in &ids {
                let blob = blob_id(row, "id")?;
                doomed.push(DoomedBlob {
                    blob,
                    copies: copies_of(conn, blob).await?,
                });
            }
            Ok(doomed)
        })
    })
    .await
}

pub(crate) async fn forget_blob(meta: &MysqlMeta, id: BlobId) -> Result<(), MetaError> {
    meta.write(true, |conn, _| {
        Box::pin(async move {
            let doomed: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NOT NULL FOR UPDATE",
            )
            .bind(id.0.to_vec())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if doomed.is_none() {
                return Ok(());
            }
            for sql in [
                "DELETE FROM blob_locations WHERE blob_id = ?",
                "DELETE FROM blobs WHERE id = ?",
            ] {
                sqlx::query(sql)
                    .bind(id.0.to_vec())
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
            }
            Ok(())
        })
    })
    .await
}

/// Called by `insert_message` after the blob row is inserted or found: a body
/// referenced again stops aging toward collection, and a doomed one is refused.
pub(crate) async fn claim_blob(conn: &mut MySqlConnection, id: &[u8]) -> Result<(), TxError> {
    let row =
        sqlx::query("SELECT unreferenced_since, deleting_at FROM blobs WHERE id = ? FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    let deleting: Option<i64> = row.try_get("deleting_at").map_err(db)?;
    if deleting.is_some() {
        return Err(MetaError::new(
            ErrorKind::Unavailable,
            "this body is being garbage-collected; retry once it is gone",
        )
        .into());
    }
    let stamped: Option<i64> = row.try_get("unreferenced_since").map_err(db)?;
    if stamped.is_some() {
        sqlx::query("UPDATE blobs SET unreferenced_since = NULL WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}
