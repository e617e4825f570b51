//! The line that ends IDLE (RFC 2177): `DONE`. IDLE itself has no arguments and is
//! parsed with the other argument-less commands in `mod.rs`.

/// What [`parse_idle_done`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleDone {
    /// `DONE` and its line end; drop `consumed` bytes and reply `tag OK`.
    Done { consumed: usize },
    /// No whole line yet.
    Incomplete,
    /// Any other line: RFC 2177 leaves it open; we end IDLE and reply `tag BAD`.
    /// `consumed` covers the line.
    Error { consumed: usize },
}

/// Looks for the `DONE` line while a session idles. Lines are short, so anything over
/// `max_line` bytes without a line end is an error too.
pub fn parse_idle_done(input: &[u8], max_line: usize) -> IdleDone {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        return if input.len() > max_line {
            IdleDone::Error {
                consumed: input.len(),
            }
        } else {
            IdleDone::Incomplete
        };
    };
    let line = &input[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.eq_ignore_ascii_case(b"DONE") {
        IdleDone::Done { consumed: lf + 1 }
    } else {
        IdleDone::Error { consumed: lf + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_done() {
        let cases: &[(&[u8], IdleDone)] = &[
            (b"", IdleDone::Incomplete),
            (b"DON", IdleDone::Incomplete),
            (b"DONE\r\n", IdleDone::Done { consumed: 6 }),
            (b"done\na NOOP\r\n", IdleDone::Done { consumed: 5 }),
            (b"DONE \r\n", IdleDone::Error { consumed: 7 }),
            (b"a NOOP\r\n", IdleDone::Error { consumed: 8 }),
            (b"xxxxxxxxxxx", IdleDone::Error { consumed: 11 }),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_idle_done(input, 10), want, "{input:?}");
        }
    }
}
