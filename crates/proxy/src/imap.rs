//! The IMAP front of the proxy: greet, offer STARTTLS, read commands until LOGIN or
//! AUTHENTICATE PLAIN names the user, connect to the user's node, hand it the client's
//! address and credentials, then copy bytes both ways until either side closes.

use crate::router::{Router, Target};
use evermail_imap_proto::command::auth::encode_base64;
use evermail_imap_proto::{
    CommandBody, Limits, Parse, SaslResponse, parse_command, parse_sasl_response,
};
use evermail_tls::{ListenerTls, PlaintextAuth, SessionStream, TlsAcceptor};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Longest line the proxy reads from a client before login, or from a node's greeting.
const MAX_LINE: usize = 8 * 1024;

/// Serves IMAP on `listener` until `shutdown`: STARTTLS offered when `tls` says so,
/// or TLS from the first byte. `plaintext_auth` says where a password may arrive
/// unencrypted, as on a node.
pub async fn serve_imap(
    listener: TcpListener,
    router: Router,
    tls: ListenerTls,
    plaintext_auth: PlaintextAuth,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let protocol = if tls.is_implicit() {
        "proxy-imaps"
    } else {
        "proxy-imap"
    };
    let token = shutdown.clone();
    crate::serve_front(listener, protocol, shutdown, move |conn| {
        Session {
            stream: SessionStream::Plain(conn.stream),
            peer: conn.peer,
            router: router.clone(),
            tls: tls.clone(),
            plaintext_auth,
            input: Vec::new(),
            shutdown: token.clone(),
        }
        .run()
    })
    .await
}

struct Session {
    stream: SessionStream,
    peer: SocketAddr,
    router: Router,
    tls: ListenerTls,
    plaintext_auth: PlaintextAuth,
    input: Vec<u8>,
    shutdown: CancellationToken,
}

/// What the client asked to log in as: the user, and the command to send the node.
struct Login {
    user: String,
    /// `AUTHENTICATE PLAIN <base64>` with the client's tag: one line, no literals,
    /// whether the client used LOGIN or AUTHENTICATE.
    line: String,
}

