//! POP3 commands and the framing of command lines.
//!
//! A command is one line: a keyword of three or four letters, case-insensitive, and
//! arguments separated by spaces (RFC 1939 section 3). We accept a bare LF as well as
//! CRLF, and several spaces between arguments, because being strict there only breaks
//! clients; we are strict about everything that names a message.

use std::fmt;
use std::num::NonZeroU32;

use crate::error::{ParseError, ParseErrorKind};
use crate::sasl::base64_decode;

/// The longest command line accepted, line end included. RFC 2449 section 4 allows 255
/// octets; some clients send longer `AUTH` initial responses, so we allow twice that.
pub const MAX_LINE: usize = 512;

/// A value that must not appear in logs (a password, a SASL response). Its `Debug`
/// prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One POP3 command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 section 7).
    User(String),
    /// `PASS string`: everything after the first space, spaces included.
    Pass(Secret<String>),
    /// `APOP name digest`. Parsed so it can be refused politely; we store no
    /// plaintext-equivalent secrets, so we cannot check an MD5 digest.
    Apop {
        name: String,
        digest: String,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034; without a mechanism, RFC 1734's
    /// request for the list). The mechanism is upper-cased; the initial response is
    /// decoded from base64, with `=` meaning an empty one.
    Auth {
        mechanism: Option<String>,
        initial_response: Option<Secret<Vec<u8>>>,
    },
    Quit,
    Stat,
    List(Option<NonZeroU32>),
    Retr(NonZeroU32),
    Dele(NonZeroU32),
    Noop,
    Rset,
    /// `TOP msg n`: the headers and the first `lines` lines of the body.
    Top {
        message: NonZeroU32,
        lines: u32,
    },
    Uidl(Option<NonZeroU32>),
    Capa,
    Stls,
    /// `XCLIENT ADDR=ip [PORT=n] SECRET=s`: a proxy telling the server which client it
    /// speaks for, proven by the cluster secret (evermail's own, after Postfix's
    /// XCLIENT). Values are kept as text; the session judges them.
    Xclient {
        addr: String,
        port: Option<String>,
        secret: Secret<String>,
    },
}

impl Command {
    /// The keyword, upper case, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } => "AUTH",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Xclient { .. } => "XCLIENT",
        }
    }
}

/// What [`parse_command`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A whole command; drop `consumed` bytes from the buffer.
    Complete { consumed: usize, command: Command },
    /// No whole line yet: read more and call again.
    Incomplete,
    /// A line that is not a valid command: drop `consumed` bytes and reply `-ERR` with
    /// the error's message (and close if [`ParseError::must_close`]).
    Error { consumed: usize, error: ParseError },
}

/// Parses the first command line in `buf`.
pub fn parse_command(buf: &[u8]) -> Parse {
    let Some((line, consumed)) = next_line(buf, MAX_LINE) else {
        if buf.len() >= MAX_LINE {
            return Parse::Error {
                consumed: buf.len(),
                error: ParseError::new(
                    ParseErrorKind::LineTooLong,
                    format!("command line longer than {MAX_LINE} octets"),
                ),
            };
        }
        return Parse::Incomplete;
    };
    match parse_line(line) {
        Ok(command) => Parse::Complete { consumed, command },
        Err(error) => Parse::Error { consumed, error },
    }
}

/// The first line of `buf` without its line end, and the bytes it takes with its line
/// end; `None` when no line end is within `max` bytes.
pub(crate) fn next_line(buf: &[u8], max: usize) -> Option<(&[u8], usize)> {
    let window = &buf[..buf.len().min(max)];
    let lf = window.iter().position(|&b| b == b'\n')?;
    let line = &buf[..lf];
    Some((line.strip_suffix(b"\r").unwrap_or(line), lf + 1))
}

