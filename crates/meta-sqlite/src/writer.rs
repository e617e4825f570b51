//! Group commit: every write goes through one task that owns the only writing
//! connection. Jobs that queue while a commit is running are run together in the next
//! transaction, each inside its own SAVEPOINT, and share its single WAL fsync.
//!
//! Why a task and not a pool: SQLite allows one writer at a time anyway, so a pool of
//! writers would only queue on the database lock, each paying its own fsync. A task
//! also means a caller that gives up (a client disconnecting mid-delivery) can never
//! leave a connection inside a half-done transaction: the job runs to its end and the
//! result is simply not read.

use evermail_meta::{ErrorKind, MetaError};
use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

/// Called after the batch's COMMIT with `None`, or with the error that made it fail.
type Completion = Box<dyn FnOnce(Option<MetaError>) + Send>;
/// Runs one job's statements; says whether they succeeded and how to report back.
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

/// The most jobs one transaction takes; bounds the latency a batch adds.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: SqliteConnection) -> Writer {
        let (jobs, rx) = mpsc::channel(1024);
        tokio::spawn(run(conn, rx));
        Writer { jobs }
    }

    /// Runs `f` inside a write transaction and returns its result once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, MetaError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let ok = result.is_ok();
                let complete: Completion = Box::new(move |commit_error| {
                    let _ = tx.send(match commit_error {
                        None => result,
                        Some(e) => Err(e),
                    });
                });
                (ok, complete)
            })
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

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let size = batch.len();
        let started = std::time::Instant::now();
        let (completions, result) = run_batch(&mut conn, batch.drain(..)).await;
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
async fn run_batch(
    conn: &mut SqliteConnection,
    jobs: impl Iterator<Item = Job>,
) -> (Vec<Completion>, Result<(), MetaError>) {
    let mut completions = Vec::new();
    // BEGIN IMMEDIATE takes the write lock up front, so a concurrent writer in another
    // process (the admin CLI) makes us wait for busy_timeout rather than fail halfway.
    // Each statement is a round trip to sqlx's worker thread, so the ones between
    // jobs go together: what ends a job is sent with what starts the next (or the
    // COMMIT). A one-job batch is then two round trips besides the job's own.
    let mut lead = "BEGIN IMMEDIATE; SAVEPOINT job";
    let mut jobs = jobs.peekable();
    while let Some(job) = jobs.next() {
        if let Err(e) = exec(conn, lead).await {
            let _ = exec(conn, "ROLLBACK").await;
            return (completions, Err(e));
        }
        let (ok, complete) = job(conn).await;
        completions.push(complete);
        lead = match (ok, jobs.peek().is_some()) {
            (true, true) => "RELEASE job; SAVEPOINT job",
            (false, true) => "ROLLBACK TO job; RELEASE job; SAVEPOINT job",
            (true, false) => "RELEASE job; COMMIT",
            (false, false) => "ROLLBACK TO job; RELEASE job; COMMIT",
        };
    }
    if completions.is_empty() {
        return (completions, Ok(()));
    }
    let result = exec(conn, lead).await;
    if result.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    (completions, result)
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<(), MetaError> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(crate::db_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;
    use sqlx::sqlite::SqliteConnectOptions;

    async fn writer(dir: &std::path::Path) -> (Writer, SqliteConnection) {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("w.sqlite"))
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        // A deferred foreign key is checked at COMMIT only: a_commit_that_fails_...
        sqlx::query(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE t (n INTEGER PRIMARY KEY);
             CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let reader = SqliteConnection::connect_with(&options).await.unwrap();
        (Writer::start(conn), reader)
    }

    /// Inserts `n`; fails after inserting when `fail`, so its row must go.
    async fn insert(writer: &Writer, n: i64, fail: bool) -> Result<i64, MetaError> {
        writer
            .write(move |conn| -> BoxFuture<'_, _> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (n) VALUES (?)")
                        .bind(n)
                        .execute(&mut *conn)
                        .await
                        .map_err(crate::db_error)?;
                    if fail {
                        return Err(MetaError::new(ErrorKind::Invalid, "asked to fail"));
                    }
                    Ok(n)
                })
            })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_is_rolled_back_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, mut reader) = writer(dir.path()).await;
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
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&mut reader)
            .await
            .unwrap();
        let want: Vec<i64> = (0..200).filter(|n| n % 3 != 0).collect();
        assert_eq!(rows, want);
        // A job alone in its batch, failing or not.
        assert!(insert(&writer, 1000, true).await.is_err());
        assert_eq!(insert(&writer, 1001, false).await.unwrap(), 1001);
        let last: Vec<i64> = sqlx::query_scalar("SELECT n FROM t WHERE n >= 1000")
            .fetch_all(&mut reader)
            .await
            .unwrap();
        assert_eq!(last, vec![1001]);
    }

    #[tokio::test]
    async fn a_commit_that_fails_fails_every_job_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, mut reader) = writer(dir.path()).await;
        // The job's statements succeed; the deferred foreign key fails the COMMIT.
        let result = writer
            .write(|conn| -> BoxFuture<'_, _> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO c (p) VALUES (7)")
                        .execute(&mut *conn)
                        .await
                        .map_err(crate::db_error)?;
                    Ok(())
                })
            })
            .await;
        let error = result.expect_err("the COMMIT's failure reaches the job");
        assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM c")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(rows, 0);
        // The writer is out of the failed transaction and goes on.
        assert_eq!(insert(&writer, 5, false).await.unwrap(), 5);
    }
}
