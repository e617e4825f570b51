//! Replies and their wire encoding (RFC 5321 section 4.2, enhanced status codes of
//! RFC 2034/3463), with constructors for the replies an LMTP session sends.
//!
//! Following RFC 2034 section 3, the greeting, the LHLO/EHLO reply and the 354
//! intermediate reply carry no enhanced code; every other constructor includes one.

use crate::error::{CommandError, ErrorKind};

/// An enhanced status code `class.subject.detail`, e.g. `(2, 1, 5)` for `2.1.5`.
pub type EnhancedCode = (u8, u16, u16);

/// One reply, possibly of several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 200..=599.
    pub code: u16,
    pub enhanced: Option<EnhancedCode>,
    /// The texts of each line, without code or line ending. No lines encode as one
    /// line with an empty text.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// Appends the wire form to `out`: `250-first` ... `250 last`, each line ending in
    /// CRLF and repeating the enhanced code (RFC 2034 section 4).
    ///
    /// CR and LF inside a text become spaces: a text may quote client input, and a line
    /// break there would let a client forge reply lines.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let code = self.code.to_string();
        let enhanced = self
            .enhanced
            .map(|(class, subject, detail)| format!("{class}.{subject}.{detail}"));
        for (i, line) in lines.iter().enumerate() {
            out.extend_from_slice(code.as_bytes());
            out.push(if i + 1 == lines.len() { b' ' } else { b'-' });
            if let Some(enhanced) = &enhanced {
                out.extend_from_slice(enhanced.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend(line.bytes().map(|b| match b {
                b'\r' | b'\n' => b' ',
                b => b,
            }));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a fresh buffer; convenient in tests.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Whether the reply is 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// `220 <hostname> <protocol> ready`: the connection greeting.
    pub fn greeting(hostname: &str, protocol: &str) -> Self {
        Reply::new(220, None, format!("{hostname} {protocol} ready"))
    }

    /// `221 2.0.0 Bye`: the reply to QUIT.
    pub fn bye() -> Self {
        Reply::new(221, Some((2, 0, 0)), "Bye")
    }

    /// `250 2.0.0 OK`: the reply to RSET and NOOP.
    pub fn ok() -> Self {
        Reply::new(250, Some((2, 0, 0)), "OK")
    }

    /// `250 2.1.0 Sender OK`.
    pub fn sender_ok() -> Self {
        Reply::new(250, Some((2, 1, 0)), "Sender OK")
    }

    /// `250 2.1.5 Recipient OK`.
    pub fn recipient_ok() -> Self {
        Reply::new(250, Some((2, 1, 5)), "Recipient OK")
    }

    /// `354 Start mail input; end with <CRLF>.<CRLF>`.
    pub fn start_data() -> Self {
        Reply::new(354, None, "Start mail input; end with <CRLF>.<CRLF>")
    }

    /// `250 2.0.0 Delivered`: one per recipient after the data in LMTP.
    pub fn delivered() -> Self {
        Reply::new(250, Some((2, 0, 0)), "Delivered")
    }

    /// `250 2.0.0 <n> bytes received`: the reply to a non-final BDAT chunk.
    pub fn chunk_received(size: u64) -> Self {
        Reply::new(250, Some((2, 0, 0)), format!("{size} bytes received"))
    }

    /// `252 2.5.0 ...`: the customary answer to VRFY, which reveals nothing.
    pub fn cannot_verify() -> Self {
        Reply::new(
            252,
            Some((2, 5, 0)),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// `214 2.0.0 ...`: the reply to HELP.
    pub fn help() -> Self {
        Reply::new(214, Some((2, 0, 0)), "See RFC 2033 and RFC 5321")
    }

    /// `421 4.4.2 Timeout`: sent before closing an idle connection.
    pub fn timeout() -> Self {
        Reply::new(421, Some((4, 4, 2)), "Timeout, closing connection")
    }

    /// `421 4.3.2 Shutting down`: sent before closing when the node drains.
    pub fn shutting_down() -> Self {
        Reply::new(
            421,
            Some((4, 3, 2)),
            "Service shutting down, try again later",
        )
    }

    /// `451 4.3.0 Temporary failure`: storage could not take the message; the client
    /// keeps it and retries.
    pub fn temporary_failure() -> Self {
        Reply::new(451, Some((4, 3, 0)), "Temporary failure, try again later")
    }

    /// `452 4.2.2 Mailbox full`: over quota, temporarily (the user may delete mail).
    pub fn over_quota() -> Self {
        Reply::new(452, Some((4, 2, 2)), "Mailbox full")
    }

    /// `452 4.5.3 Too many recipients`.
    pub fn too_many_recipients() -> Self {
        Reply::new(452, Some((4, 5, 3)), "Too many recipients")
    }

    /// `500 5.5.2 Line too long`: for [`crate::LineScan::TooLong`].
    pub fn line_too_long() -> Self {
        Reply::new(500, Some((5, 5, 2)), "Line too long")
    }

    /// `503 5.5.1 Bad sequence of commands`.
    pub fn bad_sequence() -> Self {
        Reply::new(503, Some((5, 5, 1)), "Bad sequence of commands")
    }

    /// `550 5.1.1 No such user`.
    pub fn no_such_user() -> Self {
        Reply::new(550, Some((5, 1, 1)), "No such user")
    }

    /// `552 5.3.4 Message too big`: after the data, when [`crate::DataDecoder`] or
    /// [`crate::BdatBody`] reported the message oversize.
    pub fn message_too_big() -> Self {
        Reply::new(552, Some((5, 3, 4)), "Message too big")
    }

    /// `554 5.5.1 No valid recipients`: DATA or BDAT with no accepted recipient.
    pub fn no_valid_recipients() -> Self {
        Reply::new(554, Some((5, 5, 1)), "No valid recipients")
    }

    /// `554 5.5.0 <text>`: a transaction failed for a permanent protocol reason.
    pub fn transaction_failed(text: impl Into<String>) -> Self {
        Reply::new(554, Some((5, 5, 0)), text)
    }

    /// `554 5.6.0 <text>`: the message content is unacceptable (e.g. not parseable).
    pub fn bad_content(text: impl Into<String>) -> Self {
        Reply::new(554, Some((5, 6, 0)), text)
    }

    /// The suggested reply to a command that did not parse, with the error's message
    /// as text: see [`ErrorKind`] for the mapping.
    pub fn for_error(error: &CommandError) -> Self {
        let (code, enhanced) = match error.kind() {
            ErrorKind::Syntax => (500, (5, 5, 2)),
            ErrorKind::UnknownCommand => (500, (5, 5, 1)),
            ErrorKind::ParameterSyntax => (501, (5, 5, 4)),
            ErrorKind::BadSenderAddress => (501, (5, 1, 7)),
            ErrorKind::BadRecipientAddress => (553, (5, 1, 3)),
            ErrorKind::UnsupportedParameter => (555, (5, 5, 4)),
        };
        Reply::new(code, Some(enhanced), error.message())
    }

    /// The multi-line reply to LHLO (or EHLO): the host name, then one capability per
    /// line.
    pub fn lhlo(hostname: &str, capabilities: &Capabilities) -> Self {
        let mut lines = vec![hostname.to_owned()];
        lines.extend(capabilities.keywords());
        Reply {
            code: 250,
            enhanced: None,
            lines,
        }
    }
}

/// The extensions a session advertises in its LHLO/EHLO reply.
///
/// Each flag is a promise: the session must implement what it advertises (e.g. with
/// `chunking` it must accept BDAT, with `size` it must refuse bigger messages with
/// [`Reply::message_too_big`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// PIPELINING (RFC 2920); RFC 2033 requires it for LMTP.
    pub pipelining: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034); RFC 2033 requires it for LMTP.
    pub enhanced_status_codes: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SIZE with the limit in octets (RFC 1870); `Some(0)` advertises "no limit".
    pub size: Option<u64>,
    /// CHUNKING, i.e. BDAT (RFC 3030).
    pub chunking: bool,
    /// BINARYMIME (RFC 3030); only meaningful together with `chunking`.
    pub binary_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

impl Capabilities {
    /// What evermail's LMTP service offers: everything but BINARYMIME, which would
    /// store bodies IMAP clients without the BINARY extension cannot read.
    pub fn lmtp(max_size: u64) -> Self {
        Capabilities {
            pipelining: true,
            enhanced_status_codes: true,
            eight_bit_mime: true,
            size: Some(max_size),
            chunking: true,
            binary_mime: false,
            smtputf8: true,
        }
    }

    fn keywords(&self) -> Vec<String> {
        // The order is the customary one (Postfix, Dovecot); clients do not care.
        let size = self.size.map(|n| format!("SIZE {n}"));
        [
            (self.pipelining, Some("PIPELINING".to_owned())),
            (
                self.enhanced_status_codes,
                Some("ENHANCEDSTATUSCODES".to_owned()),
            ),
            (self.eight_bit_mime, Some("8BITMIME".to_owned())),
            (true, size),
            (self.chunking, Some("CHUNKING".to_owned())),
            (self.binary_mime, Some("BINARYMIME".to_owned())),
            (self.smtputf8, Some("SMTPUTF8".to_owned())),
        ]
        .into_iter()
        .filter_map(|(on, keyword)| keyword.filter(|_| on))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_table() {
        let cases: Vec<(Reply, &str)> = vec![
            (Reply::bye(), "221 2.0.0 Bye\r\n"),
            (Reply::ok(), "250 2.0.0 OK\r\n"),
            (Reply::sender_ok(), "250 2.1.0 Sender OK\r\n"),
            (Reply::recipient_ok(), "250 2.1.5 Recipient OK\r\n"),
            (Reply::delivered(), "250 2.0.0 Delivered\r\n"),
            (
                Reply::start_data(),
                "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
            ),
            (Reply::no_such_user(), "550 5.1.1 No such user\r\n"),
            (Reply::over_quota(), "452 4.2.2 Mailbox full\r\n"),
            (Reply::message_too_big(), "552 5.3.4 Message too big\r\n"),
            (
                Reply::temporary_failure(),
                "451 4.3.0 Temporary failure, try again later\r\n",
            ),
            (
                Reply::bad_sequence(),
                "503 5.5.1 Bad sequence of commands\r\n",
            ),
            (
                Reply::timeout(),
                "421 4.4.2 Timeout, closing connection\r\n",
            ),
            (Reply::bad_content("Bad MIME"), "554 5.6.0 Bad MIME\r\n"),
            (Reply::transaction_failed("No"), "554 5.5.0 No\r\n"),
            (Reply::line_too_long(), "500 5.5.2 Line too long\r\n"),
            (Reply::chunk_received(42), "250 2.0.0 42 bytes received\r\n"),
            (
                Reply::greeting("mx.example", "LMTP"),
                "220 mx.example LMTP ready\r\n",
            ),
            (
                Reply {
                    code: 250,
                    enhanced: Some((2, 0, 0)),
                    lines: vec!["one".into(), "two".into(), "three".into()],
                },
                "250-2.0.0 one\r\n250-2.0.0 two\r\n250 2.0.0 three\r\n",
            ),
            (
                Reply {
                    code: 250,
                    enhanced: None,
                    lines: vec![],
                },
                "250 \r\n",
            ),
            (Reply::new(250, Some((2, 0, 0)), ""), "250 2.0.0\r\n"),
            (
                Reply::new(550, Some((5, 1, 1)), "evil\r\n250 ok"),
                "550 5.1.1 evil  250 ok\r\n",
            ),
            (
                Reply::lhlo("mx.example", &Capabilities::lmtp(10_000_000)),
                "250-mx.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n\
                 250-8BITMIME\r\n250-SIZE 10000000\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
            ),
            (
                Reply::lhlo(
                    "h",
                    &Capabilities {
                        pipelining: true,
                        enhanced_status_codes: false,
                        eight_bit_mime: false,
                        size: None,
                        chunking: true,
                        binary_mime: true,
                        smtputf8: false,
                    },
                ),
                "250-h\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n",
            ),
        ];
        let mut failures = Vec::new();
        for (reply, want) in cases {
            let got = String::from_utf8(reply.to_bytes()).unwrap();
            if got != want {
                failures.push(format!("{reply:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn errors_map_to_replies() {
        let cases = [
            ("\0\r\n", "500 5.5.2 "),
            ("FOO\r\n", "500 5.5.1 "),
            ("DATA x\r\n", "501 5.5.4 "),
            ("MAIL FROM:<a>\r\n", "501 5.1.7 "),
            ("RCPT TO:<a>\r\n", "553 5.1.3 "),
            ("RCPT TO:<a@b> FOO=1\r\n", "555 5.5.4 "),
        ];
        for (line, prefix) in cases {
            let err = crate::parse_command(line.as_bytes()).unwrap_err();
            let got = String::from_utf8(Reply::for_error(&err).to_bytes()).unwrap();
            assert!(got.starts_with(prefix), "{line:?}: {got:?}");
        }
    }
}
