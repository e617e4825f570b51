//! `evermail-bench`: a load generator that speaks plain LMTP and IMAP to any server
//! (evermail, Dovecot, Cyrus), so figures are comparable. Every run is bounded by a
//! count and a duration, uses a fixed seed (message contents depend only on the seed
//! and the message's index), and prints a table row and a JSON line.
//!
//! Workloads: `deliver` (LMTP throughput and latency), `provision` (fill mailboxes
//! fast, the same mail for every server), `imap-read` (what clients do to a large
//! mailbox), `idle` (server memory per idle session) and `mixed` (client sessions
//! while mail arrives).
//!
//! Timing lives here, never in tests' assertions.

mod idle;
mod imap;
mod imap_read;
mod lmtp;
mod message;
mod mixed;
mod report;

use clap::{Args, Parser, Subcommand};
use message::SizeSpec;
use report::{Report, Row};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about, max_term_width = 100)]
struct Cli {
    /// Append JSON lines here instead of printing them on stderr.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// A label added to every JSON line (e.g. the server's name).
    #[arg(long, global = true)]
    label: Option<String>,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Args, Clone)]
struct Login {
    /// The IMAP server (plaintext; log in is allowed there on loopback).
    #[arg(long, default_value = "127.0.0.1:1143")]
    imap: SocketAddr,
    /// The user to log in as.
    #[arg(long, default_value = "bench@example.com")]
    user: String,
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// The mailbox to select.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
}

