//! One LMTP connection: reading command lines and message data from a buffer with
//! deadlines, writing replies, and the commands that do not belong to a transaction.
//!
//! Input is read into one buffer and consumed from its front, so whatever a client
//! pipelines after a command or after the end of the data stays there for the next
//! step (RFC 2920). Replies are collected in an output buffer and written just before
//! the session would block on a read, which sends a pipelined group's replies in one
//! write and never leaves a client waiting for a reply we hold back.

use crate::LmtpOptions;
use crate::transaction::Transaction;
use bytes::{Buf, BytesMut};
use evermail_mailbox::Mailstore;
use evermail_smtp_proto::{Capabilities, Command, LineScan, Reply, find_line, parse_command};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

/// The longest command line, CRLF included. RFC 5321 asks for at least 512 octets,
/// but MTAs add DSN parameters (ORCPT with a long xtext address) that go beyond it;
/// 4 KiB takes every real command and still bounds what a line can cost us.
const MAX_LINE: usize = 4096;

/// How much room to make in the input buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// After this many protocol errors in a row the client is not speaking LMTP (or is
/// probing us), and answering it further only costs resources.
const MAX_CONSECUTIVE_ERRORS: u32 = 10;

/// The longest a transaction in progress may delay shutdown, if `timeout_secs` is
/// longer; the binary applies its own overall grace period on top.
const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long the final reply and the closing of the socket may take.
const FINAL_WRITE: Duration = Duration::from_secs(5);

/// How long to keep reading (and discarding) after the final reply of a session the
/// server closes. Closing a socket with unread input makes the kernel send a reset,
/// which can destroy our last reply before the client has read it.
const LINGER: Duration = Duration::from_secs(1);

/// Why a session ends.
#[derive(Debug)]
pub(crate) enum Closing {
    /// The client said QUIT and has its `221`.
    Quit,
    /// The client closed its side.
    PeerClosed,
    /// A command line or the data took too long.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    TooManyErrors,
    /// Reading or writing failed; the connection is unusable.
    Broken(io::Error),
    /// The client stopped reading our replies.
    WriteStalled,
}

/// What a command handler returns: go on, or end the session for this reason.
pub(crate) type Step = Result<(), Closing>;

pub(crate) struct Session<S> {
    stream: S,
    /// Bytes read but not yet consumed; its front is where the client is.
    input: BytesMut,
    /// Replies not yet written.
    output: Vec<u8>,
    pub(crate) mailstore: Mailstore,
    pub(crate) options: Arc<LmtpOptions>,
    hostname: Arc<str>,
    shutdown: CancellationToken,
    /// When a transaction that was in progress at shutdown must be finished.
    drain_deadline: Option<Instant>,
    /// LHLO was accepted.
    pub(crate) greeted: bool,
    /// Set by MAIL, cleared by the end of the data, RSET or LHLO.
    pub(crate) transaction: Option<Transaction>,
    /// Protocol errors since the last command that succeeded.
    errors: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(crate) fn new(
        stream: S,
        mailstore: Mailstore,
        options: Arc<LmtpOptions>,
        hostname: Arc<str>,
        shutdown: CancellationToken,
    ) -> Self {
        Session {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: Vec::new(),
            mailstore,
            options,
            hostname,
            shutdown,
            drain_deadline: None,
            greeted: false,
            transaction: None,
            errors: 0,
        }
    }

    /// Serves the connection until it ends, for whatever reason. Every ending the
    /// server chooses is announced with a `421` first.
    pub(crate) async fn run(mut self) {
        tracing::debug!("connected");
        let greeting = Reply::greeting(&self.hostname, "LMTP evermail");
        self.send(&greeting);
        let closing = loop {
            if let Err(closing) = self.next_command().await {
                break closing;
            }
        };
        match &closing {
            Closing::Quit | Closing::PeerClosed => tracing::debug!(?closing, "session ended"),
            Closing::Broken(error) => tracing::info!(%error, "connection failed"),
            _ => tracing::info!(?closing, "session ended"),
        }
        self.close(closing).await;
    }