/// `XCLIENT` attributes: `ADDR` and `SECRET` required, `PORT` optional, nothing else.
fn parse_xclient(args: &[&str]) -> Result<Command, ParseError> {
    let (mut addr, mut port, mut secret) = (None, None, None);
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| ParseError::syntax("XCLIENT attributes are NAME=value"))?;
        let slot = match key.to_ascii_uppercase().as_str() {
            "ADDR" => &mut addr,
            "PORT" => &mut port,
            "SECRET" => &mut secret,
            _ => return Err(ParseError::syntax("XCLIENT knows ADDR, PORT and SECRET")),
        };
        *slot = Some(value.to_string());
    }
    match (addr, secret) {
        (Some(addr), Some(secret)) => Ok(Command::Xclient {
            addr,
            port,
            secret: Secret(secret),
        }),
        _ => Err(ParseError::syntax("XCLIENT needs ADDR and SECRET")),
    }
}

fn parse_line(line: &[u8]) -> Result<Command, ParseError> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(ParseError::syntax("command line is not UTF-8"));
    };
    if line.chars().any(|c| c.is_control()) {
        return Err(ParseError::syntax("control characters in the command line"));
    }
    let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
    if keyword.is_empty() {
        return Err(ParseError::syntax("empty command line"));
    }
    let keyword = keyword.to_ascii_uppercase();
    if keyword == "PASS" {
        // The password is the rest of the line: it may contain spaces (RFC 1939
        // section 7 leaves this to the server; most clients expect it).
        if rest.is_empty() {
            return Err(ParseError::syntax("PASS needs a password"));
        }
        return Ok(Command::Pass(Secret(rest.to_string())));
    }
    let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();
    let command = match keyword.as_str() {
        "USER" => {
            let [name] = exactly(&args, "USER needs one argument: the user name")?;
            Command::User(name.to_string())
        }
        "APOP" => {
            let [name, digest] = exactly(&args, "APOP needs a name and a digest")?;
            Command::Apop {
                name: name.to_string(),
                digest: digest.to_string(),
            }
        }
        "AUTH" => parse_auth(&args)?,
        "QUIT" => none(&args, Command::Quit)?,
        "STAT" => none(&args, Command::Stat)?,
        "NOOP" => none(&args, Command::Noop)?,
        "RSET" => none(&args, Command::Rset)?,
        "CAPA" => none(&args, Command::Capa)?,
        "STLS" => none(&args, Command::Stls)?,
        "XCLIENT" => parse_xclient(&args)?,
        "LIST" => Command::List(optional_message(&args, "LIST")?),
        "UIDL" => Command::Uidl(optional_message(&args, "UIDL")?),
        "RETR" => {
            let [n] = exactly(&args, "RETR needs a message number")?;
            Command::Retr(message_number(n)?)
        }
        "DELE" => {
            let [n] = exactly(&args, "DELE needs a message number")?;
            Command::Dele(message_number(n)?)
        }
        "TOP" => {
            let [n, lines] = exactly(&args, "TOP needs a message number and a line count")?;
            Command::Top {
                message: message_number(n)?,
                lines: number(lines)?,
            }
        }
        _ => {
            return Err(ParseError::new(
                ParseErrorKind::UnknownCommand,
                "unknown command",
            ));
        }
    };
    Ok(command)
}

fn parse_auth(args: &[&str]) -> Result<Command, ParseError> {
    match args {
        [] => Ok(Command::Auth {
            mechanism: None,
            initial_response: None,
        }),
        [mechanism, rest @ ..] if rest.len() <= 1 => {
            let valid = mechanism.len() <= 20
                && mechanism
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(ParseError::syntax("not a SASL mechanism name"));
            }
            let initial_response = match rest.first() {
                None => None,
                // RFC 5034 section 4: "=" is an initial response of zero length.
                Some(&"=") => Some(Secret(Vec::new())),
                Some(encoded) => match base64_decode(encoded) {
                    Some(decoded) if !decoded.is_empty() => Some(Secret(decoded)),
                    _ => return Err(ParseError::syntax("initial response is not base64")),
                },
            };
            Ok(Command::Auth {
                mechanism: Some(mechanism.to_ascii_uppercase()),
                initial_response,
            })
        }
        _ => Err(ParseError::syntax(
            "AUTH takes a mechanism and an initial response at most",
        )),
    }
}

