//! The schema, as an ordered list of migrations; the same tables and meaning as the
//! SQLite backend's, in MariaDB's dialect. A migration is never edited once released;
//! changes are new entries (expand first, contract in a later release), so versions N
//! and N+1 of evermail can share one cluster during a rolling upgrade.
//!
//! MariaDB commits every DDL statement on its own (there is no transactional DDL), so a
//! migration interrupted halfway stays half applied. Every statement is therefore
//! written to be run again safely (`IF NOT EXISTS`, `INSERT IGNORE`), and two nodes
//! starting at once may both run a migration: the second finds the work done and its
//! row in `schema_migrations` already there. Galera runs DDL in total order on every
//! node, so no node sees a half-created table.
//!
//! Every table is InnoDB (Galera replicates nothing else) with a primary key (Galera
//! needs one to apply row events in parallel and to certify them), and `utf8mb4_bin`, so
//! text compares byte for byte as it does in SQLite.

use crate::retry::{TxError, db};
use evermail_meta::schema::{SchemaVersion, compatible_down_to};
use sqlx::MySqlConnection;

/// "Table doesn't exist".
const ER_NO_SUCH_TABLE: u16 = 1146;
/// "Unknown column".
const ER_BAD_FIELD_ERROR: u16 = 1054;

const TABLE: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// `(version, statements)`, ascending. `{table}` becomes the table options.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS counters (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value BIGINT NOT NULL
        ) {table}",
            "INSERT IGNORE INTO counters (name, value) VALUES ('uidvalidity', 0)",
            // Account and mailbox ids may come from AUTO_INCREMENT: Galera spaces those by
            // node, which only makes ids sparse. UIDs and MODSEQs never do.
            "CREATE TABLE IF NOT EXISTS accounts (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            address VARCHAR(320) NOT NULL,
            password_hash TEXT NOT NULL,
            quota_bytes BIGINT NULL,
            used_bytes BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            UNIQUE KEY accounts_by_address (address)
        ) {table}",
            "CREATE TABLE IF NOT EXISTS aliases (
            alias VARCHAR(320) NOT NULL PRIMARY KEY,
            account_id BIGINT NOT NULL,
            FOREIGN KEY (account_id) REFERENCES accounts (id)
        ) {table}",
            // 700 characters of utf8mb4 plus the account id stay under InnoDB's 3072-byte
            // index limit.
            "CREATE TABLE IF NOT EXISTS mailboxes (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            account_id BIGINT NOT NULL,
            name VARCHAR(700) NOT NULL,
            special_use VARCHAR(64) NULL,
            subscribed TINYINT NOT NULL,
            uidvalidity BIGINT NOT NULL,
            uidnext BIGINT NOT NULL,
            highest_modseq BIGINT NOT NULL,
            UNIQUE KEY mailboxes_by_name (account_id, name),
            UNIQUE KEY mailboxes_by_uidvalidity (uidvalidity),
            FOREIGN KEY (account_id) REFERENCES accounts (id)
        ) {table}",
            "CREATE TABLE IF NOT EXISTS blobs (
            id BINARY(32) NOT NULL PRIMARY KEY,
            size BIGINT NOT NULL,
            structure MEDIUMTEXT NOT NULL,
            created_at BIGINT NOT NULL
        ) {table}",
            "CREATE TABLE IF NOT EXISTS blob_locations (
            blob_id BINARY(32) NOT NULL,
            store VARCHAR(255) NOT NULL,
            object_key VARCHAR(1024) NOT NULL,
            state VARCHAR(16) NOT NULL DEFAULT 'ok',
            verified_at BIGINT NULL,
            PRIMARY KEY (blob_id, store),
            FOREIGN KEY (blob_id) REFERENCES blobs (id)
        ) {table}",
            // delivery_id is the idempotency key of insert_message: a retry after a commit
            // whose outcome was lost finds its own row instead of delivering twice.
            "CREATE TABLE IF NOT EXISTS messages (
            mailbox_id BIGINT NOT NULL,
            uid BIGINT NOT NULL,
            modseq BIGINT NOT NULL,
            flags BIGINT NOT NULL,
            keywords TEXT NOT NULL,
            size BIGINT NOT NULL,
            internal_date BIGINT NOT NULL,
            blob_id BINARY(32) NOT NULL,
            saved_at BIGINT NOT NULL,
            delivery_id BINARY(16) NOT NULL,
            PRIMARY KEY (mailbox_id, uid),
            UNIQUE KEY messages_by_delivery (delivery_id),
            KEY messages_by_modseq (mailbox_id, modseq),
            KEY messages_by_blob (blob_id),
            FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id),
            FOREIGN KEY (blob_id) REFERENCES blobs (id)
        ) {table}",
            "CREATE TABLE IF NOT EXISTS expunged (
            mailbox_id BIGINT NOT NULL,
            uid BIGINT NOT NULL,
            modseq BIGINT NOT NULL,
            PRIMARY KEY (mailbox_id, uid),
            KEY expunged_by_modseq (mailbox_id, modseq)
        ) {table}",
        ],
    ),
    (
        2,
        &[
            // The MODSEQ backstop, as the messages primary key is the UID backstop. Galera
            // does not guarantee that two transactions on different nodes which both
            // advance `mailboxes.highest_modseq` conflict (it is not first-committer-wins;
            // Jepsen and galera#618 show lost updates), and a MODSEQ handed out twice is
            // otherwise invisible: a flag change stores it in a row nobody else writes.
            // Every transaction that allocates a MODSEQ inserts its (mailbox, modseq) here,
            // so two transactions handed the same value write the same primary key, which
            // Galera certifies across nodes and InnoDB enforces on one node; the loser gets
            // a conflict or 1062 and is replayed with fresh counters. Rows are pruned as
            // they age (see `rows::MODSEQ_BACKSTOP_WINDOW`). No foreign key: it would add
            // the mailbox row to every allocation's lock and certification set for nothing.
            "CREATE TABLE IF NOT EXISTS modseq_allocations (
            mailbox_id BIGINT NOT NULL,
            modseq BIGINT NOT NULL,
            PRIMARY KEY (mailbox_id, modseq)
        ) {table}",
        ],
    ),
    (
        3,
        &[
            // RAIS: garbage collection stamps a blob when it finds it unreferenced and
            // dooms it after the grace period; the store registry every node re-reads.
            "ALTER TABLE blobs ADD COLUMN IF NOT EXISTS unreferenced_since BIGINT NULL,
                ADD COLUMN IF NOT EXISTS deleting_at BIGINT NULL",
            "CREATE INDEX IF NOT EXISTS blob_locations_by_store ON blob_locations (store)",
            "CREATE TABLE IF NOT EXISTS stores (
            id VARCHAR(255) NOT NULL PRIMARY KEY,
            zone VARCHAR(255) NOT NULL,
            weight BIGINT NOT NULL,
            state VARCHAR(16) NOT NULL,
            spec TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        ) {table}",
        ],
    ),
    (
        4,
        &[
            // Cluster membership: every mailbox node's row and heartbeat.
            "CREATE TABLE IF NOT EXISTS nodes (
            name VARCHAR(255) NOT NULL PRIMARY KEY,
            instance VARCHAR(64) NOT NULL,
            addresses TEXT NOT NULL,
            version VARCHAR(64) NOT NULL,
            state VARCHAR(16) NOT NULL,
            sessions BIGINT NOT NULL,
            started_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        ) {table}",
        ],
    ),
    (
        5,
        &[
            // The \Recent mark of RFC 3501 section 2.3.2: UIDs at or above it are not
            // yet claimed by a session. Messages already stored are not recent to anyone.
            // The UPDATE sets what the ALTER just added, so replaying both is harmless.
            "ALTER TABLE mailboxes ADD COLUMN IF NOT EXISTS recent_uid BIGINT NOT NULL DEFAULT 1",
            "UPDATE mailboxes SET recent_uid = uidnext WHERE recent_uid = 1",
        ],
    ),
    (
        6,
        &[
            // The header cache: a body's top-level header section, cut from the verified
            // body at delivery, so FETCH of headers and header SEARCH need no body read.
            // NULL for bodies stored before it (and headers too long to cache).
            // MEDIUMBLOB: a BLOB stops one byte short of the 64 KiB cap.
            "ALTER TABLE blobs ADD COLUMN IF NOT EXISTS header MEDIUMBLOB NULL",
        ],
    ),
    (
        7,
        &[
            // Leases: which node runs a maintenance pass kind (`MetaBackend::try_lease`).
            "CREATE TABLE IF NOT EXISTS leases (
            name VARCHAR(255) NOT NULL PRIMARY KEY,
            holder VARCHAR(255) NOT NULL,
            expires_at BIGINT NOT NULL
        ) {table}",
        ],
    ),
];

