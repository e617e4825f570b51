//! Point reads on the caller's thread.
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
//! Reads of many rows (a whole mailbox, 500 blob rows) stay on sqlx's pool, where
//! they do not hold up the async workers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use evermail_meta::{ErrorKind, MetaError};
use rusqlite::{Connection, OpenFlags};

/// How many idle connections are kept; more are opened when more threads read at
/// once, and closed when they come back to a full pool.
const MAX_IDLE: usize = 8;

/// How long a read waits for a lock (only WAL recovery and some checkpoints take one
/// a reader must wait for) before failing as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of the database file a connection reads through a memory map instead of
/// read(2) copies: index pages served from the page cache without a system call.
pub(crate) const MMAP_BYTES: i64 = 1 << 30;

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 32;

/// A pool of read-only connections used on the caller's thread.
pub(crate) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    pub(crate) fn new(path: &Path) -> InlineReader {
        InlineReader {
            path: path.to_path_buf(),
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
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)
            .map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// A rusqlite error as the backend reports it: a lock held too long is
/// `Unavailable` (a retry may succeed), a value of the wrong type `Corrupt`.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> MetaError {
    use rusqlite::ErrorCode;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            ErrorKind::Unavailable
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    };
    MetaError::new(kind, e.to_string())
}
