//! Which failures a transaction may be replayed after, and the bounded replay loop.

use evermail_meta::{ErrorKind, MetaError};
use sqlx::mysql::MySqlDatabaseError;
use std::future::Future;
use std::time::Duration;

/// What a failed attempt allows the caller to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The failure is the answer (a duplicate name, over quota, bad data).
    Never,
    /// The server rolled the transaction back (a deadlock, a Galera certification
    /// conflict, a lock wait timeout); the same node may be used again.
    Conflict,
    /// The node could not be used (connection refused or lost before COMMIT, not
    /// Synced); nothing was committed, and the next attempt should go elsewhere.
    NodeDown,
    /// The connection was lost while COMMIT was in flight: the transaction may or may
    /// not have committed. Only an operation that can tell (insert_message, through its
    /// delivery id) or that is harmless to repeat may replay.
    UnknownOutcome,
}

impl Retry {
    /// The `reason` label of `evermail_meta_retries_total`.
    fn label(self) -> &'static str {
        match self {
            Retry::Never => "never",
            Retry::Conflict => "conflict",
            Retry::NodeDown => "node_down",
            Retry::UnknownOutcome => "unknown_outcome",
        }
    }
}

/// A failed attempt: the error to report and whether to try again.
#[derive(Debug)]
pub(crate) struct TxError {
    pub error: MetaError,
    pub retry: Retry,
}

impl From<MetaError> for TxError {
    fn from(error: MetaError) -> TxError {
        TxError {
            error,
            retry: Retry::Never,
        }
    }
}

/// MariaDB error numbers that mean "rolled back, try again".
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// Also how Galera reports a certification failure and a brute-force abort by a
/// replicated write set.
const ER_LOCK_DEADLOCK: u16 = 1213;
/// MariaDB error numbers that mean "this node cannot serve now".
const ER_UNKNOWN_COM_ERROR: u16 = 1047; // WSREP has not yet prepared node for application use
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_QUERY_INTERRUPTED: u16 = 1317;
const ER_CONNECTION_KILLED: u16 = 1927;
const ER_LOCK_ABORTED: u16 = 1689; // wsrep: "Wait on a lock was aborted due to a pending exclusive lock"
const CR_SERVER_GONE_ERROR: u16 = 2006;
const CR_SERVER_LOST: u16 = 2013;
/// MariaDB closes a connection that idles too long inside a transaction.
const ER_NET_READ_INTERRUPTED: u16 = 1159;
const ER_CLIENT_INTERACTION_TIMEOUT: u16 = 4031;

/// Classifies a driver error: the kind callers see, and whether to retry.
pub(crate) fn classify(e: &sqlx::Error) -> (ErrorKind, Retry) {
    match e {
        sqlx::Error::Database(d) => {
            if d.is_unique_violation() {
                return (ErrorKind::AlreadyExists, Retry::Never);
            }
            if d.is_foreign_key_violation() {
                return (ErrorKind::NotFound, Retry::Never);
            }
            let number = d
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number());
            match number {
                Some(ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT | ER_LOCK_ABORTED) => {
                    (ErrorKind::Unavailable, Retry::Conflict)
                }
                Some(
                    ER_UNKNOWN_COM_ERROR
                    | ER_SERVER_SHUTDOWN
                    | ER_QUERY_INTERRUPTED
                    | ER_CONNECTION_KILLED
                    | CR_SERVER_GONE_ERROR
                    | CR_SERVER_LOST
                    | ER_NET_READ_INTERRUPTED
                    | ER_CLIENT_INTERACTION_TIMEOUT,
                ) => (ErrorKind::Unavailable, Retry::NodeDown),
                _ if d.code().as_deref() == Some("40001") => {
                    (ErrorKind::Unavailable, Retry::Conflict)
                }
                _ => (ErrorKind::Unavailable, Retry::Never),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => (ErrorKind::Unavailable, Retry::NodeDown),
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            (ErrorKind::Corrupt, Retry::Never)
        }
        _ => (ErrorKind::Unavailable, Retry::Never),
    }
}

/// Wraps a driver error from a statement (not from COMMIT).
pub(crate) fn db(e: sqlx::Error) -> TxError {
    let (kind, retry) = classify(&e);
    TxError {
        error: MetaError::new(kind, e.to_string()),
        retry,
    }
}

