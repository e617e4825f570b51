//! A minimal IMAP client for load generation, written here rather than taken from a
//! crate: the well-kept async one (async-imap) parses every response into typed values
//! and streams FETCH results through its own buffers, which would put the client's
//! parsing cost into the server's latency figures and hide what exactly was sent. A
//! benchmark needs the opposite: exact command bytes, one timestamp around each tagged
//! command, and responses only counted (lines, bytes, literals skipped by length),
//! except the few values a workload needs (EXISTS, UIDNEXT, SEARCH results, UIDs).

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The tagged result of one command.
#[derive(Debug, Default)]
pub struct Reply {
    /// Untagged lines received (a literal counts as part of its line).
    pub lines: usize,
    /// Bytes received, literals included.
    pub bytes: usize,
    /// `* N EXISTS`, the last one seen.
    pub exists: Option<u32>,
    /// `[UIDNEXT N]`.
    pub uidnext: Option<u32>,
    /// Numbers of `* SEARCH` lines.
    pub search: Vec<u32>,
    /// The largest `UID N` in FETCH responses.
    pub max_uid: Option<u32>,
    /// The smallest `UID N` in FETCH responses.
    pub min_uid: Option<u32>,
}

pub struct ImapConn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_tag: u64,
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The value after `word ` in `line` (`EXISTS` is found as `* N EXISTS` by the caller).
fn number_after(line: &[u8], word: &[u8]) -> Option<u32> {
    let at = line.windows(word.len()).position(|w| w == word)? + word.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

impl ImapConn {
    /// Connects and reads the greeting (`* OK`; `* PREAUTH` and `* BYE` are errors).
    pub async fn connect(server: SocketAddr) -> anyhow::Result<ImapConn> {
        let stream = TcpStream::connect(server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut conn = ImapConn {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            next_tag: 1,
        };
        let mut line = Vec::new();
        conn.read_line(&mut line).await?;
        if !line.starts_with(b"* OK") {
            bail!("greeting: {}", String::from_utf8_lossy(&line).trim_end());
        }
        Ok(conn)
    }

    /// Connects and logs in with LOGIN.
    pub async fn login(server: SocketAddr, user: &str, password: &str) -> anyhow::Result<Self> {
        let mut conn = ImapConn::connect(server).await?;
        conn.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await?;
        Ok(conn)
    }

    /// One response line into `line` (cleared first), with any literals it carries:
    /// `{N}` at the end of a line is followed by N bytes and the line's rest.
    async fn read_line(&mut self, line: &mut Vec<u8>) -> anyhow::Result<usize> {
        line.clear();
        let mut total = 0;
        loop {
            let start = line.len();
            let n = self.reader.read_until(b'\n', line).await?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            total += n;
            let part = &line[start..];
            let Some(open) = part.iter().rposition(|&b| b == b'{') else {
                return Ok(total);
            };
            let inner = part[open + 1..].strip_suffix(b"}\r\n");
            let Some(len) = inner.and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
            else {
                return Ok(total);
            };
            // The literal's content is only counted, not kept.
            let copied =
                tokio::io::copy(&mut (&mut self.reader).take(len), &mut tokio::io::sink()).await?;
            if copied < len {
                bail!("the server closed the connection inside a literal");
            }
            total += len as usize;
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("b{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Reads until the tagged reply to `tag`; NO and BAD are errors carrying the text.
    async fn finish(&mut self, tag: &str, command: &str) -> anyhow::Result<Reply> {
        let mut reply = Reply::default();
        let mut line = Vec::new();
        loop {
            reply.bytes += self.read_line(&mut line).await?;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let status = &line[tag.len() + 1..];
                if status.starts_with(b"OK") {
                    return Ok(reply);
                }
                let verb = command.split(' ').next().unwrap_or(command);
                bail!(
                    "{verb}: {}",
                    String::from_utf8_lossy(&line[tag.len() + 1..]).trim_end()
                );
            }
            // BYE is the expected goodbye to LOGOUT, and a refusal to anything else.
            if line.starts_with(b"* BYE") && command != "LOGOUT" {
                bail!("{}", String::from_utf8_lossy(&line).trim_end());
            }
            reply.lines += 1;
            self.scan(&line, &mut reply);
        }
    }

    fn scan(&self, line: &[u8], reply: &mut Reply) {
        let trimmed = line.strip_suffix(b"\r\n").unwrap_or(line);
        if trimmed.ends_with(b" EXISTS") {
            reply.exists = number_after(trimmed, b"* ");
        } else if let Some(rest) = trimmed.strip_prefix(b"* SEARCH") {
            reply.search.extend(
                rest.split(|&b| b == b' ')
                    .filter_map(|n| std::str::from_utf8(n).ok()?.parse::<u32>().ok()),
            );
        } else if trimmed.starts_with(b"* OK [UIDNEXT ") {
            reply.uidnext = number_after(trimmed, b"UIDNEXT ");
        } else if trimmed.starts_with(b"* ")
            && trimmed.windows(6).any(|w| w == b" FETCH")
            && let Some(uid) = number_after(trimmed, b"UID ")
        {
            reply.max_uid = reply.max_uid.max(Some(uid));
            reply.min_uid = Some(reply.min_uid.map_or(uid, |m| m.min(uid)));
        }
    }

    /// Sends `command` with a fresh tag and waits for its tagged OK.
    pub async fn command(&mut self, command: &str) -> anyhow::Result<Reply> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.finish(&tag, command).await
    }

    /// APPEND with a synchronizing literal (every server supports it; LITERAL+ would
    /// save a round trip on servers that offer it, which would make the comparison
    /// about the client).
    pub async fn append(&mut self, mailbox: &str, flags: &str, body: &[u8]) -> anyhow::Result<()> {
        let tag = self.tag();
        let command = format!("APPEND {} ({flags}) {{{}}}", quote(mailbox), body.len());
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let mut line = Vec::new();
        self.read_line(&mut line).await?;
        if !line.starts_with(b"+") {
            bail!("APPEND: {}", String::from_utf8_lossy(&line).trim_end());
        }
        self.writer.write_all(body).await?;
        self.writer.write_all(b"\r\n").await?;
        self.finish(&tag, &command).await?;
        Ok(())
    }

    /// Starts IDLE and waits for the continuation; returns the tag for `idle_done`.
    pub async fn idle_start(&mut self) -> anyhow::Result<String> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        let mut line = Vec::new();
        loop {
            self.read_line(&mut line).await?;
            if line.starts_with(b"+") {
                return Ok(tag);
            }
            if line.starts_with(tag.as_bytes()) {
                bail!("IDLE: {}", String::from_utf8_lossy(&line).trim_end());
            }
        }
    }

    /// While idling, waits up to `wait` for an untagged `EXISTS`; true if one came.
    pub async fn idle_wait(&mut self, wait: Duration) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut line = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.read_line(&mut line)).await {
                Err(_) => return Ok(false),
                Ok(read) => {
                    read?;
                    if line.ends_with(b" EXISTS\r\n") {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Ends IDLE with DONE and waits for the tagged reply.
    pub async fn idle_done(&mut self, tag: &str) -> anyhow::Result<()> {
        self.writer.write_all(b"DONE\r\n").await?;
        self.finish(tag, "IDLE").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn numbers_are_found_after_their_keyword() {
        assert_eq!(number_after(b"* 12 EXISTS", b"* "), Some(12));
        assert_eq!(
            number_after(b"* 3 FETCH (FLAGS () UID 77)", b"UID "),
            Some(77)
        );
        assert_eq!(number_after(b"* OK [UIDNEXT 9] x", b"UIDNEXT "), Some(9));
        assert_eq!(number_after(b"* OK", b"UIDNEXT "), None);
    }

    /// A scripted server on loopback: the client reads literals by length, collects
    /// SEARCH numbers and turns NO into an error with the server's text.
    #[tokio::test]
    async fn literals_searches_and_refusals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut script = vec![
                "* OK ready\r\n".to_string(),
                "* 1 FETCH (UID 5 BODY[] {9}\r\nab\r\n{3}\r\n)\r\nb1 OK done\r\n".to_string(),
                "* SEARCH 2 4 9\r\nb2 OK done\r\n".to_string(),
                "b3 NO [CANNOT] not here\r\n".to_string(),
            ];
            script.reverse();
            s.write_all(script.pop().unwrap().as_bytes()).await.unwrap();
            let mut buf = [0u8; 256];
            while let Some(reply) = script.pop() {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let mut c = ImapConn::connect(addr).await.unwrap();
        let r = c.command("FETCH 1 BODY[]").await.unwrap();
        assert_eq!((r.lines, r.min_uid, r.max_uid), (1, Some(5), Some(5)));
        assert_eq!(c.command("SEARCH ALL").await.unwrap().search, vec![2, 4, 9]);
        let err = c.command("SEARCH BODY x").await.unwrap_err().to_string();
        assert_eq!(err, "SEARCH: NO [CANNOT] not here");
        server.await.unwrap();
    }
}
