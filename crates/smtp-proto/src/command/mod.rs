//! Parsing one command line into a [`Command`]. Each verb has its own file holding its
//! argument grammar and its table of tests; this file only finds the verb.

mod bdat;
mod data;
mod ehlo;
mod helo;
mod help;
mod lhlo;
mod mail;
mod noop;
mod quit;
mod rcpt;
mod rset;
mod vrfy;

pub use mail::{BodyType, MailFrom};
pub use rcpt::RcptTo;

use crate::error::{CommandError, ErrorKind};
use crate::path::Domain;

/// A parsed LMTP/SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain` (RFC 2033): the LMTP greeting.
    Lhlo { domain: Domain },
    /// `HELO domain`: parsed so an LMTP session can refuse it precisely.
    Helo { domain: Domain },
    /// `EHLO domain`: parsed so an LMTP session can refuse it precisely.
    Ehlo { domain: Domain },
    /// `MAIL FROM:<reverse-path> [parameters]`.
    Mail(MailFrom),
    /// `RCPT TO:<forward-path> [parameters]`.
    Rcpt(RcptTo),
    /// `DATA`: the message follows, dot-stuffed, up to `CRLF.CRLF`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030): exactly `size` bytes follow the line.
    Bdat { size: u64, last: bool },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`; the argument has no meaning and is dropped.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy { argument: String },
    /// `HELP [string]`.
    Help { topic: Option<String> },
}

/// Parses one command line.
///
/// `line` is what [`crate::find_line`] delimited: it may end in CRLF, in a bare LF
/// (tolerated because people test with `nc`), or in nothing. Verbs are matched
/// case-insensitively. The parser is stateless: whether a command is allowed now (say,
/// `RCPT` before `MAIL`, or `HELO` in LMTP) is for the session to decide.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line)
        .map_err(|_| CommandError::new(ErrorKind::Syntax, "command line is not valid UTF-8"))?;
    // A CR or NUL inside a command line is either a broken client or an attempt to
    // make us and a peer disagree about where lines end; refuse all controls alike.
    if line.chars().any(char::is_control) {
        return Err(CommandError::new(
            ErrorKind::Syntax,
            "control character in command line",
        ));
    }
    if line.trim_matches(' ').is_empty() {
        return Err(CommandError::new(ErrorKind::Syntax, "empty command line"));
    }
    let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
    let args = args.trim_matches(' ');
    // Every verb we know has four letters, so a fixed array avoids allocating to
    // upper-case it.
    let verb: [u8; 4] = match verb.as_bytes().try_into() {
        Ok(v) => v,
        Err(_) => return Err(unknown()),
    };
    match &verb.map(|b| b.to_ascii_uppercase()) {
        b"LHLO" => lhlo::parse(args),
        b"HELO" => helo::parse(args),
        b"EHLO" => ehlo::parse(args),
        b"MAIL" => mail::parse(args),
        b"RCPT" => rcpt::parse(args),
        b"DATA" => data::parse(args),
        b"BDAT" => bdat::parse(args),
        b"RSET" => rset::parse(args),
        b"NOOP" => noop::parse(args),
        b"QUIT" => quit::parse(args),
        b"VRFY" => vrfy::parse(args),
        b"HELP" => help::parse(args),
        _ => Err(unknown()),
    }
}

fn unknown() -> CommandError {
    CommandError::new(ErrorKind::UnknownCommand, "command not recognized")
}

/// Shared by `DATA`, `RSET` and `QUIT`, which take no arguments.
fn no_arguments(args: &str, command: Command) -> Result<Command, CommandError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(crate::params::syntax("this command takes no arguments"))
    }
}

/// Shared by `LHLO`, `HELO` and `EHLO`: the argument is one domain or address literal.
fn greeting_domain(args: &str) -> Result<Domain, CommandError> {
    if args.is_empty() {
        return Err(crate::params::syntax("a domain name is required"));
    }
    crate::path::parse_domain(args).map_err(|e| crate::params::syntax(e.0))
}

/// Runs a table of command lines and reports every mismatch at once, so one failing
/// row does not hide the others.
#[cfg(test)]
pub(crate) fn check_table(cases: &[(&str, Result<Command, ErrorKind>)]) {
    let mut failures = Vec::new();
    for (line, want) in cases {
        let got = parse_command(line.as_bytes()).map_err(|e| e.kind());
        if &got != want {
            failures.push(format!("{line:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind::*;

    #[test]
    fn verbs_and_line_endings() {
        check_table(&[
            ("NOOP\r\n", Ok(Command::Noop)),
            ("noop\r\n", Ok(Command::Noop)),
            ("NoOp\n", Ok(Command::Noop)),
            ("NOOP", Ok(Command::Noop)),
            ("NOOP \r\n", Ok(Command::Noop)),
            ("\r\n", Err(Syntax)),
            ("   \r\n", Err(Syntax)),
            ("NOOP\r\r\n", Err(Syntax)),
            ("NO\0OP\r\n", Err(Syntax)),
            ("NOOP\tx\r\n", Err(Syntax)),
            ("XYZW\r\n", Err(UnknownCommand)),
            ("STARTTLS\r\n", Err(UnknownCommand)),
            ("NOOPX\r\n", Err(UnknownCommand)),
            ("NOO\r\n", Err(UnknownCommand)),
            ("é\r\n", Err(UnknownCommand)),
            ("NOÖP\r\n", Err(UnknownCommand)),
        ]);
        assert_eq!(
            parse_command(b"NOOP \xff\r\n").map_err(|e| e.kind()),
            Err(Syntax)
        );
    }
}
