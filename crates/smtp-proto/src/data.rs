//! Receiving the message after `DATA` (RFC 5321 section 4.1.1.4 and 4.5.2), without
//! I/O: the session feeds whatever bytes it has read, in chunks of any size.
//!
//! # Line endings
//! Stored messages use CRLF, because IMAP serves them byte for byte and RFC 5322 says
//! lines end in CRLF. A bare LF is therefore written out as CRLF. A bare CR is kept as
//! it is: it is not a line ending anywhere, and turning it into one would change the
//! message more than needed.
//!
//! # Where lines start
//! Only CRLF starts a new line for the protocol: the terminator is exactly
//! `CRLF . CRLF`, and only a dot after CRLF is removed as dot-stuffing. Accepting
//! `LF . LF` or `LF . CRLF` as the end would let a client hide a second message
//! behind a terminator that an upstream server did not see ("SMTP smuggling"). The
//! cost is that a client that sends bare LF lines and stuffs them keeps its extra
//! dots; such clients are broken in more ways than this.

/// The result of one [`DataDecoder::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// All `consumed` bytes (the whole input) were taken; feed more.
    NeedMore { consumed: usize },
    /// The terminator ended within the input after `consumed` bytes; what follows
    /// belongs to the next command and stays in the session's buffer. `oversize` says
    /// the message exceeded `max_size`, in which case the output holds a truncated
    /// message that must not be delivered.
    Done { consumed: usize, oversize: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or at the very beginning).
    LineStart,
    /// A line started with `.`.
    Dot,
    /// A line started with `.` CR.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, just after a CR.
    Cr,
    /// The terminator was seen.
    Done,
}

/// Decodes a dot-stuffed message up to its terminating `CRLF.CRLF`.
///
/// ```
/// use evermail_smtp_proto::{DataDecoder, Feed};
/// let mut decoder = DataDecoder::new(1024);
/// let mut message = Vec::new();
/// let input = b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
/// assert_eq!(
///     decoder.feed(input, &mut message),
///     Feed::Done { consumed: 25, oversize: false }
/// );
/// assert_eq!(message, b"Subject: hi\r\n\r\n.dot\r\n");
/// assert_eq!(&input[25..], b"QUIT\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    max_size: u64,
    size: u64,
    oversize: bool,
}

impl DataDecoder {
    /// A decoder that stores at most `max_size` decoded bytes.
    pub fn new(max_size: u64) -> Self {
        DataDecoder {
            state: State::LineStart,
            max_size,
            size: 0,
            oversize: false,
        }
    }

