//! The statements of every write transaction and the row decoders, mirroring the
//! SQLite backend statement by statement. Each function runs inside the caller's
//! transaction and may run again on a replay, so it decides everything from what it
//! reads inside that transaction.
//!
//! Where SQLite needs nothing (it has one writer), MariaDB needs row locks: a read
//! that a write depends on is `FOR UPDATE`, so a concurrent transaction on the same
//! node waits, and a write set from another node that touches the same rows fails
//! certification (1213) and is replayed.

use crate::retry::{TxError, db, db_counter_backstop};
use evermail_meta::*;
use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid, UidValidity};
use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row};

pub(crate) const ACCOUNT_COLUMNS: &str = "id, address, password_hash, quota_bytes, used_bytes";
pub(crate) const MAILBOX_COLUMNS: &str = "id, account_id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq, recent_uid";
pub(crate) const MESSAGE_COLUMNS: &str =
    "uid, modseq, flags, keywords, size, internal_date, blob_id";

pub(crate) fn corrupt(what: &str) -> MetaError {
    MetaError::new(ErrorKind::Corrupt, format!("stored {what} is out of range"))
}

/// A text column; see [`crate::nodes::text`].
pub(crate) fn text(row: &MySqlRow, column: &str) -> Result<String, TxError> {
    let bytes: Vec<u8> = row.try_get(column).map_err(db)?;
    String::from_utf8(bytes).map_err(|_| corrupt(column).into())
}

fn optional_text(row: &MySqlRow, column: &str) -> Result<Option<String>, TxError> {
    let bytes: Option<Vec<u8>> = row.try_get(column).map_err(db)?;
    bytes
        .map(|b| String::from_utf8(b).map_err(|_| corrupt(column).into()))
        .transpose()
}

/// How many ids one `blobs` query binds.
pub(crate) const BLOBS_PER_QUERY: usize = 500;

pub(crate) fn blob_from_row(row: &MySqlRow) -> Result<BlobRecord, TxError> {
    let id: Vec<u8> = row.try_get("id").map_err(db)?;
    Ok(BlobRecord {
        id: BlobId(id.try_into().map_err(|_| corrupt("blob id"))?),
        size: int(row, "size")? as u64,
        structure: text(row, "structure")?,
        header: row.try_get("header").map_err(db)?,
    })
}

pub(crate) fn message_header_from_row(row: &MySqlRow) -> Result<MessageHeader, TxError> {
    let blob: Vec<u8> = row.try_get("blob_id").map_err(db)?;
    Ok(MessageHeader {
        uid: uid_from(int(row, "uid")?)?,
        blob: BlobId(blob.try_into().map_err(|_| corrupt("blob id"))?),
        size: int(row, "size")? as u64,
        header: row.try_get("header").map_err(db)?,
    })
}

fn int(row: &MySqlRow, column: &str) -> Result<i64, TxError> {
    row.try_get(column).map_err(db)
}

pub(crate) fn uid_from(value: i64) -> Result<Uid, MetaError> {
    u32::try_from(value)
        .ok()
        .and_then(Uid::new)
        .ok_or_else(|| corrupt("UID"))
}

pub(crate) fn account_from_row(row: &MySqlRow) -> Result<AccountRecord, TxError> {
    Ok(AccountRecord {
        id: AccountId(int(row, "id")?),
        address: text(row, "address")?,
        password_hash: text(row, "password_hash")?,
        quota_bytes: row
            .try_get::<Option<i64>, _>("quota_bytes")
            .map_err(db)?
            .map(|q| q as u64),
        used_bytes: int(row, "used_bytes")? as u64,
    })
}

pub(crate) fn mailbox_from_row(row: &MySqlRow) -> Result<MailboxRecord, TxError> {
    Ok(MailboxRecord {
        id: MailboxId(int(row, "id")?),
        account: AccountId(int(row, "account_id")?),
        name: text(row, "name")?,
        special_use: optional_text(row, "special_use")?,
        subscribed: row.try_get::<i8, _>("subscribed").map_err(db)? != 0,
        uidvalidity: u32::try_from(int(row, "uidvalidity")?)
            .ok()
            .and_then(UidValidity::new)
            .ok_or_else(|| corrupt("UIDVALIDITY"))?,
        uidnext: u32::try_from(int(row, "uidnext")?)
            .ok()
            .and_then(Uid::new)
            .ok_or_else(|| corrupt("UIDNEXT"))?,
        highest_modseq: ModSeq(int(row, "highest_modseq")? as u64),
        recent_uid: u32::try_from(int(row, "recent_uid")?)
            .ok()
            .and_then(Uid::new)
            .ok_or_else(|| corrupt("recent UID mark"))?,
    })
}

