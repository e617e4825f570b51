//! The `imap-read` workload: what a client does to a large mailbox, one operation at a
//! time, each timed from sending the command to its tagged OK. Operations that touch
//! every message (SELECT, FETCH 1:*, SEARCH) run `scan_count` times, the others
//! `count` times; both are also bounded by a duration per operation.

use crate::imap::{ImapConn, quote};
use crate::message::{SizeSpec, message, rng_for};
use crate::report::{Row, Samples};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadOp {
    /// Connect, greeting and LOGIN (then LOGOUT, not timed).
    Login,
    /// SELECT of the mailbox.
    Select,
    /// FETCH 1:* (UID FLAGS): a client's resynchronisation.
    FetchFlags,
    /// FETCH 1:* of the headers a message list shows.
    FetchHeaders,
    /// FETCH BODY.PEEK[] of a random message.
    FetchBody,
    /// SEARCH SUBJECT of a word one message in a thousand has.
    SearchHeader,
    /// SEARCH BODY of a word one message in a thousand has.
    SearchBody,
    /// STORE +FLAGS or -FLAGS (\Flagged) on a random message.
    Store,
    /// APPEND of a message from the size mix to another mailbox.
    Append,
}

impl ReadOp {
    pub const ALL: [ReadOp; 9] = [
        ReadOp::Login,
        ReadOp::Select,
        ReadOp::FetchFlags,
        ReadOp::FetchHeaders,
        ReadOp::FetchBody,
        ReadOp::SearchHeader,
        ReadOp::SearchBody,
        ReadOp::Store,
        ReadOp::Append,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadOp::Login => "login",
            ReadOp::Select => "select",
            ReadOp::FetchFlags => "fetch-flags",
            ReadOp::FetchHeaders => "fetch-headers",
            ReadOp::FetchBody => "fetch-body",
            ReadOp::SearchHeader => "search-header",
            ReadOp::SearchBody => "search-body",
            ReadOp::Store => "store",
            ReadOp::Append => "append",
        }
    }

    /// Whether the operation reads the whole mailbox.
    fn scans(self) -> bool {
        matches!(
            self,
            ReadOp::Select
                | ReadOp::FetchFlags
                | ReadOp::FetchHeaders
                | ReadOp::SearchHeader
                | ReadOp::SearchBody
        )
    }
}

#[derive(Clone)]
pub struct ReadRun {
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    pub append_mailbox: String,
    pub append_size: SizeSpec,
    pub connections: usize,
    pub count: u64,
    pub scan_count: u64,
    pub duration: Duration,
    pub seed: u64,
}

/// A logged-in session with the mailbox selected, and its message count.
async fn session(run: &ReadRun) -> anyhow::Result<(ImapConn, u32)> {
    let mut conn = ImapConn::login(run.server, &run.user, &run.password).await?;
    let reply = conn
        .command(&format!("SELECT {}", quote(&run.mailbox)))
        .await?;
    Ok((conn, reply.exists.unwrap_or(0)))
}

/// What one operation saw, besides its latency.
#[derive(Default)]
struct Seen {
    bytes: usize,
    matches: usize,
}

