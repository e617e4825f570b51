//! The LMTP front of the proxy. It answers LHLO itself and passes each transaction to
//! a healthy node command by command, remembering it (MAIL, the accepted RCPTs, the
//! message). When the node fails before its last answer, the transaction is replayed
//! on the next node and the client gets that node's answers: a failure costs a retry
//! inside the proxy, not a temporary error to the MTA.
//!
//! Every transaction goes to nodes with `XDELIVERY=<random name>` added to its MAIL:
//! a node stores each recipient's message under an id derived from that name, so a
//! replay of a transaction the dead node had already committed stores nothing twice
//! (`Mailstore::deliver_once`).

use crate::router::Router;
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MAX_LINE: u64 = 4096;
/// How many nodes one command is tried on before the client gets a 451.
const MAX_ATTEMPTS: usize = 3;

pub async fn serve_lmtp(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let token = shutdown.clone();
    crate::serve_front(listener, "proxy-lmtp", shutdown, move |conn| {
        Session {
            client: BufReader::new(conn.stream),
            router: router.clone(),
            node: None,
            mail: None,
            rcpts: Vec::new(),
            shutdown: token.clone(),
        }
        .run()
    })
    .await
}

/// A connection to a node, greeted and LHLO'd, with the MAIL and RCPTs of the
/// current transaction already sent.
struct Node {
    name: String,
    stream: BufReader<TcpStream>,
}

struct Session {
    client: BufReader<TcpStream>,
    router: Router,
    node: Option<Node>,
    /// The MAIL command of the transaction in progress.
    mail: Option<String>,
    /// RCPT commands the node accepted, in order.
    rcpts: Vec<String>,
    shutdown: CancellationToken,
}

/// A reply: its lines joined with CRLF, ending in CRLF.
type Reply = String;

