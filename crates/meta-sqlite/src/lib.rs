//! The embedded SQLite backend of the metadata store: one file in the data directory,
//! in WAL mode with `synchronous=FULL`, so a commit is on disk before it is reported.
//!
//! Reads use small pools of read-only connections (see `reader`); every write goes
//! through one writer thread that commits concurrent writes together (see `writer`),
//! which is how a burst of deliveries shares one fsync.
//!
//! The SQL here mirrors the MariaDB backend's statement for statement where it can (no
//! AUTOINCREMENT-derived UIDs); SQLite-only spellings (`max(a, b)`, `UPDATE ...
//! RETURNING` for a counter and its new value in one step) are confined to this crate.
//!
//! # Layout
//! - `schema`: versioned migrations.
//! - `writer`: the group-commit writer thread.
//! - `rais`: copy states, the store registry, repair and garbage collection.
//! - `rename`: RENAME of a mailbox and its children, and of INBOX.
//! - this file: [`SqliteMeta`] and its [`MetaBackend`] implementation.

// The column lists as macros, so statements are static strings (`concat!`), not
// formatted on every read; defined before the modules that use them.
macro_rules! mailbox_columns {
    () => {
        "id, account_id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq, recent_uid"
    };
}
macro_rules! message_columns {
    () => {
        "uid, modseq, flags, keywords, size, internal_date, blob_id"
    };
}
mod membership;
mod rais;
mod reader;
mod rename;
mod schema;
mod writer;

use async_trait::async_trait;
use evermail_meta::*;
use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid, UidValidity};
use reader::{InlineReader, sqlite_error};
use reader::{query_all, query_opt};
use rusqlite::Connection;
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use writer::{Writer, execute};

pub use evermail_meta::schema::SchemaVersion;
pub use schema::latest_version;

/// The SQLite metadata backend.
pub struct SqliteMeta {
    readers: SqlitePool,
    /// Point reads on the caller's thread (see `reader`).
    inline: Arc<InlineReader>,
    /// Reads of hundreds of rows by key, on a blocking thread, through a memory map.
    bulk: Arc<InlineReader>,
    writer: Writer,
}

impl SqliteMeta {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteMeta, MetaError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so a 250 reply never precedes
            // the commit reaching the disk.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(db_error)?;
        schema::migrate(&mut conn).await?;
        conn.close().await.map_err(db_error)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(db_error)?;
        Ok(SqliteMeta {
            readers,
            inline: Arc::new(InlineReader::new(path)),
            bulk: Arc::new(InlineReader::mapped(path, reader::BULK_MMAP_BYTES)),
            writer: Writer::start(writing_connection(path)?)?,
        })
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64, MetaError> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        schema::current_version(&mut conn).await
    }

    /// The schema of the open database: its version and the oldest build compatible
    /// with it.
    pub async fn schema(&self) -> Result<SchemaVersion, MetaError> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        schema::current_schema(&mut conn).await
    }

    /// The schema version of the database file without opening it for writing or
    /// migrating it (for `evermail db status`): `None` when the file does not exist,
    /// 0 when it was never migrated.
    pub async fn stored_schema_version(path: &Path) -> Result<Option<i64>, MetaError> {
        Ok(SqliteMeta::stored_schema(path).await?.map(|s| s.version))
    }

    /// [`SqliteMeta::stored_schema_version`] with the oldest build compatible with it.
    pub async fn stored_schema(path: &Path) -> Result<Option<SchemaVersion>, MetaError> {
        if !path.exists() {
            return Ok(None);
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db_error)?
            .read_only(true)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(db_error)?;
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .fetch_optional(&mut conn)
        .await
        .map_err(db_error)?;
        if has_table.is_none() {
            return Ok(Some(SchemaVersion::exact(0)));
        }
        schema::current_schema(&mut conn).await.map(Some)
    }
}

/// The writer's connection, with the settings `open` gives sqlx's (the file is in WAL
/// mode already: that setting is the file's, the others the connection's).
fn writing_connection(path: &Path) -> Result<Connection, MetaError> {
    let conn = Connection::open(path).map_err(sqlite_error)?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(sqlite_error)?;
    // FULL: the WAL is fsynced at every commit, so a 250 reply never precedes the
    // commit reaching the disk.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )
    .map_err(sqlite_error)?;
    Ok(conn)
}

impl SqliteMeta {
    /// Runs `sql`, an UPDATE of one row by id with two parameters (the new value, then
    /// the id); fails with `NotFound`, naming `what`, when no row has that id.
    async fn update_row<V>(
        &self,
        sql: &'static str,
        value: V,
        id: i64,
        what: &'static str,
    ) -> Result<(), MetaError>
    where
        V: rusqlite::ToSql + Send + 'static,
    {
        self.writer
            .write(move |conn| {
                if execute(conn, sql, (value, id))? == 0 {
                    return Err(MetaError::not_found(format!("{what} {id}")));
                }
                Ok(())
            })
            .await
    }
}

