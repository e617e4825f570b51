//! One POP3 connection: the input buffer, the output buffer, the state (AUTHORIZATION
//! or TRANSACTION; UPDATE is what QUIT does on its way out), and the dispatch of each
//! parsed command to its file under `command/`.
//!
//! The loop is: parse what is buffered; if a whole line is there, run the command and
//! send its reply; otherwise wait for more input. Shutdown and the autologout timer
//! are looked at only between commands, so a command always finishes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use evermail_mailbox::{ErrorKind, MailError, Mailstore};
use evermail_pop3_proto::{Code, Command, Parse, Response, parse_command};
use evermail_tls::{SessionStream, TlsAcceptor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::Pop3Options;
use crate::maildrop::Maildrop;

/// Read granularity.
const READ_CHUNK: usize = 16 * 1024;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// What a command returns: `Err` only for a connection that is gone.
pub(crate) type CmdResult = io::Result<Flow>;

/// What waiting for input produced.
pub(crate) enum Input {
    Data,
    Closed,
    Shutdown,
    Timeout,
}

/// RFC 1939 section 3's states; UPDATE is only passed through by QUIT.
pub(crate) enum State {
    /// Not logged in yet; `user` is the name a USER command gave.
    Authorization {
        user: Option<String>,
    },
    Transaction(Maildrop),
}

pub(crate) struct Session {
    pub(crate) stream: SessionStream,
    /// What STLS upgrades with; `None` once used, or where it is not offered.
    pub(crate) starttls: Option<TlsAcceptor>,
    /// Set for an implicit-TLS listener: the handshake comes before the greeting.
    implicit_tls: Option<TlsAcceptor>,
    pub(crate) peer: SocketAddr,
    /// The client's address as a trusted proxy told it (`XCLIENT`), for the lockout.
    pub(crate) forwarded_peer: Option<SocketAddr>,
    pub(crate) mailstore: Mailstore,
    pub(crate) options: Arc<Pop3Options>,
    pub(crate) shutdown: CancellationToken,
    /// Bytes received and not yet consumed by a command.
    pub(crate) input: Vec<u8>,
    /// Responses not yet written.
    pub(crate) output: Vec<u8>,
    pub(crate) state: State,
    pub(crate) auth_failures: u32,
}

impl Session {
    pub(crate) fn new(
        stream: SessionStream,
        peer: SocketAddr,
        mailstore: Mailstore,
        options: Arc<Pop3Options>,
        starttls: Option<TlsAcceptor>,
        implicit_tls: Option<TlsAcceptor>,
        shutdown: CancellationToken,
    ) -> Session {
        Session {
            stream,
            starttls,
            implicit_tls,
            peer,
            forwarded_peer: None,
            mailstore,
            options,
            shutdown,
            input: Vec::with_capacity(1024),
            output: Vec::with_capacity(4096),
            state: State::Authorization { user: None },
            auth_failures: 0,
        }
    }

    /// Runs the session to its end. Errors are the connection's; they are logged at
    /// debug level because clients vanishing is normal. Dropping the session drops its
    /// maildrop, which releases the lock and forgets every deletion mark.
    pub(crate) async fn run(mut self) {
        match self.serve().await {
            Ok(()) => tracing::debug!("session closed"),
            Err(error) => tracing::debug!(%error, "session ended"),
        }
        let _ = self.stream.shutdown().await;
    }

    async fn serve(&mut self) -> io::Result<()> {
        if let Some(acceptor) = self.implicit_tls.take() {
            self.handshake(&acceptor).await?;
        }
        self.reply(Response::ok("evermail POP3 server ready"));
        self.flush().await?;
        loop {
            match parse_command(&self.input) {
                Parse::Complete { consumed, command } => {
                    // A pipelining client never waits for input, so shutdown is also
                    // checked here, between two commands.
                    if self.shutdown.is_cancelled() {
                        self.reply_shutdown();
                        return self.flush().await;
                    }
                    self.consume(consumed);
                    if self.execute(command).await? == Flow::Close {
                        return self.flush().await;
                    }
                    self.flush().await?;
                }
                Parse::Incomplete => {
                    if !self.wait_for_input().await? {
                        return Ok(());
                    }
                }
                Parse::Error { consumed, error } => {
                    self.consume(consumed);
                    metrics::counter!("evermail_pop3_commands_total", "command" => "invalid")
                        .increment(1);
                    self.reply(Response::err(error.message()));
                    if error.must_close() {
                        return self.flush().await;
                    }
                    self.flush().await?;
                }
            }
        }
    }

    /// Waits for input between commands. Returns `false` when the session must end,
    /// after writing the line that says why.
    async fn wait_for_input(&mut self) -> io::Result<bool> {
        match self.read_input().await? {
            Input::Data => Ok(true),
            Input::Closed => Ok(false),
            Input::Shutdown => {
                self.reply_shutdown();
                self.flush().await?;
                Ok(false)
            }
            Input::Timeout => {
                // RFC 1939 section 3: close without entering the UPDATE state.
                tracing::debug!("autologout");
                self.reply(Response::err("autologout; idle for too long"));
                self.flush().await?;
                Ok(false)
            }
        }
    }

    /// Reads more bytes into `input`, unless shutdown or the autologout timer comes
    /// first.
    pub(crate) async fn read_input(&mut self) -> io::Result<Input> {
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        let timeout = self.options.idle_timeout();
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Ok(Input::Shutdown),
            read = self.stream.read_buf(&mut self.input) => match read? {
                0 => Ok(Input::Closed),
                _ => Ok(Input::Data),
            },
            () = tokio::time::sleep(timeout) => Ok(Input::Timeout),
        }
    }

    pub(crate) fn reply_shutdown(&mut self) {
        self.reply(Response::err("server shutting down").with_code(Code::SysTemp));
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.input.drain(..n.min(self.input.len()));
        if self.input.capacity() > 4 * READ_CHUNK && self.input.len() < READ_CHUNK {
            self.input.shrink_to(READ_CHUNK);
        }
    }

    pub(crate) fn reply(&mut self, response: Response) {
        response.encode(&mut self.output);
    }

    /// The `-ERR` for a mail-model error: `[SYS/TEMP]` when retrying may help,
    /// `[SYS/PERM]` when stored data is broken.
    pub(crate) fn reply_mail_error(&mut self, error: &MailError) {
        let code = match error.kind() {
            ErrorKind::Unavailable => Some(Code::SysTemp),
            ErrorKind::Corrupt => Some(Code::SysPerm),
            _ => None,
        };
        if code.is_some() {
            tracing::error!(%error, "storage error");
        }
        let mut response = Response::err(error.to_string());
        response.code = code;
        self.reply(response);
    }

    /// Writes everything buffered. A client that stops reading is given the
    /// autologout time to drain it before the session gives up.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.options.idle_timeout(), write).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
        }
        self.output.clear();
        if self.output.capacity() > 1 << 20 {
            self.output.shrink_to(64 * 1024);
        }
        Ok(())
    }

    async fn execute(&mut self, command: Command) -> CmdResult {
        let name = command.name();
        metrics::counter!("evermail_pop3_commands_total", "command" => name).increment(1);
        tracing::trace!(command = name, "command");
        let in_transaction = matches!(self.state, State::Transaction(_));
        match command {
            Command::Capa => self.capa(),
            Command::Quit => self.quit().await,
            Command::Noop if in_transaction => {
                self.reply(Response::ok(""));
                Ok(Flow::Continue)
            }
            Command::User(name) if !in_transaction => self.user(name),
            Command::Pass(password) if !in_transaction => self.pass(password.0).await,
            Command::Auth {
                mechanism,
                initial_response,
            } if !in_transaction => self.auth(mechanism, initial_response.map(|r| r.0)).await,
            Command::Apop { .. } if !in_transaction => self.apop(),
            Command::Stls if !in_transaction => self.stls().await,
            Command::Xclient { addr, port, secret } if !in_transaction => {
                self.xclient(&addr, port.as_deref(), &secret.0)
            }
            Command::User(_)
            | Command::Pass(_)
            | Command::Auth { .. }
            | Command::Apop { .. }
            | Command::Stls
            | Command::Xclient { .. } => {
                self.reply(Response::err("already logged in"));
                Ok(Flow::Continue)
            }
            other => self.transaction(other).await,
        }
    }
}