    async fn close(&mut self, closing: Closing) {
        // A client that closed has nothing more to send; any other may have pipelined
        // more (even after QUIT), which must be read lest a reset eat our last reply.
        let linger = !matches!(closing, Closing::PeerClosed);
        let last = match closing {
            Closing::Quit | Closing::PeerClosed => None,
            Closing::Timeout => Some(Reply::timeout()),
            Closing::Shutdown => Some(Reply::shutting_down()),
            Closing::TooManyErrors => Some(Reply::new(
                421,
                Some((4, 7, 0)),
                "Too many errors, closing connection",
            )),
            Closing::Broken(_) | Closing::WriteStalled => return,
        };
        if let Some(last) = &last {
            self.send(last);
        }
        let stream = &mut self.stream;
        let output = &self.output;
        let written = timeout(FINAL_WRITE, async {
            stream.write_all(output).await?;
            stream.shutdown().await
        })
        .await;
        if matches!(written, Ok(Ok(()))) && linger {
            let mut scratch = [0u8; 4096];
            let _ = timeout(LINGER, async {
                while let Ok(1..) = stream.read(&mut scratch).await {}
            })
            .await;
        }
    }

    /// Reads, parses and answers one command.
    async fn next_command(&mut self) -> Step {
        let Some(line) = self.read_line().await? else {
            return self.refuse(&Reply::line_too_long());
        };
        let command = match parse_command(&line) {
            Ok(command) => command,
            Err(error) => {
                return match lenient_lhlo(&line) {
                    Some(name) => self.lhlo(&name),
                    None => self.refuse(&Reply::for_error(&error)),
                };
            }
        };
        match command {
            Command::Lhlo { domain } => self.lhlo(&domain.to_string()),
            Command::Helo { .. } | Command::Ehlo { .. } => self.refuse(&Reply::new(
                500,
                Some((5, 5, 1)),
                "This is an LMTP server (RFC 2033): use LHLO",
            )),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(rcpt) => self.rcpt(rcpt).await,
            Command::Data => self.data().await,
            Command::Bdat { size, last } => self.bdat(size, last).await,
            Command::Rset => {
                self.transaction = None;
                self.accept(&Reply::ok())
            }
            Command::Noop => self.accept(&Reply::ok()),
            Command::Quit => {
                self.send(&Reply::bye());
                Err(Closing::Quit)
            }
            Command::Vrfy { .. } => self.accept(&Reply::cannot_verify()),
            Command::Help { .. } => self.accept(&Reply::help()),
        }
    }

    /// LHLO starts the session over, like EHLO in SMTP (RFC 5321 section 4.1.4).
    fn lhlo(&mut self, client: &str) -> Step {
        tracing::debug!(client, "LHLO");
        self.transaction = None;
        self.greeted = true;
        let capabilities = Capabilities::lmtp(self.options.max_message_size);
        self.accept(&Reply::lhlo(&self.hostname, &capabilities))
    }

    /// Queues a reply.
    pub(crate) fn send(&mut self, reply: &Reply) {
        reply.encode(&mut self.output);
    }

    /// Queues the reply to a command that succeeded, which ends a run of errors.
    pub(crate) fn accept(&mut self, reply: &Reply) -> Step {
        self.errors = 0;
        self.send(reply);
        Ok(())
    }

    /// Ends a run of errors without a reply of its own.
    pub(crate) fn succeeded(&mut self) {
        self.errors = 0;
    }

    /// Queues the reply to a protocol error, and gives up on a client that makes too
    /// many in a row. Refusals a correct client can get (an unknown recipient, a full
    /// mailbox) are plain [`send`](Self::send)s and do not count.
    pub(crate) fn refuse(&mut self, reply: &Reply) -> Step {
        self.send(reply);
        self.errors += 1;
        if self.errors >= MAX_CONSECUTIVE_ERRORS {
            return Err(Closing::TooManyErrors);
        }
        Ok(())
    }