pub(crate) fn db_error(e: sqlx::Error) -> MetaError {
    let kind = match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => ErrorKind::AlreadyExists,
        sqlx::Error::Database(d) if d.code().as_deref() == Some("5") => ErrorKind::Unavailable,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    };
    MetaError::new(kind, e.to_string())
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn normalize_address(address: &str) -> Result<String, MetaError> {
    let address = address.trim().to_ascii_lowercase();
    match address.split_once('@') {
        Some((_, domain)) if !domain.is_empty() && !domain.contains('@') => Ok(address),
        _ => Err(MetaError::new(
            ErrorKind::Invalid,
            format!("{address:?} is not an address of the form name@domain"),
        )),
    }
}

fn corrupt(what: &str) -> MetaError {
    MetaError::new(ErrorKind::Corrupt, format!("stored {what} is out of range"))
}

fn account_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AccountRecord, MetaError> {
    Ok(AccountRecord {
        id: AccountId(row.try_get("id").map_err(db_error)?),
        address: row.try_get("address").map_err(db_error)?,
        password_hash: row.try_get("password_hash").map_err(db_error)?,
        quota_bytes: row
            .try_get::<Option<i64>, _>("quota_bytes")
            .map_err(db_error)?
            .map(|q| q as u64),
        used_bytes: row.try_get::<i64, _>("used_bytes").map_err(db_error)? as u64,
    })
}

const ACCOUNT_COLUMNS: &str = "id, address, password_hash, quota_bytes, used_bytes";
const MESSAGE_COLUMNS: &str = message_columns!();
/// A mailbox row (`mailbox_columns!()`, in that order), as the inline reader and the
/// writer read it.
struct MailboxColumns {
    id: i64,
    account_id: i64,
    name: String,
    special_use: Option<String>,
    subscribed: i64,
    uidvalidity: i64,
    uidnext: i64,
    highest_modseq: i64,
    recent_uid: i64,
}

impl MailboxColumns {
    fn record(self) -> Result<MailboxRecord, MetaError> {
        Ok(MailboxRecord {
            id: MailboxId(self.id),
            account: AccountId(self.account_id),
            name: self.name,
            special_use: self.special_use,
            subscribed: self.subscribed != 0,
            uidvalidity: u32::try_from(self.uidvalidity)
                .ok()
                .and_then(UidValidity::new)
                .ok_or_else(|| corrupt("UIDVALIDITY"))?,
            uidnext: u32::try_from(self.uidnext)
                .ok()
                .and_then(Uid::new)
                .ok_or_else(|| corrupt("UIDNEXT"))?,
            highest_modseq: ModSeq(self.highest_modseq as u64),
            recent_uid: u32::try_from(self.recent_uid)
                .ok()
                .and_then(Uid::new)
                .ok_or_else(|| corrupt("recent UID mark"))?,
        })
    }

    fn from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxColumns> {
        Ok(MailboxColumns {
            id: row.get(0)?,
            account_id: row.get(1)?,
            name: row.get(2)?,
            special_use: row.get(3)?,
            subscribed: row.get(4)?,
            uidvalidity: row.get(5)?,
            uidnext: row.get(6)?,
            highest_modseq: row.get(7)?,
            recent_uid: row.get(8)?,
        })
    }
}

/// A message row as either driver reads it (`MESSAGE_COLUMNS`, in that order).
struct MessageColumns {
    uid: i64,
    modseq: i64,
    flags: i64,
    keywords: String,
    size: i64,
    internal_date: i64,
    blob_id: Vec<u8>,
}

impl MessageColumns {
    fn record(self) -> Result<MessageRecord, MetaError> {
        Ok(MessageRecord {
            uid: stored_uid(self.uid)?,
            modseq: ModSeq(self.modseq as u64),
            flags: Flags::from_stored(
                self.flags as u8,
                self.keywords.split_whitespace().map(String::from),
            ),
            size: self.size as u64,
            internal_date: self.internal_date,
            blob: BlobId(self.blob_id.try_into().map_err(|_| corrupt("blob id"))?),
        })
    }

    fn from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<MessageColumns> {
        Ok(MessageColumns {
            uid: row.get(0)?,
            modseq: row.get(1)?,
            flags: row.get(2)?,
            keywords: row.get(3)?,
            size: row.get(4)?,
            internal_date: row.get(5)?,
            blob_id: row.get(6)?,
        })
    }
}

fn message_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<MessageRecord, MetaError> {
    MessageColumns {
        uid: row.try_get("uid").map_err(db_error)?,
        modseq: row.try_get("modseq").map_err(db_error)?,
        flags: row.try_get("flags").map_err(db_error)?,
        keywords: row.try_get("keywords").map_err(db_error)?,
        size: row.try_get("size").map_err(db_error)?,
        internal_date: row.try_get("internal_date").map_err(db_error)?,
        blob_id: row.try_get("blob_id").map_err(db_error)?,
    }
    .record()
}

/// A mailbox row by id, through the inline reader.
fn inline_mailbox(
    conn: &rusqlite::Connection,
    id: MailboxId,
) -> Result<Option<MailboxRecord>, MetaError> {
    conn.prepare_cached(concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes WHERE id = ?"
    ))
    .map_err(sqlite_error)?
    .query_row([id.0], MailboxColumns::from_inline)
    .optional()
    .map_err(sqlite_error)?
    .map(MailboxColumns::record)
    .transpose()
}

