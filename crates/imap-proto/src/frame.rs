//! Framing: finding where one command ends before parsing any of it.
//!
//! An IMAP command is one or more lines; every line but the last ends with a literal
//! announcement (`{N}`, `{N+}` or `~{N}`) followed by N bytes of literal data. A quoted
//! string cannot hold CR or LF, so a line that ends in `{N}` always announces a literal,
//! whatever came before it: the end of a command can be found without understanding the
//! command. Doing this first means the grammar parser only ever sees a whole command,
//! and all the literal flow (continuations, limits, waiting for data) lives here.

use crate::Limits;
use crate::error::{ParseError, ParseErrorKind};

/// RFC 7888: with LITERAL- a non-synchronizing literal may carry at most this much.
pub(crate) const LITERAL_MINUS_MAX: u64 = 4096;

/// Why [`frame`] could not return the end of a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Incomplete,
    NeedContinuation {
        literal_len: u32,
        data_offset: usize,
    },
    Error {
        consumed: usize,
        error: ParseError,
    },
}

/// A literal announced at the end of a line.
struct Announcement {
    len: u64,
    synchronizing: bool,
}

/// Returns the length of the first complete command in `input` (through its final line
/// end), or why there is none yet.
pub(crate) fn frame(input: &[u8], limits: &Limits) -> Result<usize, Stop> {
    frame_noting(input, limits, &mut None)
}

/// A literal whose announcement has arrived (and passed every limit) but whose data has
/// not all arrived yet: where a session may take the data elsewhere as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLiteral {
    /// Where the line holding the announcement starts (0 for the command's first line).
    pub line_start: usize,
    /// Where the announcement's `{` is.
    pub announcement: usize,
    /// Where the literal's data starts: just after the announcement's line end.
    pub data_offset: usize,
    /// The announced length.
    pub len: u64,
    pub synchronizing: bool,
}

/// The literal the first command in `input` is waiting for, if the command is
/// incomplete because a literal's data is still arriving.
pub(crate) fn pending_literal(input: &[u8], limits: &Limits) -> Option<PendingLiteral> {
    let mut pending = None;
    match frame_noting(input, limits, &mut pending) {
        Err(Stop::Incomplete | Stop::NeedContinuation { .. }) => pending,
        _ => None,
    }
}

/// [`frame`], noting in `pending` the literal it stopped in, if it stopped in one.
fn frame_noting(
    input: &[u8],
    limits: &Limits,
    pending: &mut Option<PendingLiteral>,
) -> Result<usize, Stop> {
    let mut pos: usize = 0;
    loop {
        let line_start = pos;
        // Look no further than the line limit: a client streaming a line without end
        // must not make us scan (or the session buffer) forever.
        let window_end = input
            .len()
            .min(line_start.saturating_add(limits.max_line.saturating_add(2)));
        let Some(lf) = input[line_start..window_end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| line_start + i)
        else {
            if input.len() - line_start > limits.max_line.saturating_add(1) {
                // If the line end has already arrived, skip just this line and let the
                // session carry on; otherwise the rest of the line is still coming.
                if let Some(i) = input[window_end..].iter().position(|&b| b == b'\n') {
                    let lf = window_end + i;
                    let line = &input[line_start..lf];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let non_sync = announcement(line).is_some_and(|a| !a.synchronizing);
                    let message = format!("line longer than {} bytes", limits.max_line);
                    return Err(Stop::Error {
                        consumed: lf + 1,
                        error: if non_sync {
                            ParseError::closing(ParseErrorKind::LineTooLong, message)
                        } else {
                            ParseError::new(ParseErrorKind::LineTooLong, message)
                        },
                    });
                }
                return Err(Stop::Error {
                    consumed: input.len(),
                    error: ParseError::closing(
                        ParseErrorKind::LineTooLong,
                        format!("line longer than {} bytes", limits.max_line),
                    ),
                });
            }
            return Err(Stop::Incomplete);
        };
        let content_end = if lf > line_start && input[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        let line = &input[line_start..content_end];
        let announcement = announcement(line);
        if line.len() > limits.max_line {
            let message = format!("line longer than {} bytes", limits.max_line);
            // A non-synchronizing literal's bytes follow whether we like it or not.
            let error = match &announcement {
                Some(a) if !a.synchronizing => {
                    ParseError::closing(ParseErrorKind::LineTooLong, message)
                }
                _ => ParseError::new(ParseErrorKind::LineTooLong, message),
            };
            return Err(Stop::Error {
                consumed: lf + 1,
                error,
            });
        }
        let Some(literal) = announcement else {
            return Ok(lf + 1);
        };
        let data_start = lf + 1;
        let too_big = if literal.len > u64::from(limits.max_literal) {
            Some(format!(
                "literal larger than {} bytes [TOOBIG]",
                limits.max_literal
            ))
        } else if !literal.synchronizing && limits.literal_minus && literal.len > LITERAL_MINUS_MAX
        {
            Some(format!(
                "non-synchronizing literal larger than {LITERAL_MINUS_MAX} bytes"
            ))
        } else if (data_start as u64).saturating_add(literal.len) > limits.max_command as u64 {
            Some(format!("command larger than {} bytes", limits.max_command))
        } else {
            None
        };
        if let Some(message) = too_big {
            let error = if literal.synchronizing {
                ParseError::new(ParseErrorKind::TooBig, message)
            } else {
                ParseError::closing(ParseErrorKind::TooBig, message)
            };
            return Err(Stop::Error {
                consumed: data_start,
                error,
            });
        }
        // Checked above: the literal fits in max_command, which is a usize.
        let data_end = data_start + literal.len as usize;
        if input.len() < data_end {
            *pending = Some(PendingLiteral {
                line_start,
                announcement: line_start + line.iter().rposition(|&b| b == b'{').unwrap_or(0),
                data_offset: data_start,
                len: literal.len,
                synchronizing: literal.synchronizing,
            });
            if literal.synchronizing && input.len() == data_start {
                return Err(Stop::NeedContinuation {
                    literal_len: literal.len as u32,
                    data_offset: data_start,
                });
            }
            return Err(Stop::Incomplete);
        }
        pos = data_end;
    }
}

/// Recognises `{N}`, `{N+}` (and so `~{N}`) at the end of a line.
fn announcement(line: &[u8]) -> Option<Announcement> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let synchronizing = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(Announcement { len, synchronizing })
}

