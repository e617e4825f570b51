//! The accept loop shared by evermail's protocol front ends (IMAP, LMTP, later POP3).
//!
//! [`accept_sessions`] accepts connections until shutdown, runs each session as a
//! task under one [`TaskTracker`], and returns only once every session has ended, so
//! a caller that awaits it knows no session is still writing. It also keeps the
//! per-protocol session metrics, `evermail_sessions_total` and
//! `evermail_sessions_active` (label `protocol`).
//!
//! It knows nothing about any protocol: the caller's closure turns a connection into
//! the session's future. Protocol crates depend on this one, never on each other.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A process-wide session id, unique across protocols, for logs.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A connection just accepted.
pub struct Connection {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Unique within this process, for log correlation.
    pub id: u64,
}

/// Accepts connections on `listener` until `shutdown` is cancelled, runs
/// `session(connection)` for each, then waits for every session to end.
///
/// Sessions watch `shutdown` themselves and end at their next safe point; this
/// function only stops accepting and waits.
pub async fn accept_sessions<F, Fut>(
    listener: TcpListener,
    protocol: &'static str,
    shutdown: CancellationToken,
    mut session: F,
) -> std::io::Result<()>
where
    F: FnMut(Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    tracing::info!(%local, protocol, "listening");
    let sessions = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Mostly EMFILE/ENFILE: pausing lets sessions end and free descriptors
                // instead of spinning on an error that repeats at once.
                tracing::warn!(%local, protocol, %error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        // Replies are small and the client waits for each; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("evermail_sessions_total", "protocol" => protocol).increment(1);
        let active = ActiveSession::start(protocol);
        let run = session(Connection { stream, peer, id });
        sessions.spawn(async move {
            run.await;
            drop(active);
        });
    }
    drop(listener);
    tracing::info!(%local, protocol, active = sessions.len(), "listener closed; waiting for sessions");
    sessions.close();
    sessions.wait().await;
    tracing::info!(%local, protocol, "sessions ended");
    Ok(())
}

/// Sessions open in this process, all protocols: the load a node reports in its
/// heartbeat.
static ACTIVE: AtomicU64 = AtomicU64::new(0);

/// How many sessions are open in this process, over every protocol.
pub fn active_sessions() -> u64 {
    ACTIVE.load(Ordering::Relaxed)
}

/// Keeps `evermail_sessions_active` right however a session task ends, including by
/// a panic that unwinds through it.
struct ActiveSession(&'static str);

impl ActiveSession {
    fn start(protocol: &'static str) -> Self {
        metrics::gauge!("evermail_sessions_active", "protocol" => protocol).increment(1.0);
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        ActiveSession(protocol)
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        metrics::gauge!("evermail_sessions_active", "protocol" => self.0).decrement(1.0);
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_until_shutdown_and_waits_for_sessions() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(accept_sessions(
            listener,
            "echo",
            shutdown.clone(),
            move |c| {
                let token = token.clone();
                async move {
                    let mut stream = c.stream;
                    let mut buf = [0u8; 4];
                    let _ = stream.read_exact(&mut buf).await;
                    // Finish the reply even after shutdown began: the loop must wait.
                    token.cancelled().await;
                    let _ = stream.write_all(&buf).await;
                }
            },
        ));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"ping");
        server.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
