//! One IMAP connection: the input buffer and literal flow, the output buffer, the
//! session state, and the dispatch of each parsed command to its file under
//! `command/`.
//!
//! The loop is: parse what is buffered; if a whole command is there, run it, send the
//! untagged updates the RFC allows at that point, then its tagged reply; otherwise read
//! more (sending `+` once for a synchronizing literal). Shutdown and the autologout
//! timer are only looked at while waiting for input, which is exactly "between
//! commands" (and IDLE, which waits in its own loop).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use evermail_imap_proto::response::{Code, Continue, Data, StatusKind, StatusResponse};
use evermail_imap_proto::{Command, CommandBody, Limits, Parse, ParseErrorKind, parse_command};
use evermail_mailbox::{Account, ErrorKind, MailError, Mailstore};
use evermail_tls::{SessionStream, TlsAcceptor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::ImapOptions;
use crate::compress::Deflate;
use crate::literal::{SpooledLiteral, Spooling};
use crate::server::SessionTls;
use crate::state::{Enabled, Selected};

/// Output is sent whenever this much has piled up, so a FETCH of many large messages
/// streams instead of building one huge buffer.
pub(crate) const OUTPUT_FLUSH: usize = 256 * 1024;
/// The longest line of a command (literal data excluded).
const MAX_LINE: usize = 64 * 1024;
/// Before login no command needs a large literal; this keeps an anonymous client from
/// making the server buffer an APPEND-sized one.
const PRE_AUTH_MAX_LITERAL: u32 = 16 * 1024;
/// Read granularity; also what the input buffer shrinks back to after a big literal.
const READ_CHUNK: usize = 64 * 1024;

/// How a command ended, when it did not end with an error.
pub(crate) enum Done {
    /// `tag OK [code] text`, sent after any pending untagged updates.
    Ok(Option<Code>, String),
    /// The command wrote its own final responses (a BYE among them): flush and close.
    Close,
    /// The command wrote and sent its own tagged reply (STARTTLS, which must answer
    /// before the handshake); go on with the next command.
    Replied,
}

impl Done {
    pub(crate) fn ok(text: impl Into<String>) -> Result<Done, CmdError> {
        Ok(Done::Ok(None, text.into()))
    }

    pub(crate) fn ok_code(code: Code, text: impl Into<String>) -> Result<Done, CmdError> {
        Ok(Done::Ok(Some(code), text.into()))
    }
}

/// Why a command failed. Everything but `Io` becomes a tagged NO or BAD; `Io` means the
/// connection is gone and the session ends.
#[derive(Debug)]
pub(crate) enum CmdError {
    Io(io::Error),
    Mail(MailError),
    No(Option<Code>, String),
    Bad(Option<Code>, String),
}

impl CmdError {
    pub(crate) fn no(code: Code, text: impl Into<String>) -> CmdError {
        CmdError::No(Some(code), text.into())
    }

    pub(crate) fn bad(text: impl Into<String>) -> CmdError {
        CmdError::Bad(None, text.into())
    }

    /// The tagged reply for this error, or `None` for a lost connection.
    fn into_response(self, tag: &str) -> Option<StatusResponse> {
        let (kind, code, text) = match self {
            CmdError::Io(_) => return None,
            CmdError::No(code, text) => (StatusKind::No, code, text),
            CmdError::Bad(code, text) => (StatusKind::Bad, code, text),
            CmdError::Mail(e) => {
                let code = match e.kind() {
                    ErrorKind::NotFound => Code::NonExistent,
                    ErrorKind::AlreadyExists => Code::AlreadyExists,
                    ErrorKind::OverQuota => Code::OverQuota,
                    ErrorKind::TooLarge => Code::TooBig,
                    ErrorKind::Invalid => Code::Cannot,
                    ErrorKind::Unavailable => Code::Unavailable,
                    ErrorKind::Corrupt => Code::ServerBug,
                };
                if matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Unavailable) {
                    tracing::error!(error = %e, "storage error");
                }
                (StatusKind::No, Some(code), e.to_string())
            }
        };
        let mut response = StatusResponse::new(Some(tag), kind, text);
        response.code = code;
        Some(response)
    }
}

impl From<io::Error> for CmdError {
    fn from(e: io::Error) -> CmdError {
        CmdError::Io(e)
    }
}

