//! Point reads on the caller's thread, and bulk reads by key on a blocking thread.
//!
//! sqlx's SQLite driver runs each connection on a worker thread of its own and hands
//! it every statement, and every BEGIN and COMMIT, over a channel. For a read SQLite
//! answers from a few index pages in microseconds, the thread hops cost far more: a
//! SELECT of an unchanged mailbox was seven of them (the account's mailboxes, the
//! mailbox row, and `changes_since` as BEGIN, three statements, COMMIT), 0.8 ms in
//! all, against Dovecot's 0.04 ms.
//!
//! The reads a session makes on nearly every command run here instead, on read-only
//! rusqlite connections over the same file (the same libsqlite3-sys as sqlx's, so one
//! SQLite), on the calling thread. Each touches a handful of rows through an index,
//! so it holds the async worker about as long as a hop would have. In WAL mode a
//! reader never waits for the writer, and each read transaction sees every commit
//! made before it began, whichever connection made it.
//!
//! Reads of many rows run where they do not hold up the async workers: a whole
//! mailbox and 500 blob rows on sqlx's pool, 500 header rows and a page of the repair
//! walk through [`InlineReader::read_blocking`] (the header rows on a mapped pool).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evermail_meta::{ErrorKind, MetaError};
use rusqlite::{Connection, OpenFlags};

/// How many idle connections are kept; more are opened when more threads read at
/// once, and closed when they come back to a full pool.
const MAX_IDLE: usize = 8;

/// How long a read waits for a lock (only WAL recovery and some checkpoints take one
/// a reader must wait for) before failing as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// No memory map (`mmap_size`) on the point readers: SQLite unmaps a connection's whole
// map at the first read after another connection committed (`sqlite3PagerSharedLock`
// resets the pager when the data version changed), so with a writer busy every point
// read cost a munmap of the database (the process's other threads' TLBs shot down)
// and page faults to map it back: `perf record -e syscalls:sys_enter_munmap` showed
// one per STORE, 28 MB each on a 20,000-message database. The bulk readers (500
// header rows at a time, each a lookup by blob id in no order on disk) are mapped:
// there one unmap per commit is paid back by hundreds of page reads that are memory
// reads instead of a pread(2) each into SQLite's small page cache.

/// How much of the file a bulk reader maps (address space, not memory: the pages are
/// the kernel's page cache).
pub(crate) const BULK_MMAP_BYTES: i64 = 1 << 30;

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 32;

/// A pool of read-only connections used on the caller's thread.
pub(crate) struct InlineReader {
    path: PathBuf,
    /// `PRAGMA mmap_size` of each connection; 0 maps nothing.
    mmap_bytes: i64,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// Connections that read through the VFS (pread), for point reads.
    pub(crate) fn new(path: &Path) -> InlineReader {
        InlineReader::mapped(path, 0)
    }

    /// Connections that map up to `mmap_bytes` of the file, for bulk reads.
    pub(crate) fn mapped(path: &Path, mmap_bytes: i64) -> InlineReader {
        InlineReader {
            path: path.to_path_buf(),
            mmap_bytes,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (or a new one). A connection whose read
    /// failed is closed rather than reused: it may be inside a transaction.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&mut Connection) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let idle = self.lock().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let value = read(&mut conn)?;
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(value)
    }

    /// [`InlineReader::read`] on a blocking thread, for reads of many rows (a page of
    /// the repair walk, 500 headers) that would hold an async worker too long.
    pub(crate) async fn read_blocking<T, F>(self: &Arc<Self>, read: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || reader.read(read))
            .await
            .map_err(|e| MetaError::new(ErrorKind::Unavailable, format!("read task: {e}")))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list holds no invariant a panic could break.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> Result<Connection, MetaError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if self.mmap_bytes > 0 {
            conn.execute_batch(&format!("PRAGMA mmap_size = {}", self.mmap_bytes))
                .map_err(sqlite_error)?;
        }
        Ok(conn)
    }
}

/// The first row `sql` returns, decoded by `row`, or `None`.
pub(crate) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, MetaError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, row).optional())
        .map_err(sqlite_error)
}

