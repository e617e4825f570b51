//! The one error type of the parser, with a [`ParseErrorKind`] the session branches on.

use std::fmt;

/// Why a command line could not be parsed. The [`Display`](fmt::Display) text is meant
/// to be sent to the client as is, after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    message: String,
}

/// What the session should do about a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A known command with missing, extra or malformed arguments: reply `-ERR` and go
    /// on with the next line.
    Syntax,
    /// The keyword is not a command this crate knows: reply `-ERR` and go on.
    UnknownCommand,
    /// No line end within [`MAX_LINE`](crate::MAX_LINE) bytes. The rest of that line is
    /// still coming and cannot be told apart from the next command, so the session
    /// replies `-ERR` and closes the connection.
    LineTooLong,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn syntax(message: impl Into<String>) -> ParseError {
        ParseError::new(ParseErrorKind::Syntax, message)
    }

    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The human-readable reason, suitable for an `-ERR` line (no CR or LF in it).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the session cannot find the start of the next command and must close
    /// the connection after replying.
    pub fn must_close(&self) -> bool {
        self.kind == ParseErrorKind::LineTooLong
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}
