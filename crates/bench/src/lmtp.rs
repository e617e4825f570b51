//! The `deliver` workload: a minimal LMTP client, written here rather than taken from
//! a library because it must measure exactly one thing (end of DATA to last reply)
//! and work against any server.

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct DeliverRun {
    pub server: SocketAddr,
    pub connections: usize,
    pub size: usize,
    pub recipients: Vec<String>,
    pub count: usize,
    pub duration: Duration,
    pub seed: u64,
}

pub struct DeliverResult {
    pub messages: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Per-message latencies in milliseconds, sorted.
    pub latencies: Vec<f64>,
}

#[derive(Serialize)]
pub struct Summary {
    workload: &'static str,
    connections: usize,
    size: usize,
    messages: usize,
    errors: usize,
    seconds: f64,
    messages_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl DeliverResult {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }

    pub fn summary(&self, connections: usize, size: usize) -> Summary {
        Summary {
            workload: "deliver",
            connections,
            size,
            messages: self.messages,
            errors: self.errors,
            seconds: self.elapsed.as_secs_f64(),
            messages_per_second: self.rate(),
            p50_ms: self.percentile(0.5),
            p99_ms: self.percentile(0.99),
            max_ms: self.percentile(1.0),
        }
    }
}

/// A message of about `size` bytes: headers plus base64-like lines of random text,
/// unique per (seed, connection, index) so content-addressed stores cannot
/// deduplicate it.
fn message(size: usize, rng: &mut rand::rngs::StdRng, id: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = format!(
        "From: bench@example.net\r\nTo: bench@example.com\r\nSubject: bench {id}\r\n\
         Message-ID: <{id}@bench.example.net>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    while out.len() < size {
        for _ in 0..76 {
            out.push(ALPHABET[rng.random_range(0..ALPHABET.len())]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Conn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(server: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut conn = Conn {
            reader: BufReader::new(r),
            writer: w,
        };
        conn.expect(2).await?;
        conn.writer.write_all(b"LHLO bench.example.net\r\n").await?;
        conn.expect(2).await?;
        Ok(conn)
    }

    /// Reads one (possibly multi-line) reply and checks its first digit.
    async fn expect(&mut self, class: u8) -> anyhow::Result<String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                bail!("the server closed the connection");
            }
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                if line.as_bytes().first() != Some(&(b'0' + class)) {
                    bail!("unexpected reply: {}", line.trim_end());
                }
                return Ok(line);
            }
        }
    }

    async fn deliver(&mut self, recipients: &[String], body: &[u8]) -> anyhow::Result<Duration> {
        let mut envelope = String::from("MAIL FROM:<bench@example.net>\r\n");
        for r in recipients {
            envelope.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        envelope.push_str("DATA\r\n");
        // Pipelined: every command in one write, as an MTA with PIPELINING does.
        self.writer.write_all(envelope.as_bytes()).await?;
        self.expect(2).await?;
        for _ in recipients {
            self.expect(2).await?;
        }
        self.expect(3).await?;
        self.writer.write_all(body).await?;
        self.writer.write_all(b".\r\n").await?;
        let started = Instant::now();
        for _ in recipients {
            self.expect(2).await?;
        }
        Ok(started.elapsed())
    }
}

pub async fn deliver(run: DeliverRun) -> anyhow::Result<DeliverResult> {
    let started = Instant::now();
    let deadline = started + run.duration;
    let next = Arc::new(AtomicUsize::new(0));
    let recipients = Arc::new(run.recipients);
    let mut tasks = Vec::new();
    for c in 0..run.connections {
        let next = next.clone();
        let recipients = recipients.clone();
        let (server, size, count, seed) = (run.server, run.size, run.count, run.seed);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (c as u64) << 32);
            let mut conn = Conn::open(server).await?;
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() >= deadline {
                    break;
                }
                let body = message(size, &mut rng, &format!("{seed}.{c}.{i}"));
                match conn.deliver(&recipients, &body).await {
                    Ok(latency) => latencies.push(latency.as_secs_f64() * 1000.0),
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(server).await?;
                    }
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    Ok(DeliverResult {
        messages: latencies.len(),
        errors,
        elapsed,
        latencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_requested_size_and_are_dot_safe() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for size in [100, 4096, 100 * 1024] {
            let m = message(size, &mut rng, "x");
            assert!(m.len() >= size && m.len() < size + 80);
            assert!(
                !m.windows(3).any(|w| w == b"\n.\r"),
                "a line starting with a dot"
            );
            assert!(m.ends_with(b"\r\n"));
        }
    }

    #[test]
    fn percentiles_pick_sorted_values() {
        let r = DeliverResult {
            messages: 5,
            errors: 0,
            elapsed: Duration::from_secs(1),
            latencies: vec![1.0, 2.0, 3.0, 4.0, 100.0],
        };
        assert_eq!(r.percentile(0.5), 3.0);
        assert_eq!(r.percentile(1.0), 100.0);
        assert_eq!(r.rate(), 5.0);
    }
}