    /// Decodes `input`, appending the message bytes to `out`.
    ///
    /// At most `max_size` bytes are ever appended by one decoder (bytes already in
    /// `out`, such as a `Received:` header the session wrote first, do not count):
    /// the first `max_size` bytes of the decoded message. Once the message is larger,
    /// nothing more is appended, but input is still consumed up to the terminator so
    /// the session stays in step with the client.
    /// After `Done`, further calls consume nothing and return `Done` again.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Feed {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::Text => {
                    // Most bytes are plain text; copy runs of them at once.
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(input.len() - i);
                    if run > 0 {
                        self.emit(&input[i..i + run], out);
                        i += run;
                    } else if b == b'\r' {
                        self.state = State::Cr;
                        i += 1;
                    } else {
                        // A bare LF: stored as CRLF, but not a protocol line start.
                        self.emit(b"\r\n", out);
                        i += 1;
                    }
                }
                State::Cr => {
                    if b == b'\n' {
                        self.emit(b"\r\n", out);
                        self.state = State::LineStart;
                        i += 1;
                    } else {
                        // A bare CR; the current byte is looked at again as text.
                        self.emit(b"\r", out);
                        self.state = State::Text;
                    }
                }
                State::LineStart => {
                    if b == b'.' {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                    } else {
                        // The leading dot was stuffing: drop it, keep the rest.
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        self.state = State::Done;
                        i += 1;
                    } else {
                        // `.` CR and something else: the dot was stuffing and the CR
                        // is bare.
                        self.emit(b"\r", out);
                        self.state = State::Text;
                    }
                }
            }
        }
        if self.state == State::Done {
            Feed::Done {
                consumed: i,
                oversize: self.oversize,
            }
        } else {
            Feed::NeedMore { consumed: i }
        }
    }

    /// The decoded size so far, including bytes not stored because of the limit.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the message already exceeds `max_size`; a session may drop what it
    /// buffered without waiting for the end.
    pub fn is_oversize(&self) -> bool {
        self.oversize
    }

    /// Whether the terminator has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Stores `bytes` up to the limit. Storing the part that still fits (rather than
    /// all or nothing) makes the output exactly the first `max_size` decoded bytes,
    /// however the input was split, which keeps the decoder easy to test.
    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let room = self.max_size.saturating_sub(self.size);
        let fits = usize::try_from(room).map_or(bytes.len(), |r| r.min(bytes.len()));
        out.extend_from_slice(&bytes[..fits]);
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.max_size {
            self.oversize = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, expected message, expected consumed or None for "not finished").
    const CASES: &[(&[u8], &[u8], Option<usize>)] = &[
        (b".\r\n", b"", Some(3)),
        (b".\r\nQUIT\r\n", b"", Some(3)),
        (b"a\r\n.\r\n", b"a\r\n", Some(6)),
        (b"a\r\nb\r\n.\r\nRSET\r\n", b"a\r\nb\r\n", Some(9)),
        (b"\r\n.\r\n", b"\r\n", Some(5)),
        (b"..\r\n.\r\n", b".\r\n", Some(7)),
        (b"..x\r\n.\r\n", b".x\r\n", Some(8)),
        (b"...\r\n.\r\n", b"..\r\n", Some(8)),
        (b".x\r\n.\r\n", b"x\r\n", Some(7)),
        (b"a.\r\n.\r\n", b"a.\r\n", Some(7)),
        (b"a\r\n .\r\n.\r\n", b"a\r\n .\r\n", Some(10)),
        // Bare LF is normalised but neither ends the data nor unstuffs.
        (b"a\nb\r\n.\r\n", b"a\r\nb\r\n", Some(8)),
        (b"a\n.\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n", Some(10)),
        (b"a\n.\r\n", b"a\r\n.\r\n", None),
        (b"a\r\n.\n", b"a\r\n\r\n", None),
        (b"a\r\n.\nb\r\n.\r\n", b"a\r\n\r\nb\r\n", Some(11)),
        (b"\n\n.\r\n", b"\r\n\r\n.\r\n", None),
        // Bare CR is kept, including after a leading dot.
        (b"a\rb\r\n.\r\n", b"a\rb\r\n", Some(8)),
        (b"a\r\r\n.\r\n", b"a\r\r\n", Some(7)),
        (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", Some(11)),
        (b"a\r\n.\r\r\n.\r\n", b"a\r\n\r\r\n", Some(10)),
        (b"a\r\n.\r.\r\n", b"a\r\n\r.\r\n", None),
        (b"a\r\n\r.\r\n", b"a\r\n\r.\r\n", None),
        // Not finished yet.
        (b"", b"", None),
        (b"a", b"a", None),
        (b"a\r\n", b"a\r\n", None),
        (b"a\r\n.", b"a\r\n", None),
        (b"a\r\n.\r", b"a\r\n", None),
        (b"a\r", b"a", None),
        // Binary and UTF-8 bytes pass through.
        (
            b"\x00\xff\xc3\xa9\r\n.\r\n",
            b"\x00\xff\xc3\xa9\r\n",
            Some(9),
        ),
    ];

    fn feed_in_parts(input: &[u8], cuts: &[usize], max: u64) -> (Vec<u8>, Feed, usize) {
        let mut decoder = DataDecoder::new(max);
        let mut out = Vec::new();
        let mut start = 0;
        let mut total = 0;
        let mut last = Feed::NeedMore { consumed: 0 };
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            last = decoder.feed(&input[start..end], &mut out);
            match last {
                Feed::NeedMore { consumed } => {
                    assert_eq!(consumed, end - start, "NeedMore must take everything");
                    total += consumed;
                }
                Feed::Done { consumed, .. } => {
                    total += consumed;
                    break;
                }
            }
            start = end;
        }
        (out, last, total)
    }

    fn run_case(input: &[u8], cuts: &[usize]) -> Result<(), String> {
        let (out, last, total) = feed_in_parts(input, cuts, 1 << 20);
        let (want_out, want_consumed) = CASES
            .iter()
            .find(|(i, _, _)| *i == input)
            .map(|(_, o, c)| (*o, *c))
            .unwrap();
        let finished = matches!(last, Feed::Done { .. });
        if out != want_out || finished != want_consumed.is_some() {
            return Err(format!(
                "{:?} cut at {cuts:?}: got {:?} ({last:?}), want {:?} ({want_consumed:?})",
                String::from_utf8_lossy(input),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(want_out),
            ));
        }
        if let Some(want) = want_consumed
            && total != want
        {
            return Err(format!(
                "{input:?} cut at {cuts:?}: consumed {total}, want {want}"
            ));
        }
        Ok(())
    }

    #[test]
    fn one_shot() {
        let failures: Vec<_> = CASES
            .iter()
            .filter_map(|(input, _, _)| run_case(input, &[]).err())
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// Every cut into two and three pieces gives the same result as one piece,
    /// which covers a chunk boundary between CR and LF and inside `CRLF.CRLF`.
    #[test]
    fn every_split() {
        let mut failures = Vec::new();
        for (input, _, _) in CASES {
            for a in 0..=input.len() {
                failures.extend(run_case(input, &[a]).err());
                for b in a..=input.len() {
                    failures.extend(run_case(input, &[a, b]).err());
                }
            }
            let bytewise: Vec<usize> = (1..input.len()).collect();
            failures.extend(run_case(input, &bytewise).err());
        }
        assert!(
            failures.is_empty(),
            "{} failures: {failures:#?}",
            failures.len()
        );
    }

    #[test]
    fn size_limit() {
        let input = b"0123456789\r\n..abc\r\n.\r\nNOOP\r\n";
        // Decoded: "0123456789\r\n.abc\r\n" = 18 bytes.
        for max in [0u64, 1, 11, 12, 17, 18, 19, 1000] {
            for cut in 0..=input.len() {
                let (out, last, total) = feed_in_parts(input, &[cut], max);
                let oversize = max < 18;
                assert_eq!(
                    last,
                    Feed::Done {
                        consumed: last_consumed(last),
                        oversize
                    },
                    "max {max} cut {cut}"
                );
                assert_eq!(total, 22, "max {max} cut {cut}");
                let full = b"0123456789\r\n.abc\r\n";
                assert_eq!(
                    out,
                    full[..full.len().min(max as usize)],
                    "max {max} cut {cut}"
                );
            }
        }
        let mut decoder = DataDecoder::new(5);
        let mut out = Vec::new();
        decoder.feed(b"abcdef", &mut out);
        assert!(decoder.is_oversize());
        assert_eq!(decoder.size(), 6);
        assert!(!decoder.is_done());
    }

    fn last_consumed(feed: Feed) -> usize {
        match feed {
            Feed::NeedMore { consumed } | Feed::Done { consumed, .. } => consumed,
        }
    }

    #[test]
    fn done_is_sticky() {
        let mut decoder = DataDecoder::new(100);
        let mut out = b"Received: x\r\n".to_vec();
        assert_eq!(
            decoder.feed(b"a\r\n.\r\n", &mut out),
            Feed::Done {
                consumed: 6,
                oversize: false
            }
        );
        assert_eq!(
            decoder.feed(b"MAIL FROM:<>\r\n", &mut out),
            Feed::Done {
                consumed: 0,
                oversize: false
            }
        );
        assert_eq!(out, b"Received: x\r\na\r\n");
        assert!(decoder.is_done());
    }
}