/// The migrations a build that does not know them may still run against, as `(version,
/// compatible_down_to)`; see `evermail_meta::schema`. A migration not listed here is
/// compatible only with builds that know it. Neither 2 nor 3 is listed: a build without
/// 2 would not write the MODSEQ backstop, one without 3 would hand out a body that
/// garbage collection has doomed. 4 only adds the `nodes` table, which a build without
/// membership never reads. 5 only adds a column with a default, which older builds
/// neither read nor write. 6 only adds a nullable column, which older builds leave NULL
/// (their bodies are then read whole, as before).
/// 7 only adds the `leases` table; an older build never reads it (its maintenance
/// worker simply runs every pass, as before).
const COMPATIBLE_DOWN_TO: &[(i64, i64)] = &[(4, 3), (5, 4), (6, 5), (7, 6)];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies every migration the database lacks. Refuses a database whose schema is newer
/// than this build and not compatible with it (see `evermail_meta::schema`): an older
/// node must not write into tables whose rules it does not know. A newer schema that is
/// compatible is left as it is.
pub(crate) async fn migrate(conn: &mut MySqlConnection) -> Result<i64, TxError> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            applied_at BIGINT NOT NULL,
            compatible_down_to BIGINT NULL
        ) {TABLE}"
    ))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    // Databases created before the column existed get it here, outside the numbered
    // migrations: a nullable column every older build ignores. Asked first, because
    // even a no-op ALTER is DDL that Galera runs in total order on every node.
    let has_column: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'schema_migrations' AND COLUMN_NAME = 'compatible_down_to'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if has_column.is_none() {
        sqlx::query(
            "ALTER TABLE schema_migrations \
             ADD COLUMN IF NOT EXISTS compatible_down_to BIGINT NULL",
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    let current = current_schema(conn).await?;
    current.check_runnable(latest_version())?;
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > current.version) {
        for statement in *statements {
            sqlx::query(&statement.replace("{table}", TABLE))
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
        sqlx::query(
            "INSERT IGNORE INTO schema_migrations (version, applied_at, compatible_down_to) \
             VALUES (?, ?, ?)",
        )
        .bind(version)
        .bind(crate::now())
        .bind(compatible_down_to(COMPATIBLE_DOWN_TO, *version))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        tracing::info!(version, "applied metadata schema migration");
    }
    current_version(conn).await
}

/// The schema version and the oldest build compatible with it. A migration recorded
/// without `compatible_down_to` (before the column existed) counts as compatible only
/// with builds that know it.
pub(crate) async fn current_schema(conn: &mut MySqlConnection) -> Result<SchemaVersion, TxError> {
    let row: Result<(Option<i64>, Option<i64>), sqlx::Error> = sqlx::query_as(
        "SELECT MAX(version), MAX(COALESCE(compatible_down_to, version)) \
         FROM schema_migrations",
    )
    .fetch_one(&mut *conn)
    .await;
    match row {
        Ok((version, down_to)) => Ok(SchemaVersion {
            version: version.unwrap_or(0),
            compatible_down_to: down_to.unwrap_or(0),
        }),
        // Migrated only by builds older than the column, or never migrated at all.
        Err(sqlx::Error::Database(d))
            if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| [ER_BAD_FIELD_ERROR, ER_NO_SUCH_TABLE].contains(&m.number())) =>
        {
            current_version(conn).await.map(SchemaVersion::exact)
        }
        Err(e) => Err(db(e)),
    }
}

pub(crate) async fn current_version(conn: &mut MySqlConnection) -> Result<i64, TxError> {
    let v: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await;
    match v {
        Ok(v) => Ok(v.unwrap_or(0)),
        // A database never migrated has no schema_migrations table yet.
        Err(sqlx::Error::Database(d))
            if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == ER_NO_SUCH_TABLE) =>
        {
            Ok(0)
        }
        Err(e) => Err(db(e)),
    }
}
