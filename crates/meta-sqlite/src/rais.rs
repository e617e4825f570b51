//! The RAIS tables: copy states, the store registry, repair queries and garbage
//! collection. Each function is one `MetaBackend` method; see the trait for meaning.

use crate::{SqliteMeta, corrupt, db_error, now};
use evermail_meta::*;
use evermail_types::BlobId;
use futures_util::future::BoxFuture;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

fn blob_id(row: &SqliteRow, column: &str) -> Result<BlobId, MetaError> {
    let bytes: Vec<u8> = row.try_get(column).map_err(db_error)?;
    Ok(BlobId(bytes.try_into().map_err(|_| corrupt("blob id"))?))
}

fn copy_from_row(row: &SqliteRow) -> Result<BlobCopy, MetaError> {
    let state: String = row.try_get("state").map_err(db_error)?;
    Ok(BlobCopy {
        store: row.try_get("store").map_err(db_error)?,
        key: row.try_get("object_key").map_err(db_error)?,
        state: CopyState::parse(&state).ok_or_else(|| corrupt("copy state"))?,
        verified_at: row.try_get("verified_at").map_err(db_error)?,
    })
}

fn store_from_row(row: &SqliteRow) -> Result<StoreRecord, MetaError> {
    let weight: i64 = row.try_get("weight").map_err(db_error)?;
    Ok(StoreRecord {
        id: row.try_get("id").map_err(db_error)?,
        zone: row.try_get("zone").map_err(db_error)?,
        weight: u32::try_from(weight).map_err(|_| corrupt("store weight"))?,
        state: row.try_get("state").map_err(db_error)?,
        spec: row.try_get("spec").map_err(db_error)?,
    })
}

/// `?, ?, ?` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) async fn blob_copies(meta: &SqliteMeta, id: BlobId) -> Result<Vec<BlobCopy>, MetaError> {
    let rows = sqlx::query(
        "SELECT store, object_key, state, verified_at FROM blob_locations
         WHERE blob_id = ? ORDER BY store",
    )
    .bind(id.0.to_vec())
    .fetch_all(&meta.readers)
    .await
    .map_err(db_error)?;
    rows.iter().map(copy_from_row).collect()
}

pub(crate) async fn set_copy_state(
    meta: &SqliteMeta,
    id: BlobId,
    store: &str,
    state: CopyState,
    verified_at: Option<i64>,
) -> Result<(), MetaError> {
    let store = store.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
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
                .map_err(db_error)?;
                Ok(())
            })
        })
        .await
}

async fn blob_is_live(conn: &mut SqliteConnection, id: BlobId) -> Result<bool, MetaError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NULL")
            .bind(id.0.to_vec())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    Ok(found.is_some())
}

pub(crate) async fn add_copy(
    meta: &SqliteMeta,
    id: BlobId,
    copy: BlobLocation,
) -> Result<bool, MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                if !blob_is_live(conn, id).await? {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO blob_locations (blob_id, store, object_key, state, verified_at)
                     VALUES (?, ?, ?, 'ok', ?)
                     ON CONFLICT (blob_id, store) DO UPDATE SET
                        object_key = excluded.object_key, state = 'ok',
                        verified_at = excluded.verified_at",
                )
                .bind(id.0.to_vec())
                .bind(&copy.store)
                .bind(&copy.key)
                .bind(now())
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                Ok(true)
            })
        })
        .await
}

pub(crate) async fn remove_copy(
    meta: &SqliteMeta,
    id: BlobId,
    store: &str,
) -> Result<(), MetaError> {
    let store = store.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                sqlx::query("DELETE FROM blob_locations WHERE blob_id = ? AND store = ?")
                    .bind(id.0.to_vec())
                    .bind(&store)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                Ok(())
            })
        })
        .await
}

pub(crate) async fn list_copies(
    meta: &SqliteMeta,
    after: Option<(BlobId, String)>,
    limit: u32,
) -> Result<Vec<ListedCopy>, MetaError> {
    let (after_blob, after_store) = match after {
        Some((blob, store)) => (blob.0.to_vec(), store),
        None => (Vec::new(), String::new()),
    };
    // Row-value comparison keeps the walk a single index range scan.
    let rows = sqlx::query(
        "SELECT l.blob_id, b.size, l.store, l.object_key, l.state, l.verified_at
         FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
         WHERE b.deleting_at IS NULL AND (l.blob_id, l.store) > (?, ?)
         ORDER BY l.blob_id, l.store LIMIT ?",
    )
    .bind(after_blob)
    .bind(after_store)
    .bind(i64::from(limit))
    .fetch_all(&meta.readers)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(ListedCopy {
                blob: blob_id(r, "blob_id")?,
                size: r.try_get::<i64, _>("size").map_err(db_error)? as u64,
                copy: copy_from_row(r)?,
            })
        })
        .collect()
}

pub(crate) async fn under_replicated(
    meta: &SqliteMeta,
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
         ) WHERE good < ? ORDER BY good, id LIMIT ?"
    );
    let mut query = sqlx::query(&sql);
    for store in uncounted {
        query = query.bind(store);
    }
    let rows = query
        .bind(i64::from(replicas))
        .bind(i64::from(limit))
        .fetch_all(&meta.readers)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(UnderReplicated {
                blob: blob_id(r, "id")?,
                size: r.try_get::<i64, _>("size").map_err(db_error)? as u64,
                good: r.try_get::<i64, _>("good").map_err(db_error)? as u32,
            })
        })
        .collect()
}