pub(crate) fn message_from_row(row: &MySqlRow) -> Result<MessageRecord, TxError> {
    let blob: Vec<u8> = row.try_get("blob_id").map_err(db)?;
    let keywords = text(row, "keywords")?;
    Ok(MessageRecord {
        uid: uid_from(int(row, "uid")?)?,
        modseq: ModSeq(int(row, "modseq")? as u64),
        flags: Flags::from_stored(
            int(row, "flags")? as u8,
            keywords.split_whitespace().map(String::from),
        ),
        size: int(row, "size")? as u64,
        internal_date: int(row, "internal_date")?,
        blob: evermail_types::BlobId(blob.try_into().map_err(|_| corrupt("blob id"))?),
    })
}

fn keywords_text(flags: &Flags) -> String {
    flags.keywords().collect::<Vec<_>>().join(" ")
}

pub(crate) fn normalize_address(address: &str) -> Result<String, MetaError> {
    let address = address.trim().to_ascii_lowercase();
    match address.split_once('@') {
        Some((_, domain)) if !domain.is_empty() && !domain.contains('@') => Ok(address),
        _ => Err(MetaError::new(
            ErrorKind::Invalid,
            format!("{address:?} is not an address of the form name@domain"),
        )),
    }
}

/// Fails with `AlreadyExists` if the address is an account or an alias.
///
/// The unique keys make a race between two creations of the same account (or of the
/// same alias) fail cleanly; an account and an alias of the same address created at the
/// same instant on two nodes are not caught, as no row is shared between them.
pub(crate) async fn ensure_address_free(
    conn: &mut MySqlConnection,
    address: &str,
) -> Result<(), TxError> {
    let taken = sqlx::query(
        "SELECT 1 FROM accounts WHERE address = ?
         UNION ALL SELECT 1 FROM aliases WHERE alias = ? LIMIT 1",
    )
    .bind(address)
    .bind(address)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if taken.is_some() {
        return Err(MetaError::new(
            ErrorKind::AlreadyExists,
            format!("{address} is already an account or an alias"),
        )
        .into());
    }
    Ok(())
}

/// Creates a mailbox inside the caller's transaction, with a UIDVALIDITY never given
/// out before: the global counter only grows (advanced in place, so concurrent
/// creations on different nodes conflict and one is replayed), and follows the clock
/// so that values stay unique even if the database is ever rebuilt from scratch.
pub(crate) async fn insert_mailbox(
    conn: &mut MySqlConnection,
    account: AccountId,
    new: &NewMailbox,
) -> Result<MailboxRecord, TxError> {
    sqlx::query("UPDATE counters SET value = GREATEST(value + 1, ?) WHERE name = 'uidvalidity'")
        .bind(crate::now())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let uidvalidity: i64 =
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'uidvalidity' FOR UPDATE")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    let result = sqlx::query(
        "INSERT INTO mailboxes
            (account_id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq)
         VALUES (?, ?, ?, ?, ?, 1, 1)",
    )
    .bind(account.0)
    .bind(&new.name)
    .bind(&new.special_use)
    .bind(new.subscribed as i8)
    .bind(uidvalidity)
    .execute(&mut *conn)
    .await
    .map_err(|e| match db(e) {
        e if e.error.kind() == ErrorKind::AlreadyExists => MetaError::new(
            ErrorKind::AlreadyExists,
            format!("mailbox {:?} already exists", new.name),
        )
        .into(),
        e => e,
    })?;
    let id = result.last_insert_id() as i64;
    let row = sqlx::query(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    mailbox_from_row(&row)
}

