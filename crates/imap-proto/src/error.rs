//! The one error type of the parser, with a [`ParseErrorKind`] the session branches on.

use std::fmt;

/// Why a command could not be parsed. The [`Display`](fmt::Display) text is meant to be
/// sent to the client as is, after `tag BAD `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    message: String,
    must_close: bool,
}

/// What the session should do about a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The command is malformed: reply `tag BAD <message>` and carry on.
    Syntax,
    /// The command name is not one this crate knows: reply `tag BAD <message>`.
    UnknownCommand,
    /// A line is longer than [`Limits::max_line`](crate::Limits::max_line): reply
    /// `BAD [TOOBIG]`. When no line end was seen yet, [`ParseError::must_close`] is set,
    /// because the rest of that line is still coming and cannot be told apart from the
    /// next command.
    LineTooLong,
    /// A literal (or the whole command) is larger than the limits allow: reply
    /// `tag BAD [TOOBIG]`. A client that announced a synchronizing literal waits for our
    /// continuation, so refusing it is clean; a non-synchronizing literal is sent anyway,
    /// so then [`ParseError::must_close`] is set.
    TooBig,
}

impl ParseError {
    pub(crate) fn syntax(message: impl Into<String>) -> ParseError {
        ParseError::new(ParseErrorKind::Syntax, message)
    }

    pub(crate) fn new(kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError {
            kind,
            message: message.into(),
            must_close: false,
        }
    }

    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The human-readable reason, suitable for a BAD response (no CR or LF in it).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the session cannot find the start of the next command and so should send
    /// `* BYE` and close the connection after replying.
    pub fn must_close(&self) -> bool {
        self.must_close
    }

    /// An error after which the input cannot be resynchronised (see
    /// [`ParseError::must_close`]).
    pub(crate) fn closing(kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError {
            must_close: true,
            ..ParseError::new(kind, message)
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

pub(crate) type PResult<T> = Result<T, ParseError>;