async fn one(
    op: ReadOp,
    conn: &mut ImapConn,
    exists: u32,
    run: &ReadRun,
    i: u64,
) -> anyhow::Result<(Duration, Seen)> {
    let mut rng = rng_for(run.seed, i);
    let random_msg = rng.random_range(1..=exists.max(1));
    let topic = rng.random_range(0..1000);
    let started = Instant::now();
    let reply = match op {
        ReadOp::Login => {
            let mut c = ImapConn::login(run.server, &run.user, &run.password).await?;
            let took = started.elapsed();
            c.command("LOGOUT").await.ok();
            return Ok((took, Seen::default()));
        }
        ReadOp::Select => {
            conn.command(&format!("SELECT {}", quote(&run.mailbox)))
                .await?
        }
        ReadOp::FetchFlags => conn.command("FETCH 1:* (UID FLAGS)").await?,
        ReadOp::FetchHeaders => {
            conn.command(
                "FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])",
            )
            .await?
        }
        ReadOp::FetchBody => {
            conn.command(&format!("FETCH {random_msg} BODY.PEEK[]"))
                .await?
        }
        ReadOp::SearchHeader => {
            conn.command(&format!("SEARCH SUBJECT \"topic{topic:03}\""))
                .await?
        }
        ReadOp::SearchBody => {
            conn.command(&format!("SEARCH BODY \"zq{topic:03}x\""))
                .await?
        }
        ReadOp::Store => {
            let sign = if i.is_multiple_of(2) { '+' } else { '-' };
            conn.command(&format!("STORE {random_msg} {sign}FLAGS (\\Flagged)"))
                .await?
        }
        ReadOp::Append => {
            // Indexes far past any provisioned mail, so appended bodies are new.
            let body = message(run.append_size, run.seed, 1 << 40 | i);
            let started = Instant::now();
            conn.append(&run.append_mailbox, "\\Seen", &body).await?;
            return Ok((
                started.elapsed(),
                Seen {
                    bytes: body.len(),
                    matches: 0,
                },
            ));
        }
    };
    Ok((
        started.elapsed(),
        Seen {
            bytes: reply.bytes,
            matches: reply.search.len(),
        },
    ))
}

/// Runs `op` on `run.connections` sessions at once; one table row.
pub async fn run_op(run: &ReadRun, op: ReadOp) -> anyhow::Result<Row> {
    let count = if op.scans() {
        run.scan_count
    } else {
        run.count
    };
    if op == ReadOp::Append {
        // The target may exist from an earlier run: a NO here is expected.
        let (mut conn, _) = session(run).await?;
        conn.command(&format!("CREATE {}", quote(&run.append_mailbox)))
            .await
            .ok();
        conn.command("LOGOUT").await.ok();
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run.duration;
    let mut tasks = Vec::new();
    for _ in 0..run.connections {
        let (run, next) = (run.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut conn, exists) = session(&run).await?;
            // Sessions are opened before the clock starts: rates are of the operation.
            let began = Instant::now();
            let mut samples = Samples::default();
            let (mut bytes, mut matches) = (0, 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() >= deadline {
                    break;
                }
                match one(op, &mut conn, exists, &run, i).await {
                    Ok((took, seen)) => {
                        samples.ok(took);
                        bytes += seen.bytes;
                        matches += seen.matches;
                    }
                    Err(e) => {
                        samples.error(e);
                        // A refused command leaves the session usable; a broken
                        // connection does not, so start a fresh one either way.
                        conn = session(&run).await?.0;
                    }
                }
            }
            let ended = Instant::now();
            conn.command("LOGOUT").await.ok();
            anyhow::Ok((samples, exists, bytes, matches, began, ended))
        }));
    }
    let mut samples = Samples::default();
    let (mut exists, mut bytes, mut matches) = (0, 0, 0);
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for t in tasks {
        let (s, e, b, m, began, ended) = t.await??;
        samples.merge(s);
        exists = e;
        bytes += b;
        matches += m;
        first = Some(first.map_or(began, |f| f.min(began)));
        last = Some(last.map_or(ended, |l| l.max(ended)));
    }
    let elapsed = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => started.elapsed(),
    };
    let done = samples.latencies.len().max(1);
    let mut row = Row::new(
        "imap",
        op.name(),
        format!("conns={} msgs={exists}", run.connections),
        samples,
        elapsed,
    );
    if bytes > 0 {
        row = row.with("bytes_per_op", bytes / done);
    }
    if matches!(op, ReadOp::SearchHeader | ReadOp::SearchBody) {
        row = row.with("matches_per_op", matches as f64 / done as f64);
    }
    Ok(row)
}
