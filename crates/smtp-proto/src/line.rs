//! Finding the end of a command line without ever looking further than a limit, so a
//! session that reads into a buffer can refuse a client that sends an endless line.

/// The outcome of [`find_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineScan {
    /// A complete line of this many bytes, including its line ending, starts the buffer.
    Line(usize),
    /// No line end yet and fewer than `max_len` bytes buffered: read more.
    Incomplete,
    /// `max_len` bytes are buffered and none of them ends the line. The session should
    /// answer (e.g. [`crate::Reply::line_too_long`]) and discard input up to and
    /// including the next LF, which `find_line(buf, usize::MAX)` finds.
    TooLong,
}

/// Looks for the end of the first line in `buf`.
///
/// A line ends at LF; the CR before it is part of the line and [`crate::parse_command`]
/// strips it. `max_len` counts the line ending too, so RFC 5321's 512-octet command
/// line limit is `find_line(buf, 512)`. Only the first `max_len` bytes are searched,
/// which keeps the cost per call bounded however much the client has sent.
pub fn find_line(buf: &[u8], max_len: usize) -> LineScan {
    let window = &buf[..buf.len().min(max_len)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => LineScan::Line(i + 1),
        None if buf.len() >= max_len => LineScan::TooLong,
        None => LineScan::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], usize, LineScan)] = &[
            (b"", 10, LineScan::Incomplete),
            (b"NOOP", 10, LineScan::Incomplete),
            (b"NOOP\r", 10, LineScan::Incomplete),
            (b"NOOP\r\n", 10, LineScan::Line(6)),
            (b"NOOP\r\nQUIT\r\n", 10, LineScan::Line(6)),
            (b"NOOP\n", 10, LineScan::Line(5)),
            (b"\r\n", 10, LineScan::Line(2)),
            // Exactly max_len including CRLF is allowed; one more is not.
            (b"NOOP\r\n", 6, LineScan::Line(6)),
            (b"NOOPX\r\n", 6, LineScan::TooLong),
            (b"NOOPXY", 6, LineScan::TooLong),
            (b"NOOPX", 6, LineScan::Incomplete),
            (b"abc", 0, LineScan::TooLong),
            (b"", 0, LineScan::TooLong),
        ];
        let mut failures = Vec::new();
        for (buf, max, want) in cases {
            let got = find_line(buf, *max);
            if got != *want {
                failures.push(format!("{buf:?} max {max}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
