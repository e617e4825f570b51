//! A sans-I/O IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) command parser and
//! response encoder for the evermail IMAP session.
//!
//! The session owns the socket and a byte buffer. It appends what it reads and calls
//! [`parse_command`], which answers with a [`Parse`]: a whole [`Command`] and how many
//! bytes it used, a request for more bytes, a request to send the `+` continuation for a
//! synchronizing literal, or a syntax error with enough information (tag, bytes to skip,
//! a human reason, an [`ParseErrorKind`]) to reply `BAD` and carry on. Replies are built
//! as [`response`] values and appended to an output buffer with `encode`. Nothing here
//! reads, writes, sleeps, logs or touches storage; it depends only on `evermail-types`.
//!
//! We write this parser ourselves rather than use `imap-codec`. The literal flow is the
//! part of IMAP where servers get attacked (announced sizes, continuation timing,
//! LITERAL+/LITERAL- rules, line limits), and we want it in one small file we control
//! (`frame.rs` first finds a whole command, then the grammar runs over complete input). We also want commands to arrive as our own types
//! (`evermail_types::Flag`, [`MailboxName`] with INBOX normalised, [`SequenceSet`] that
//! never expands), and responses to be encoded straight from `evermail_types::Envelope`
//! and `MimePart` without a conversion layer.
//!
//! # Literal flow
//!
//! [`Parse::NeedContinuation`] is returned only when the buffer ends exactly where the
//! data of a synchronizing literal would start; it carries that offset as
//! `data_offset`. The session sends `+ Ready for literal` once per `data_offset` (keep the
//! last one acknowledged, reset it when a command is consumed); once any literal byte has
//! arrived the parser answers [`Parse::Incomplete`] instead, so a continuation is never
//! requested twice for the same literal.
//!
//! # Example
//! ```
//! use evermail_imap_proto::{parse_command, CommandBody, Limits, Parse};
//!
//! let limits = Limits::default();
//! let mut buf = b"a1 LOGIN alice {6}\r\n".to_vec();
//! let Parse::NeedContinuation { data_offset, .. } = parse_command(&buf, &limits) else {
//!     panic!()
//! };
//! assert_eq!(data_offset, buf.len()); // send "+ Ready for literal", read more
//! buf.extend_from_slice(b"s3cr t\r\n");
//! let Parse::Complete { consumed, command } = parse_command(&buf, &limits) else { panic!() };
//! assert_eq!(consumed, buf.len());
//! assert_eq!(command.tag, "a1");
//! let CommandBody::Login(login) = command.body else { panic!() };
//! assert_eq!(login.password, "s3cr t");
//! ```
//!
//! # Layout
//! - `frame` (private): finds where a command ends; all literal flow and size limits.
//! - `cursor` (private): tokens (atom, number, quoted, literal, astring, lists).
//! - [`command`]: [`Command`], [`CommandBody`] and one file per command or small group
//!   of commands, each with its grammar and table-driven tests.
//! - [`sequence`], [`mailbox`], [`datetime`]: values shared by commands and responses.
//! - [`mutf7`]: modified UTF-7 for rev1 mailbox names.
//! - [`response`]: status responses and untagged data with their encoders; FETCH items,
//!   ENVELOPE and BODYSTRUCTURE in their own files.
//! - [`error`]: [`ParseError`] and [`ParseErrorKind`].
//!
//! *Invariant*: no input makes the parser panic or allocate in proportion to a number the
//! client wrote (only to bytes it actually sent); `tests/fuzz.rs` checks the first part.

pub mod command;
mod cursor;
pub mod datetime;
pub mod error;
mod frame;
pub mod mailbox;
pub mod mutf7;
pub mod response;
pub mod sequence;

pub use command::auth::{SaslResponse, parse_sasl_response};
pub use command::idle::{IdleDone, parse_idle_done};
pub use command::{Command, CommandBody};
pub use datetime::{Date, DateTime};
pub use error::{ParseError, ParseErrorKind};
pub use mailbox::MailboxName;
pub use sequence::{SeqBound, SeqRange, SequenceSet};

/// Size limits the parser enforces before the session buffers anything large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (not counting literal data or the line end); 64 KiB by default.
    pub max_line: usize,
    /// Largest literal a client may announce; 64 MiB by default. Larger ones get
    /// [`ParseErrorKind::TooBig`] before any of their data is read.
    pub max_literal: u32,
    /// Whether the server advertises LITERAL- rather than LITERAL+, which limits
    /// non-synchronizing literals to 4096 bytes (RFC 7888).
    pub literal_minus: bool,
    /// Largest whole command, all lines and literals together (MULTIAPPEND can carry
    /// several messages); 128 MiB by default.
    pub max_command: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            literal_minus: false,
            max_command: 128 * 1024 * 1024,
        }
    }
}

