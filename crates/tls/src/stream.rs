//! [`SessionStream`]: a connection that is plaintext or TLS, and can become TLS once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The stream a session reads and writes: plaintext, TLS from the first byte
/// (implicit TLS), or plaintext upgraded by STARTTLS.
///
/// An enum rather than a type parameter on the session: STARTTLS changes the stream
/// in the middle of a session, which a type parameter cannot express without moving
/// the whole session state into a new value of another type, and every command file
/// would become generic. Rather than `Box<dyn ...>`: the plaintext stream must be
/// taken back out by value for the handshake. The TLS state is boxed because it is
/// many times the size of a `TcpStream`, and a plaintext session should not carry
/// that size for nothing.
#[derive(Debug)]
pub enum SessionStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A handshake failed or was abandoned part-way; the connection is gone and every
    /// read or write fails.
    Closed,
}

impl SessionStream {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, SessionStream::Tls(_))
    }

    /// Runs the TLS handshake as the server on a plaintext stream.
    ///
    /// The caller must have discarded any plaintext it read past the command that
    /// asked for TLS: those bytes were sent before encryption, and treating them as
    /// commands of the protected session is the STARTTLS injection attack
    /// (CVE-2011-0411). Bytes the client sends after that reach the handshake and are
    /// never seen as commands.
    ///
    /// On error, or if the future is dropped before it finishes, the stream is left
    /// [`SessionStream::Closed`].
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let plain = match std::mem::replace(self, SessionStream::Closed) {
            SessionStream::Plain(plain) => plain,
            other => {
                *self = other;
                return Err(io::Error::other("the connection is not plaintext"));
            }
        };
        let tls = acceptor.accept(plain).await?;
        *self = SessionStream::Tls(Box::new(tls));
        Ok(())
    }

    /// The TLS version and cipher suite, for logs.
    pub fn tls_summary(&self) -> Option<String> {
        let SessionStream::Tls(tls) = self else {
            return None;
        };
        let (_, conn) = tls.get_ref();
        Some(format!(
            "{:?} {:?}",
            conn.protocol_version()?,
            conn.negotiated_cipher_suite()?.suite()
        ))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

impl AsyncRead for SessionStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            SessionStream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SessionStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            SessionStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => Pin::new(s).poll_flush(cx),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            SessionStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            SessionStream::Closed => Poll::Ready(Ok(())),
        }
    }
}
