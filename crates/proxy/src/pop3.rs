//! The POP3 front of the proxy: greet, offer STLS, read USER/PASS or AUTH PLAIN,
//! connect to the user's node, replay the login there, then copy bytes both ways.
//!
//! Before the login the proxy sends `XCLIENT ADDR=.. PORT=.. SECRET=..` (evermail's
//! own command, after Postfix's) when a cluster secret is configured, so the node's
//! lockout and logs see the client's address, as IMAP's `ID` does.

use crate::router::{Router, Target};
use evermail_imap_proto::command::auth::{decode_base64, encode_base64};
use evermail_tls::{ListenerTls, PlaintextAuth, SessionStream, TlsAcceptor};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MAX_LINE: usize = 1024;

/// Serves POP3 on `listener` until `shutdown`, like [`crate::serve_imap`].
pub async fn serve_pop3(
    listener: TcpListener,
    router: Router,
    tls: ListenerTls,
    plaintext_auth: PlaintextAuth,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let protocol = if tls.is_implicit() {
        "proxy-pop3s"
    } else {
        "proxy-pop3"
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

/// The user and the commands that log in as them on a node.
struct Login {
    user: String,
    /// Sent in order; the node's answer to each but the last must be `+OK`, the
    /// answer to the last is the client's.
    commands: Vec<String>,
}

impl Session {
    async fn run(mut self) -> io::Result<()> {
        if let ListenerTls::Implicit(config) = &self.tls {
            self.stream
                .start_tls(&TlsAcceptor::from(config.clone()))
                .await?;
        }
        self.write("+OK evermail proxy ready\r\n").await?;
        let Some(login) = self.read_login().await? else {
            return Ok(());
        };
        for target in self.router.targets(Some(&login.user), "pop3") {
            match self.open_backend(&target, &login).await {
                Ok(backend) => {
                    tracing::info!(user = %login.user, node = %target.node, "routed");
                    metrics::counter!("evermail_proxy_routed_total", "protocol" => "pop3", "node" => target.node.clone())
                        .increment(1);
                    tokio::select! {
                        result = splice(&mut self.stream, backend) => return result,
                        () = self.shutdown.cancelled() => return Ok(()),
                    }
                }
                Err(error) => {
                    tracing::warn!(node = %target.node, %error, "node unusable");
                    self.router.mark_failed(&target.node);
                }
            }
        }
        self.write("-ERR [SYS/TEMP] no mailbox node is available; try again shortly\r\n")
            .await
    }

    async fn write(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes()).await?;
        self.stream.flush().await
    }

    /// One line from the client without its end; `None` when the session must end.
    async fn line(&mut self) -> io::Result<Option<String>> {
        let timeout = Duration::from_secs(self.router.options().login_timeout_secs.max(1));
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()));
            }
            if self.input.len() > MAX_LINE {
                self.write("-ERR line too long\r\n").await?;
                return Ok(None);
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::select! {
                () = self.shutdown.cancelled() => {
                    self.write("-ERR [SYS/TEMP] proxy shutting down\r\n").await?;
                    return Ok(None);
                }
                read = tokio::time::timeout(timeout, self.stream.read(&mut chunk)) => match read {
                    Ok(read) => read?,
                    Err(_) => return Ok(None),
                },
            };
            if n == 0 {
                return Ok(None);
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    async fn read_login(&mut self) -> io::Result<Option<Login>> {
        let mut user: Option<String> = None;
        loop {
            let Some(line) = self.line().await? else {
                return Ok(None);
            };
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            let verb = verb.to_ascii_uppercase();
            let plaintext_refused =
                !self.stream.is_tls() && !self.plaintext_auth.allows(self.peer.ip());
            match verb.as_str() {
                "CAPA" => {
                    let mut caps =
                        String::from("+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n");
                    if !plaintext_refused {
                        caps.push_str("USER\r\nSASL PLAIN\r\n");
                    }
                    if !self.stream.is_tls() && matches!(self.tls, ListenerTls::StartTls(_)) {
                        caps.push_str("STLS\r\n");
                    }
                    caps.push_str(".\r\n");
                    self.write(&caps).await?;
                }
                "QUIT" => {
                    self.write("+OK bye\r\n").await?;
                    return Ok(None);
                }
                "STLS" => {
                    let ListenerTls::StartTls(config) = &self.tls else {
                        self.write("-ERR STLS is not available\r\n").await?;
                        continue;
                    };
                    if self.stream.is_tls() {
                        self.write("-ERR already using TLS\r\n").await?;
                        continue;
                    }
                    let acceptor = TlsAcceptor::from(config.clone());
                    self.write("+OK begin TLS\r\n").await?;
                    // Nothing sent in plaintext after STLS is a command.
                    self.input.clear();
                    self.stream.start_tls(&acceptor).await?;
                    user = None;
                }
                "USER" | "PASS" | "AUTH" if plaintext_refused => {
                    self.write("-ERR [AUTH] use STLS or implicit TLS first\r\n")
                        .await?;
                }
                "USER" if !arg.is_empty() => {
                    user = Some(arg.to_string());
                    self.write("+OK\r\n").await?;
                }
                "PASS" => match user.take() {
                    Some(name) => {
                        return Ok(Some(Login {
                            commands: vec![format!("USER {name}\r\n"), format!("PASS {arg}\r\n")],
                            user: name,
                        }));
                    }
                    None => self.write("-ERR USER first\r\n").await?,
                },
                "AUTH" => {
                    let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
                    if !mechanism.eq_ignore_ascii_case("PLAIN") {
                        self.write("-ERR unsupported mechanism\r\n").await?;
                        continue;
                    }
                    let encoded = if initial.is_empty() {
                        self.write("+ \r\n").await?;
                        match self.line().await? {
                            Some(line) => line,
                            None => return Ok(None),
                        }
                    } else {
                        initial.to_string()
                    };
                    let Some(response) = decode_base64(encoded.as_bytes()) else {
                        self.write("-ERR malformed response\r\n").await?;
                        continue;
                    };
                    let mut fields = response.split(|&b| b == 0);
                    let authzid = fields.next().unwrap_or_default();
                    let authcid = fields.next().unwrap_or_default();
                    let name = if authzid.is_empty() { authcid } else { authzid };
                    return Ok(Some(Login {
                        user: String::from_utf8_lossy(name).into_owned(),
                        commands: vec![format!("AUTH PLAIN {}\r\n", encode_base64(&response))],
                    }));
                }
                _ => self.write("-ERR log in first\r\n").await?,
            }
        }
    }

    async fn open_backend(&self, target: &Target, login: &Login) -> io::Result<TcpStream> {
        let open = async {
            let stream = TcpStream::connect(&target.address).await?;
            let _ = stream.set_nodelay(true);
            let mut backend = BufReader::new(stream);
            expect_ok(&mut backend).await?;
            if let Some(secret) = &self.router.cluster().secret {
                let xclient = format!(
                    "XCLIENT ADDR={} PORT={} SECRET={secret}\r\n",
                    self.peer.ip().to_canonical(),
                    self.peer.port()
                );
                backend.get_mut().write_all(xclient.as_bytes()).await?;
                expect_ok(&mut backend).await?;
            }
            let (last, first) = login.commands.split_last().expect("a login command");
            for command in first {
                backend.get_mut().write_all(command.as_bytes()).await?;
                expect_ok(&mut backend).await?;
            }
            if !backend.buffer().is_empty() {
                return Err(io::Error::other("node sent more than it was asked"));
            }
            let mut stream = backend.into_inner();
            stream.write_all(last.as_bytes()).await?;
            Ok(stream)
        };
        let mut stream = tokio::time::timeout(self.router.connect_timeout(), open)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "node too slow"))??;
        stream.write_all(&self.input).await?;
        Ok(stream)
    }
}

async fn expect_ok(backend: &mut BufReader<TcpStream>) -> io::Result<()> {
    let mut line = Vec::new();
    let n = (&mut *backend)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 || !line.starts_with(b"+OK") {
        return Err(io::Error::other(format!(
            "node answered {:?}",
            String::from_utf8_lossy(&line).trim_end()
        )));
    }
    Ok(())
}

async fn splice(client: &mut SessionStream, mut backend: TcpStream) -> io::Result<()> {
    tokio::io::copy_bidirectional(client, &mut backend)
        .await
        .map(|_| ())
}