fn exactly<'a, const N: usize>(
    args: &[&'a str],
    message: &'static str,
) -> Result<[&'a str; N], ParseError> {
    <[&str; N]>::try_from(args).map_err(|_| ParseError::syntax(message))
}

fn none(args: &[&str], command: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::syntax(format!(
            "{} takes no arguments",
            command.name()
        )))
    }
}

fn optional_message(args: &[&str], name: &str) -> Result<Option<NonZeroU32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => message_number(n).map(Some),
        _ => Err(ParseError::syntax(format!(
            "{name} takes one message number at most"
        ))),
    }
}

fn number(text: &str) -> Result<u32, ParseError> {
    // Digits only: `u32::from_str` would also take a leading `+`.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::syntax(format!("{text:?} is not a number")));
    }
    text.parse()
        .map_err(|_| ParseError::syntax(format!("{text} is too large")))
}

fn message_number(text: &str) -> Result<NonZeroU32, ParseError> {
    NonZeroU32::new(number(text)?).ok_or_else(|| ParseError::syntax("message numbers start at 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: u32) -> NonZeroU32 {
        NonZeroU32::new(value).unwrap()
    }

    /// Each line parsed alone: `Ok(command)` or `Err(kind)`.
    fn check(cases: &[(&str, Result<Command, ParseErrorKind>)]) {
        for (line, want) in cases {
            let input = format!("{line}\r\n");
            let got = match parse_command(input.as_bytes()) {
                Parse::Complete { consumed, command } => {
                    assert_eq!(consumed, input.len(), "{line:?}");
                    Ok(command)
                }
                Parse::Error { consumed, error } => {
                    assert_eq!(consumed, input.len(), "{line:?}");
                    assert!(!error.message().contains(['\r', '\n']), "{line:?}");
                    Err(error.kind())
                }
                Parse::Incomplete => panic!("{line:?}: incomplete"),
            };
            assert_eq!(&got, want, "{line:?}");
        }
    }

    use ParseErrorKind::{Syntax, UnknownCommand};

    #[test]
    fn user_and_pass() {
        check(&[
            (
                "USER alice@example.com",
                Ok(Command::User("alice@example.com".into())),
            ),
            ("user  bob", Ok(Command::User("bob".into()))),
            ("USER", Err(Syntax)),
            ("USER a b", Err(Syntax)),
            ("PASS secret", Ok(Command::Pass(Secret("secret".into())))),
            (
                "pass two words ",
                Ok(Command::Pass(Secret("two words ".into()))),
            ),
            ("PASS", Err(Syntax)),
            ("PASS ", Err(Syntax)),
        ]);
    }

    #[test]
    fn apop() {
        check(&[
            (
                "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Ok(Command::Apop {
                    name: "mrose".into(),
                    digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
                }),
            ),
            ("APOP mrose", Err(Syntax)),
        ]);
    }

    #[test]
    fn auth() {
        let plain = |initial: Option<&[u8]>| {
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: initial.map(|i| Secret(i.to_vec())),
            })
        };
        check(&[
            (
                "AUTH",
                Ok(Command::Auth {
                    mechanism: None,
                    initial_response: None,
                }),
            ),
            ("AUTH plain", plain(None)),
            ("AUTH PLAIN =", plain(Some(b""))),
            ("AUTH PLAIN AGFsaWNlAHB3", plain(Some(b"\0alice\0pw"))),
            ("AUTH PLAIN not*base64", Err(Syntax)),
            ("AUTH PLAIN a b", Err(Syntax)),
            ("AUTH PL{AIN", Err(Syntax)),
        ]);
    }

    #[test]
    fn commands_without_arguments() {
        check(&[
            ("QUIT", Ok(Command::Quit)),
            ("quit", Ok(Command::Quit)),
            ("STAT", Ok(Command::Stat)),
            ("NOOP", Ok(Command::Noop)),
            ("RSET", Ok(Command::Rset)),
            ("CAPA", Ok(Command::Capa)),
            ("StLs", Ok(Command::Stls)),
            ("STAT 1", Err(Syntax)),
            ("QUIT now", Err(Syntax)),
        ]);
    }

    #[test]
    fn xclient() {
        let xclient = |addr: &str, port: Option<&str>, secret: &str| {
            Ok(Command::Xclient {
                addr: addr.into(),
                port: port.map(Into::into),
                secret: Secret(secret.into()),
            })
        };
        check(&[
            (
                "XCLIENT ADDR=192.0.2.7 PORT=4000 SECRET=s",
                xclient("192.0.2.7", Some("4000"), "s"),
            ),
            ("xclient secret=s addr=::1", xclient("::1", None, "s")),
            ("XCLIENT ADDR=192.0.2.7", Err(Syntax)),
            ("XCLIENT SECRET=s", Err(Syntax)),
            ("XCLIENT ADDR=1 SECRET=s HELO=x", Err(Syntax)),
            ("XCLIENT ADDR", Err(Syntax)),
        ]);
    }

    #[test]
    fn list_and_uidl() {
        check(&[
            ("LIST", Ok(Command::List(None))),
            ("LIST 2", Ok(Command::List(Some(n(2))))),
            ("LIST 0", Err(Syntax)),
            ("LIST -1", Err(Syntax)),
            ("LIST +1", Err(Syntax)),
            ("LIST 1 2", Err(Syntax)),
            ("LIST 99999999999", Err(Syntax)),
            ("UIDL", Ok(Command::Uidl(None))),
            ("uidl 4294967295", Ok(Command::Uidl(Some(n(u32::MAX))))),
            ("UIDL x", Err(Syntax)),
        ]);
    }

    #[test]
    fn retr_dele_top() {
        check(&[
            ("RETR 1", Ok(Command::Retr(n(1)))),
            ("RETR", Err(Syntax)),
            ("RETR 1 2", Err(Syntax)),
            ("DELE 7", Ok(Command::Dele(n(7)))),
            ("DELE 0", Err(Syntax)),
            (
                "TOP 1 0",
                Ok(Command::Top {
                    message: n(1),
                    lines: 0,
                }),
            ),
            (
                "TOP 3 10",
                Ok(Command::Top {
                    message: n(3),
                    lines: 10,
                }),
            ),
            ("TOP 1", Err(Syntax)),
            ("TOP 1 x", Err(Syntax)),
        ]);
    }

    #[test]
    fn bad_lines() {
        check(&[
            ("", Err(Syntax)),
            (" STAT", Err(Syntax)),
            ("XTND XMIT", Err(UnknownCommand)),
            ("LAST", Err(UnknownCommand)),
            ("STAT\u{7}", Err(Syntax)),
        ]);
    }

    #[test]
    fn framing() {
        assert_eq!(parse_command(b""), Parse::Incomplete);
        assert_eq!(parse_command(b"STA"), Parse::Incomplete);
        assert_eq!(parse_command(b"STAT\r"), Parse::Incomplete);
        // A bare LF ends a line too; what follows stays for the next call.
        assert_eq!(
            parse_command(b"STAT\nNOOP\r\n"),
            Parse::Complete {
                consumed: 5,
                command: Command::Stat
            }
        );
        let Parse::Error { consumed, error } = parse_command(b"\xff\xfe\r\nSTAT\r\n") else {
            panic!()
        };
        assert_eq!((consumed, error.kind()), (4, Syntax));
    }

    #[test]
    fn long_lines() {
        let mut longest = b"PASS ".to_vec();
        longest.resize(MAX_LINE - 2, b'x');
        longest.extend_from_slice(b"\r\n");
        assert!(matches!(parse_command(&longest), Parse::Complete { .. }));
        let mut too_long = vec![b'x'; MAX_LINE];
        assert!(matches!(
            parse_command(&too_long),
            Parse::Error { consumed: MAX_LINE, ref error } if error.must_close()
        ));
        too_long.truncate(MAX_LINE - 1);
        assert_eq!(parse_command(&too_long), Parse::Incomplete);
    }

    #[test]
    fn passwords_are_not_logged() {
        let command = Command::Pass(Secret("hunter2".into()));
        assert!(!format!("{command:?}").contains("hunter2"));
    }
}
