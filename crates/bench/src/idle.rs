//! The `idle` workload: open N IMAP sessions that log in, select and IDLE, and report
//! how much the server's memory grew per session, from /proc before and after.
//!
//! A server may be one process (evermail) or a tree of them (Dovecot forks an `imap`
//! process per session): the figures sum every process under the given pids. RSS
//! counts shared pages (libraries, a forked parent's pages) once per process, so the
//! proportional set size (PSS, from smaps_rollup) is reported too; for a one-process
//! server the two agree.

use crate::imap::{ImapConn, quote};
use crate::report::{Row, Samples};
use anyhow::Context;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub struct IdleRun {
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    pub connections: usize,
    /// Sessions being opened at once.
    pub parallel: usize,
    /// The server's processes; their descendants are counted too.
    pub pids: Vec<u32>,
    /// Upper bound on the time spent opening sessions.
    pub duration: Duration,
    /// Pause after the last session opened, before memory is read again.
    pub settle: Duration,
    /// Sessions opened and closed before the measured ones, at the same parallelism.
    pub warmup: usize,
    /// Stop opening sessions once the server's PSS exceeds this (KiB), so a server
    /// that needs far more memory than expected cannot exhaust a shared machine.
    pub max_server_pss_kib: u64,
}

/// Memory of a set of processes, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// The parent pid from the text of /proc/PID/stat (the command name may hold spaces
/// and parentheses, so fields are counted after the last `)`).
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The value in KiB of a `Name:   123 kB` line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `roots` and every process descending from them.
fn process_tree(roots: &[u32]) -> BTreeSet<u32> {
    let mut parent = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(parent_of)
            {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut tree: BTreeSet<u32> = roots.iter().copied().collect();
    loop {
        let before = tree.len();
        for (&pid, ppid) in &parent {
            if tree.contains(ppid) {
                tree.insert(pid);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// The summed RSS and PSS of `roots` and their descendants.
pub fn memory(roots: &[u32]) -> anyhow::Result<Memory> {
    let mut m = Memory::default();
    for pid in process_tree(roots) {
        // A process may exit between listing and reading; skip it.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        m.processes += 1;
        m.rss_kib += kib_field(&status, "VmRSS:").unwrap_or(0);
        if let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            m.pss_kib += kib_field(&smaps, "Pss:").unwrap_or(0);
        }
    }
    anyhow::ensure!(m.processes > 0, "no process with pid {roots:?}");
    Ok(m)
}

/// Lets this process hold `files` descriptors, raising the hard limit too when
/// allowed (as root); a clear error otherwise.
pub fn raise_nofile(files: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_some_and(|c| c >= files) || now.current.is_none() {
        return Ok(());
    }
    let maximum = match now.maximum {
        Some(m) if m < files => Some(files),
        other => other,
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(files),
            maximum,
        },
    )
    .with_context(|| {
        format!(
            "raising the open-file limit to {files} (now {:?}, hard {:?}); try `ulimit -n {files}`",
            now.current, now.maximum
        )
    })
}

async fn open_idle(run: &IdleRun) -> anyhow::Result<ImapConn> {
    let mut conn = ImapConn::login(run.server, &run.user, &run.password).await?;
    conn.command(&format!("SELECT {}", quote(&run.mailbox)))
        .await?;
    conn.idle_start().await?;
    Ok(conn)
}

/// How often (in sessions opened) the server's memory is checked against the limit.
const MEMORY_CHECK_EVERY: usize = 500;

/// Opens up to `n` idle sessions, `run.parallel` at a time, until the deadline or the
/// memory limit; the open sessions, the samples of opening them, and whether the
/// limit stopped it.
async fn open_many(
    run: &Arc<IdleRun>,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<ImapConn>, Samples, bool)> {
    let permits = Arc::new(Semaphore::new(run.parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut over_limit = false;
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        if Instant::now() >= deadline {
            break;
        }
        if i > 0 && i % MEMORY_CHECK_EVERY == 0 {
            let now = memory(&run.pids)?;
            if now.pss_kib > run.max_server_pss_kib {
                eprintln!(
                    "idle: the server's PSS is {} MiB after {i} sessions, over the limit of {} MiB; \
                     no more sessions are opened",
                    now.pss_kib / 1024,
                    run.max_server_pss_kib / 1024
                );
                over_limit = true;
                break;
            }
        }
        let run = run.clone();
        tasks.spawn(async move {
            let opened = Instant::now();
            let conn = open_idle(&run).await;
            drop(permit);
            conn.map(|c| (c, opened.elapsed()))
        });
    }
    let mut open = Vec::new();
    let mut samples = Samples::default();
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok((conn, took)) => {
                samples.ok(took);
                open.push(conn);
            }
            Err(e) => samples.error(e),
        }
    }
    Ok((open, samples, over_limit))
}

/// Memory is read three times: before anything (`cold`), after `warmup` sessions
/// came and went (`before`), and with the N sessions open (`after`). The difference
/// between cold and before is what logging in costs the server once and keeps (for
/// evermail, the allocator holding on to Argon2's 19 MiB blocks, one per concurrent
/// login); per-session figures are after minus before, and after minus cold.
pub async fn idle(run: IdleRun) -> anyhow::Result<Row> {
    raise_nofile(run.connections.max(run.warmup) as u64 + 1024)?;
    let cold = memory(&run.pids)?;
    let run = Arc::new(run);
    let deadline = Instant::now() + run.duration;
    if run.warmup > 0 {
        let (warm, samples, _) = open_many(&run, run.warmup, deadline).await?;
        anyhow::ensure!(
            samples.errors == 0,
            "warm-up: {} sessions failed, first: {}",
            samples.errors,
            samples.first_error.unwrap_or_default()
        );
        drop(warm);
        tokio::time::sleep(run.settle).await;
    }
    let before = memory(&run.pids)?;
    let started = Instant::now();
    let (open, samples, over_limit) = open_many(&run, run.connections, deadline).await?;
    let elapsed = started.elapsed();
    tokio::time::sleep(run.settle).await;
    let after = memory(&run.pids)?;
    let n = open.len().max(1) as f64;
    let per_conn = |a: u64, b: u64| (a as f64 - b as f64) / n;
    let row = Row::new(
        "idle",
        "open-idle",
        format!("conns={}", run.connections),
        samples,
        elapsed,
    )
    .with("sessions_open", open.len())
    .with("stopped_at_memory_limit", over_limit)
    .with("warmup_sessions", run.warmup)
    .with("rss_cold_kib", cold.rss_kib)
    .with("pss_cold_kib", cold.pss_kib)
    .with(
        "pss_per_session_from_cold_kib",
        (per_conn(after.pss_kib, cold.pss_kib) * 10.0).round() / 10.0,
    )
    .with("processes_before", before.processes)
    .with("processes_after", after.processes)
    .with("rss_before_kib", before.rss_kib)
    .with("rss_after_kib", after.rss_kib)
    .with("pss_before_kib", before.pss_kib)
    .with("pss_after_kib", after.pss_kib)
    .with(
        "rss_per_session_kib",
        (per_conn(after.rss_kib, before.rss_kib) * 10.0).round() / 10.0,
    )
    .with(
        "pss_per_session_kib",
        (per_conn(after.pss_kib, before.pss_kib) * 10.0).round() / 10.0,
    );
    // Closing: dropping the sockets is what a client vanishing looks like.
    drop(open);
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        assert_eq!(parent_of("42 (a) b) c) S 7 42 42 0"), Some(7));
        assert_eq!(
            kib_field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"),
            Some(1234)
        );
        assert_eq!(kib_field("Pss:  99 kB\n", "VmRSS:"), None);
    }

    #[test]
    fn our_own_memory_is_found() {
        let me = memory(&[std::process::id()]).unwrap();
        assert!(me.processes >= 1 && me.rss_kib > 0, "{me:?}");
    }
}
