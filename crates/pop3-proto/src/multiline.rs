//! Multi-line responses (RFC 1939 section 3): every line ends in CRLF, a line that
//! starts with `.` gets another `.` in front ("byte-stuffing"), and a line holding a
//! single `.` ends the response.

/// Appends `body` as the lines of a multi-line response, byte-stuffed, then the
/// terminating `.` line.
///
/// Line ends are sent as CRLF whatever the body holds: a bare LF becomes CRLF, and a
/// last line without a line end gets one. Without that, a client reading lines could
/// see the terminator where there is none, or miss it. Bodies delivered over LMTP or
/// APPEND already use CRLF, so for them the bytes sent are exactly the stored ones plus
/// the stuffing.
pub fn encode_multiline(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + body.len() / 64 + 3);
    let mut encoder = MultilineEncoder::new();
    encoder.encode(body, out);
    encoder.finish(out);
}

/// [`encode_multiline`] in pieces, for a body too large to copy into one buffer: the
/// pieces may be cut anywhere (in a line, between a CR and its LF), and the output of
/// [`encode`](Self::encode) over all of them followed by [`finish`](Self::finish) is
/// byte for byte what `encode_multiline` gives for the whole.
#[derive(Debug)]
pub struct MultilineEncoder {
    /// The next byte starts a line (and may need stuffing).
    line_start: bool,
    /// The last piece ended in a CR that is dropped if an LF follows (a CRLF line end
    /// is sent as CRLF, not CR CRLF) and sent otherwise.
    cr_pending: bool,
}

impl Default for MultilineEncoder {
    fn default() -> Self {
        MultilineEncoder::new()
    }
}

impl MultilineEncoder {
    pub fn new() -> MultilineEncoder {
        MultilineEncoder {
            line_start: true,
            cr_pending: false,
        }
    }

    /// Appends the encoding of the next piece of the body.
    pub fn encode(&mut self, mut piece: &[u8], out: &mut Vec<u8>) {
        while !piece.is_empty() {
            if self.line_start {
                if piece[0] == b'.' {
                    out.push(b'.');
                }
                self.line_start = false;
            }
            match piece.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let line = &piece[..lf];
                    if std::mem::take(&mut self.cr_pending) && !line.is_empty() {
                        out.push(b'\r');
                    }
                    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    piece = &piece[lf + 1..];
                }
                None => {
                    if std::mem::take(&mut self.cr_pending) {
                        out.push(b'\r');
                    }
                    let (text, cr) = match piece.strip_suffix(b"\r") {
                        Some(text) => (text, true),
                        None => (piece, false),
                    };
                    out.extend_from_slice(text);
                    self.cr_pending = cr;
                    piece = &[];
                }
            }
        }
    }

    /// Ends the last line (a CR at the very end is part of its line end) and appends
    /// the terminating `.` line.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The part of a message `TOP msg n` sends (RFC 1939 section 7): the header, the empty
/// line that ends it, and the first `lines` lines of the body. A message without an
/// empty line is all header.
pub fn top_of(message: &[u8], lines: u32) -> &[u8] {
    let Some(body_start) = header_end(message) else {
        return message;
    };
    let mut end = body_start;
    for _ in 0..lines {
        match message[end..].iter().position(|&b| b == b'\n') {
            Some(lf) => end += lf + 1,
            None => return message,
        }
    }
    &message[..end]
}

/// Where the body starts: just after the first empty line (CRLF or bare LF).
fn header_end(message: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    while line_start < message.len() {
        let lf = line_start + message[line_start..].iter().position(|&b| b == b'\n')?;
        let line = &message[line_start..lf];
        if line.is_empty() || line == b"\r" {
            return Some(lf + 1);
        }
        line_start = lf + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_and_terminates() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"..x\r\n", b"...x\r\n.\r\n"),
            (b" .x\r\n", b" .x\r\n.\r\n"),
            (b"no end", b"no end\r\n.\r\n"),
            (b"bare\nlf\n.\n", b"bare\r\nlf\r\n..\r\n.\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
            (b"x\ry\r\n", b"x\ry\r\n.\r\n"),
        ];
        for (body, want) in cases {
            let mut out = Vec::new();
            encode_multiline(body, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn pieces_encode_like_the_whole(
            body in proptest::collection::vec(
                proptest::sample::select(vec![b'.', b'\r', b'\n', b'a', b' ']),
                0..200,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let mut whole = Vec::new();
            encode_multiline(&body, &mut whole);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut encoder = MultilineEncoder::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                encoder.encode(&body[at..cut], &mut pieces);
                at = cut;
            }
            encoder.finish(&mut pieces);
            proptest::prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn top_cuts_after_the_header() {
        let message = b"From: a\r\nSubject: s\r\n\r\none\r\ntwo\r\nthree\r\n";
        let cases: &[(u32, &[u8])] = &[
            (0, b"From: a\r\nSubject: s\r\n\r\n"),
            (1, b"From: a\r\nSubject: s\r\n\r\none\r\n"),
            (2, b"From: a\r\nSubject: s\r\n\r\none\r\ntwo\r\n"),
            (3, message),
            (100, message),
        ];
        for (lines, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(top_of(message, *lines)),
                String::from_utf8_lossy(want),
                "{lines}"
            );
        }
        assert_eq!(top_of(b"Subject: only\r\n", 5), b"Subject: only\r\n");
        assert_eq!(top_of(b"A: b\n\nbody\nmore\n", 1), b"A: b\n\nbody\n");
        assert_eq!(top_of(b"\r\nbody\r\n", 0), b"\r\n");
        assert_eq!(top_of(b"A: b\r\n\r\nno end", 1), b"A: b\r\n\r\nno end");
    }
}
