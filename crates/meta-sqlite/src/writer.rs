//! Group commit: every write goes through one thread that owns the only writing
//! connection. Jobs that queue while a commit is running are run together in the next
//! transaction, each inside its own SAVEPOINT, and share its single WAL fsync.
//!
//! Why one writer and not a pool: SQLite allows one writer at a time anyway, so a pool
//! of writers would only queue on the database lock, each paying its own fsync. One
//! writer also means a caller that gives up (a client disconnecting mid-delivery) can
//! never leave a connection inside a half-done transaction: the job runs to its end
//! and the result is simply not read.
//!
//! Why an OS thread with a rusqlite connection and not a task on sqlx's: sqlx runs a
//! SQLite connection on a worker thread of its own and hands it each statement over a
//! channel, so a STORE (BEGIN, its two or three statements, COMMIT) was five round
//! trips between threads, each a pair of futex calls, around one fsync: 0.35-0.44 ms
//! against Dovecot's 0.32 ms. Here a whole batch runs on the thread that owns the
//! connection: one hand-over to the thread and one back per write.

use evermail_meta::{ErrorKind, MetaError};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::reader::sqlite_error;

/// Called after the batch's COMMIT with `None`, or with the error that made it fail.
type Completion = Box<dyn FnOnce(Option<MetaError>) + Send>;
/// Runs one job's statements; says whether they succeeded and how to report back.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// The most jobs one transaction takes; bounds the latency a batch adds.
const MAX_BATCH: usize = 256;