/// A stored UID, which must be a `u32` above zero.
fn stored_uid(uid: i64) -> Result<Uid, MetaError> {
    u32::try_from(uid)
        .ok()
        .and_then(Uid::new)
        .ok_or_else(|| corrupt("UID"))
}

/// How many ids one `blobs` query binds: well under SQLite's limit of variables.
const BLOBS_PER_QUERY: usize = 500;

fn blob_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<BlobRecord, MetaError> {
    let id: Vec<u8> = row.try_get("id").map_err(db_error)?;
    Ok(BlobRecord {
        id: BlobId(id.try_into().map_err(|_| corrupt("blob id"))?),
        size: row.try_get::<i64, _>("size").map_err(db_error)? as u64,
        structure: row.try_get("structure").map_err(db_error)?,
        header: row.try_get("header").map_err(db_error)?,
    })
}

fn keywords_text(flags: &Flags) -> String {
    flags.keywords().collect::<Vec<_>>().join(" ")
}

/// Fails with `AlreadyExists` if the address is an account or an alias.
fn ensure_address_free(conn: &Connection, address: &str) -> Result<(), MetaError> {
    let taken: Option<i64> = query_opt(
        conn,
        "SELECT (SELECT COUNT(*) FROM accounts WHERE address = ?1)
              + (SELECT COUNT(*) FROM aliases WHERE alias = ?1)",
        [address],
        |row| row.get(0),
    )?;
    if taken.unwrap_or(0) > 0 {
        return Err(MetaError::new(
            ErrorKind::AlreadyExists,
            format!("{address} is already an account or an alias"),
        ));
    }
    Ok(())
}

/// A mailbox row by id, read inside the writer's transaction.
fn mailbox_row(conn: &Connection, id: MailboxId) -> Result<MailboxRecord, MetaError> {
    inline_mailbox(conn, id)?.ok_or_else(|| MetaError::not_found(format!("mailbox {}", id.0)))
}

/// Creates a mailbox inside the caller's transaction, with a UIDVALIDITY never given
/// out before: the global counter only grows, and follows the clock so that values
/// stay unique even if the database is ever rebuilt from scratch.
fn insert_mailbox(
    conn: &Connection,
    account: AccountId,
    new: &NewMailbox,
) -> Result<MailboxRecord, MetaError> {
    let uidvalidity: i64 = query_opt(
        conn,
        "UPDATE counters SET value = max(value + 1, ?) WHERE name = 'uidvalidity'
         RETURNING value",
        [now()],
        |row| row.get(0),
    )?
    .ok_or_else(|| corrupt("UIDVALIDITY counter"))?;
    execute(
        conn,
        "INSERT INTO mailboxes
            (account_id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq)
         VALUES (?, ?, ?, ?, ?, 1, 1)",
        (
            account.0,
            &new.name,
            &new.special_use,
            new.subscribed as i64,
            uidvalidity,
        ),
    )
    .map_err(|e| match e {
        e if e.kind() == ErrorKind::AlreadyExists => MetaError::new(
            ErrorKind::AlreadyExists,
            format!("mailbox {:?} already exists", new.name),
        ),
        e => e,
    })?;
    mailbox_row(conn, MailboxId(conn.last_insert_rowid()))
}

/// Deletes a mailbox's messages (returning their bytes to the quota) and the mailbox.
fn delete_mailbox_rows(conn: &Connection, id: MailboxId) -> Result<(), MetaError> {
    execute(
        conn,
        "UPDATE accounts SET used_bytes = used_bytes
            - (SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = ?1)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?1)",
        [id.0],
    )?;
    for sql in [
        "DELETE FROM messages WHERE mailbox_id = ?",
        "DELETE FROM expunged WHERE mailbox_id = ?",
        "DELETE FROM mailboxes WHERE id = ?",
    ] {
        execute(conn, sql, [id.0])?;
    }
    Ok(())
}

/// Advances the mailbox's MODSEQ counter and returns the new value.
fn next_modseq(conn: &Connection, mailbox: MailboxId) -> Result<ModSeq, MetaError> {
    let modseq: Option<i64> = query_opt(
        conn,
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?
         RETURNING highest_modseq",
        [mailbox.0],
        |row| row.get(0),
    )?;
    modseq
        .map(|m| ModSeq(m as u64))
        .ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))
}