/// Every row `sql` returns, decoded by `row`.
pub(crate) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, MetaError> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite_error)?;
    let rows = statement.query_map(params, row).map_err(sqlite_error)?;
    rows.map(|r| r.map_err(sqlite_error)).collect()
}

/// Begins a read transaction, so several statements see one instant. Through cached
/// statements: rusqlite's `transaction()` parses its BEGIN and COMMIT every time. A
/// read that fails midway needs no rollback: [`InlineReader::read`] closes its
/// connection.
pub(crate) fn begin(conn: &Connection) -> Result<(), MetaError> {
    conn.prepare_cached("BEGIN")
        .and_then(|mut s| s.execute([]))
        .map_err(sqlite_error)?;
    Ok(())
}

/// Ends the read transaction [`begin`] started.
pub(crate) fn commit(conn: &Connection) -> Result<(), MetaError> {
    conn.prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(sqlite_error)?;
    Ok(())
}

/// A rusqlite error as the backend reports it: a lock held too long is
/// `Unavailable` (a retry may succeed), a duplicate key `AlreadyExists`, a value of
/// the wrong type `Corrupt`.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> MetaError {
    use rusqlite::ErrorCode;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            ErrorKind::Unavailable
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            ErrorKind::AlreadyExists
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    };
    MetaError::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        (dir, path)
    }

    /// A connection whose read failed inside a transaction is closed, not handed to
    /// the next read, which would otherwise see an old snapshot (or fail on BEGIN).
    #[test]
    fn a_failed_read_does_not_leave_its_connection_in_the_pool() {
        let (_dir, path) = database();
        let reader = InlineReader::new(&path);
        let failed: Result<(), MetaError> = reader.read(|conn| {
            begin(conn)?;
            Err(MetaError::not_found("something"))
        });
        assert!(failed.is_err());
        assert_eq!(reader.lock().len(), 0);
        // A writer's commit is seen by the next read, in a transaction of its own.
        let writer = Connection::open(&path).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let count: i64 = reader
            .read(|conn| {
                begin(conn)?;
                let n = conn
                    .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(sqlite_error)?;
                commit(conn)?;
                Ok(n)
            })
            .unwrap();
        assert_eq!(count, 1);
        assert_eq!(reader.lock().len(), 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let count: i64 = reader
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(sqlite_error)
            })
            .unwrap();
        assert_eq!(count, 2, "a pooled connection sees later commits");
    }

    /// A bulk reader maps the file, and still sees every commit made before its read
    /// began (SQLite drops a stale map when another connection has written).
    #[test]
    fn a_mapped_reader_maps_the_file_and_sees_later_commits() {
        let (_dir, path) = database();
        let reader = InlineReader::mapped(&path, BULK_MMAP_BYTES);
        let writer = Connection::open(&path).unwrap();
        for n in 1..=3 {
            writer.execute("INSERT INTO t VALUES (?)", [n]).unwrap();
            let (count, mapped): (i64, i64) = reader
                .read(|conn| {
                    let count = conn
                        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                        .map_err(sqlite_error)?;
                    let mapped = conn
                        .query_row("PRAGMA mmap_size", [], |r| r.get(0))
                        .map_err(sqlite_error)?;
                    Ok((count, mapped))
                })
                .unwrap();
            assert_eq!(count, n);
            assert_eq!(mapped, BULK_MMAP_BYTES);
        }
        let unmapped: i64 = InlineReader::new(&path)
            .read(|conn| {
                conn.query_row("PRAGMA mmap_size", [], |r| r.get(0))
                    .map_err(sqlite_error)
            })
            .unwrap();
        assert_eq!(unmapped, 0, "point readers do not map the file");
    }

    /// The connections are read-only: a write through one fails.
    #[test]
    fn connections_are_read_only() {
        let (_dir, path) = database();
        let reader = InlineReader::new(&path);
        let wrote = reader.read(|conn| {
            conn.execute("INSERT INTO t VALUES (1)", [])
                .map_err(sqlite_error)
        });
        assert!(wrote.is_err());
    }
}