pub(crate) async fn stores(meta: &SqliteMeta) -> Result<Vec<StoreRecord>, MetaError> {
    let rows = sqlx::query(
        "SELECT id, zone, weight, state, spec FROM stores WHERE state <> 'removed' ORDER BY id",
    )
    .fetch_all(&meta.readers)
    .await
    .map_err(db_error)?;
    rows.iter().map(store_from_row).collect()
}

pub(crate) async fn add_store(meta: &SqliteMeta, store: StoreRecord) -> Result<bool, MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO stores (id, zone, weight, state, spec, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&store.id)
                .bind(&store.zone)
                .bind(i64::from(store.weight))
                .bind(&store.state)
                .bind(&store.spec)
                .bind(now())
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
}

pub(crate) async fn change_store(
    meta: &SqliteMeta,
    id: &str,
    change: StoreChange,
) -> Result<StoreRecord, MetaError> {
    let id = id.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE stores SET zone = COALESCE(?, zone), weight = COALESCE(?, weight),
                        state = COALESCE(?, state), updated_at = ?
                     WHERE id = ? AND state <> 'removed'",
                )
                .bind(&change.zone)
                .bind(change.weight.map(i64::from))
                .bind(&change.state)
                .bind(now())
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                if done.rows_affected() == 0 {
                    return Err(MetaError::not_found(format!("store {id:?}")));
                }
                let row =
                    sqlx::query("SELECT id, zone, weight, state, spec FROM stores WHERE id = ?")
                        .bind(&id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(db_error)?;
                store_from_row(&row)
            })
        })
        .await
}

/// Live blobs with a copy on `store` and no copy in state ok on any other store.
const SOLE_COPIES: &str = "SELECT COUNT(*) FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
     WHERE l.store = ? AND b.deleting_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM blob_locations o
        WHERE o.blob_id = l.blob_id AND o.store <> l.store AND o.state = 'ok')";

pub(crate) async fn sole_copies(meta: &SqliteMeta, store: &str) -> Result<u64, MetaError> {
    let n: i64 = sqlx::query_scalar(SOLE_COPIES)
        .bind(store)
        .fetch_one(&meta.readers)
        .await
        .map_err(db_error)?;
    Ok(n as u64)
}

pub(crate) async fn remove_store(meta: &SqliteMeta, id: &str) -> Result<(), MetaError> {
    let id = id.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let sole: i64 = sqlx::query_scalar(SOLE_COPIES)
                    .bind(&id)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_error)?;
                if sole > 0 {
                    return Err(sole_copies_error(&id, sole as u64));
                }
                // The row stays, marked removed, so that a config file still naming
                // the store cannot bring it back by seeding the registry.
                let done = sqlx::query(
                    "UPDATE stores SET state = 'removed', updated_at = ?
                     WHERE id = ? AND state <> 'removed'",
                )
                .bind(now())
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                if done.rows_affected() == 0 {
                    return Err(MetaError::not_found(format!("store {id:?}")));
                }
                sqlx::query("DELETE FROM blob_locations WHERE store = ?")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                Ok(())
            })
        })
        .await
}

/// The refusal of `remove_store`; the count is in the message for the operator.
pub(crate) fn sole_copies_error(store: &str, count: u64) -> MetaError {
    MetaError::new(
        ErrorKind::Invalid,
        format!(
            "store {store:?} holds the only copy of {count} bodies; drain it and let repair \
             copy them elsewhere first"
        ),
    )
}

pub(crate) async fn mark_unreferenced(meta: &SqliteMeta, now: i64) -> Result<u64, MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE blobs SET unreferenced_since = NULL
                     WHERE unreferenced_since IS NOT NULL AND deleting_at IS NULL
                       AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                )
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                let done = sqlx::query(
                    "UPDATE blobs SET unreferenced_since = ?
                     WHERE unreferenced_since IS NULL AND deleting_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                )
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected())
            })
        })
        .await
}

pub(crate) async fn doom_unreferenced(
    meta: &SqliteMeta,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<DoomedBlob>, MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE blobs SET deleting_at = ?
                     WHERE deleting_at IS NULL AND unreferenced_since <= ?
                       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                )
                .bind(now())
                .bind(cutoff)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                let ids = sqlx::query(
                    "SELECT id FROM blobs WHERE deleting_at IS NOT NULL ORDER BY id LIMIT ?",
                )
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?;
                let mut doomed = Vec::with_capacity(ids.len());
                for row in &ids {
                    let blob = blob_id(row, "id")?;
                    let copies = sqlx::query(
                        "SELECT store, object_key, state, verified_at FROM blob_locations
                         WHERE blob_id = ? ORDER BY store",
                    )
                    .bind(blob.0.to_vec())
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map(copy_from_row)
                    .collect::<Result<_, _>>()?;
                    doomed.push(DoomedBlob { blob, copies });
                }
                Ok(doomed)
            })
        })
        .await
}

pub(crate) async fn forget_blob(meta: &SqliteMeta, id: BlobId) -> Result<(), MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let doomed: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NOT NULL",
                )
                .bind(id.0.to_vec())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_error)?;
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
                        .map_err(db_error)?;
                }
                Ok(())
            })
        })
        .await
}

/// Called by `insert_message` after the blob row is inserted or found: a body
/// referenced again stops aging toward collection, and a doomed one is refused.
pub(crate) async fn claim_blob(conn: &mut SqliteConnection, id: &[u8]) -> Result<(), MetaError> {
    sqlx::query(
        "UPDATE blobs SET unreferenced_since = NULL WHERE id = ? AND unreferenced_since IS NOT NULL",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    let doomed: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NOT NULL")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    if doomed.is_some() {
        return Err(MetaError::new(
            ErrorKind::Unavailable,
            "this body is being garbage-collected; retry once it is gone",
        ));
    }
    Ok(())
}
