//! The RAIS tables: copy states, the store registry, repair queries and garbage
//! collection. Each function is one `MetaBackend` method; see the trait for meaning.
//! Reads go through the inline reader (on a blocking thread where a page of rows is
//! read), writes through the writer thread.

use crate::reader::sqlite_error;
use crate::reader::{query_all, query_opt};
use crate::writer::execute;
use crate::{SqliteMeta, corrupt, now};
use evermail_meta::*;
use evermail_types::BlobId;
use rusqlite::{Connection, Row};

fn blob_id(bytes: Vec<u8>) -> Result<BlobId, MetaError> {
    Ok(BlobId(bytes.try_into().map_err(|_| corrupt("blob id"))?))
}

/// The columns `store, object_key, state, verified_at`, from `first` on.
struct CopyColumns {
    store: String,
    key: String,
    state: String,
    verified_at: Option<i64>,
}

impl CopyColumns {
    fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<CopyColumns> {
        Ok(CopyColumns {
            store: row.get(first)?,
            key: row.get(first + 1)?,
            state: row.get(first + 2)?,
            verified_at: row.get(first + 3)?,
        })
    }

    fn record(self) -> Result<BlobCopy, MetaError> {
        Ok(BlobCopy {
            store: self.store,
            key: self.key,
            state: CopyState::parse(&self.state).ok_or_else(|| corrupt("copy state"))?,
            verified_at: self.verified_at,
        })
    }
}

const COPIES_OF_BLOB: &str = "SELECT store, object_key, state, verified_at FROM blob_locations
     WHERE blob_id = ? ORDER BY store";

fn copies_of(conn: &Connection, id: &[u8]) -> Result<Vec<BlobCopy>, MetaError> {
    query_all(conn, COPIES_OF_BLOB, [id], |row| CopyColumns::read(row, 0))?
        .into_iter()
        .map(CopyColumns::record)
        .collect()
}

/// The columns `id, zone, weight, state, spec` of `stores`.
const STORE_COLUMNS: &str = "id, zone, weight, state, spec";

/// A weight out of `u32`'s range fails as `IntegralValueOutOfRange`, which
/// `sqlite_error` reports as corrupt.
fn store_from_row(row: &Row<'_>) -> rusqlite::Result<StoreRecord> {
    Ok(StoreRecord {
        id: row.get(0)?,
        zone: row.get(1)?,
        weight: row.get(2)?,
        state: row.get(3)?,
        spec: row.get(4)?,
    })
}

/// `?, ?, ?` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) async fn blob_copies(meta: &SqliteMeta, id: BlobId) -> Result<Vec<BlobCopy>, MetaError> {
    meta.inline.read(|conn| copies_of(conn, &id.0))
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
        .write(move |conn| {
            execute(
                conn,
                "UPDATE blob_locations SET state = ?, verified_at = COALESCE(?, verified_at)
                 WHERE blob_id = ? AND store = ?",
                (state.as_str(), verified_at, &id.0[..], &store),
            )?;
            Ok(())
        })
        .await
}

fn blob_is_live(conn: &Connection, id: BlobId) -> Result<bool, MetaError> {
    let found: Option<i64> = query_opt(
        conn,
        "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NULL",
        [&id.0[..]],
        |row| row.get(0),
    )?;
    Ok(found.is_some())
}