impl From<MailError> for CmdError {
    fn from(e: MailError) -> CmdError {
        CmdError::Mail(e)
    }
}

pub(crate) type CmdResult = Result<Done, CmdError>;

/// What waiting for input produced.
pub(crate) enum Input {
    /// More bytes are in the buffer.
    Data,
    /// The client closed the connection.
    Closed,
    /// The server is shutting down.
    Shutdown,
    /// The autologout timer ran out.
    Timeout,
}

/// What woke an idling session.
pub(crate) enum IdleEvent {
    Input(Input),
    /// A change to the selected mailbox was announced.
    Changed,
    /// Time to look for changes made through other nodes.
    Poll,
}

pub(crate) struct Session {
    pub(crate) stream: SessionStream,
    /// What STARTTLS upgrades with; `None` once used, or where it is not offered.
    pub(crate) starttls: Option<TlsAcceptor>,
    /// Set for an implicit-TLS listener: the handshake comes before the greeting.
    implicit_tls: Option<TlsAcceptor>,
    pub(crate) peer: SocketAddr,
    /// The client's address as a trusted proxy told it (`ID`), for the lockout.
    pub(crate) forwarded_peer: Option<SocketAddr>,
    pub(crate) mailstore: Mailstore,
    pub(crate) options: Arc<ImapOptions>,
    pub(crate) shutdown: CancellationToken,
    /// Bytes received and not yet consumed by a command.
    pub(crate) input: Vec<u8>,
    /// Responses not yet written.
    pub(crate) output: Vec<u8>,
    /// `None` until LOGIN or AUTHENTICATE succeeds.
    pub(crate) account: Option<Account>,
    /// The selected mailbox; only ever `Some` when `account` is.
    pub(crate) selected: Option<Selected>,
    pub(crate) auth_failures: u32,
    /// ENABLE IMAP4rev2 was accepted: mailbox names are UTF-8 rather than modified
    /// UTF-7, and SEARCH answers with ESEARCH.
    pub(crate) rev2: bool,
    /// CONDSTORE and QRESYNC, once a command turned them on (RFC 7162 section 3.1).
    pub(crate) enabled: Enabled,
    /// The `data_offset` of the literal we last sent `+` for, so we send it only once.
    continued_at: Option<usize>,
    /// COMPRESS=DEFLATE, once active: everything read is inflated into `input` and
    /// everything flushed is deflated.
    pub(crate) deflate: Option<Box<Deflate>>,
    /// The large APPEND literals of the command being read, taken into spool files
    /// (`literal.rs`), and their total size.
    pub(crate) spooled: Vec<SpooledLiteral>,
    pub(crate) spooled_bytes: u64,
}

impl Session {
    pub(crate) fn new(
        stream: SessionStream,
        peer: SocketAddr,
        mailstore: Mailstore,
        options: Arc<ImapOptions>,
        tls: SessionTls,
        shutdown: CancellationToken,
    ) -> Session {
        let (starttls, implicit_tls) = match tls {
            SessionTls::Plain { starttls } => (starttls, None),
            SessionTls::Implicit(acceptor) => (None, Some(acceptor)),
        };
        Session {
            stream,
            starttls,
            implicit_tls,
            peer,
            forwarded_peer: None,
            mailstore,
            options,
            shutdown,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(4096),
            account: None,
            selected: None,
            auth_failures: 0,
            rev2: false,
            enabled: Enabled::default(),
            continued_at: None,
            deflate: None,
            spooled: Vec::new(),
            spooled_bytes: 0,
        }
    }

