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
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        return (completions, Err(e));
    }
    for job in jobs {
        if let Err(e) = exec(conn, "SAVEPOINT job").await {
            let _ = exec(conn, "ROLLBACK").await;
            return (completions, Err(e));
        }
        let (ok, complete) = job(conn).await;
        completions.push(complete);
        let end = if ok {
            exec(conn, "RELEASE job").await
        } else {
            match exec(conn, "ROLLBACK TO job").await {
                Ok(()) => exec(conn, "RELEASE job").await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            let _ = exec(conn, "ROLLBACK").await;
            return (completions, Err(e));
        }
    }
    let result = exec(conn, "COMMIT").await;
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
