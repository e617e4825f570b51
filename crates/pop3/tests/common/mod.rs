//! A real POP3 server over a real mail store (SQLite and fs in a temporary directory)
//! and a tiny raw POP3 client for the tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use evermail_mailbox::{Account, Mailstore, MailstoreOptions, MessageRecord};
use evermail_pop3::{ListenerTls, Pop3Options, serve};
use evermail_tls::rustls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    /// The plaintext listener (offering STLS when started with TLS).
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when started with TLS.
    pub tls_addr: Option<SocketAddr>,
    pub mailstore: Mailstore,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<std::io::Result<()>>,
    pub tls_handle: Option<JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

pub fn test_options() -> Pop3Options {
    Pop3Options {
        auth_failure_delay_ms: 50,
        ..Pop3Options::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_inner(test_options(), MailstoreOptions::default(), false).await
    }

    pub async fn start_with(options: Pop3Options) -> TestServer {
        TestServer::start_inner(options, MailstoreOptions::default(), false).await
    }

    pub async fn start_with_store(options: Pop3Options, store: MailstoreOptions) -> TestServer {
        TestServer::start_inner(options, store, false).await
    }

    /// A server with a self-signed certificate in its data directory: STLS on `addr`,
    /// implicit TLS on `tls_addr`.
    pub async fn start_tls(options: Pop3Options) -> TestServer {
        TestServer::start_inner(options, MailstoreOptions::default(), true).await
    }

    async fn start_inner(options: Pop3Options, store: MailstoreOptions, tls: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mailstore = evermail_testkit::local_mailstore(dir.path(), store).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let options = Arc::new(options);
        let config = tls.then(|| {
            evermail_tls::server_config(&Default::default(), dir.path(), "pop3.test").unwrap()
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

    /// The INBOX as the mail model has it now.
    pub async fn inbox(&self, account: &Account) -> Vec<MessageRecord> {
        let inbox = self
            .mailstore
            .find_mailbox(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        self.mailstore.messages(account.id, inbox.id).await.unwrap()
    }

    /// A client logged in with USER/PASS as `address` (password `pw`).
    pub async fn login(&self, address: &str) -> Client {
        let mut client = Client::connect(self.addr).await;
        client.login(address, "pw").await;
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

/// A raw POP3 client: sends a line, reads the status line, and for multi-line replies
/// the raw bytes up to and including the terminating `.` line (still byte-stuffed).
pub struct Client<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Client::new(stream);
        client.greeting().await;
        client
    }

    /// The handshake, after the client has read STLS's `+OK`.
    pub async fn upgrade(self, config: Arc<rustls::ClientConfig>) -> Client<TlsStream<TcpStream>> {
        assert!(self.buf.is_empty(), "plaintext after STLS: {:?}", self.buf);
        let connector = TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio::time::timeout(TIMEOUT, connector.connect(name, self.stream))
            .await
            .expect("handshake in time")
            .expect("handshake");
        Client {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn greeting(&mut self) -> String {
        let greeting = self.line().await.expect("greeting");
        assert!(greeting.starts_with("+OK "), "{greeting}");
        greeting
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Sends `line\r\n` and returns the status line.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line()
            .await
            .unwrap_or_else(|| panic!("connection closed after {line:?}"))
    }

    /// Sends `line\r\n`, expects `+OK` and returns the multi-line body's raw bytes,
    /// terminator included.
    pub async fn multi(&mut self, line: &str) -> (String, Vec<u8>) {
        let status = self.cmd(line).await;
        assert!(status.starts_with("+OK"), "{line}: {status}");
        (status, self.until_terminator().await)
    }

    pub async fn until_terminator(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line = self.raw_line().await.expect("terminator");
            out.extend_from_slice(&line);
            if line == b".\r\n" {
                return out;
            }
        }
    }

    pub async fn login(&mut self, user: &str, password: &str) {
        let reply = self.cmd(&format!("USER {user}")).await;
        assert!(reply.starts_with("+OK"), "{reply}");
        let reply = self.cmd(&format!("PASS {password}")).await;
        assert!(reply.starts_with("+OK"), "{reply}");
    }

    /// The next line without its CRLF, or `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        let line = self.raw_line().await?;
        let text = String::from_utf8_lossy(&line);
        Some(text.trim_end_matches("\r\n").to_string())
    }

    /// The next line with its line end.
    pub async fn raw_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=i).collect());
            }
            if !self.fill().await {
                return None;
            }
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

    /// Reads to the end of the stream; the lines seen on the way.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.line().await {
            lines.push(line);
        }
        lines
    }
}

pub const SIMPLE: &[u8] =
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nhello world\r\n";

/// A message whose body has lines that start with a dot, including one that is only a
/// dot: what byte-stuffing is for.
pub const DOTTED: &[u8] =
    b"From: a@example.com\r\nSubject: dots\r\n\r\nfirst\r\n.\r\n..two\r\n.three\r\nlast\r\n";

/// What a client receives for `body` after the status line: stuffed and terminated.
pub fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}
