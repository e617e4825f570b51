//! A real LMTP server for tests: `serve` on a loopback port over a real `Mailstore`
//! (SQLite metadata and an fs blob store in a temporary directory), and a raw TCP
//! client that reads replies the way an MTA does.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use evermail_lmtp::{LmtpOptions, serve};
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_types::AccountId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for any one reply before it fails.
const REPLY_WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub mailstore: Mailstore,
    pub shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

pub async fn start(options: LmtpOptions) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store_options = MailstoreOptions {
        spool_dir: Some(dir.path().join("spool")),
        ..MailstoreOptions::default()
    };
    let mailstore = evermail_testkit::local_mailstore(dir.path(), store_options).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let options = Arc::new(LmtpOptions {
        hostname: Some("lmtp.test".into()),
        ..options
    });
    let task = tokio::spawn(serve(
        listener,
        mailstore.clone(),
        options,
        shutdown.clone(),
    ));
    TestServer {
        addr,
        mailstore,
        shutdown,
        task,
        _dir: dir,
    }
}

impl TestServer {
    pub async fn account(&self, address: &str, quota: Option<u64>) -> AccountId {
        self.mailstore
            .create_account(address, "secret", quota)
            .await
            .unwrap()
            .id
    }

    /// The bodies in an account's INBOX, in UID order.
    pub async fn inbox(&self, account: AccountId) -> Vec<Vec<u8>> {
        let inbox = self
            .mailstore
            .find_mailbox(account, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let mut bodies = Vec::new();
        for message in self.mailstore.messages(account, inbox.id).await.unwrap() {
            bodies.push(self.mailstore.body(message.blob).await.unwrap().to_vec());
        }
        bodies
    }

    /// The directory holding the server's metadata and blob store.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// How many spool files the server has now.
    pub fn spool_files(&self) -> usize {
        std::fs::read_dir(self._dir.path().join("spool")).map_or(0, |d| d.count())
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Cancels the shutdown token and checks that `serve` returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.join().await;
    }

    /// Waits for `serve` to return (after the token was cancelled elsewhere).
    pub async fn join(self) {
        tokio::time::timeout(Duration::from_secs(40), self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// One reply: its code and its lines as sent, without the code and separator.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code of the last line, e.g. `"5.1.1"`.
    pub fn enhanced(&self) -> &str {
        self.lines
            .last()
            .and_then(|l| l.split(' ').next())
            .unwrap_or("")
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        let greeting = client.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        assert_eq!(greeting.lines, ["lmtp.test LMTP evermail ready"]);
        client
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one (possibly multi-line) reply; panics on timeout or a closed connection.
    pub async fn reply(&mut self) -> Reply {
        match tokio::time::timeout(REPLY_WAIT, self.try_reply()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!(
                "connection closed; unread: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(_) => panic!("no reply within {REPLY_WAIT:?}"),
        }
    }

    /// Reads one reply, or `None` if the connection closes first.
    pub async fn try_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            assert!(line.len() >= 4, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let last = line.as_bytes()[3] == b' ';
            lines.push(line[4..].to_owned());
            if last {
                return Some(Reply { code, lines });
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Some(String::from_utf8(line[..end].to_vec()).expect("UTF-8 reply"));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends one command line and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a command and checks the reply's code and enhanced code.
    pub async fn expect(&mut self, line: &str, code: u16, enhanced: &str) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(
            (reply.code, reply.enhanced()),
            (code, enhanced),
            "{line}: {reply:?}"
        );
        reply
    }

    pub async fn lhlo(&mut self) -> Reply {
        let reply = self.cmd("LHLO client.test").await;
        assert_eq!(reply.code, 250, "{reply:?}");
        reply
    }

    /// Reads replies until the server closes the connection; panics if it does not
    /// within the wait.
    pub async fn replies_until_closed(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        let read = tokio::time::timeout(REPLY_WAIT, async {
            while let Some(reply) = self.try_reply().await {
                replies.push(reply);
            }
        })
        .await;
        assert!(read.is_ok(), "server did not close; got {replies:?}");
        replies
    }
}

/// `message` as a client sends it after DATA: dot-stuffed and terminated.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out.extend_from_slice(b".\r\n");
    out
}

pub const MESSAGE: &[u8] =
    b"From: sender@example.org\r\nTo: alice@example.com\r\nSubject: test\r\n\r\nHello.\r\n";