impl Session {
    async fn run(mut self) -> io::Result<()> {
        if let ListenerTls::Implicit(config) = &self.tls {
            let acceptor = TlsAcceptor::from(config.clone());
            self.stream.start_tls(&acceptor).await?;
        }
        let caps = self.capabilities();
        self.write(&format!(
            "* OK [CAPABILITY {caps}] evermail proxy ready\r\n"
        ))
        .await?;
        let login = match self.read_login().await? {
            Some(login) => login,
            None => return Ok(()),
        };
        tracing::Span::current().record("user", login.user.as_str());
        let tag = login.line.split(' ').next().unwrap_or("*").to_string();
        for target in self.router.targets(Some(&login.user), "imap") {
            match self.open_backend(&target, &login).await {
                Ok(backend) => {
                    tracing::info!(user = %login.user, node = %target.node, "routed");
                    metrics::counter!("evermail_proxy_routed_total", "protocol" => "imap", "node" => target.node.clone())
                        .increment(1);
                    return self.splice(backend).await;
                }
                Err(error) => {
                    tracing::warn!(node = %target.node, %error, "node unusable");
                    self.router.mark_failed(&target.node);
                }
            }
        }
        self.write(&format!(
            "{tag} NO [UNAVAILABLE] no mailbox node is available; try again shortly\r\n"
        ))
        .await
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "SASL-IR", "ID"];
        let plain = !self.stream.is_tls();
        if plain && matches!(self.tls, ListenerTls::StartTls(_)) {
            caps.push("STARTTLS");
        }
        if plain && !self.plaintext_auth.allows(self.peer.ip()) {
            caps.push("LOGINDISABLED");
        } else {
            caps.push("AUTH=PLAIN");
        }
        caps.join(" ")
    }

    async fn write(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes()).await?;
        self.stream.flush().await
    }

    /// Reads more client bytes, bounded by the login timeout and shutdown.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        let timeout = Duration::from_secs(self.router.options().login_timeout_secs.max(1));
        let n = tokio::select! {
            () = self.shutdown.cancelled() => {
                self.write("* BYE [UNAVAILABLE] proxy shutting down\r\n").await?;
                return Ok(false);
            }
            read = tokio::time::timeout(timeout, self.stream.read(&mut chunk)) => match read {
                Ok(read) => read?,
                Err(_) => {
                    self.write("* BYE autologout\r\n").await?;
                    return Ok(false);
                }
            },
        };
        self.input.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Answers the commands a client may send before login until it logs in; `None`
    /// when the session ends first.
    async fn read_login(&mut self) -> io::Result<Option<Login>> {
        let limits = Limits {
            max_line: MAX_LINE,
            max_literal: MAX_LINE as u32,
            ..Limits::default()
        };
        let mut continued_at = None;
        loop {
            let (consumed, command) = match parse_command(&self.input, &limits) {
                Parse::Complete { consumed, command } => (consumed, command),
                Parse::Incomplete => {
                    if !self.fill().await? {
                        return Ok(None);
                    }
                    continue;
                }
                Parse::NeedContinuation { data_offset, .. } => {
                    if continued_at != Some(data_offset) {
                        continued_at = Some(data_offset);
                        self.write("+ Ready for literal\r\n").await?;
                    }
                    if !self.fill().await? {
                        return Ok(None);
                    }
                    continue;
                }
                Parse::Error {
                    consumed,
                    tag,
                    error,
                } => {
                    self.input.drain(..consumed.min(self.input.len()));
                    let tag = tag.unwrap_or_else(|| "*".into());
                    self.write(&format!("{tag} BAD {}\r\n", error.message()))
                        .await?;
                    if error.must_close() {
                        return Ok(None);
                    }
                    continue;
                }
            };
            self.input.drain(..consumed);
            continued_at = None;
            let tag = command.tag;
            let plaintext_refused =
                !self.stream.is_tls() && !self.plaintext_auth.allows(self.peer.ip());
            match command.body {
                CommandBody::Capability => {
                    let caps = self.capabilities();
                    self.write(&format!(
                        "* CAPABILITY {caps}\r\n{tag} OK CAPABILITY completed\r\n"
                    ))
                    .await?;
                }
                CommandBody::Noop => self.write(&format!("{tag} OK NOOP completed\r\n")).await?,
                CommandBody::Logout => {
                    self.write(&format!(
                        "* BYE logging out\r\n{tag} OK LOGOUT completed\r\n"
                    ))
                    .await?;
                    return Ok(None);
                }
                CommandBody::Id(_) => {
                    self.write(&format!(
                        "* ID (\"name\" \"evermail-proxy\")\r\n{tag} OK ID completed\r\n"
                    ))
                    .await?;
                }
                CommandBody::StartTls => {
                    let acceptor = match &self.tls {
                        ListenerTls::StartTls(config) if !self.stream.is_tls() => {
                            TlsAcceptor::from(config.clone())
                        }
                        _ => {
                            self.write(&format!("{tag} BAD STARTTLS is not available\r\n"))
                                .await?;
                            continue;
                        }
                    };
                    self.write(&format!("{tag} OK begin TLS now\r\n")).await?;
                    // Nothing sent in plaintext after STARTTLS is a command.
                    self.input.clear();
                    self.stream.start_tls(&acceptor).await?;
                }
                CommandBody::Login(_) | CommandBody::Authenticate(_) if plaintext_refused => {
                    self.write(&format!(
                        "{tag} NO [PRIVACYREQUIRED] use STARTTLS or implicit TLS first\r\n"
                    ))
                    .await?;
                }
                CommandBody::Login(login) => {
                    let response = format!("\0{}\0{}", login.username, login.password);
                    return Ok(Some(Login {
                        user: login.username,
                        line: format!(
                            "{tag} AUTHENTICATE PLAIN {}\r\n",
                            encode_base64(response.as_bytes())
                        ),
                    }));
                }
                CommandBody::Authenticate(auth) if auth.mechanism == "PLAIN" => {
                    let response = match auth.initial_response {
                        Some(response) => response,
                        None => {
                            self.write("+ \r\n").await?;
                            match self.read_sasl().await? {
                                Some(response) => response,
                                None => {
                                    self.write(&format!("{tag} BAD AUTHENTICATE cancelled\r\n"))
                                        .await?;
                                    continue;
                                }
                            }
                        }
                    };
                    // [authzid] NUL authcid NUL passwd: the node judges it; the proxy
                    // only needs whom to route.
                    let mut fields = response.split(|&b| b == 0);
                    let authzid = fields.next().unwrap_or_default();
                    let authcid = fields.next().unwrap_or_default();
                    let user = if authzid.is_empty() { authcid } else { authzid };
                    return Ok(Some(Login {
                        user: String::from_utf8_lossy(user).into_owned(),
                        line: format!("{tag} AUTHENTICATE PLAIN {}\r\n", encode_base64(&response)),
                    }));
                }
                CommandBody::Authenticate(auth) => {
                    self.write(&format!(
                        "{tag} NO [CANNOT] mechanism {} is not supported\r\n",
                        auth.mechanism
                    ))
                    .await?;
                }
                _ => {
                    self.write(&format!("{tag} BAD log in first\r\n")).await?;
                }
            }
        }
    }

    /// The client's line after an AUTHENTICATE continuation; `None` for `*`.
    async fn read_sasl(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match parse_sasl_response(&self.input, MAX_LINE) {
                SaslResponse::Data { consumed, data } => {
                    self.input.drain(..consumed);
                    return Ok(Some(data));
                }
                SaslResponse::Incomplete => {
                    if !self.fill().await? {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                SaslResponse::Cancel { consumed } | SaslResponse::Error { consumed } => {
                    self.input.drain(..consumed.min(self.input.len()));
                    return Ok(None);
                }
            }
        }
    }

    /// Connects to a node, checks its greeting, tells it the client's address, and
    /// sends the login. Any failure before the login is sent lets the next node be
    /// tried; after it, the node's answer is the client's.
    async fn open_backend(&self, target: &Target, login: &Login) -> io::Result<TcpStream> {
        let timeout = self.router.connect_timeout();
        let open = async {
            let stream = TcpStream::connect(&target.address).await?;
            let _ = stream.set_nodelay(true);
            let mut backend = BufReader::new(stream);
            let greeting = read_line(&mut backend).await?;
            if !greeting.starts_with("* OK") {
                return Err(io::Error::other(format!("greeting {greeting:?}")));
            }
            if let Some(secret) = &self.router.cluster().secret {
                let id = format!(
                    "P0 ID (\"x-evermail-proxy\" {} \"x-originating-ip\" \"{}\" \
                     \"x-originating-port\" \"{}\")\r\n",
                    quote(secret),
                    self.peer.ip().to_canonical(),
                    self.peer.port()
                );
                backend.get_mut().write_all(id.as_bytes()).await?;
                loop {
                    let line = read_line(&mut backend).await?;
                    if line.starts_with("P0 OK") {
                        break;
                    }
                    if line.starts_with("P0 ") {
                        return Err(io::Error::other(format!("ID refused: {line:?}")));
                    }
                }
            }
            if !backend.buffer().is_empty() {
                return Err(io::Error::other("node sent more than it was asked"));
            }
            Ok(backend.into_inner())
        };
        let mut stream = tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "node too slow"))??;
        stream.write_all(login.line.as_bytes()).await?;
        // Commands the client pipelined after its login follow it.
        stream.write_all(&self.input).await?;
        Ok(stream)
    }

    /// Copies bytes both ways until either side closes or the proxy shuts down.
    async fn splice(mut self, mut backend: TcpStream) -> io::Result<()> {
        tokio::select! {
            result = tokio::io::copy_bidirectional(&mut self.stream, &mut backend) => {
                result.map(|_| ())
            }
            () = self.shutdown.cancelled() => Ok(()),
        }
    }
}

/// One line (through LF) from a node, bounded in length.
async fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 || !line.ends_with(b"\n") {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// An IMAP quoted string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