/// What [`parse_command`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A whole command; drop `consumed` bytes from the buffer.
    Complete { consumed: usize, command: Command },
    /// Read more bytes and call again.
    Incomplete,
    /// The buffer ends right after a synchronizing literal's announcement `{N}\r\n`:
    /// send `+ Ready for literal` (once per `data_offset`), then read more.
    NeedContinuation {
        literal_len: u32,
        data_offset: usize,
    },
    /// A bad command: drop `consumed` bytes (the command through its line end) and reply
    /// `tag BAD error` (`* BAD` without a tag). If [`ParseError::must_close`], send BYE
    /// and close: the input cannot be resynchronised.
    Error {
        consumed: usize,
        tag: Option<String>,
        error: ParseError,
    },
}

pub use frame::PendingLiteral;

/// The literal whose data the first command in `input` is waiting for, if it is
/// waiting for one (what [`parse_command`] answers [`Parse::Incomplete`] or
/// [`Parse::NeedContinuation`] for). A session may take that literal's data out of its
/// buffer as it arrives (into a file, for a large APPEND) and put something shorter in
/// its place, rewriting the announcement to match.
pub fn pending_literal(input: &[u8], limits: &Limits) -> Option<PendingLiteral> {
    frame::pending_literal(input, limits)
}

/// Parses the first command in `input`. See [`Parse`] for what to do with each answer.
pub fn parse_command(input: &[u8], limits: &Limits) -> Parse {
    match frame::frame(input, limits) {
        Ok(end) => match command::parse(&input[..end]) {
            Ok(command) => Parse::Complete {
                consumed: end,
                command,
            },
            Err(error) => Parse::Error {
                consumed: end,
                tag: frame::tag_of(input),
                error,
            },
        },
        Err(frame::Stop::Incomplete) => Parse::Incomplete,
        Err(frame::Stop::NeedContinuation {
            literal_len,
            data_offset,
        }) => Parse::NeedContinuation {
            literal_len,
            data_offset,
        },
        Err(frame::Stop::Error { consumed, error }) => Parse::Error {
            consumed,
            tag: frame::tag_of(input),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_line: 100,
            max_literal: 50,
            ..Limits::default()
        }
    }

    /// What the session sees for each kind of input: (consumed, tag, kind, must_close)
    /// for errors.
    #[test]
    fn reports_errors_with_tag_and_extent() {
        type Want = (usize, Option<&'static str>, ParseErrorKind, bool);
        let cases: &[(&[u8], Want)] = &[
            (
                b"a1 FROB\r\nb NOOP\r\n",
                (9, Some("a1"), ParseErrorKind::UnknownCommand, false),
            ),
            (
                b"a2 NOOP x\r\n",
                (11, Some("a2"), ParseErrorKind::Syntax, false),
            ),
            (b"+ NOOP\r\n", (8, None, ParseErrorKind::Syntax, false)),
            (
                b"a3 LOGIN {51}\r\n",
                (15, Some("a3"), ParseErrorKind::TooBig, false),
            ),
            (
                b"a4 LOGIN {51+}\r\n",
                (16, Some("a4"), ParseErrorKind::TooBig, true),
            ),
            (&[b'x'; 150], (150, None, ParseErrorKind::LineTooLong, true)),
            // A bad command after a literal is skipped whole, literal included.
            (
                b"a5 LOGIN {2}\r\n)) x y\r\nb NOOP\r\n",
                (22, Some("a5"), ParseErrorKind::Syntax, false),
            ),
        ];
        for (input, (consumed, tag, kind, close)) in cases {
            match parse_command(input, &limits()) {
                Parse::Error {
                    consumed: got,
                    tag: got_tag,
                    error,
                } => {
                    assert_eq!(got, *consumed, "{input:?}");
                    assert_eq!(got_tag.as_deref(), *tag, "{input:?}");
                    assert_eq!(
                        (error.kind(), error.must_close()),
                        (*kind, *close),
                        "{input:?}"
                    );
                    assert!(!error.message().contains('\n'));
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn asks_for_continuation_once_per_literal() {
        let mut buf = b"a LOGIN {5}\r\n".to_vec();
        assert_eq!(
            parse_command(&buf, &limits()),
            Parse::NeedContinuation {
                literal_len: 5,
                data_offset: 13
            }
        );
        buf.extend_from_slice(b"al");
        assert_eq!(parse_command(&buf, &limits()), Parse::Incomplete);
        buf.extend_from_slice(b"ice {3}\r\n");
        assert_eq!(
            parse_command(&buf, &limits()),
            Parse::NeedContinuation {
                literal_len: 3,
                data_offset: 24
            }
        );
        buf.extend_from_slice(b"pw!\r\n");
        assert!(matches!(
            parse_command(&buf, &limits()),
            Parse::Complete { consumed: 29, .. }
        ));
    }
}
