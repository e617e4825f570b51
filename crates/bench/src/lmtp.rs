//! The `deliver` and `provision` workloads over a minimal LMTP client, written here
//! rather than taken from a library because it must measure exactly one thing (end of
//! DATA to the last recipient's reply) and work against any server.

use crate::message::{SizeSpec, message};
use crate::report::{Row, Samples};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct DeliverRun {
    pub server: SocketAddr,
    pub connections: usize,
    pub size: SizeSpec,
    /// The pool of recipients; message `i` goes to `per_message` consecutive ones
    /// starting at `i mod pool`.
    pub recipients: Vec<String>,
    pub per_message: usize,
    pub count: u64,
    pub duration: Duration,
    pub seed: u64,
    /// Message indexes start here, so a second run with the same seed adds new mail.
    pub first_index: u64,
}

pub struct Conn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    pub async fn open(server: SocketAddr) -> anyhow::Result<Conn> {
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

    /// One transaction; the time from the end of DATA to the last recipient's reply.
    pub async fn deliver(&mut self, recipients: &[&str], body: &[u8]) -> anyhow::Result<Duration> {
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

/// The recipients of message `index`.
pub fn recipients_of(pool: &[String], per_message: usize, index: u64) -> Vec<&str> {
    (0..per_message.min(pool.len()))
        .map(|k| pool[(index as usize + k) % pool.len()].as_str())
        .collect()
}

/// Delivers until `count` messages are sent or the duration ends; one message per
/// transaction per connection. Returns the latencies and the elapsed time.
pub async fn deliver(run: DeliverRun) -> anyhow::Result<(Samples, Duration)> {
    let started = Instant::now();
    let deadline = started + run.duration;
    let next = Arc::new(AtomicU64::new(0));
    let recipients = Arc::new(run.recipients);
    let mut tasks = Vec::new();
    for _ in 0..run.connections {
        let next = next.clone();
        let recipients = recipients.clone();
        let (server, size, count, seed, per, first) = (
            run.server,
            run.size,
            run.count,
            run.seed,
            run.per_message,
            run.first_index,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(server).await?;
            let mut samples = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() >= deadline {
                    break;
                }
                let body = message(size, seed, first + i);
                let to = recipients_of(&recipients, per, first + i);
                match conn.deliver(&to, &body).await {
                    Ok(latency) => samples.ok(latency),
                    Err(e) => {
                        samples.error(e);
                        conn = Conn::open(server).await?;
                    }
                }
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Samples::default();
    for t in tasks {
        samples.merge(t.await??);
    }
    Ok((samples, started.elapsed()))
}

/// A `deliver` row: messages/s and latencies.
pub async fn deliver_row(run: DeliverRun) -> anyhow::Result<Row> {
    let params = format!(
        "conns={} size={} rcpts={}",
        run.connections, run.size, run.per_message
    );
    let (samples, elapsed) = deliver(run).await?;
    Ok(Row::new("deliver", "lmtp", params, samples, elapsed))
}
