//! The one error type of command parsing, with a [`ErrorKind`] the session maps to a
//! reply. The parser never builds replies itself, because whether (and how) to answer
//! is a session decision: an LMTP session rejects `HELO` that parses fine, for example.

use std::fmt;

/// What went wrong with a command line, coarse enough for a session to pick a reply.
///
/// The suggested reply for each kind is given in its doc and implemented by
/// [`crate::Reply::for_error`]; sessions are free to answer differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line is not a command at all: empty, not UTF-8, or containing control
    /// characters. Suggested reply: `500 5.5.2`.
    Syntax,
    /// The verb is not one this crate knows. Suggested reply: `500 5.5.1`.
    UnknownCommand,
    /// A known verb with malformed arguments or parameters (missing `FROM:`, a
    /// `SIZE` that is not a number, arguments to `DATA`). Suggested reply: `501 5.5.4`.
    ParameterSyntax,
    /// The reverse-path of `MAIL FROM` is not a valid path. Suggested reply: `501 5.1.7`.
    BadSenderAddress,
    /// The forward-path of `RCPT TO` is not a valid path. Suggested reply: `553 5.1.3`.
    BadRecipientAddress,
    /// A well-formed ESMTP parameter this crate does not implement. Suggested reply:
    /// `555 5.5.4`.
    UnsupportedParameter,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::UnknownCommand => "unknown command",
            ErrorKind::ParameterSyntax => "syntax error in parameters",
            ErrorKind::BadSenderAddress => "bad sender address syntax",
            ErrorKind::BadRecipientAddress => "bad recipient address syntax",
            ErrorKind::UnsupportedParameter => "unsupported parameter",
        })
    }
}

/// A command line that could not be parsed.
///
/// The message is short, human-readable and free of CR/LF, so a session may put it
/// in a reply text as is. It never echoes more than a parameter keyword of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct CommandError {
    kind: ErrorKind,
    message: String,
}

impl CommandError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
        }
    }

    /// The category the session branches on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A short explanation suitable for a reply text.
    pub fn message(&self) -> &str {
        &self.message
    }
}