    /// The next command line, or `None` if it was longer than [`MAX_LINE`], in which
    /// case it has been read up to its end and dropped.
    ///
    /// The deadline counts from the start of the wait, so a client has `timeout_secs`
    /// for the whole line however slowly it sends it.
    async fn read_line(&mut self) -> Result<Option<BytesMut>, Closing> {
        let deadline = Instant::now() + self.options.timeout();
        loop {
            match find_line(&self.input, MAX_LINE) {
                LineScan::Line(len) => return Ok(Some(self.input.split_to(len))),
                LineScan::Incomplete => self.fill(deadline).await?,
                LineScan::TooLong => break,
            }
        }
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                self.input.advance(end + 1);
                return Ok(None);
            }
            self.input.clear();
            self.fill(deadline).await?;
        }
    }

    /// The input not yet consumed, for the data decoders.
    pub(crate) fn input(&self) -> &[u8] {
        &self.input
    }

    /// Marks `n` bytes at the front of the input as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.input.advance(n);
    }

    /// Writes the pending replies, then reads at least one more byte into the input.
    ///
    /// Ends the session when `deadline` passes, when the client closes, and on shutdown:
    /// at once if no transaction is in progress, otherwise once the shutdown grace has
    /// passed (the transaction may still finish before that).
    pub(crate) async fn fill(&mut self, deadline: Instant) -> Step {
        self.flush().await?;
        loop {
            let draining = self.shutdown.is_cancelled();
            let mut until = deadline;
            let mut ends_by_shutdown = false;
            if draining {
                if self.transaction.is_none() {
                    return Err(Closing::Shutdown);
                }
                let grace = self.options.timeout().min(MAX_SHUTDOWN_GRACE);
                let drain = *self
                    .drain_deadline
                    .get_or_insert_with(|| Instant::now() + grace);
                if drain < deadline {
                    until = drain;
                    ends_by_shutdown = true;
                }
            }
            self.input.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                // Look at the session's state again: it decides what shutdown means.
                () = self.shutdown.cancelled(), if !draining => continue,
                read = timeout_at(until, self.stream.read_buf(&mut self.input)) => read,
            };
            return match read {
                Err(_elapsed) if ends_by_shutdown => Err(Closing::Shutdown),
                Err(_elapsed) => Err(Closing::Timeout),
                Ok(Ok(0)) => Err(Closing::PeerClosed),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(Closing::Broken(error)),
            };
        }
    }

    /// Writes the pending replies. A client that does not read them within the
    /// timeout is given up on, since its replies would pile up in our memory.
    async fn flush(&mut self) -> Step {
        if self.output.is_empty() {
            return Ok(());
        }
        let stream = &mut self.stream;
        let output = &self.output;
        let written = timeout(self.options.timeout(), async {
            stream.write_all(output).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.output.clear();
                Ok(())
            }
            Ok(Err(error)) => Err(Closing::Broken(error)),
            Err(_elapsed) => Err(Closing::WriteStalled),
        }
    }
}

/// The client's name from an LHLO line that [`parse_command`] refused.
///
/// Python's smtplib sends `socket.getfqdn()`, which can be anything a resolver
/// returns (underscores, a bare IPv6 address), and Postfix may send a name that is
/// not a valid domain either. The name means nothing to us, so any one token of
/// visible characters is taken rather than refusing a working client.
fn lenient_lhlo(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let (verb, name) = line.split_once(' ')?;
    let name = name.trim_matches(' ');
    let fits = verb.eq_ignore_ascii_case("LHLO")
        && !name.is_empty()
        && !name.chars().any(|c| c == ' ' || c.is_control());
    fits.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::lenient_lhlo;

    #[test]
    fn lenient_lhlo_table() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"LHLO my_host.local\r\n", Some("my_host.local")),
            (b"lhlo  ::1 \r\n", Some("::1")),
            (
                b"LHLO 1.0.0.127.in-addr.arpa\n",
                Some("1.0.0.127.in-addr.arpa"),
            ),
            (b"LHLO\r\n", None),
            (b"LHLO \r\n", None),
            (b"LHLO a b\r\n", None),
            (b"LHLO a\tb\r\n", None),
            (b"LHLO \xff\r\n", None),
            (b"EHLO my_host\r\n", None),
        ];
        for (line, want) in cases {
            assert_eq!(lenient_lhlo(line).as_deref(), *want, "{line:?}");
        }
    }
}