    /// Runs the session to its end. Errors are the connection's; they are logged at
    /// debug level because clients vanishing is normal.
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
        let capabilities = self.capabilities();
        self.write_status(
            StatusResponse::new(None, StatusKind::Ok, "evermail ready")
                .with_code(Code::Capability(capabilities)),
        );
        self.flush().await?;
        loop {
            let parsed = parse_command(&self.input, &self.limits());
            match parsed {
                Parse::Complete { consumed, command } => {
                    // A client pipelining commands never waits for input, so shutdown
                    // is also checked here, between two commands.
                    if self.shutdown.is_cancelled() {
                        self.bye_shutdown();
                        return self.flush().await;
                    }
                    self.consume(consumed);
                    let flow = self.execute(command).await?;
                    self.clear_spooled();
                    if flow == Flow::Close {
                        return self.flush().await;
                    }
                    self.flush().await?;
                }
                Parse::NeedContinuation { data_offset, .. } => {
                    if self.continued_at != Some(data_offset) {
                        self.continued_at = Some(data_offset);
                        Continue::Text("Ready for literal".into()).encode(&mut self.output);
                        self.flush().await?;
                    }
                    match self.spool_literal().await? {
                        Spooling::Done => continue,
                        Spooling::End => return Ok(()),
                        Spooling::No => {}
                    }
                    if !self.wait_for_input().await? {
                        return Ok(());
                    }
                }
                Parse::Incomplete => {
                    match self.spool_literal().await? {
                        Spooling::Done => continue,
                        Spooling::End => return Ok(()),
                        Spooling::No => {}
                    }
                    if !self.wait_for_input().await? {
                        return Ok(());
                    }
                }
                Parse::Error {
                    consumed,
                    tag,
                    error,
                } => {
                    self.consume(consumed);
                    self.clear_spooled();
                    metrics::counter!("evermail_imap_commands_total", "command" => "invalid")
                        .increment(1);
                    let (kind, code) = match (error.kind(), &tag) {
                        // A well-formed APPEND over APPENDLIMIT is refused, not a client
                        // syntax error (RFC 7889 section 4). Before login the only
                        // closing TOOBIG is a non-synchronizing literal over LITERAL-'s
                        // 4096 bytes, which is the client's error (RFC 7888 section 4).
                        (ParseErrorKind::TooBig, Some(_))
                            if self.account.is_some() || !error.must_close() =>
                        {
                            (StatusKind::No, Some(Code::TooBig))
                        }
                        (ParseErrorKind::TooBig | ParseErrorKind::LineTooLong, _) => {
                            (StatusKind::Bad, Some(Code::TooBig))
                        }
                        _ => (StatusKind::Bad, None),
                    };
                    let text = error.message().trim_end_matches(" [TOOBIG]").to_string();
                    let mut response = StatusResponse::new(tag.as_deref(), kind, text);
                    response.code = code;
                    self.write_status(response);
                    if error.must_close() {
                        self.write_status(StatusResponse::bye(
                            "cannot find the next command; closing",
                        ));
                        return self.flush().await;
                    }
                    self.flush().await?;
                }
            }
        }
    }

    /// Waits for input between commands. Returns `false` when the session must end, after
    /// writing the BYE that explains why.
    pub(crate) async fn wait_for_input(&mut self) -> io::Result<bool> {
        let timeout = self.autologout();
        match self.read_input(timeout).await? {
            Input::Data => Ok(true),
            Input::Closed => Ok(false),
            Input::Shutdown => {
                self.bye_shutdown();
                self.flush().await?;
                Ok(false)
            }
            Input::Timeout => {
                self.write_status(StatusResponse::bye("autologout; idle for too long"));
                self.flush().await?;
                Ok(false)
            }
        }
    }

    /// Reads more bytes into `input`, unless shutdown or the timer comes first.
    pub(crate) async fn read_input(&mut self, timeout: Duration) -> io::Result<Input> {
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        let target = match &mut self.deflate {
            Some(deflate) => &mut deflate.raw,
            None => &mut self.input,
        };
        let input = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Input::Shutdown,
            read = self.stream.read_buf(target) => match read? {
                0 => Input::Closed,
                _ => Input::Data,
            },
            () = tokio::time::sleep(timeout) => Input::Timeout,
        };
        self.inflate_input()?;
        Ok(input)
    }

    /// Under COMPRESS, moves what was read into `input`, inflated.
    fn inflate_input(&mut self) -> io::Result<()> {
        match &mut self.deflate {
            Some(deflate) => deflate.inflate_into(&mut self.input),
            None => Ok(()),
        }
    }

    /// Waits, during IDLE, for input, a change to the selected mailbox, the poll timer,
    /// shutdown or the autologout `deadline`.
    pub(crate) async fn idle_event(
        &mut self,
        deadline: tokio::time::Instant,
        poll: &mut tokio::time::Interval,
    ) -> io::Result<IdleEvent> {
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        let selected = &mut self.selected;
        let changed = async move {
            match selected.as_mut() {
                Some(s) => s.changed().await,
                None => std::future::pending().await,
            }
        };
        let target = match &mut self.deflate {
            Some(deflate) => &mut deflate.raw,
            None => &mut self.input,
        };
        let event = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => IdleEvent::Input(Input::Shutdown),
            read = self.stream.read_buf(target) => match read? {
                0 => IdleEvent::Input(Input::Closed),
                _ => IdleEvent::Input(Input::Data),
            },
            () = changed => IdleEvent::Changed,
            _ = poll.tick() => IdleEvent::Poll,
            () = tokio::time::sleep_until(deadline) => IdleEvent::Input(Input::Timeout),
        };
        self.inflate_input()?;
        Ok(event)
    }

    pub(crate) fn bye_shutdown(&mut self) {
        self.write_status(StatusResponse::bye("server shutting down").with_code(Code::Unavailable));
    }

    /// Drops `n` consumed bytes, and memory a big literal left behind.
    pub(crate) fn consume(&mut self, n: usize) {
        self.input.drain(..n.min(self.input.len()));
        self.continued_at = None;
        if self.input.capacity() > 4 * READ_CHUNK && self.input.len() < READ_CHUNK {
            self.input.shrink_to(READ_CHUNK);
        }
    }

    fn autologout(&self) -> Duration {
        if self.account.is_some() {
            self.options.idle_timeout()
        } else {
            self.options.pre_auth_timeout()
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        let max_literal = if self.account.is_some() {
            u32::try_from(self.options.max_message_size).unwrap_or(u32::MAX)
        } else {
            PRE_AUTH_MAX_LITERAL
        };
        Limits {
            max_line: MAX_LINE,
            max_literal,
            // Before login only LITERAL- is offered (see `capabilities`), so an
            // anonymous client cannot push a large literal without asking first.
            literal_minus: self.account.is_none(),
            // One message plus the command around it. A MULTIAPPEND's messages share
            // this bound (more gets NO [TOOBIG]), so no session buffers more than one
            // APPEND's worth of input.
            // Literals already taken into spool files (`literal.rs`) count too.
            max_command: (max_literal as usize + MAX_LINE * 4)
                .saturating_sub(usize::try_from(self.spooled_bytes).unwrap_or(usize::MAX)),
        }
    }

    pub(crate) fn write_status(&mut self, response: StatusResponse) {
        response.encode(&mut self.output);
    }

    pub(crate) fn write_data(&mut self, data: Data) {
        data.encode(&mut self.output);
    }

    /// Writes everything buffered. A client that stops reading is given the autologout
    /// time to drain it before the session gives up.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let timeout = self.autologout();
        let packed;
        let bytes = match &mut self.deflate {
            Some(deflate) => {
                packed = deflate.deflate(&self.output)?;
                &packed
            }
            None => &self.output,
        };
        match tokio::time::timeout(timeout, self.stream.write_all(bytes)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
        }
        self.output.clear();
        if self.output.capacity() > 4 * OUTPUT_FLUSH {
            self.output.shrink_to(OUTPUT_FLUSH);
        }
        Ok(())
    }

    /// Flushes when enough output has piled up; commands producing many responses call
    /// this between them.
    pub(crate) async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.output.len() >= OUTPUT_FLUSH {
            self.flush().await?;
        }
        Ok(())
    }

    /// The account of an authenticated session, or the BAD a command needs before login.
    pub(crate) fn account(&self) -> Result<Account, CmdError> {
        self.account
            .clone()
            .ok_or_else(|| CmdError::bad("log in first"))
    }

    pub(crate) fn selected_mut(&mut self) -> Result<&mut Selected, CmdError> {
        self.selected
            .as_mut()
            .ok_or_else(|| CmdError::bad("no mailbox selected"))
    }

    async fn execute(&mut self, command: Command) -> io::Result<Flow> {
        let Command { tag, body } = command;
        let name = body.name();
        metrics::counter!("evermail_imap_commands_total", "command" => name).increment(1);
        tracing::trace!(%tag, command = name, "command");
        // RFC 9051 section 7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH (by
        // sequence number), since the client could not tell which messages its numbers
        // meant; the UID forms are fine.
        let expunge_allowed = !matches!(
            &body,
            CommandBody::Fetch(f) if !f.uid
        ) && !matches!(&body, CommandBody::Store(s) if !s.uid)
            && !matches!(&body, CommandBody::Search(s) if !s.uid)
            && !matches!(&body, CommandBody::Sort(s) if !s.uid)
            && !matches!(&body, CommandBody::Thread(t) if !t.uid);
        let force_sync = matches!(&body, CommandBody::Noop | CommandBody::Check);
        let result = self.dispatch(&tag, body).await;
        let tagged = match result {
            Ok(Done::Close) => return Ok(Flow::Close),
            Ok(Done::Replied) => return Ok(Flow::Continue),
            Ok(Done::Ok(code, text)) => {
                let mut response = StatusResponse::ok(&tag, text);
                response.code = code;
                response
            }
            Err(CmdError::Io(e)) => return Err(e),
            Err(other) => match other.into_response(&tag) {
                Some(response) => response,
                None => return Ok(Flow::Close),
            },
        };
        self.sync_selected(expunge_allowed, force_sync).await;
        self.write_status(tagged);
        Ok(Flow::Continue)
    }

    /// Sends the untagged updates for changes other sessions made to the selected
    /// mailbox. A storage error here is logged and left for the next command: the
    /// command's own reply matters more.
    pub(crate) async fn sync_selected(&mut self, expunge_allowed: bool, force: bool) {
        let (Some(account), Some(selected)) = (&self.account, &mut self.selected) else {
            return;
        };
        if let Err(error) = selected
            .sync(
                &self.mailstore,
                account.id,
                self.enabled,
                expunge_allowed,
                force,
                &mut self.output,
            )
            .await
        {
            tracing::warn!(%error, mailbox = %selected.name, "could not read mailbox changes");
        }
    }

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> CmdResult {
        let name = body.name();
        match body {
            CommandBody::Capability => self.capability(),
            CommandBody::Noop | CommandBody::Check => Done::ok(format!("{name} completed")),
            CommandBody::Logout => self.logout(tag),
            CommandBody::Id(id) => self.id(id.params),
            CommandBody::StartTls if self.account.is_none() => self.starttls(tag).await,
            CommandBody::Login(login) if self.account.is_none() => self.login(tag, login).await,
            CommandBody::Authenticate(auth) if self.account.is_none() => {
                self.authenticate(tag, auth).await
            }
            CommandBody::StartTls | CommandBody::Login(_) | CommandBody::Authenticate(_) => {
                Err(CmdError::bad("already authenticated"))
            }
            CommandBody::Enable(enable) => self.enable(enable),
            CommandBody::Select(select) => self.select(select).await,
            CommandBody::Create(create) => self.create(create).await,
            CommandBody::Delete(name) => self.delete(name).await,
            CommandBody::Rename(rename) => self.rename(rename).await,
            CommandBody::GetQuotaRoot(name) => self.getquotaroot(name).await,
            CommandBody::GetQuota(root) => self.getquota(root).await,
            CommandBody::SetQuota(set) => self.setquota(set),
            CommandBody::Subscribe(name) => self.subscribe(name, true).await,
            CommandBody::Unsubscribe(name) => self.subscribe(name, false).await,
            CommandBody::List(list) => self.list(list).await,
            CommandBody::Lsub(lsub) => self.lsub(lsub).await,
            CommandBody::Namespace => self.namespace(),
            CommandBody::Status(status) => self.status(status).await,
            CommandBody::Append(append) => self.append(append).await,
            CommandBody::Idle => self.idle(tag).await,
            CommandBody::Close => self.close().await,
            CommandBody::Unselect => self.unselect(),
            CommandBody::Compress(mechanism) => self.compress(tag, &mechanism).await,
            CommandBody::Expunge { uids } => self.expunge(uids).await,
            CommandBody::Fetch(fetch) => self.fetch(fetch).await,
            CommandBody::Store(store) => self.store(store).await,
            CommandBody::Search(search) => self.search(tag, search).await,
            CommandBody::Sort(sort) => self.sort(sort).await,
            CommandBody::Thread(thread) => self.thread(thread).await,
            CommandBody::Copy(copy) => self.copy(copy, false).await,
            CommandBody::Move(copy) => self.copy(copy, true).await,
        }
    }
}

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}