fn insert_message_rows(conn: &Connection, new: NewMessage) -> Result<InsertedMessage, MetaError> {
    let (quota, used): (Option<i64>, i64) = query_opt(
        conn,
        "SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?",
        [new.account.0],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .ok_or_else(|| MetaError::not_found(format!("account {}", new.account.0)))?;
    let size = i64::try_from(new.blob.size).map_err(|_| corrupt("message size"))?;
    if let Some(quota) = quota
        && used.saturating_add(size) > quota
    {
        return Err(MetaError::new(
            ErrorKind::OverQuota,
            format!("storing {size} bytes would exceed the quota of {quota} bytes ({used} used)"),
        ));
    }

    // Allocate the UID and MODSEQ by advancing the counters in place: the UPDATE takes
    // the row's write lock, so no other transaction can be handed the same values.
    let counters: Option<(i64, i64, i64)> = query_opt(
        conn,
        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
         WHERE id = ? AND account_id = ?
         RETURNING uidvalidity, uidnext, highest_modseq",
        (new.mailbox.0, new.account.0),
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let (uidvalidity, uidnext, modseq) =
        counters.ok_or_else(|| MetaError::not_found(format!("mailbox {}", new.mailbox.0)))?;
    let uid = u32::try_from(uidnext - 1)
        .ok()
        .and_then(Uid::new)
        .ok_or_else(|| corrupt("UIDNEXT"))?;
    let modseq = ModSeq(modseq as u64);
    let uidvalidity = u32::try_from(uidvalidity)
        .ok()
        .and_then(UidValidity::new)
        .ok_or_else(|| corrupt("UIDVALIDITY"))?;

    let blob_id = &new.blob.id.0[..];
    execute(
        conn,
        "INSERT INTO blobs (id, size, structure, header, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET header = excluded.header
            WHERE blobs.header IS NULL AND excluded.header IS NOT NULL",
        (
            blob_id,
            size,
            &new.blob.structure,
            new.blob.header.as_deref(),
            now(),
        ),
    )?;
    rais::claim_blob(conn, blob_id)?;
    for location in &new.locations {
        execute(
            conn,
            "INSERT INTO blob_locations (blob_id, store, object_key, verified_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (blob_id, store) DO UPDATE SET
                object_key = excluded.object_key, state = 'ok', verified_at = excluded.verified_at",
            (blob_id, &location.store, &location.key, now()),
        )?;
    }
    execute(
        conn,
        "INSERT INTO messages
            (mailbox_id, uid, modseq, flags, keywords, size, internal_date, blob_id, saved_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.mailbox.0,
            uid.get() as i64,
            modseq.0 as i64,
            new.flags.system_bits() as i64,
            keywords_text(&new.flags),
            size,
            new.internal_date,
            blob_id,
            now(),
        ),
    )?;
    execute(
        conn,
        "UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?",
        (size, new.account.0),
    )?;
    Ok(InsertedMessage {
        mailbox: new.mailbox,
        uidvalidity,
        uid,
        modseq,
    })
}

fn update_flag_rows(
    conn: &Connection,
    mailbox: MailboxId,
    uids: Vec<Uid>,
    unchanged_since: Option<ModSeq>,
    change: FlagChange,
    flags: Flags,
) -> Result<FlagUpdate, MetaError> {
    let mut changed = Vec::new();
    let mut modified = Vec::new();
    let mut modseq: Option<ModSeq> = None;
    for uid in uids {
        let row = query_opt(
            conn,
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE mailbox_id = ? AND uid = ?"
            ),
            (mailbox.0, uid.get() as i64),
            MessageColumns::from_inline,
        )?;
        let Some(row) = row else { continue };
        let mut message = row.record()?;
        if unchanged_since.is_some_and(|limit| message.modseq > limit) {
            modified.push(uid);
            continue;
        }
        let updated = change.apply(&message.flags, &flags);
        if updated == message.flags {
            continue;
        }
        // One new MODSEQ for the whole command: RFC 7162 only asks that each changed
        // message's MODSEQ grows, and sharing it keeps a bulk STORE to one counter bump.
        let m = match modseq {
            Some(m) => m,
            None => *modseq.insert(next_modseq(conn, mailbox)?),
        };
        execute(
            conn,
            "UPDATE messages SET flags = ?, keywords = ?, modseq = ?
             WHERE mailbox_id = ? AND uid = ?",
            (
                updated.system_bits() as i64,
                keywords_text(&updated),
                m.0 as i64,
                mailbox.0,
                uid.get() as i64,
            ),
        )?;
        message.flags = updated;
        message.modseq = m;
        changed.push(message);
    }
    modified.sort();
    Ok(FlagUpdate { changed, modified })
}

fn expunge_rows(
    conn: &Connection,
    mailbox: MailboxId,
    uids: Vec<Uid>,
) -> Result<Vec<Uid>, MetaError> {
    let mut gone = Vec::new();
    let mut modseq: Option<ModSeq> = None;
    for uid in uids {
        let at = (mailbox.0, uid.get() as i64);
        let size: Option<i64> = query_opt(
            conn,
            "SELECT size FROM messages WHERE mailbox_id = ? AND uid = ?",
            at,
            |row| row.get(0),
        )?;
        let Some(size) = size else { continue };
        let m = match modseq {
            Some(m) => m,
            None => *modseq.insert(next_modseq(conn, mailbox)?),
        };
        execute(
            conn,
            "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?",
            at,
        )?;
        execute(
            conn,
            "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            (at.0, at.1, m.0 as i64),
        )?;
        execute(
            conn,
            "UPDATE accounts SET used_bytes = used_bytes - ?
             WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
            (size, mailbox.0),
        )?;
        gone.push(uid);
    }
    Ok(gone)
}

#[async_trait]
impl MetaBackend for SqliteMeta {
    async fn create_account(&self, new: NewAccount) -> Result<AccountRecord, MetaError> {
        let address = normalize_address(&new.address)?;
        self.writer
            .write(move |conn| {
                ensure_address_free(conn, &address)?;
                execute(
                    conn,
                    "INSERT INTO accounts (address, password_hash, quota_bytes, created_at)
                     VALUES (?, ?, ?, ?)",
                    (
                        &address,
                        &new.password_hash,
                        new.quota_bytes.map(|q| q as i64),
                        now(),
                    ),
                )?;
                let id = conn.last_insert_rowid();
                for mailbox in &new.mailboxes {
                    insert_mailbox(conn, AccountId(id), mailbox)?;
                }
                Ok(AccountRecord {
                    id: AccountId(id),
                    address,
                    password_hash: new.password_hash,
                    quota_bytes: new.quota_bytes,
                    used_bytes: 0,
                })
            })
            .await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError> {
        let address = address.trim().to_ascii_lowercase();
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?"
        ))
        .bind(&address)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account(&self, id: AccountId) -> Result<Option<AccountRecord>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address"
        ))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(account_from_row).collect()
    }

    async fn set_password_hash(&self, id: AccountId, hash: &str) -> Result<(), MetaError> {
        let sql = "UPDATE accounts SET password_hash = ? WHERE id = ?";
        self.update_row(sql, hash.to_string(), id.0, "account")
            .await
    }

    async fn set_quota(&self, id: AccountId, quota_bytes: Option<u64>) -> Result<(), MetaError> {
        let sql = "UPDATE accounts SET quota_bytes = ? WHERE id = ?";
        let quota = quota_bytes.map(|q| q as i64);
        self.update_row(sql, quota, id.0, "account").await
    }

    async fn remove_account(&self, id: AccountId) -> Result<(), MetaError> {
        self.writer
            .write(move |conn| {
                let mailboxes: Vec<i64> = query_all(
                    conn,
                    "SELECT id FROM mailboxes WHERE account_id = ?",
                    [id.0],
                    |row| row.get(0),
                )?;
                for mailbox in mailboxes {
                    delete_mailbox_rows(conn, MailboxId(mailbox))?;
                }
                execute(conn, "DELETE FROM aliases WHERE account_id = ?", [id.0])?;
                if execute(conn, "DELETE FROM accounts WHERE id = ?", [id.0])? == 0 {
                    return Err(MetaError::not_found(format!("account {}", id.0)));
                }
                Ok(())
            })
            .await
    }

    async fn resolve_address(&self, address: &str) -> Result<Option<AccountRecord>, MetaError> {
        let address = address.trim().to_ascii_lowercase();
        let Some((_, domain)) = address.split_once('@') else {
            return Ok(None);
        };
        let catch_all = format!("@{domain}");
        // Exact account first, then an exact alias, then the domain's catch-all.
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, 0 AS rank FROM accounts WHERE address = ?1
             UNION ALL
             SELECT a.id, a.address, a.password_hash, a.quota_bytes, a.used_bytes,
                    CASE WHEN l.alias = ?1 THEN 1 ELSE 2 END AS rank
               FROM aliases l JOIN accounts a ON a.id = l.account_id
              WHERE l.alias = ?1 OR l.alias = ?2
             ORDER BY rank LIMIT 1"
        ))
        .bind(&address)
        .bind(&catch_all)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn add_alias(&self, alias: &str, target: AccountId) -> Result<(), MetaError> {
        let alias = alias.trim().to_ascii_lowercase();
        if !alias.starts_with('@') {
            normalize_address(&alias)?;
        } else if alias.len() < 2 || alias[1..].contains('@') {
            return Err(MetaError::new(
                ErrorKind::Invalid,
                format!("{alias:?} is neither name@domain nor a catch-all @domain"),
            ));
        }
        self.writer
            .write(move |conn| {
                ensure_address_free(conn, &alias)?;
                let account: Option<i64> = query_opt(
                    conn,
                    "SELECT id FROM accounts WHERE id = ?",
                    [target.0],
                    |row| row.get(0),
                )?;
                if account.is_none() {
                    return Err(MetaError::not_found(format!("account {}", target.0)));
                }
                execute(
                    conn,
                    "INSERT INTO aliases (alias, account_id) VALUES (?, ?)",
                    (&alias, target.0),
                )?;
                Ok(())
            })
            .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<bool, MetaError> {
        let alias = alias.trim().to_ascii_lowercase();
        self.writer
            .write(move |conn| {
                Ok(execute(conn, "DELETE FROM aliases WHERE alias = ?", [&alias])? > 0)
            })
            .await
    }

    async fn list_aliases(&self) -> Result<Vec<AliasRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT l.alias, a.address FROM aliases l JOIN accounts a ON a.id = l.account_id
             ORDER BY l.alias",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(AliasRecord {
                    alias: r.try_get(0).map_err(db_error)?,
                    target: r.try_get(1).map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn list_domains(&self) -> Result<Vec<String>, MetaError> {
        let addresses: Vec<String> =
            sqlx::query_scalar("SELECT address FROM accounts UNION ALL SELECT alias FROM aliases")
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
        let mut domains: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
            .collect();
        domains.sort();
        domains.dedup();
        Ok(domains)
    }

    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, MetaError> {
        self.inline.read(|conn| {
            let mut statement = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    mailbox_columns!(),
                    " FROM mailboxes WHERE account_id = ? ORDER BY id"
                ))
                .map_err(sqlite_error)?;
            let rows = statement
                .query_map([account.0], MailboxColumns::from_inline)
                .map_err(sqlite_error)?;
            rows.map(|row| row.map_err(sqlite_error)?.record())
                .collect()
        })
    }

    async fn mailbox(&self, id: MailboxId) -> Result<Option<MailboxRecord>, MetaError> {
        self.inline.read(|conn| inline_mailbox(conn, id))
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError> {
        self.writer
            .write(move |conn| insert_mailbox(conn, account, &new))
            .await
    }

    async fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<(), MetaError> {
        let sql = "UPDATE mailboxes SET subscribed = ? WHERE id = ?";
        self.update_row(sql, subscribed as i64, id.0, "mailbox")
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> Result<Uid, MetaError> {
        self.writer
            .write(move |conn| {
                let mark: Option<i64> = query_opt(
                    conn,
                    "SELECT recent_uid FROM mailboxes WHERE id = ?",
                    [mailbox.0],
                    |row| row.get(0),
                )?;
                let mark =
                    mark.ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))?;
                let mark = u32::try_from(mark)
                    .ok()
                    .and_then(Uid::new)
                    .ok_or_else(|| corrupt("recent UID mark"))?;
                if mark < up_to {
                    execute(
                        conn,
                        "UPDATE mailboxes SET recent_uid = ? WHERE id = ?",
                        (i64::from(up_to.get()), mailbox.0),
                    )?;
                }
                Ok(mark)
            })
            .await
    }

    async fn delete_mailbox(&self, id: MailboxId) -> Result<(), MetaError> {
        self.writer
            .write(move |conn| delete_mailbox_rows(conn, id))
            .await
    }

    async fn rename_mailbox(
        &self,
        id: MailboxId,
        to: &str,
        delimiter: char,
    ) -> Result<Vec<MailboxRecord>, MetaError> {
        let to = to.to_string();
        self.writer
            .write(move |conn| rename::rename_rows(conn, id, &to, delimiter))
            .await
    }

    async fn move_all_to_new_mailbox(
        &self,
        from: MailboxId,
        new: NewMailbox,
    ) -> Result<MailboxRecord, MetaError> {
        self.writer
            .write(move |conn| rename::move_all_rows(conn, from, new))
            .await
    }

    async fn insert_message(&self, new: NewMessage) -> Result<InsertedMessage, MetaError> {
        self.writer
            .write(move |conn| insert_message_rows(conn, new))
            .await
    }

    async fn insert_message_once(
        &self,
        new: NewMessage,
        delivery: [u8; 16],
    ) -> Result<InsertedMessage, MetaError> {
        self.writer
            .write(move |conn| {
                if let Some(done) = membership::delivered(conn, &delivery)? {
                    return Ok(done);
                }
                let inserted = insert_message_rows(conn, new)?;
                membership::record_delivery(conn, &inserted, &delivery)?;
                Ok(inserted)
            })
            .await
    }

    async fn insert_messages(
        &self,
        new: Vec<NewMessage>,
    ) -> Result<Vec<InsertedMessage>, MetaError> {
        // One writer job runs in one SAVEPOINT: an error rolls back every row.
        self.writer
            .write(move |conn| {
                new.into_iter()
                    .map(|message| insert_message_rows(conn, message))
                    .collect()
            })
            .await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid"
        ))
        .bind(mailbox.0)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(message_from_row).collect()
    }

    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Changes, MetaError> {
        self.inline.read(|conn| {
            // One read transaction, so the three answers describe the same instant.
            reader::begin(conn)?;
            let since = since.0 as i64;
            let messages = {
                let mut statement = conn
                    .prepare_cached(concat!(
                        "SELECT ",
                        message_columns!(),
                        " FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"
                    ))
                    .map_err(sqlite_error)?;
                let rows = statement
                    .query_map((mailbox.0, since), MessageColumns::from_inline)
                    .map_err(sqlite_error)?;
                rows.map(|row| row.map_err(sqlite_error)?.record())
                    .collect::<Result<Vec<_>, _>>()?
            };
            let expunged = {
                let mut statement = conn
                    .prepare_cached(
                        "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                    )
                    .map_err(sqlite_error)?;
                let rows = statement
                    .query_map((mailbox.0, since), |row| row.get::<_, i64>(0))
                    .map_err(sqlite_error)?;
                rows.map(|row| stored_uid(row.map_err(sqlite_error)?))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let highest: i64 = conn
                .prepare_cached("SELECT highest_modseq FROM mailboxes WHERE id = ?")
                .map_err(sqlite_error)?
                .query_row([mailbox.0], |row| row.get(0))
                .optional()
                .map_err(sqlite_error)?
                .ok_or_else(|| MetaError::not_found(format!("mailbox {}", mailbox.0)))?;
            reader::commit(conn)?;
            Ok(Changes {
                messages,
                expunged,
                highest_modseq: ModSeq(highest as u64),
            })
        })
    }

    async fn update_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        change: FlagChange,
        flags: &Flags,
    ) -> Result<Vec<MessageRecord>, MetaError> {
        let uids = uids.to_vec();
        let flags = flags.clone();
        let update = self
            .writer
            .write(move |conn| update_flag_rows(conn, mailbox, uids, None, change, flags))
            .await?;
        Ok(update.changed)
    }

    async fn update_flags_unchanged_since(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        unchanged_since: ModSeq,
        change: FlagChange,
        flags: &Flags,
    ) -> Result<FlagUpdate, MetaError> {
        let uids = uids.to_vec();
        let flags = flags.clone();
        let limit = Some(unchanged_since);
        self.writer
            .write(move |conn| update_flag_rows(conn, mailbox, uids, limit, change, flags))
            .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, MetaError> {
        let uids = uids.to_vec();
        self.writer
            .write(move |conn| expunge_rows(conn, mailbox, uids))
            .await
    }

    async fn blob(&self, id: BlobId) -> Result<Option<BlobRecord>, MetaError> {
        self.inline.read(|conn| {
            conn.prepare_cached("SELECT id, size, structure, header FROM blobs WHERE id = ?")
                .map_err(sqlite_error)?
                .query_row([&id.0[..]], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<Vec<u8>>>(3)?,
                    ))
                })
                .optional()
                .map_err(sqlite_error)?
                .map(|(id, size, structure, header)| {
                    Ok(BlobRecord {
                        id: BlobId(id.try_into().map_err(|_| corrupt("blob id"))?),
                        size: size as u64,
                        structure,
                        header,
                    })
                })
                .transpose()
        })
    }

    async fn blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobRecord>, MetaError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BLOBS_PER_QUERY) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql =
                format!("SELECT id, size, structure, header FROM blobs WHERE id IN ({marks})");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.0.to_vec());
            }
            let rows = query.fetch_all(&self.readers).await.map_err(db_error)?;
            for row in &rows {
                out.push(blob_from_row(row)?);
            }
        }
        Ok(out)
    }

    async fn message_headers(
        &self,
        mailbox: MailboxId,
        first: Uid,
        last: Uid,
    ) -> Result<Vec<MessageHeader>, MetaError> {
        // Hundreds of rows: on a blocking thread, through the map.
        self.bulk
            .read_blocking(move |conn| {
                let mut statement = conn
                    .prepare_cached(
                        "SELECT m.uid, m.blob_id, b.size, b.header
                         FROM messages m JOIN blobs b ON b.id = m.blob_id
                         WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid",
                    )
                    .map_err(sqlite_error)?;
                let rows = statement
                    .query_map(
                        (mailbox.0, i64::from(first.get()), i64::from(last.get())),
                        |row| {
                            Ok((
                                row.get::<_, i64>(0)?,
                                row.get::<_, Vec<u8>>(1)?,
                                row.get::<_, i64>(2)?,
                                row.get::<_, Option<Vec<u8>>>(3)?,
                            ))
                        },
                    )
                    .map_err(sqlite_error)?;
                rows.map(|row| {
                    let (uid, blob, size, header) = row.map_err(sqlite_error)?;
                    Ok(MessageHeader {
                        uid: stored_uid(uid)?,
                        blob: BlobId(blob.try_into().map_err(|_| corrupt("blob id"))?),
                        size: size as u64,
                        header,
                    })
                })
                .collect()
            })
            .await
    }

    async fn blob_locations(&self, id: BlobId) -> Result<Vec<BlobLocation>, MetaError> {
        self.inline.read(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT store, object_key FROM blob_locations
                     WHERE blob_id = ? AND state = 'ok' ORDER BY store",
                )
                .map_err(sqlite_error)?;
            let rows = statement
                .query_map([&id.0[..]], |row| {
                    Ok(BlobLocation {
                        store: row.get(0)?,
                        key: row.get(1)?,
                    })
                })
                .map_err(sqlite_error)?;
            rows.map(|row| row.map_err(sqlite_error)).collect()
        })
    }

    async fn blob_copies(&self, id: BlobId) -> Result<Vec<BlobCopy>, MetaError> {
        rais::blob_copies(self, id).await
    }

    async fn set_copy_state(
        &self,
        id: BlobId,
        store: &str,
        state: CopyState,
        verified_at: Option<i64>,
    ) -> Result<(), MetaError> {
        rais::set_copy_state(self, id, store, state, verified_at).await
    }

    async fn add_copy(&self, id: BlobId, copy: BlobLocation) -> Result<bool, MetaError> {
        rais::add_copy(self, id, copy).await
    }

    async fn remove_copy(&self, id: BlobId, store: &str) -> Result<(), MetaError> {
        rais::remove_copy(self, id, store).await
    }

    async fn list_copies(
        &self,
        after: Option<(BlobId, String)>,
        limit: u32,
    ) -> Result<Vec<ListedCopy>, MetaError> {
        rais::list_copies(self, after, limit).await
    }

    async fn under_replicated(
        &self,
        replicas: u32,
        uncounted: &[String],
        limit: u32,
    ) -> Result<Vec<UnderReplicated>, MetaError> {
        rais::under_replicated(self, replicas, uncounted, limit).await
    }

    async fn stores(&self) -> Result<Vec<StoreRecord>, MetaError> {
        rais::stores(self).await
    }

    async fn add_store(&self, store: StoreRecord) -> Result<bool, MetaError> {
        rais::add_store(self, store).await
    }

    async fn change_store(&self, id: &str, change: StoreChange) -> Result<StoreRecord, MetaError> {
        rais::change_store(self, id, change).await
    }

    async fn sole_copies(&self, store: &str) -> Result<u64, MetaError> {
        rais::sole_copies(self, store).await
    }

    async fn remove_store(&self, id: &str) -> Result<(), MetaError> {
        rais::remove_store(self, id).await
    }

    async fn mark_unreferenced(&self, now: i64) -> Result<u64, MetaError> {
        rais::mark_unreferenced(self, now).await
    }

    async fn doom_unreferenced(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<DoomedBlob>, MetaError> {
        rais::doom_unreferenced(self, cutoff, limit).await
    }

    async fn forget_blob(&self, id: BlobId) -> Result<(), MetaError> {
        rais::forget_blob(self, id).await
    }

    async fn node_heartbeat(
        &self,
        beat: NodeHeartbeat,
        now_ms: i64,
    ) -> Result<NodeRecord, MetaError> {
        membership::node_heartbeat(self, beat, now_ms).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, MetaError> {
        membership::nodes(self).await
    }

    async fn set_node_state(&self, name: &str, state: NodeState) -> Result<(), MetaError> {
        membership::set_node_state(self, name, state).await
    }

    async fn forget_node(&self, name: &str) -> Result<bool, MetaError> {
        membership::forget_node(self, name).await
    }

    async fn highest_modseqs(
        &self,
        ids: &[MailboxId],
    ) -> Result<Vec<(MailboxId, ModSeq)>, MetaError> {
        membership::highest_modseqs(self, ids).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, MetaError> {
        membership::try_lease(self, name, holder, now_ms, ttl_ms).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        membership::release_lease(self, name, holder).await
    }

    async fn lease(&self, name: &str) -> Result<Option<LeaseRecord>, MetaError> {
        membership::lease(self, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open() -> (Meta, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMeta::open(&dir.path().join("meta.sqlite"))
            .await
            .unwrap();
        (Meta::new(meta), dir)
    }

    evermail_meta::meta_conformance_tests!(open());

    #[tokio::test]
    async fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        assert_eq!(
            SqliteMeta::stored_schema_version(&path).await.unwrap(),
            None
        );
        {
            let meta = SqliteMeta::open(&path).await.unwrap();
            assert_eq!(meta.schema_version().await.unwrap(), latest_version());
            assert_eq!(
                SqliteMeta::stored_schema_version(&path).await.unwrap(),
                Some(latest_version())
            );
            meta.create_account(NewAccount {
                address: "a@b.c".into(),
                password_hash: "x".into(),
                quota_bytes: None,
                mailboxes: vec![],
            })
            .await
            .unwrap();
        }
        let meta = SqliteMeta::open(&path).await.unwrap();
        assert!(meta.account_by_address("a@b.c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        drop(SqliteMeta::open(&path).await.unwrap());
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        drop(conn);
        let err = SqliteMeta::open(&path).await.err().expect("must refuse");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.to_string().contains("newer"), "{err}");
    }

    /// Adds a migration row as a newer build would, with its `compatible_down_to`.
    async fn record_migration(path: &Path, version: i64, compatible_down_to: i64) {
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, compatible_down_to) \
             VALUES (?, 0, ?)",
        )
        .bind(version)
        .bind(compatible_down_to)
        .execute(&mut conn)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn runs_on_a_newer_schema_only_while_it_is_compatible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let latest = latest_version();
        let meta = SqliteMeta::open(&path).await.unwrap();
        // The newest migration may itself be compatible with older builds.
        assert_eq!(meta.schema().await.unwrap().version, latest);
        drop(meta);

        // The expand step of a rolling upgrade: release N+1 added what N ignores.
        record_migration(&path, latest + 1, latest).await;
        let meta = SqliteMeta::open(&path)
            .await
            .expect("a compatible schema is accepted");
        let expected = SchemaVersion {
            version: latest + 1,
            compatible_down_to: latest,
        };
        assert_eq!(meta.schema().await.unwrap(), expected);
        assert_eq!(
            SqliteMeta::stored_schema(&path).await.unwrap(),
            Some(expected)
        );
        drop(meta);

        // Its contract step: N can no longer run.
        record_migration(&path, latest + 2, latest + 2).await;
        let err = SqliteMeta::open(&path).await.err().expect("must refuse");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        let text = err.to_string();
        assert!(text.contains(&format!("version {}", latest + 2)), "{text}");
        assert!(text.contains(&format!("({latest})")), "{text}");
        assert!(text.contains(&format!("{} or newer", latest + 2)), "{text}");
    }

    #[tokio::test]
    async fn a_database_from_before_the_compatibility_column_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        drop(SqliteMeta::open(&path).await.unwrap());
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("ALTER TABLE schema_migrations DROP COLUMN compatible_down_to")
            .execute(&mut conn)
            .await
            .unwrap();
        drop(conn);
        let latest = SchemaVersion::exact(latest_version());
        assert_eq!(
            SqliteMeta::stored_schema(&path).await.unwrap(),
            Some(latest)
        );
        let meta = SqliteMeta::open(&path).await.unwrap();
        assert_eq!(meta.schema().await.unwrap(), latest);
        drop(meta);
        record_migration(&path, latest.version + 1, latest.version).await;
        assert!(SqliteMeta::open(&path).await.is_ok());
    }
}