impl Session {
    async fn run(mut self) -> io::Result<()> {
        self.send("220 evermail proxy LMTP ready\r\n").await?;
        loop {
            let line = tokio::select! {
                () = self.shutdown.cancelled() => {
                    return self.send("421 4.3.2 proxy shutting down\r\n").await;
                }
                line = read_line(&mut self.client) => line?,
            };
            let Some(line) = line else { return Ok(()) };
            let verb = line
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "LHLO" => {
                    self.send(
                        "250-evermail proxy\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n\
                         250 8BITMIME\r\n",
                    )
                    .await?
                }
                "NOOP" => self.send("250 2.0.0 OK\r\n").await?,
                "QUIT" => {
                    self.send("221 2.0.0 bye\r\n").await?;
                    return Ok(());
                }
                "RSET" => {
                    self.mail = None;
                    self.rcpts.clear();
                    if let Some(mut node) = self.node.take()
                        && command(&mut node, "RSET\r\n").await.is_ok()
                    {
                        self.node = Some(node);
                    }
                    self.send("250 2.0.0 OK\r\n").await?;
                }
                "MAIL" => {
                    if self.mail.is_some() {
                        self.send("503 5.5.1 nested MAIL\r\n").await?;
                        continue;
                    }
                    // The name every node hears this transaction by, replays included.
                    let name: [u8; 16] = rand::random();
                    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
                    let line = format!("{line} XDELIVERY={hex}");
                    let reply = self.on_node(&line).await;
                    if reply.starts_with('2') {
                        self.mail = Some(line);
                    }
                    self.send(&reply).await?;
                }
                "RCPT" => {
                    if self.mail.is_none() {
                        self.send("503 5.5.1 MAIL first\r\n").await?;
                        continue;
                    }
                    let reply = self.on_node(&line).await;
                    if reply.starts_with('2') {
                        self.rcpts.push(line);
                    }
                    self.send(&reply).await?;
                }
                "DATA" => self.data().await?,
                _ => {
                    self.send("502 5.5.1 command not supported by the proxy\r\n")
                        .await?
                }
            }
        }
    }

    async fn send(&mut self, text: &str) -> io::Result<()> {
        self.client.get_mut().write_all(text.as_bytes()).await
    }

    /// Sends one command to the node (opening or replacing it as needed) and returns
    /// its reply; after `MAX_ATTEMPTS` failed nodes, a 451.
    async fn on_node(&mut self, line: &str) -> Reply {
        for _ in 0..MAX_ATTEMPTS {
            let Some(mut node) = self.usable_node().await else {
                break;
            };
            match command(&mut node, &format!("{line}\r\n")).await {
                Ok(reply) => {
                    self.node = Some(node);
                    return reply;
                }
                Err(error) => {
                    tracing::warn!(node = %node.name, %error, "node failed mid-transaction");
                    self.router.mark_failed(&node.name);
                }
            }
        }
        "451 4.4.1 no mailbox node is available; try again later\r\n".into()
    }

    /// The current node, or a new one with the transaction so far replayed on it.
    async fn usable_node(&mut self) -> Option<Node> {
        if let Some(node) = self.node.take() {
            return Some(node);
        }
        for target in self.router.targets(None, "lmtp") {
            match self.open(&target.address, &target.node).await {
                Ok(node) => {
                    tracing::info!(node = %target.node, "lmtp node chosen");
                    return Some(node);
                }
                Err(error) => {
                    tracing::warn!(node = %target.node, %error, "node unusable");
                    self.router.mark_failed(&target.node);
                }
            }
        }
        None
    }

    async fn open(&mut self, address: &str, name: &str) -> io::Result<Node> {
        let timeout = self.router.connect_timeout();
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        let mut node = Node {
            name: name.to_string(),
            stream: BufReader::new(stream),
        };
        expect(&read_reply(&mut node.stream).await?, '2')?;
        expect(&command(&mut node, "LHLO evermail-proxy\r\n").await?, '2')?;
        // Replay the transaction so far. A recipient the first node took but this one
        // refuses is dropped from the transaction; its DATA reply says why.
        if let Some(mail) = &self.mail {
            expect(&command(&mut node, &format!("{mail}\r\n")).await?, '2')?;
            let mut kept = Vec::new();
            for rcpt in std::mem::take(&mut self.rcpts) {
                if command(&mut node, &format!("{rcpt}\r\n"))
                    .await?
                    .starts_with('2')
                {
                    kept.push(rcpt);
                }
            }
            self.rcpts = kept;
        }
        Ok(node)
    }

    /// DATA: take the whole message from the client first, then give it to a node,
    /// replaying the transaction on the next node until one answers for every
    /// recipient.
    async fn data(&mut self) -> io::Result<()> {
        if self.rcpts.is_empty() {
            return self.send("503 5.5.1 no valid recipients\r\n").await;
        }
        self.send("354 go ahead\r\n").await?;
        let limit = self.router.options().max_message_size;
        let mut body = Vec::new();
        let mut too_big = false;
        loop {
            let mut line = Vec::new();
            let n = (&mut self.client)
                .take(MAX_LINE * 256)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            if body.len() as u64 + line.len() as u64 > limit {
                too_big = true;
            } else {
                body.extend_from_slice(&line);
            }
        }
        let replies = if too_big {
            vec!["552 5.3.4 message too big\r\n".to_string(); self.rcpts.len()]
        } else {
            self.deliver(&body).await
        };
        self.mail = None;
        self.rcpts.clear();
        for reply in replies {
            self.send(&reply).await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, body: &[u8]) -> Vec<Reply> {
        let wanted = self.rcpts.len();
        for _ in 0..MAX_ATTEMPTS {
            let before = self.rcpts.clone();
            let Some(mut node) = self.usable_node().await else {
                break;
            };
            match send_data(&mut node, body, self.rcpts.len()).await {
                Ok(replies) => {
                    let _ = command(&mut node, "RSET\r\n").await;
                    self.node = Some(node);
                    // One reply per recipient the client was told was accepted, in its
                    // order; one a replay lost (kept is a subsequence of before) gets a
                    // temporary failure, so the MTA retries it.
                    let mut replies = replies.into_iter();
                    let mut kept = self.rcpts.iter().peekable();
                    return before
                        .iter()
                        .map(|rcpt| {
                            if kept.peek() == Some(&rcpt) {
                                kept.next();
                                replies.next().unwrap_or_default()
                            } else {
                                "451 4.4.1 recipient refused on retry\r\n".to_string()
                            }
                        })
                        .collect();
                }
                Err(error) => {
                    tracing::warn!(node = %node.name, %error, "node failed during DATA; replaying");
                    self.router.mark_failed(&node.name);
                    self.rcpts = before;
                }
            }
        }
        vec!["451 4.4.1 no mailbox node is available; try again later\r\n".into(); wanted]
    }
}

async fn send_data(node: &mut Node, body: &[u8], rcpts: usize) -> io::Result<Vec<Reply>> {
    let reply = command(node, "DATA\r\n").await?;
    if !reply.starts_with("354") {
        return Ok(vec![reply; rcpts]);
    }
    let stream = node.stream.get_mut();
    stream.write_all(body).await?;
    stream.write_all(b".\r\n").await?;
    let mut replies = Vec::with_capacity(rcpts);
    for _ in 0..rcpts {
        replies.push(read_reply(&mut node.stream).await?);
    }
    Ok(replies)
}

fn expect(reply: &str, class: char) -> io::Result<()> {
    if reply.starts_with(class) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "node answered {}",
            reply.trim_end()
        )))
    }
}

async fn command(node: &mut Node, line: &str) -> io::Result<Reply> {
    node.stream.get_mut().write_all(line.as_bytes()).await?;
    read_reply(&mut node.stream).await
}

/// One (possibly multi-line) reply.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let mut reply = String::new();
    loop {
        let Some(line) = read_line(stream).await? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        reply.push_str(&line);
        reply.push_str("\r\n");
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(reply);
        }
    }
}

/// One line without its end; `None` at a clean end of stream.
async fn read_line(stream: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = stream.take(MAX_LINE).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(io::Error::other("line too long"));
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()))
}