/// Deletes a mailbox's messages (returning their bytes to the quota) and the mailbox.
pub(crate) async fn delete_mailbox_rows(
    conn: &mut MySqlConnection,
    id: MailboxId,
) -> Result<(), TxError> {
    sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes
            - (SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = ?)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
    )
    .bind(id.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    for sql in [
        "DELETE FROM messages WHERE mailbox_id = ?",
        "DELETE FROM expunged WHERE mailbox_id = ?",
        "DELETE FROM modseq_allocations WHERE mailbox_id = ?",
        "DELETE FROM mailboxes WHERE id = ?",
    ] {
        sqlx::query(sql)
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// How many of a mailbox's most recent MODSEQ allocations `modseq_allocations` keeps.
///
/// A MODSEQ is handed out twice only to transactions that overlap in time (both read
/// the counter before either's write reached the other), so the two rows that must
/// collide are at most a few in-flight allocations apart; keeping the last 1000 is a
/// wide margin. Each allocation deletes the row `MODSEQ_BACKSTOP_WINDOW` below its own
/// (MODSEQs are dense per mailbox, so that row exists once the mailbox has had that many
/// allocations since the table was created): the table stays at most 1000 rows per
/// mailbox with no background job, and the delete touches a key no concurrent honest
/// allocation touches, so it adds no certification conflicts.
pub(crate) const MODSEQ_BACKSTOP_WINDOW: i64 = 1000;

/// Records that this transaction allocated `modseq` for `mailbox` (see migration 2 in
/// `schema`): if another transaction was handed the same value, one of the two fails
/// certification or hits the primary key (1062) and is replayed.
async fn claim_modseq(
    conn: &mut MySqlConnection,
    mailbox: MailboxId,
    modseq: ModSeq,
) -> Result<(), TxError> {
    let modseq = modseq.0 as i64;
    sqlx::query("INSERT INTO modseq_allocations (mailbox_id, modseq) VALUES (?, ?)")
        .bind(mailbox.0)
        .bind(modseq)
        .execute(&mut *conn)
        .await
        .map_err(db_counter_backstop)?;
    if modseq > MODSEQ_BACKSTOP_WINDOW {
        sqlx::query("DELETE FROM modseq_allocations WHERE mailbox_id = ? AND modseq = ?")
            .bind(mailbox.0)
            .bind(modseq - MODSEQ_BACKSTOP_WINDOW)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Advances the mailbox's MODSEQ counter and returns the new value. The UPDATE takes
/// the row lock first; the read after it sees this transaction's own write.
pub(crate) async fn next_modseq(
    conn: &mut MySqlConnection,
    mailbox: MailboxId,
) -> Result<ModSeq, TxError> {
    sqlx::query("UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?")
        .bind(mailbox.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let modseq: Option<i64> =
        sqlx::query_scalar("SELECT highest_modseq FROM mailboxes WHERE id = ? FOR UPDATE")
            .bind(mailbox.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let modseq = modseq
        .map(|m| ModSeq(m as u64))
        .ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))?;
    claim_modseq(conn, mailbox, modseq).await?;
    Ok(modseq)
}

/// The message a previous attempt of the same delivery committed, if any: how a replay
/// after a connection lost during COMMIT avoids delivering twice.
pub(crate) async fn delivered(
    conn: &mut MySqlConnection,
    delivery: &[u8; 16],
) -> Result<Option<InsertedMessage>, TxError> {
    let row = sqlx::query(
        "SELECT m.mailbox_id, m.uid, m.modseq, b.uidvalidity
           FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
          WHERE m.delivery_id = ?",
    )
    .bind(&delivery[..])
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(InsertedMessage {
        mailbox: MailboxId(int(&row, "mailbox_id")?),
        uidvalidity: u32::try_from(int(&row, "uidvalidity")?)
            .ok()
            .and_then(UidValidity::new)
            .ok_or_else(|| corrupt("UIDVALIDITY"))?,
        uid: uid_from(int(&row, "uid")?)?,
        modseq: ModSeq(int(&row, "modseq")? as u64),
    }))
}

pub(crate) async fn insert_message_rows(
    conn: &mut MySqlConnection,
    new: &NewMessage,
    delivery: &[u8; 16],
) -> Result<InsertedMessage, TxError> {
    // FOR UPDATE: two deliveries to one account must not both pass the quota check on
    // the same old usage. Both also write used_bytes below, so across nodes Galera
    // certification makes the later one replay and check again.
    let account =
        sqlx::query("SELECT quota_bytes, used_bytes FROM accounts WHERE id = ? FOR UPDATE")
            .bind(new.account.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| MetaError::not_found(format!("account {}", new.account.0)))?;
    let quota: Option<i64> = account.try_get("quota_bytes").map_err(db)?;
    let used: i64 = account.try_get("used_bytes").map_err(db)?;
    let size = i64::try_from(new.blob.size).map_err(|_| corrupt("message size"))?;
    if let Some(quota) = quota
        && used.saturating_add(size) > quota
    {
        return Err(MetaError::new(
            ErrorKind::OverQuota,
            format!("storing {size} bytes would exceed the quota of {quota} bytes ({used} used)"),
        )
        .into());
    }

    // Allocate the UID and MODSEQ by advancing the counters in place: the UPDATE takes
    // the row's write lock, so no other transaction on this node can be handed the same
    // values, and a transaction on another node that advanced them too should fail
    // certification. Never a plain SELECT followed by a write. Should is not enough on
    // Galera, hence the backstops: `claim_modseq` and the messages primary key.
    let updated = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
         WHERE id = ? AND account_id = ?",
    )
    .bind(new.mailbox.0)
    .bind(new.account.0)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if updated.rows_affected() != 1 {
        return Err(MetaError::not_found(format!("mailbox {}", new.mailbox.0)).into());
    }
    let counters = sqlx::query(
        "SELECT uidvalidity, uidnext, highest_modseq FROM mailboxes WHERE id = ? FOR UPDATE",
    )
    .bind(new.mailbox.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let uid = uid_from(int(&counters, "uidnext")? - 1)?;
    let modseq = ModSeq(int(&counters, "highest_modseq")? as u64);
    let uidvalidity = u32::try_from(int(&counters, "uidvalidity")?)
        .ok()
        .and_then(UidValidity::new)
        .ok_or_else(|| corrupt("UIDVALIDITY"))?;
    claim_modseq(conn, new.mailbox, modseq).await?;

    let blob_id = new.blob.id.0.to_vec();
    sqlx::query(
        "INSERT INTO blobs (id, size, structure, header, created_at) VALUES (?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE header = COALESCE(header, VALUES(header))",
    )
    .bind(&blob_id)
    .bind(size)
    .bind(&new.blob.structure)
    .bind(new.blob.header.as_deref())
    .bind(crate::now())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    crate::rais::claim_blob(conn, &blob_id).await?;
    for location in &new.locations {
        sqlx::query(
            "INSERT INTO blob_locations (blob_id, store, object_key, verified_at)
             VALUES (?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE
                object_key = VALUES(object_key), state = 'ok', verified_at = VALUES(verified_at)",
        )
        .bind(&blob_id)
        .bind(&location.store)
        .bind(&location.key)
        .bind(crate::now())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    sqlx::query(
        "INSERT INTO messages
            (mailbox_id, uid, modseq, flags, keywords, size, internal_date, blob_id, saved_at,
             delivery_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.mailbox.0)
    .bind(uid.get() as i64)
    .bind(modseq.0 as i64)
    .bind(new.flags.system_bits() as i64)
    .bind(keywords_text(&new.flags))
    .bind(size)
    .bind(new.internal_date)
    .bind(&blob_id)
    .bind(crate::now())
    .bind(&delivery[..])
    .execute(&mut *conn)
    .await
    // The (mailbox_id, uid) primary key is the UID backstop: a duplicate means another
    // transaction was handed this UID too, so replay with fresh counters. (A duplicate
    // delivery id is also replayed: the replay finds its own earlier commit.)
    .map_err(db_counter_backstop)?;
    sqlx::query("UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?")
        .bind(size)
        .bind(new.account.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(InsertedMessage {
        mailbox: new.mailbox,
        uidvalidity,
        uid,
        modseq,
    })
}

pub(crate) async fn update_flag_rows(
    conn: &mut MySqlConnection,
    mailbox: MailboxId,
    uids: &[Uid],
    unchanged_since: Option<ModSeq>,
    change: FlagChange,
    flags: &Flags,
) -> Result<FlagUpdate, TxError> {
    let mut changed = Vec::new();
    let mut modified = Vec::new();
    let mut modseq: Option<ModSeq> = None;
    for &uid in uids {
        // FOR UPDATE: the new flags are computed from the current ones, which another
        // session may be changing right now.
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ? FOR UPDATE"
        ))
        .bind(mailbox.0)
        .bind(uid.get() as i64)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let Some(row) = row else { continue };
        let mut message = message_from_row(&row)?;
        if unchanged_since.is_some_and(|limit| message.modseq > limit) {
            modified.push(uid);
            continue;
        }
        let updated = change.apply(&message.flags, flags);
        if updated == message.flags {
            continue;
        }
        // One new MODSEQ for the whole command, as in the SQLite backend.
        let m = match modseq {
            Some(m) => m,
            None => *modseq.insert(next_modseq(conn, mailbox).await?),
        };
        sqlx::query(
            "UPDATE messages SET flags = ?, keywords = ?, modseq = ?
             WHERE mailbox_id = ? AND uid = ?",
        )
        .bind(updated.system_bits() as i64)
        .bind(keywords_text(&updated))
        .bind(m.0 as i64)
        .bind(mailbox.0)
        .bind(uid.get() as i64)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        message.flags = updated;
        message.modseq = m;
        changed.push(message);
    }
    modified.sort();
    Ok(FlagUpdate { changed, modified })
}

pub(crate) async fn expunge_rows(
    conn: &mut MySqlConnection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<Uid>, TxError> {
    let mut gone = Vec::new();
    let mut modseq: Option<ModSeq> = None;
    for &uid in uids {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM messages WHERE mailbox_id = ? AND uid = ? FOR UPDATE",
        )
        .bind(mailbox.0)
        .bind(uid.get() as i64)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let Some(size) = size else { continue };
        let m = match modseq {
            Some(m) => m,
            None => *modseq.insert(next_modseq(conn, mailbox).await?),
        };
        sqlx::query("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
            .bind(mailbox.0)
            .bind(uid.get() as i64)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)")
            .bind(mailbox.0)
            .bind(uid.get() as i64)
            .bind(m.0 as i64)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query(
            "UPDATE accounts SET used_bytes = used_bytes - ?
             WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
        )
        .bind(size)
        .bind(mailbox.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        gone.push(uid);
    }
    Ok(gone)
}
