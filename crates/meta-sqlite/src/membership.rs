//! The `nodes` table: cluster membership. Each function is one `MetaBackend` method;
//! see the trait for meaning. With SQLite there is only ever one node, but it keeps
//! its row like any other, so `evermail node list` and a proxy work the same way.

use crate::reader::{query_all, query_opt};
use crate::writer::execute;
use crate::{SqliteMeta, corrupt};
use evermail_meta::*;
use evermail_types::{MailboxId, ModSeq};
use rusqlite::{Connection, Row};

macro_rules! node_columns {
    () => {
        "name, instance, addresses, version, state, sessions, started_at, heartbeat_at"
    };
}

/// A node row as stored; `record` checks the columns that can be out of range.
struct NodeColumns {
    name: String,
    instance: String,
    addresses: String,
    version: String,
    state: String,
    sessions: i64,
    started_at: i64,
    heartbeat_at: i64,
}

impl NodeColumns {
    fn read(row: &Row<'_>) -> rusqlite::Result<NodeColumns> {
        Ok(NodeColumns {
            name: row.get(0)?,
            instance: row.get(1)?,
            addresses: row.get(2)?,
            version: row.get(3)?,
            state: row.get(4)?,
            sessions: row.get(5)?,
            started_at: row.get(6)?,
            heartbeat_at: row.get(7)?,
        })
    }

    fn record(self) -> Result<NodeRecord, MetaError> {
        Ok(NodeRecord {
            name: self.name,
            instance: self.instance,
            addresses: decode_addresses(&self.addresses)
                .ok_or_else(|| corrupt("node addresses"))?,
            version: self.version,
            state: NodeState::parse(&self.state).ok_or_else(|| corrupt("node state"))?,
            sessions: u32::try_from(self.sessions).map_err(|_| corrupt("node sessions"))?,
            started_at: self.started_at,
            heartbeat_at: self.heartbeat_at,
        })
    }
}

pub(crate) async fn node_heartbeat(
    meta: &SqliteMeta,
    beat: NodeHeartbeat,
    now_ms: i64,
) -> Result<NodeRecord, MetaError> {
    meta.writer
        .write(move |conn| {
            // The state is written only when the row is new: a drain set meanwhile
            // must survive the node's own heartbeats.
            let row = query_opt(
                conn,
                concat!(
                    "INSERT INTO nodes (name, instance, addresses, version, state, sessions,
                        started_at, heartbeat_at)
                     VALUES (?, ?, ?, ?, 'active', ?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET instance = excluded.instance,
                        addresses = excluded.addresses, version = excluded.version,
                        sessions = excluded.sessions, started_at = excluded.started_at,
                        heartbeat_at = excluded.heartbeat_at
                     RETURNING ",
                    node_columns!()
                ),
                (
                    &beat.name,
                    &beat.instance,
                    encode_addresses(&beat.addresses),
                    &beat.version,
                    i64::from(beat.sessions),
                    beat.started_at,
                    now_ms,
                ),
                NodeColumns::read,
            )?;
            row.ok_or_else(|| corrupt("node row"))?.record()
        })
        .await
}

pub(crate) async fn nodes(meta: &SqliteMeta) -> Result<Vec<NodeRecord>, MetaError> {
    meta.inline.read(|conn| {
        query_all(
            conn,
            concat!("SELECT ", node_columns!(), " FROM nodes ORDER BY name"),
            [],
            NodeColumns::read,
        )?
        .into_iter()
        .map(NodeColumns::record)
        .collect()
    })
}

pub(crate) async fn set_node_state(
    meta: &SqliteMeta,
    name: &str,
    state: NodeState,
) -> Result<(), MetaError> {
    let name = name.to_string();
    meta.writer
        .write(move |conn| {
            let done = execute(
                conn,
                "UPDATE nodes SET state = ? WHERE name = ?",
                (state.as_str(), &name),
            )?;
            if done == 0 {
                return Err(MetaError::not_found(format!("node {name:?}")));
            }
            Ok(())
        })
        .await
}

pub(crate) async fn forget_node(meta: &SqliteMeta, name: &str) -> Result<bool, MetaError> {
    let name = name.to_string();
    meta.writer
        .write(move |conn| Ok(execute(conn, "DELETE FROM nodes WHERE name = ?", [&name])? > 0))
        .await
}

pub(crate) async fn highest_modseqs(
    meta: &SqliteMeta,
    ids: &[MailboxId],
) -> Result<Vec<(MailboxId, ModSeq)>, MetaError> {
    let ids = ids.to_vec();
    // One cached statement per id (an index lookup each; a varying IN list would be
    // parsed anew at every poll), on a blocking thread as a poll may name thousands.
    meta.inline
        .read_blocking(move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let modseq: Option<i64> = query_opt(
                    conn,
                    "SELECT highest_modseq FROM mailboxes WHERE id = ?",
                    [id.0],
                    |row| row.get(0),
                )?;
                if let Some(modseq) = modseq {
                    let modseq = u64::try_from(modseq).map_err(|_| corrupt("highest modseq"))?;
                    out.push((id, ModSeq(modseq)));
                }
            }
            Ok(out)
        })
        .await
}

/// The message inserted with `delivery`, if any (see `insert_message_once`).
pub(crate) fn delivered(
    conn: &Connection,
    delivery: &[u8; 16],
) -> Result<Option<InsertedMessage>, MetaError> {
    let row: Option<(i64, i64, i64, i64)> = query_opt(
        conn,
        "SELECT m.mailbox_id, m.uid, m.modseq, b.uidvalidity
           FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
          WHERE m.delivery_id = ?",
        [&delivery[..]],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
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
pub(crate) fn record_delivery(
    conn: &Connection,
    inserted: &InsertedMessage,
    delivery: &[u8; 16],
) -> Result<(), MetaError> {
    execute(
        conn,
        "UPDATE messages SET delivery_id = ? WHERE mailbox_id = ? AND uid = ?",
        (
            &delivery[..],
            inserted.mailbox.0,
            i64::from(inserted.uid.get()),
        ),
    )?;
    Ok(())
}

/// One statement decides: the upsert's update applies only when the row is the
/// holder's own or has expired, and `changes()` says whether a row was written. The
/// single writer thread makes it atomic.
pub(crate) async fn try_lease(
    meta: &SqliteMeta,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<bool, MetaError> {
    let (name, holder) = (name.to_string(), holder.to_string());
    meta.writer
        .write(move |conn| {
            let done = execute(
                conn,
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                    expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (&name, &holder, now_ms.saturating_add(ttl_ms), now_ms),
            )?;
            Ok(done == 1)
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
        .write(move |conn| {
            execute(
                conn,
                "DELETE FROM leases WHERE name = ? AND holder = ?",
                (&name, &holder),
            )?;
            Ok(())
        })
        .await
}

pub(crate) async fn lease(meta: &SqliteMeta, name: &str) -> Result<Option<LeaseRecord>, MetaError> {
    meta.inline.read(|conn| {
        query_opt(
            conn,
            "SELECT name, holder, expires_at FROM leases WHERE name = ?",
            [name],
            |row| {
                Ok(LeaseRecord {
                    name: row.get(0)?,
                    holder: row.get(1)?,
                    expires_at: row.get(2)?,
                })
            },
        )
    })
}