/// The tag at the start of `input`, if it has a valid one, so that even a command the
/// framer rejects can get a tagged BAD.
pub(crate) fn tag_of(input: &[u8]) -> Option<String> {
    let end = input
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = &input[..end];
    if !tag.is_empty() && tag.iter().all(|&b| crate::cursor::is_tag_char(b)) {
        // Tag characters are ASCII, so this cannot fail.
        String::from_utf8(tag.to_vec()).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_line: 40,
            max_literal: 100,
            ..Limits::default()
        }
    }

    #[test]
    fn frames_commands() {
        let cases: &[(&[u8], Result<usize, Stop>)] = &[
            (b"", Err(Stop::Incomplete)),
            (b"a NOOP", Err(Stop::Incomplete)),
            (b"a NOOP\r\n", Ok(8)),
            (b"a NOOP\nb NOOP\r\n", Ok(7)),
            (
                b"a LOGIN {3}\r\n",
                Err(Stop::NeedContinuation {
                    literal_len: 3,
                    data_offset: 13,
                }),
            ),
            (b"a LOGIN {3}\r\nbo", Err(Stop::Incomplete)),
            (b"a LOGIN {3}\r\nbob x\r\n", Ok(20)),
            (b"a LOGIN {3+}\r\n", Err(Stop::Incomplete)),
            (
                b"a LOGIN {3+}\r\nbob {1}\r\n",
                Err(Stop::NeedContinuation {
                    literal_len: 1,
                    data_offset: 23,
                }),
            ),
            (b"a LOGIN {3+}\r\nbob {1}\r\nx\r\n", Ok(26)),
            (b"a X {0}\r\n\r\n", Ok(11)),
            // Literal data may itself contain what looks like an announcement.
            (b"a X {5}\r\n{99}\n\r\n", Ok(16)),
            (b"a X {abc}\r\n", Ok(11)),
            (b"a X ~{2}\r\nab\r\n", Ok(14)),
        ];
        for (input, want) in cases {
            assert_eq!(
                &frame(input, &limits()),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// line_start, announcement, data_offset, len, synchronizing
    type Pending = Option<(usize, usize, usize, u64, bool)>;

    #[test]
    fn finds_the_pending_literal() {
        let cases: &[(&[u8], Pending)] = &[
            (b"a NOOP", None),
            (b"a NOOP\r\n", None),
            (b"a LOGIN {3}\r\n", Some((0, 8, 13, 3, true))),
            (b"a LOGIN {3}\r\nbo", Some((0, 8, 13, 3, true))),
            (
                b"a LOGIN {3}\r\nbob {2+}\r\nx",
                Some((16, 17, 23, 2, false)),
            ),
            (b"a X ~{2}\r\na", Some((0, 5, 10, 2, true))),
            (b"a LOGIN {3}\r\nbob x\r\n", None),
            (b"a LOGIN {300}\r\n", None),
        ];
        for (input, want) in cases {
            let got = pending_literal(input, &limits()).map(|p| {
                (
                    p.line_start,
                    p.announcement,
                    p.data_offset,
                    p.len,
                    p.synchronizing,
                )
            });
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn enforces_limits() {
        let kind_and_close = |input: &[u8]| match frame(input, &limits()) {
            Err(Stop::Error { consumed, error }) => (consumed, error.kind(), error.must_close()),
            other => panic!("{other:?}"),
        };
        let long = [b'x'; 60];
        assert_eq!(
            kind_and_close(&long),
            (60, ParseErrorKind::LineTooLong, true)
        );
        let mut long_line = long.to_vec();
        long_line.extend_from_slice(b"\r\nb NOOP\r\n");
        assert_eq!(
            kind_and_close(&long_line),
            (62, ParseErrorKind::LineTooLong, false)
        );
        assert_eq!(
            kind_and_close(b"a APPEND x {101}\r\n"),
            (18, ParseErrorKind::TooBig, false)
        );
        assert_eq!(
            kind_and_close(b"a APPEND x {101+}\r\n"),
            (19, ParseErrorKind::TooBig, true)
        );
        assert_eq!(
            kind_and_close(b"a APPEND x {99999999999999999}\r\n"),
            (32, ParseErrorKind::TooBig, false)
        );
        let minus = Limits {
            literal_minus: true,
            max_literal: 10_000,
            ..limits()
        };
        assert!(matches!(
            frame(b"a APPEND x {4097+}\r\n", &minus),
            Err(Stop::Error { .. })
        ));
        assert_eq!(
            frame(b"a APPEND x {4096+}\r\n", &minus),
            Err(Stop::Incomplete)
        );
    }

    #[test]
    fn finds_tags() {
        assert_eq!(tag_of(b"a1 NOOP"), Some("a1".into()));
        assert_eq!(tag_of(b"a+ NOOP"), None);
        assert_eq!(tag_of(b"NOOP"), None);
    }
}