#[derive(Subcommand)]
enum Workload {
    /// Deliver messages over LMTP with N concurrent connections, each sending one
    /// message per transaction; messages/s and latency from the end of DATA to the last
    /// recipient's reply.
    Deliver {
        /// The LMTP server.
        #[arg(long, default_value = "127.0.0.1:2424")]
        lmtp: SocketAddr,
        /// Concurrent connections; a comma-separated list runs each in turn.
        #[arg(long, default_value = "1,4,16,64", value_delimiter = ',')]
        connections: Vec<usize>,
        /// Message sizes: bytes, NK, "mix" (90% 2-20 KiB text, 10% 100 KiB-1 MiB with an
        /// attachment) or "small" (4-20 KiB text); a list runs each in turn.
        #[arg(long, default_value = "mix", value_delimiter = ',')]
        size: Vec<SizeSpec>,
        /// The pool of recipients (all must exist); each message goes to the next
        /// `--recipients` of them in turn.
        #[arg(long, value_delimiter = ',', required = true)]
        rcpt: Vec<String>,
        /// Recipients per message; a list runs each in turn.
        #[arg(long, default_value = "1", value_delimiter = ',')]
        recipients: Vec<usize>,
        /// Messages per run (upper bound).
        #[arg(long, default_value_t = 2000)]
        count: u64,
        /// Seconds per run (upper bound).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Seed for message contents.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Fill mailboxes with `count` messages over many LMTP connections; the same seed
    /// gives every server the same mail (message i goes to the i-th recipient in turn).
    Provision {
        #[arg(long, default_value = "127.0.0.1:2424")]
        lmtp: SocketAddr,
        #[arg(long, value_delimiter = ',', required = true)]
        rcpt: Vec<String>,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Message sizes (see `deliver`); "small" keeps a 100,000-message mailbox near
        /// 1.2 GB.
        #[arg(long, default_value = "small")]
        size: SizeSpec,
        #[arg(long, default_value_t = 3600)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Client operations on a (large) mailbox: login, select, FETCH 1:* flags and
    /// headers, FETCH BODY[] of random messages, SEARCH on a header and on body text,
    /// STORE, APPEND; ops/s and latency of each.
    ImapRead {
        #[command(flatten)]
        login: Login,
        /// Operations to run, in order (default: all).
        #[arg(long, value_delimiter = ',', value_enum)]
        ops: Vec<imap_read::ReadOp>,
        /// Concurrent sessions; a list runs each in turn.
        #[arg(long, default_value = "1", value_delimiter = ',')]
        connections: Vec<usize>,
        /// Runs of each operation on single messages (upper bound).
        #[arg(long, default_value_t = 200)]
        count: u64,
        /// Runs of each operation that reads the whole mailbox (upper bound).
        #[arg(long, default_value_t = 5)]
        scan_count: u64,
        /// Seconds per operation (upper bound).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Where APPEND puts messages (created if missing).
        #[arg(long, default_value = "bench-append")]
        append_mailbox: String,
        #[arg(long, default_value = "mix")]
        append_size: SizeSpec,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Open N sessions that log in, select and IDLE; the server's memory (RSS and
    /// PSS of the given processes and their children, from /proc) before and after.
    Idle {
        #[command(flatten)]
        login: Login,
        /// The server's pid (several allowed); children are counted too.
        #[arg(long = "pid", required = true)]
        pids: Vec<u32>,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Sessions being opened at once.
        #[arg(long, default_value_t = 32)]
        parallel: usize,
        /// Seconds allowed for opening (upper bound).
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Seconds to wait after the last session opened before reading memory.
        #[arg(long, default_value_t = 2)]
        settle: u64,
        /// Sessions opened and closed first, so memory the server keeps after any
        /// burst of logins is in the baseline (it is reported separately).
        #[arg(long, default_value_t = 0)]
        warmup: usize,
        /// Stop opening sessions when the server's PSS passes this many MiB (checked
        /// every 500 sessions), to protect a shared machine; the row says so.
        #[arg(long, default_value_t = 8192)]
        max_server_pss_mib: u64,
    },
    /// Client sessions (login, select, fetch new, store \Seen, idle, logout) as the
    /// given users, while LMTP connections deliver to them.
    Mixed {
        #[command(flatten)]
        login: Login,
        #[arg(long, default_value = "127.0.0.1:2424")]
        lmtp: SocketAddr,
        /// Users the clients log in as and deliveries go to (default: --user).
        #[arg(long, value_delimiter = ',')]
        users: Vec<String>,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 2)]
        deliverers: usize,
        #[arg(long, default_value = "mix")]
        size: SizeSpec,
        /// Sessions in all (upper bound).
        #[arg(long, default_value_t = 2000)]
        sessions: u64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The longest a session idles, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        idle_ms: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut report = Report::new(cli.label, cli.json);
    match cli.workload {
        Workload::Deliver {
            lmtp,
            connections,
            size,
            rcpt,
            recipients,
            count,
            seconds,
            seed,
        } => {
            idle::raise_nofile(connections.iter().max().copied().unwrap_or(1) as u64 + 256)?;
            // Each run starts where the previous one ended, so no body repeats.
            let mut first_index = 0;
            for &size in &size {
                for &per_message in &recipients {
                    anyhow::ensure!(
                        per_message <= rcpt.len(),
                        "{per_message} recipients per message needs as many in --rcpt"
                    );
                    for &conns in &connections {
                        let row = lmtp::deliver_row(lmtp::DeliverRun {
                            server: lmtp,
                            connections: conns,
                            size,
                            recipients: rcpt.clone(),
                            per_message,
                            count,
                            duration: Duration::from_secs(seconds),
                            seed,
                            first_index,
                        })
                        .await?;
                        first_index += count;
                        report.emit(row)?;
                    }
                }
            }
        }
        Workload::Provision {
            lmtp,
            rcpt,
            count,
            connections,
            size,
            seconds,
            seed,
        } => {
            let (samples, elapsed) = lmtp::deliver(lmtp::DeliverRun {
                server: lmtp,
                connections,
                size,
                recipients: rcpt,
                per_message: 1,
                count,
                duration: Duration::from_secs(seconds),
                seed,
                first_index: 0,
            })
            .await?;
            let errors = samples.errors;
            report.emit(Row::new(
                "provision",
                "lmtp",
                format!("conns={connections} size={size}"),
                samples,
                elapsed,
            ))?;
            anyhow::ensure!(errors == 0, "{errors} deliveries failed while provisioning");
        }
        Workload::ImapRead {
            login,
            ops,
            connections,
            count,
            scan_count,
            seconds,
            append_mailbox,
            append_size,
            seed,
        } => {
            let ops = if ops.is_empty() {
                imap_read::ReadOp::ALL.to_vec()
            } else {
                ops
            };
            for &conns in &connections {
                let run = imap_read::ReadRun {
                    server: login.imap,
                    user: login.user.clone(),
                    password: login.password.clone(),
                    mailbox: login.mailbox.clone(),
                    append_mailbox: append_mailbox.clone(),
                    append_size,
                    connections: conns,
                    count,
                    scan_count,
                    duration: Duration::from_secs(seconds),
                    seed,
                };
                for &op in &ops {
                    report.emit(imap_read::run_op(&run, op).await?)?;
                }
            }
        }
        Workload::Idle {
            login,
            pids,
            connections,
            parallel,
            seconds,
            settle,
            warmup,
            max_server_pss_mib,
        } => {
            let row = idle::idle(idle::IdleRun {
                server: login.imap,
                user: login.user,
                password: login.password,
                mailbox: login.mailbox,
                connections,
                parallel,
                pids,
                duration: Duration::from_secs(seconds),
                settle: Duration::from_secs(settle),
                warmup,
                max_server_pss_kib: max_server_pss_mib * 1024,
            })
            .await?;
            report.emit(row)?;
        }
        Workload::Mixed {
            login,
            lmtp,
            users,
            clients,
            deliverers,
            size,
            sessions,
            seconds,
            idle_ms,
            seed,
        } => {
            let users = if users.is_empty() {
                vec![login.user]
            } else {
                users
            };
            let rows = mixed::mixed(mixed::MixedRun {
                imap: login.imap,
                lmtp,
                users,
                password: login.password,
                clients,
                deliverers,
                size,
                sessions,
                duration: Duration::from_secs(seconds),
                idle_max: Duration::from_millis(idle_ms),
                seed,
            })
            .await?;
            for row in rows {
                report.emit(row)?;
            }
        }
    }
    Ok(())
}