/// Wraps a driver error from an INSERT whose unique key is a backstop against a
/// counter handed out twice (the messages primary key for UIDs, `modseq_allocations`
/// for MODSEQs): a duplicate there is not the caller's mistake but proof that another
/// transaction was given the same value and committed first, which Galera's
/// certification did not catch. The transaction is rolled back and replayed as a
/// whole, so it re-reads the counters and gets fresh values.
pub(crate) fn db_counter_backstop(e: sqlx::Error) -> TxError {
    let duplicate = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
    let mut error = db(e);
    if duplicate {
        metrics::counter!("evermail_meta_counter_duplicates_total").increment(1);
        tracing::warn!(error = %error.error, "a UID or MODSEQ was handed out twice; replaying the transaction");
        error.error = MetaError::new(
            ErrorKind::Unavailable,
            format!("a counter value was handed out twice: {}", error.error),
        );
        error.retry = Retry::Conflict;
    }
    error
}

/// Wraps a driver error from COMMIT: losing the connection there leaves the outcome
/// unknown, which must not be treated like a failure before COMMIT.
pub(crate) fn commit_error(e: sqlx::Error) -> TxError {
    let mut error = db(e);
    if error.retry == Retry::NodeDown {
        error.retry = Retry::UnknownOutcome;
    }
    error
}

/// How hard to try before reporting `Unavailable`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// Runs `op` until it succeeds, fails for good, or `policy.max_attempts` are spent;
/// `op` gets the attempt number, starting at 1.
///
/// Why replaying is safe: every write is one transaction, and each failure this loop
/// retries means that transaction committed nothing. Galera reports a certification
/// conflict (another node committed a write to the same rows first) as a deadlock,
/// 1213, after rolling the whole transaction back; a lock wait timeout (1205) and a
/// node that is not ready (1047) also leave nothing behind; a connection lost before
/// COMMIT was sent takes its uncommitted transaction with it. The replay re-reads
/// everything it decides on (counters, quota, current flags) inside its new
/// transaction, so it allocates fresh UIDs and MODSEQs rather than reusing the failed
/// attempt's. The one case where something may have committed, a connection lost
/// during COMMIT ([`Retry::UnknownOutcome`]), is replayed only when
/// `replay_unknown_outcome` says the operation can tell or does not care: an
/// `insert_message` replay first looks for its own delivery id.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    replay_unknown_outcome: bool,
    mut op: F,
) -> Result<T, MetaError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        let failure = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let replayable = match failure.retry {
            Retry::Never => false,
            Retry::Conflict | Retry::NodeDown => true,
            Retry::UnknownOutcome => replay_unknown_outcome,
        };
        if !replayable {
            if failure.retry == Retry::UnknownOutcome {
                return Err(MetaError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the connection was lost during COMMIT, so whether the change \
                         was applied is unknown: {}",
                        failure.error
                    ),
                ));
            }
            return Err(failure.error);
        }
        if attempt >= policy.max_attempts {
            metrics::counter!("evermail_meta_retries_exhausted_total").increment(1);
            tracing::warn!(attempts = attempt, error = %failure.error, "a metadata transaction used up its retries");
            return Err(MetaError::new(
                ErrorKind::Unavailable,
                format!(
                    "gave up after {attempt} attempts; last error: {}",
                    failure.error
                ),
            ));
        }
        tracing::debug!(attempt, retry = ?failure.retry, error = %failure.error, "retrying metadata transaction");
        metrics::counter!("evermail_meta_retries_total", "reason" => failure.retry.label())
            .increment(1);
        // Full jitter: concurrent writers that conflicted once should not collide again
        // in lock step.
        let pause = backoff.mul_f64(rand::random_range(0.5..1.0));
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(policy.max_backoff);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };

    fn failing(retry: Retry) -> TxError {
        TxError {
            error: MetaError::new(ErrorKind::Unavailable, "boom"),
            retry,
        }
    }

    #[tokio::test]
    async fn retries_conflicts_until_success() {
        let calls = AtomicU32::new(0);
        let got = with_retry(FAST, false, |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt < 3 {
                    Err(failing(Retry::Conflict))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let err = with_retry(FAST, false, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(failing(Retry::NodeDown)) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn final_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let err = with_retry(FAST, true, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(MetaError::new(ErrorKind::OverQuota, "full").into()) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OverQuota);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unknown_commit_outcome_replays_only_when_allowed() {
        let calls = AtomicU32::new(0);
        let err = with_retry(FAST, false, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(failing(Retry::UnknownOutcome)) }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let got = with_retry(FAST, true, |attempt| async move {
            if attempt == 1 {
                Err(failing(Retry::UnknownOutcome))
            } else {
                Ok(attempt)
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 2);
    }
}
