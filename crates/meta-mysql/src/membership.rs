//! The `nodes` table: cluster membership, mirroring the SQLite backend's
//! `membership` statement by statement. (Not `nodes.rs`: that is the pool of database
//! nodes this backend talks to, a different kind of node.)

use crate::MysqlMeta;
use crate::retry::{TxError, db};
use crate::rows::{corrupt, text};
use evermail_meta::*;
use evermail_types::{MailboxId, ModSeq};
use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row};

const COLUMNS: &str =
    "name, instance, addresses, version, state, sessions, started_at, heartbeat_at";

fn node_from_row(row: &MySqlRow) -> Result<NodeRecord, TxError> {
    let sessions: i64 = row.try_get("sessions").map_err(db)?;
    Ok(NodeRecord {
        name: text(row, "name")?,
        instance: text(row, "instance")?,
        addresses: decode_addresses(&text(row, "addresses")?)
            .ok_or_else(|| corrupt("node addresses"))?,
        version: text(row, "version")?,
        state: NodeState::parse(&text(row, "state")?).ok_or_else(|| corrupt("node state"))?,
        sessions: u32::try_from(sessions).map_err(|_| corrupt("node sessions"))?,
        started_at: row.try_get("started_at").map_err(db)?,
        heartbeat_at: row.try_get("heartbeat_at").map_err(db)?,
    })
}

async fn node_row(conn: &mut MySqlConnection, name: &str) -> Result<NodeRecord, TxError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes WHERE name = ?"))
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    node_from_row(&row)
}

pub(crate) async fn node_heartbeat(
    meta: &MysqlMeta,
    beat: NodeHeartbeat,
    now_ms: i64,
) -> Result<NodeRecord, MetaError> {
    // A heartbeat writes the same row again, so replaying one is harmless.
    meta.write(true, |conn, _| {
        let beat = beat.clone();
        Box::pin(async move {
            // The state is written only when the row is new: a drain set meanwhile
            // must survive the node's own heartbeats.
            sqlx::query(
                "INSERT INTO nodes (name, instance, addresses, version, state, sessions,
                    started_at, heartbeat_at)
                 VALUES (?, ?, ?, ?, 'active', ?, ?, ?)
                 ON DUPLICATE KEY UPDATE instance = VALUES(instance),
                    addresses = VALUES(addresses), version = VALUES(version),
                    sessions = VALUES(sessions), started_at = VALUES(started_at),
                    heartbeat_at = VALUES(heartbeat_at)",
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
            .map_err(db)?;
            node_row(conn, &beat.name).await
        })
    })
    .await
}

pub(crate) async fn nodes(meta: &MysqlMeta) -> Result<Vec<NodeRecord>, MetaError> {
    meta.read(|conn| {
        Box::pin(async move {
            sqlx::query(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name"))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?
                .iter()
                .map(node_from_row)
                .collect()
        })
    })
    .await
}

pub(crate) async fn set_node_state(
    meta: &MysqlMeta,
    name: &str,
    state: NodeState,
) -> Result<(), MetaError> {
    meta.write(true, |conn, _| {
        let name = name.to_string();
        Box::pin(async move {
            // Asked first: MariaDB counts only changed rows, so an UPDATE to the state a
            // node already has would look like an unknown name.
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM nodes WHERE name = ? FOR UPDATE")
                    .bind(&name)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
            if exists.is_none() {
                return Err(MetaError::not_found(format!("node {name:?}")).into());
            }
            sqlx::query("UPDATE nodes SET state = ? WHERE name = ?")
                .bind(state.as_str())
                .bind(&name)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    })
    .await
}

pub(crate) async fn forget_node(meta: &MysqlMeta, name: &str) -> Result<bool, MetaError> {
    // Not replayed after an unknown outcome: the replay would report the row it may
    // itself have deleted as never there.
    meta.write(false, |conn, _| {
        let name = name.to_string();
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM nodes WHERE name = ?")
                .bind(&name)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(done.rows_affected() > 0)
        })
    })
    .await
}

/// At most this many ids per statement.
const IDS_PER_QUERY: usize = 500;

pub(crate) async fn highest_modseqs(
    meta: &MysqlMeta,
    ids: &[MailboxId],
) -> Result<Vec<(MailboxId, ModSeq)>, MetaError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let chunk: Vec<i64> = chunk.iter().map(|id| id.0).collect();
        let rows = meta
            .read(|conn| {
                let chunk = chunk.clone();
                Box::pin(async move {
                    let sql = format!(
                        "SELECT id, highest_modseq FROM mailboxes WHERE id IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    );
                    let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    query.fetch_all(&mut *conn).await.map_err(db)
                })
            })
            .await?;
        for (id, modseq) in rows {
            let modseq = u64::try_from(modseq).map_err(|_| corrupt("highest modseq"))?;
            out.push((MailboxId(id), ModSeq(modseq)));
        }
    }
    Ok(out)
}

/// Inserted if absent, else taken over if it is the holder's own or expired, then read
/// back inside the same transaction: the row decides, not the affected-row count
/// (MariaDB counts an UPDATE that changes nothing as 0). Two nodes of a Galera
/// cluster taking it at once both write locally; certification lets one commit and
/// fails the other with a deadlock (1213), which `write` replays, and the replay reads
/// the winner's row: `false`, not an error. Replaying a commit whose outcome was lost
/// finds the row already the holder's: `true`, as it should.
pub(crate) async fn try_lease(
    meta: &MysqlMeta,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<bool, MetaError> {
    let expires_at = now_ms.saturating_add(ttl_ms);
    meta.write(true, |conn, _| {
        let (name, holder) = (name.to_string(), holder.to_string());
        Box::pin(async move {
            sqlx::query("INSERT IGNORE INTO leases (name, holder, expires_at) VALUES (?, ?, ?)")
                .bind(&name)
                .bind(&holder)
                .bind(expires_at)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            sqlx::query(
                "UPDATE leases SET holder = ?, expires_at = ?
                  WHERE name = ? AND (holder = ? OR expires_at <= ?)",
            )
            .bind(&holder)
            .bind(expires_at)
            .bind(&name)
            .bind(&holder)
            .bind(now_ms)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = ?")
                .bind(&name)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            let Some(row) = row else {
                return Ok(false);
            };
            let held_until: i64 = row.try_get("expires_at").map_err(db)?;
            Ok(text(&row, "holder")? == holder && held_until == expires_at)
        })
    })
    .await
}

pub(crate) async fn release_lease(
    meta: &MysqlMeta,
    name: &str,
    holder: &str,
) -> Result<(), MetaError> {
    meta.write(true, |conn, _| {
        let (name, holder) = (name.to_string(), holder.to_string());
        Box::pin(async move {
            sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
                .bind(&name)
                .bind(&holder)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    })
    .await
}

pub(crate) async fn lease(meta: &MysqlMeta, name: &str) -> Result<Option<LeaseRecord>, MetaError> {
    meta.read(|conn| {
        let name = name.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT name, holder, expires_at FROM leases WHERE name = ?")
                .bind(&name)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            row.map(|row| {
                Ok(LeaseRecord {
                    name: text(&row, "name")?,
                    holder: text(&row, "holder")?,
                    expires_at: row.try_get("expires_at").map_err(db)?,
                })
            })
            .transpose()
        })
    })
    .await
}
