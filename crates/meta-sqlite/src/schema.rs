//! The schema, as an ordered list of migrations. A migration is never edited once
//! released; changes are new entries (expand first, contract in a later release), so
//! versions N and N+1 of evermail can share one database during a rolling upgrade.

use evermail_meta::MetaError;
use evermail_meta::schema::{SchemaVersion, compatible_down_to};
use sqlx::{Connection, SqliteConnection};

/// `(version, statements)`, ascending.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('uidvalidity', 0);

    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        quota_bytes INTEGER,
        used_bytes INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE aliases (
        alias TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id)
    );

    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        special_use TEXT,
        subscribed INTEGER NOT NULL,
        uidvalidity INTEGER NOT NULL UNIQUE,
        uidnext INTEGER NOT NULL,
        highest_modseq INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );

    CREATE TABLE blobs (
        id BLOB PRIMARY KEY,
        size INTEGER NOT NULL,
        structure TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE blob_locations (
        blob_id BLOB NOT NULL REFERENCES blobs(id),
        store TEXT NOT NULL,
        object_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'ok',
        verified_at INTEGER,
        PRIMARY KEY (blob_id, store)
    );

    CREATE TABLE messages (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        keywords TEXT NOT NULL,
        size INTEGER NOT NULL,
        internal_date INTEGER NOT NULL,
        blob_id BLOB NOT NULL REFERENCES blobs(id),
        saved_at INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq);
    CREATE INDEX messages_by_blob ON messages (blob_id);

    CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq);
    "#,
    ),
    (
        2,
        // RAIS: garbage collection stamps a blob when it finds it unreferenced and dooms
        // it after the grace period; the store registry every node re-reads.
        r#"
    ALTER TABLE blobs ADD COLUMN unreferenced_since INTEGER;
    ALTER TABLE blobs ADD COLUMN deleting_at INTEGER;
    CREATE INDEX blob_locations_by_store ON blob_locations (store);

    CREATE TABLE stores (
        id TEXT PRIMARY KEY,
        zone TEXT NOT NULL,
        weight INTEGER NOT NULL,
        state TEXT NOT NULL,
        spec TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    ),
    (
        3,
        // Cluster membership: every mailbox node's row and heartbeat.
        r#"
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        addresses TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL,
        sessions INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    "#,
    ),
    (
        4,
        // The idempotency key of insert_message_once: a replayed LMTP transaction
        // finds the message its first attempt stored. NULL for every other message.
        r#"
    ALTER TABLE messages ADD COLUMN delivery_id BLOB;
    CREATE UNIQUE INDEX messages_by_delivery ON messages (delivery_id)
        WHERE delivery_id IS NOT NULL;
    "#,
    ),
    (
        5,
        // The \Recent mark of RFC 3501 section 2.3.2: UIDs at or above it are not yet
        // claimed by a session. Messages already stored are not recent to anyone.
        r#"
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
    UPDATE mailboxes SET recent_uid = uidnext;
    "#,
    ),
    (
        6,
        // The header cache: a body's top-level header section, cut from the verified
        // body at delivery, so FETCH of headers and header SEARCH need no body read.
        // NULL for bodies stored before it (and headers too long to cache).
        r#"
    ALTER TABLE blobs ADD COLUMN header BLOB;
    "#,
    ),
    (
        7,
        // Leases: which node runs a maintenance pass kind (`MetaBackend::try_lease`).
        r#"
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    "#,
    ),
];

/// The migrations a build that does not know them may still run against, as `(version,
/// compatible_down_to)`; see `evermail_meta::schema`. A migration not listed here is
/// compatible only with builds that know it. 2 is not listed: a build without it would
/// hand out a body that garbage collection has doomed. 3 only adds the `nodes` table,
/// which a build without membership never reads; 4 only adds a nullable column and its
/// index, which older builds leave NULL.
/// 5 only adds a column with a default, which older builds neither read nor write (a
/// mailbox they create starts at 1, as it should). 6 only adds a nullable column,
/// which older builds leave NULL (their bodies are then read whole, as before).
/// 7 only adds the `leases` table; an older build never reads it (its maintenance
/// worker simply runs every pass, as before).
const COMPATIBLE_DOWN_TO: &[(i64, i64)] = &[(3, 2), (4, 3), (5, 4), (6, 5), (7, 6)];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies every migration the database lacks, each in its own transaction. Refuses a
/// database whose schema is newer than this build and not compatible with it (see
/// `evermail_meta::schema`): an older node must not write into tables whose rules it
/// does not know. A newer schema that is compatible is left as it is.
pub async fn migrate(conn: &mut SqliteConnection) -> Result<i64, MetaError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL,
            compatible_down_to INTEGER
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(crate::db_error)?;
    // Databases created before the column existed get it here, outside the numbered
    // migrations: a nullable column every older build ignores.
    if !has_compatibility_column(conn).await? {
        sqlx::query("ALTER TABLE schema_migrations ADD COLUMN compatible_down_to INTEGER")
            .execute(&mut *conn)
            .await
            .map_err(crate::db_error)?;
    }
    let current = current_schema(conn).await?;
    current.check_runnable(latest_version())?;
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > current.version) {
        let mut tx = conn.begin().await.map_err(crate::db_error)?;
        sqlx::raw_sql(statements)
            .execute(&mut *tx)
            .await
            .map_err(crate::db_error)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, compatible_down_to) \
             VALUES (?, ?, ?)",
        )
        .bind(version)
        .bind(crate::now())
        .bind(compatible_down_to(COMPATIBLE_DOWN_TO, *version))
        .execute(&mut *tx)
        .await
        .map_err(crate::db_error)?;
        tx.commit().await.map_err(crate::db_error)?;
        tracing::info!(version, "applied metadata schema migration");
    }
    current_version(conn).await
}

pub async fn current_version(conn: &mut SqliteConnection) -> Result<i64, MetaError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(crate::db_error)?;
    Ok(v.unwrap_or(0))
}

/// The schema version and the oldest build compatible with it. A migration recorded
/// without `compatible_down_to` (before the column existed) counts as compatible only
/// with builds that know it.
pub async fn current_schema(conn: &mut SqliteConnection) -> Result<SchemaVersion, MetaError> {
    if !has_compatibility_column(conn).await? {
        return current_version(conn).await.map(SchemaVersion::exact);
    }
    let (version, down_to): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MAX(version), MAX(COALESCE(compatible_down_to, version)) \
         FROM schema_migrations",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(crate::db_error)?;
    Ok(SchemaVersion {
        version: version.unwrap_or(0),
        compatible_down_to: down_to.unwrap_or(0),
    })
}

async fn has_compatibility_column(conn: &mut SqliteConnection) -> Result<bool, MetaError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM pragma_table_info('schema_migrations') \
         WHERE name = 'compatible_down_to'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(crate::db_error)?;
    Ok(found.is_some())
}
