//! The `nodes` table: cluster membership. Each function is one `MetaBackend` method;
//! see the trait for meaning. With SQLite there is only ever one node, but it keeps
//! its row like any other, so `evermail node list` and a proxy work the same way.

use crate::{SqliteMeta, corrupt, db_error};
use evermail_meta::*;
use evermail_types::{MailboxId, ModSeq};
use futures_util::future::BoxFuture;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str =
    "name, instance, addresses, version, state, sessions, started_at, heartbeat_at";

fn node_from_row(row: &SqliteRow) -> Result<NodeRecord, MetaError> {
    let addresses: String = row.try_get("addresses").map_err(db_error)?;
    let state: String = row.try_get("state").map_err(db_error)?;
    let sessions: i64 = row.try_get("sessions").map_err(db_error)?;
    Ok(NodeRecord {
        name: row.try_get("name").map_err(db_error)?,
        instance: row.try_get("instance").map_err(db_error)?,
        addresses: decode_addresses(&addresses).ok_or_else(|| corrupt("node addresses"))?,
        version: row.try_get("version").map_err(db_error)?,
        state: NodeState::parse(&state).ok_or_else(|| corrupt("node state"))?,
        sessions: u32::try_from(sessions).map_err(|_| corrupt("node sessions"))?,
        started_at: row.try_get("started_at").map_err(db_error)?,
        heartbeat_at: row.try_get("heartbeat_at").map_err(db_error)?,
    })
}

pub(crate) async fn node_heartbeat(
    meta: &SqliteMeta,
    beat: NodeHeartbeat,
    now_ms: i64,
) -> Result<NodeRecord, MetaError> {
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                // The state is written only when the row is new: a drain set meanwhile
                // must survive the node's own heartbeats.
                sqlx::query(
                    "INSERT INTO nodes (name, instance, addresses, version, state, sessions,
                        started_at, heartbeat_at)
                     VALUES (?, ?, ?, ?, 'active', ?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET instance = excluded.instance,
                        addresses = excluded.addresses, version = excluded.version,
                        sessions = excluded.sessions, started_at = excluded.started_at,
                        heartbeat_at = excluded.heartbeat_at",
                )
                .bind(&beat.name)
                .bind(&beat.instance)
                .bind(encode_addresses(&beat.addresses))
                .bind(&beat.version)
                .bind(i64::from(beat.sessions))
                .bind(beat.started_at)
                .bind(now_ms)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes WHERE name = ?"))
                    .bind(&beat.name)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_error)?;
                node_from_row(&row)
            })
        })
        .await
}

pub(crate) async fn nodes(meta: &SqliteMeta) -> Result<Vec<NodeRecord>, MetaError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name"))
        .fetch_all(&meta.readers)
        .await
        .map_err(db_error)?;
    rows.iter().map(node_from_row).collect()
}

pub(crate) async fn set_node_state(
    meta: &SqliteMeta,
    name: &str,
    state: NodeState,
) -> Result<(), MetaError> {
    let name = name.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let done = sqlx::query("UPDATE nodes SET state = ? WHERE name = ?")
                    .bind(state.as_str())
                    .bind(&name)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                if done.rows_affected() == 0 {
                    return Err(MetaError::not_found(format!("node {name:?}")));
                }
                Ok(())
            })
        })
        .await
}

pub(crate) async fn forget_node(meta: &SqliteMeta, name: &str) -> Result<bool, MetaError> {
    let name = name.to_string();
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM nodes WHERE name = ?")
                    .bind(&name)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
}

/// At most this many ids per statement (SQLite's default parameter limit is far above).
const IDS_PER_QUERY: usize = 500;

pub(crate) async fn highest_modseqs(
    meta: &SqliteMeta,
    ids: &[MailboxId],
) -> Result<Vec<(MailboxId, ModSeq)>, MetaError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, highest_modseq FROM mailboxes WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for id in chunk {
            query = query.bind(id.0);
        }
        for (id, modseq) in query.fetch_all(&meta.readers).await.map_err(db_error)? {
            let modseq = u64::try_from(modseq).map_err(|_| corrupt("highest modseq"))?;
            out.push((MailboxId(id), ModSeq(modseq)));
        }
    }
    Ok(out)
}

/// The message inserted with `delivery`, if any (see `insert_message_once`).
pub(crate) async fn delivered(
    conn: &mut sqlx::SqliteConnection,
    delivery: &[u8; 16],
) -> Result<Option<InsertedMessage>, MetaError> {
    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT m.mailbox_id, m.uid, m.modseq, b.uidvalidity
           FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
          WHERE m.delivery_id = ?",
    )
    .bind(&delivery[..])
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some((mailbox, uid, modseq, uidvalidity)) = row else {
        return Ok(None);
    };
    Ok(Some(InsertedMessage {
        mailbox: MailboxId(mailbox),
        uidvalidity: u32::try_from(uidvalidity)
            .ok()
            .and_then(evermail_types::UidValidity::new)
            .ok_or_else(|| corrupt("UIDVALIDITY"))?,
        uid: u32::try_from(uid)
            .ok()
            .and_then(evermail_types::Uid::new)
            .ok_or_else(|| corrupt("UID"))?,
        modseq: ModSeq(u64::try_from(modseq).map_err(|_| corrupt("MODSEQ"))?),
    }))
}

/// Marks the message just inserted as the one of `delivery`.
pub(crate) async fn record_delivery(
    conn: &mut sqlx::SqliteConnection,
    inserted: &InsertedMessage,
    delivery: &[u8; 16],
) -> Result<(), MetaError> {
    sqlx::query("UPDATE messages SET delivery_id = ? WHERE mailbox_id = ? AND uid = ?")
        .bind(&delivery[..])
        .bind(inserted.mailbox.0)
        .bind(i64::from(inserted.uid.get()))
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// One statement decides: the upsert's update applies only when the row is the
/// holder's own or has expired, and `changes()` says whether a row was written. The
/// single writer task makes it atomic.
pub(crate) async fn try_lease(
    meta: &SqliteMeta,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<bool, MetaError> {
    let (name, holder) = (name.to_string(), holder.to_string());
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                        expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                )
                .bind(&name)
                .bind(&holder)
                .bind(now_ms.saturating_add(ttl_ms))
                .bind(now_ms)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
}

pub(crate) async fn release_lease(
    meta: &SqliteMeta,
    name: &str,
    holder: &str,
) -> Result<(), MetaError> {
    let (name, holder) = (name.to_string(), holder.to_string());
    meta.writer
        .write(move |conn| -> BoxFuture<'_, _> {
            Box::pin(async move {
                sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
                    .bind(&name)
                    .bind(&holder)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                Ok(())
            })
        })
        .await
}

pub(crate) async fn lease(meta: &SqliteMeta, name: &str) -> Result<Option<LeaseRecord>, MetaError> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT name, holder, expires_at FROM leases WHERE name = ?")
            .bind(name)
            .fetch_optional(&meta.readers)
            .await
            .map_err(db_error)?;
    Ok(row.map(|(name, holder, expires_at)| LeaseRecord {
        name,
        holder,
        expires_at,
    }))
}