/// Statements kept prepared on the writing connection: every write statement of the
/// backend is a static string, so they all fit.
const STATEMENT_CACHE: usize = 128;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`. The thread ends, closing the connection,
    /// when the last `Writer` is dropped and the queued jobs have run.
    pub fn start(conn: Connection) -> Result<Writer, MetaError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, rx) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("evermail-meta-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| {
                MetaError::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the database writer thread: {e}"),
                )
            })?;
        Ok(Writer { jobs })
    }

    /// Runs `f` inside a write transaction and returns its result once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let complete: Completion = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    None => result,
                    Some(e) => Err(e),
                });
            });
            (ok, complete)
        });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> MetaError {
    MetaError::new(
        ErrorKind::Unavailable,
        "the metadata write did not run: the database writer is stopped or failed to begin",
    )
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        let (completions, result) = run_batch(&conn, batch.drain(..));
        // Jobs per commit is the group-commit factor: how many writes shared one fsync.
        metrics::counter!("evermail_meta_commits_total").increment(1);
        metrics::counter!("evermail_meta_commit_jobs_total").increment(size as u64);
        metrics::histogram!("evermail_meta_commit_seconds").record(started.elapsed());
        if let Err(e) = &result {
            tracing::error!(error = %e, size, "metadata write batch failed");
        }
        for complete in completions {
            complete(
                result
                    .as_ref()
                    .err()
                    .map(|e| MetaError::new(e.kind(), e.to_string())),
            );
        }
    }
}

/// Runs a batch in one transaction. Returns the completions of the jobs that ran and
/// the outcome of the whole; jobs that never ran are dropped, which their callers see
/// as [`stopped`].
fn run_batch(
    conn: &Connection,
    jobs: impl Iterator<Item = Job>,
) -> (Vec<Completion>, Result<(), MetaError>) {
    let mut completions = Vec::new();
    // BEGIN IMMEDIATE takes the write lock up front, so a concurrent writer in another
    // process (the admin CLI) makes us wait for busy_timeout rather than fail halfway.
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return (completions, Err(e));
    }
    for job in jobs {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            let _ = exec(conn, "ROLLBACK");
            return (completions, Err(e));
        }
        // A job that panics (a bug) fails alone: its caller's channel is dropped in
        // the unwinding, which it sees as [`stopped`], its statements are rolled
        // back, and the writer goes on serving every other write.
        let ok = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
            Ok((ok, complete)) => {
                completions.push(complete);
                ok
            }
            Err(_) => {
                tracing::error!("a metadata write job panicked; rolled back");
                false
            }
        };
        let end = if ok {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = end {
            let _ = exec(conn, "ROLLBACK");
            return (completions, Err(e));
        }
    }
    let result = exec(conn, "COMMIT");
    if result.is_err() {
        let _ = exec(conn, "ROLLBACK");
    }
    (completions, result)
}

/// Runs one statement that returns no rows, through the statement cache; returns how
/// many rows it changed.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, MetaError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(sqlite_error)
}

fn exec(conn: &Connection, sql: &str) -> Result<(), MetaError> {
    execute(conn, sql, []).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::query_all;

    fn writer(dir: &std::path::Path) -> (Writer, Connection) {
        let path = dir.join("w.sqlite");
        let conn = Connection::open(&path).unwrap();
        // A deferred foreign key is checked at COMMIT only: a_commit_that_fails_...
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE t (n INTEGER PRIMARY KEY);
             CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
        let reader = Connection::open(&path).unwrap();
        (Writer::start(conn).unwrap(), reader)
    }

    /// Inserts `n`; fails after inserting when `fail`, so its row must go.
    async fn insert(writer: &Writer, n: i64, fail: bool) -> Result<i64, MetaError> {
        writer
            .write(move |conn| {
                execute(conn, "INSERT INTO t (n) VALUES (?)", [n])?;
                if fail {
                    return Err(MetaError::new(ErrorKind::Invalid, "asked to fail"));
                }
                Ok(n)
            })
            .await
    }

    fn column(reader: &Connection, sql: &str) -> Vec<i64> {
        query_all(reader, sql, [], |row| row.get(0)).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_is_rolled_back_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(dir.path());
        // Many at once, so batches hold several jobs, failed ones among them (first,
        // middle and last of a batch alike).
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move { (n, insert(&writer, n, n % 3 == 0).await) })
            })
            .collect();
        for task in tasks {
            let (n, result) = task.await.unwrap();
            if n % 3 == 0 {
                let error = result.expect_err("a failing job reports its error");
                assert_eq!(error.kind(), ErrorKind::Invalid);
            } else {
                assert_eq!(result.unwrap(), n);
            }
        }
        let want: Vec<i64> = (0..200).filter(|n| n % 3 != 0).collect();
        assert_eq!(column(&reader, "SELECT n FROM t ORDER BY n"), want);
        // A job alone in its batch, failing or not.
        assert!(insert(&writer, 1000, true).await.is_err());
        assert_eq!(insert(&writer, 1001, false).await.unwrap(), 1001);
        assert_eq!(
            column(&reader, "SELECT n FROM t WHERE n >= 1000"),
            vec![1001]
        );
    }

    #[tokio::test]
    async fn a_commit_that_fails_fails_every_job_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(dir.path());
        // The job's statements succeed; the deferred foreign key fails the COMMIT.
        let result = writer
            .write(|conn| {
                execute(conn, "INSERT INTO c (p) VALUES (7)", [])?;
                Ok(())
            })
            .await;
        let error = result.expect_err("the COMMIT's failure reaches the job");
        assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
        assert_eq!(column(&reader, "SELECT count(*) FROM c"), vec![0]);
        // The writer is out of the failed transaction and goes on.
        assert_eq!(insert(&writer, 5, false).await.unwrap(), 5);
    }

    /// A job that panics fails alone; the writer and the other jobs go on.
    #[tokio::test]
    async fn a_job_that_panics_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(dir.path());
        let panicked = writer
            .write(|conn| -> Result<(), MetaError> {
                execute(conn, "INSERT INTO t (n) VALUES (1)", [])?;
                panic!("a bug in a write job");
            })
            .await;
        assert_eq!(panicked.unwrap_err().kind(), ErrorKind::Unavailable);
        assert_eq!(insert(&writer, 2, false).await.unwrap(), 2);
        assert_eq!(column(&reader, "SELECT n FROM t ORDER BY n"), vec![2]);
    }

    /// The thread ends when the last handle goes, after running what was queued.
    #[tokio::test]
    async fn queued_jobs_run_before_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(dir.path());
        let pending: Vec<_> = (0..50)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move { insert(&writer, n, false).await })
            })
            .collect();
        drop(writer);
        for task in pending {
            task.await.unwrap().unwrap();
        }
        assert_eq!(column(&reader, "SELECT count(*) FROM t"), vec![50]);
    }
}
