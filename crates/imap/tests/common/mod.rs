//! A real server over a real mail store (SQLite and fs in a temporary directory) and a
//! tiny raw IMAP client for the tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use evermail_imap::{ImapOptions, ListenerTls, serve};
use evermail_mailbox::{Account, Mailstore, MailstoreOptions};
use evermail_tls::rustls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    /// The plaintext listener (offering STARTTLS when started with TLS).
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when started with TLS.
    pub tls_addr: Option<SocketAddr>,
    pub mailstore: Mailstore,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<std::io::Result<()>>,
    pub tls_handle: Option<JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

pub fn test_options() -> ImapOptions {
    ImapOptions {
        auth_failure_delay_ms: 50,
        ..ImapOptions::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(test_options(), MailstoreOptions::default()).await
    }

    pub async fn start_with(options: ImapOptions, store: MailstoreOptions) -> TestServer {
        TestServer::start_inner(options, store, false).await
    }

    /// A server with a self-signed certificate in its data directory: STARTTLS on
    /// `addr`, implicit TLS on `tls_addr`.
    pub async fn start_tls(options: ImapOptions) -> TestServer {
        TestServer::start_inner(options, MailstoreOptions::default(), true).await
    }

    /// [`start_tls`](Self::start_tls) with mail store options.
    pub async fn start_tls_with(options: ImapOptions, store: MailstoreOptions) -> TestServer {
        TestServer::start_inner(options, store, true).await
    }

    async fn start_inner(options: ImapOptions, store: MailstoreOptions, tls: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mailstore = evermail_testkit::local_mailstore(dir.path(), store).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let options = Arc::new(options);
        let config = tls.then(|| {
            evermail_tls::server_config(&Default::default(), dir.path(), "imap.test").unwrap()
        });
        let plain_tls = match &config {
            Some(config) => ListenerTls::StartTls(config.clone()),
            None => ListenerTls::Off,
        };
        let handle = tokio::spawn(serve(
            listener,
            mailstore.clone(),
            options.clone(),
            plain_tls,
            shutdown.clone(),
        ));
        let (mut tls_addr, mut tls_handle) = (None, None);
        if let Some(config) = config {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tls_addr = Some(listener.local_addr().unwrap());
            tls_handle = Some(tokio::spawn(serve(
                listener,
                mailstore.clone(),
                options,
                ListenerTls::Implicit(config),
                shutdown.clone(),
            )));
        }
        TestServer {
            addr,
            tls_addr,
            mailstore,
            shutdown,
            handle,
            tls_handle,
            dir,
        }
    }

    pub async fn account(&self, address: &str, password: &str) -> Account {
        self.mailstore
            .create_account(address, password, None)
            .await
            .unwrap()
    }

    pub async fn deliver(&self, account: &Account, message: &[u8]) {
        let results = self
            .mailstore
            .deliver(Bytes::copy_from_slice(message), &[account.id])
            .await
            .unwrap();
        results.into_iter().next().unwrap().unwrap();
    }

    /// A client logged in as `address` (password `pw`).
    pub async fn login(&self, address: &str) -> Client {
        let mut client = Client::connect(self.addr).await;
        let reply = client.command(&format!("LOGIN {address} pw")).await;
        assert!(client.ok(&reply), "{reply:?}");
        client
    }

    /// A client configuration that trusts only this server's generated certificate.
    pub fn tls_client_config(&self) -> Arc<rustls::ClientConfig> {
        evermail_testkit::trusting_client_config(
            &self.dir.path().join(evermail_tls::SELF_SIGNED_CERT),
        )
    }

    /// A client on the implicit-TLS listener, past the handshake and greeting.
    pub async fn connect_tls(&self) -> Client<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.tls_addr.unwrap()).await.unwrap();
        let connector = TlsConnector::from(self.tls_client_config());
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        let mut client = Client::new(stream);
        client.greeting().await;
        client
    }
}

/// A raw IMAP client: sends tagged commands and collects the response lines up to the
/// tagged one. A line announcing a literal (`{N}`) is returned with the literal's
/// bytes and the rest of the line joined to it, as one "line".
pub struct Client<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    next_tag: u32,
    pub last_tag: String,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Client::new(stream);
        client.greeting().await;
        client
    }

    /// Sends STARTTLS, expects its OK, and shakes hands trusting `config`'s roots.
    /// Anything the server sent after the OK in plaintext fails the test.
    pub async fn starttls(
        mut self,
        config: Arc<rustls::ClientConfig>,
    ) -> Client<TlsStream<TcpStream>> {
        let reply = self.command("STARTTLS").await;
        assert!(self.ok(&reply), "{reply:?}");
        self.upgrade(config).await
    }

    /// The handshake, after the client has read STARTTLS's OK.
    pub async fn upgrade(self, config: Arc<rustls::ClientConfig>) -> Client<TlsStream<TcpStream>> {
        assert!(
            self.buf.is_empty(),
            "plaintext after STARTTLS: {:?}",
            self.buf
        );
        let connector = TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio::time::timeout(TIMEOUT, connector.connect(name, self.stream))
            .await
            .expect("handshake in time")
            .expect("handshake");
        Client {
            stream,
            buf: Vec::new(),
            next_tag: self.next_tag,
            last_tag: self.last_tag,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buf: Vec::new(),
            next_tag: 1,
            last_tag: String::new(),
        }
    }

    async fn greeting(&mut self) -> String {
        let greeting = self.line().await.expect("greeting");
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        greeting
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Sends `tag command\r\n` and returns every line through the tagged reply.
    pub async fn command(&mut self, command: &str) -> Vec<String> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        self.last_tag = tag.clone();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged().await
    }

    /// Reads lines until the reply tagged with `last_tag`.
    pub async fn until_tagged(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.unwrap_or_else(|| {
                panic!("connection closed; got {lines:?}");
            });
            let done = line.starts_with(&format!("{} ", self.last_tag));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The next response line (with literals joined in), or `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        self.raw_line()
            .await
            .map(|l| String::from_utf8_lossy(&l).into_owned())
    }

    pub async fn raw_line(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let lf = loop {
                if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                    break i;
                }
                if !self.fill().await {
                    return None;
                }
            };
            let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
            line.truncate(line.len().saturating_sub(2));
            let literal = literal_len(&line);
            out.extend_from_slice(&line);
            let Some(n) = literal else { return Some(out) };
            out.extend_from_slice(b"\r\n");
            while self.buf.len() < n {
                if !self.fill().await {
                    return None;
                }
            }
            out.extend(self.buf.drain(..n));
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
            .await
            .expect("server answered in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Whether the last line is `tag OK`.
    pub fn ok(&self, lines: &[String]) -> bool {
        lines
            .last()
            .is_some_and(|l| l.starts_with(&format!("{} OK", self.last_tag)))
    }

    /// Whether the connection was closed by the server (reads to EOF, allowing lines).
    pub async fn closed(&mut self) -> bool {
        loop {
            match self.raw_line().await {
                None => return true,
                Some(_) => continue,
            }
        }
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// A two-part message with a text part and an attached message/rfc822.
pub const MULTIPART: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: bob@example.com\r\n\
Subject: parts\r\n\
Message-ID: <m1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
first part\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: carol@example.com\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--b1--\r\n";

/// Whether any line contains `needle`.
pub fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

pub const SIMPLE: &[u8] =
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nhello world\r\n";
