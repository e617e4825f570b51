//! `evermail-bench`: a load generator that speaks plain LMTP to any server (evermail,
//! Dovecot, Cyrus), so figures are comparable. Every run is bounded by a message count
//! and a duration, uses a fixed seed, and prints a table row and a JSON line.
//!
//! Timing lives here, never in tests' assertions.

mod lmtp;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Deliver messages over LMTP with N concurrent connections, each sending one
    /// message per transaction; reports messages/s and latency from the end of DATA
    /// to the last recipient's reply.
    Deliver {
        /// The LMTP server.
        #[arg(long, default_value = "127.0.0.1:2424")]
        lmtp: SocketAddr,
        /// Concurrent connections; a comma-separated list runs each in turn.
        #[arg(long, default_value = "1,4,16", value_delimiter = ',')]
        connections: Vec<usize>,
        /// Message sizes in bytes; a comma-separated list runs each in turn.
        #[arg(long, default_value = "4096,102400", value_delimiter = ',')]
        size: Vec<usize>,
        /// Recipients of every message (comma-separated; all must exist).
        #[arg(long, value_delimiter = ',', required = true)]
        rcpt: Vec<String>,
        /// Messages per run (upper bound).
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Seconds per run (upper bound).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Seed for message contents.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.workload {
        Workload::Deliver {
            lmtp,
            connections,
            size,
            rcpt,
            count,
            seconds,
            seed,
        } => {
            println!(
                "{:>5} {:>9} {:>8} {:>10} {:>9} {:>9} {:>9} {:>7}",
                "conns", "size", "msgs", "msgs/s", "p50 ms", "p99 ms", "max ms", "errors"
            );
            for &size in &size {
                for &conns in &connections {
                    let run = lmtp::deliver(lmtp::DeliverRun {
                        server: lmtp,
                        connections: conns,
                        size,
                        recipients: rcpt.clone(),
                        count,
                        duration: Duration::from_secs(seconds),
                        seed,
                    })
                    .await?;
                    println!(
                        "{:>5} {:>9} {:>8} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                        conns,
                        size,
                        run.messages,
                        run.rate(),
                        run.percentile(0.50),
                        run.percentile(0.99),
                        run.percentile(1.0),
                        run.errors
                    );
                    eprintln!("{}", serde_json::to_string(&run.summary(conns, size))?);
                }
            }
        }
    }
    Ok(())
}