pub(crate) async fn add_copy(
    meta: &SqliteMeta,
    id: BlobId,
    copy: BlobLocation,
) -> Result<bool, MetaError> {
    meta.writer
        .write(move |conn| {
            if !blob_is_live(conn, id)? {
                return Ok(false);
            }
            execute(
                conn,
                "INSERT INTO blob_locations (blob_id, store, object_key, state, verified_at)
                 VALUES (?, ?, ?, 'ok', ?)
                 ON CONFLICT (blob_id, store) DO UPDATE SET
                    object_key = excluded.object_key, state = 'ok',
                    verified_at = excluded.verified_at",
                (&id.0[..], &copy.store, &copy.key, now()),
            )?;
            Ok(true)
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
        .write(move |conn| {
            execute(
                conn,
                "DELETE FROM blob_locations WHERE blob_id = ? AND store = ?",
                (&id.0[..], &store),
            )?;
            Ok(())
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
    meta.inline
        .read_blocking(move |conn| {
            // Row-value comparison keeps the walk a single index range scan.
            let rows = query_all(
                conn,
                "SELECT l.blob_id, b.size, l.store, l.object_key, l.state, l.verified_at
                 FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
                 WHERE b.deleting_at IS NULL AND (l.blob_id, l.store) > (?, ?)
                 ORDER BY l.blob_id, l.store LIMIT ?",
                (after_blob, after_store, i64::from(limit)),
                |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, i64>(1)?,
                        CopyColumns::read(row, 2)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(blob, size, copy)| {
                    Ok(ListedCopy {
                        blob: blob_id(blob)?,
                        size: size as u64,
                        copy: copy.record()?,
                    })
                })
                .collect()
        })
        .await
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
    let mut params: Vec<rusqlite::types::Value> =
        uncounted.iter().map(|store| store.clone().into()).collect();
    params.push(i64::from(replicas).into());
    params.push(i64::from(limit).into());
    meta.inline
        .read_blocking(move |conn| {
            // Not through the statement cache: the text varies with `uncounted`.
            let mut statement = conn.prepare(&sql).map_err(sqlite_error)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(params), |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sqlite_error)?;
            rows.map(|row| {
                let (blob, size, good) = row.map_err(sqlite_error)?;
                Ok(UnderReplicated {
                    blob: blob_id(blob)?,
                    size: size as u64,
                    good: good as u32,
                })
            })
            .collect()
        })
        .await
}

pub(crate) async fn stores(meta: &SqliteMeta) -> Result<Vec<StoreRecord>, MetaError> {
    meta.inline.read(|conn| {
        query_all(
            conn,
            &format!("SELECT {STORE_COLUMNS} FROM stores WHERE state <> 'removed' ORDER BY id"),
            [],
            store_from_row,
        )
    })
}

pub(crate) async fn add_store(meta: &SqliteMeta, store: StoreRecord) -> Result<bool, MetaError> {
    meta.writer
        .write(move |conn| {
            let done = execute(
                conn,
                "INSERT INTO stores (id, zone, weight, state, spec, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    &store.id,
                    &store.zone,
                    i64::from(store.weight),
                    &store.state,
                    &store.spec,
                    now(),
                ),
            )?;
            Ok(done == 1)
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
        .write(move |conn| {
            let done = execute(
                conn,
                "UPDATE stores SET zone = COALESCE(?, zone), weight = COALESCE(?, weight),
                    state = COALESCE(?, state), updated_at = ?
                 WHERE id = ? AND state <> 'removed'",
                (
                    &change.zone,
                    change.weight.map(i64::from),
                    &change.state,
                    now(),
                    &id,
                ),
            )?;
            if done == 0 {
                return Err(MetaError::not_found(format!("store {id:?}")));
            }
            let row = query_opt(
                conn,
                &format!("SELECT {STORE_COLUMNS} FROM stores WHERE id = ?"),
                [&id],
                store_from_row,
            )?
            .ok_or_else(|| MetaError::not_found(format!("store {id:?}")))?;
            Ok(row)
        })
        .await
}

/// Live blobs with a copy on `store` and no copy in state ok on any other store.
const SOLE_COPIES: &str = "SELECT COUNT(*) FROM blob_locations l JOIN blobs b ON b.id = l.blob_id
     WHERE l.store = ? AND b.deleting_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM blob_locations o
        WHERE o.blob_id = l.blob_id AND o.store <> l.store AND o.state = 'ok')";

fn count_sole_copies(conn: &Connection, store: &str) -> Result<u64, MetaError> {
    let n: Option<i64> = query_opt(conn, SOLE_COPIES, [store], |row| row.get(0))?;
    Ok(n.unwrap_or(0) as u64)
}

pub(crate) async fn sole_copies(meta: &SqliteMeta, store: &str) -> Result<u64, MetaError> {
    let store = store.to_string();
    // A count over every copy on the store: on a blocking thread.
    meta.inline
        .read_blocking(move |conn| count_sole_copies(conn, &store))
        .await
}

pub(crate) async fn remove_store(meta: &SqliteMeta, id: &str) -> Result<(), MetaError> {
    let id = id.to_string();
    meta.writer
        .write(move |conn| {
            let sole = count_sole_copies(conn, &id)?;
            if sole > 0 {
                return Err(sole_copies_error(&id, sole));
            }
            // The row stays, marked removed, so that a config file still naming
            // the store cannot bring it back by seeding the registry.
            let done = execute(
                conn,
                "UPDATE stores SET state = 'removed', updated_at = ?
                 WHERE id = ? AND state <> 'removed'",
                (now(), &id),
            )?;
            if done == 0 {
                return Err(MetaError::not_found(format!("store {id:?}")));
            }
            execute(conn, "DELETE FROM blob_locations WHERE store = ?", [&id])?;
            Ok(())
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
        .write(move |conn| {
            execute(
                conn,
                "UPDATE blobs SET unreferenced_since = NULL
                 WHERE unreferenced_since IS NOT NULL AND deleting_at IS NULL
                   AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                [],
            )?;
            let done = execute(
                conn,
                "UPDATE blobs SET unreferenced_since = ?
                 WHERE unreferenced_since IS NULL AND deleting_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                [now],
            )?;
            Ok(done as u64)
        })
        .await
}

pub(crate) async fn doom_unreferenced(
    meta: &SqliteMeta,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<DoomedBlob>, MetaError> {
    meta.writer
        .write(move |conn| {
            execute(
                conn,
                "UPDATE blobs SET deleting_at = ?
                 WHERE deleting_at IS NULL AND unreferenced_since <= ?
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id)",
                (now(), cutoff),
            )?;
            let ids: Vec<Vec<u8>> = query_all(
                conn,
                "SELECT id FROM blobs WHERE deleting_at IS NOT NULL ORDER BY id LIMIT ?",
                [i64::from(limit)],
                |row| row.get(0),
            )?;
            ids.into_iter()
                .map(|id| {
                    let copies = copies_of(conn, &id)?;
                    Ok(DoomedBlob {
                        blob: blob_id(id)?,
                        copies,
                    })
                })
                .collect()
        })
        .await
}

pub(crate) async fn forget_blob(meta: &SqliteMeta, id: BlobId) -> Result<(), MetaError> {
    meta.writer
        .write(move |conn| {
            let doomed: Option<i64> = query_opt(
                conn,
                "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NOT NULL",
                [&id.0[..]],
                |row| row.get(0),
            )?;
            if doomed.is_none() {
                return Ok(());
            }
            for sql in [
                "DELETE FROM blob_locations WHERE blob_id = ?",
                "DELETE FROM blobs WHERE id = ?",
            ] {
                execute(conn, sql, [&id.0[..]])?;
            }
            Ok(())
        })
        .await
}

/// Called by `insert_message` after the blob row is inserted or found: a body
/// referenced again stops aging toward collection, and a doomed one is refused.
pub(crate) fn claim_blob(conn: &Connection, id: &[u8]) -> Result<(), MetaError> {
    execute(
        conn,
        "UPDATE blobs SET unreferenced_since = NULL WHERE id = ? AND unreferenced_since IS NOT NULL",
        [id],
    )?;
    let doomed: Option<i64> = query_opt(
        conn,
        "SELECT 1 FROM blobs WHERE id = ? AND deleting_at IS NOT NULL",
        [id],
        |row| row.get(0),
    )?;
    if doomed.is_some() {
        return Err(MetaError::new(
            ErrorKind::Unavailable,
            "this body is being garbage-collected; retry once it is gone",
        ));
    }
    Ok(())
}
