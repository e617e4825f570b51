//! Receiving the chunks of a `BDAT` transaction (RFC 3030). Unlike DATA, chunk bytes
//! are taken verbatim, with no dot-stuffing and no line-ending changes: the client
//! counted them, and BINARYMIME bodies must not be altered.

/// The result of one [`BdatBody::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BdatFeed {
    /// The whole input was part of the current chunk; feed more.
    NeedMore { consumed: usize },
    /// The current chunk ended after `consumed` bytes of the input. `last` repeats the
    /// chunk's LAST flag; `oversize` says the message so far exceeds `max_size`.
    ChunkDone {
        consumed: usize,
        last: bool,
        oversize: bool,
    },
}

/// The running state of a BDAT transaction: the current chunk and the total size.
///
/// The session calls [`begin_chunk`](Self::begin_chunk) for each `BDAT` command,
/// even one it will refuse, because the chunk's bytes follow the command regardless
/// and must be read past; then it feeds input until `ChunkDone`.
#[derive(Debug, Clone)]
pub struct BdatBody {
    max_size: u64,
    size: u64,
    oversize: bool,
    remaining: u64,
    last: bool,
}

impl BdatBody {
    /// A transaction that stores at most `max_size` bytes in total.
    pub fn new(max_size: u64) -> Self {
        BdatBody {
            max_size,
            size: 0,
            oversize: false,
            remaining: 0,
            last: false,
        }
    }

    /// Starts a chunk of `size` bytes. The size counts toward the total at once, so
    /// [`is_oversize`](Self::is_oversize) can tell the session before any byte arrives
    /// that the chunk will not fit.
    pub fn begin_chunk(&mut self, size: u64, last: bool) {
        self.remaining = size;
        self.last = last;
        self.size = self.size.saturating_add(size);
        if self.size > self.max_size {
            self.oversize = true;
        }
    }

    /// Takes up to the rest of the current chunk from `input`, appending it to `out`
    /// unless the message is oversize. With no chunk in progress (or a zero-size
    /// chunk) it returns `ChunkDone` having consumed nothing.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> BdatFeed {
        // If `remaining` does not fit in usize it is certainly more than `input`.
        let take = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        if !self.oversize {
            out.extend_from_slice(&input[..take]);
        }
        self.remaining -= take as u64;
        if self.remaining == 0 {
            BdatFeed::ChunkDone {
                consumed: take,
                last: self.last,
                oversize: self.oversize,
            }
        } else {
            BdatFeed::NeedMore { consumed: take }
        }
    }

    /// The total of all chunk sizes announced so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the announced chunks exceed `max_size`.
    pub fn is_oversize(&self) -> bool {
        self.oversize
    }

    /// Bytes of the current chunk not yet fed.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_verbatim_and_split_anywhere() {
        let chunks: &[(&[u8], bool)] = &[(b"a\n.\r\n", false), (b"", false), (b"\r\n.\r\nz", true)];
        let mut wire = Vec::new();
        for (c, _) in chunks {
            wire.extend_from_slice(c);
        }
        wire.extend_from_slice(b"QUIT\r\n");
        for step in 1..=wire.len() {
            let mut body = BdatBody::new(1000);
            let mut out = Vec::new();
            let mut pos = 0;
            for (chunk, last) in chunks {
                body.begin_chunk(chunk.len() as u64, *last);
                loop {
                    let end = (pos + step).min(wire.len());
                    match body.feed(&wire[pos..end], &mut out) {
                        BdatFeed::NeedMore { consumed } => {
                            assert_eq!(consumed, end - pos);
                            pos += consumed;
                        }
                        BdatFeed::ChunkDone {
                            consumed,
                            last: l,
                            oversize,
                        } => {
                            pos += consumed;
                            assert_eq!(l, *last);
                            assert!(!oversize);
                            break;
                        }
                    }
                }
            }
            assert_eq!(out, b"a\n.\r\n\r\n.\r\nz", "step {step}");
            assert_eq!(&wire[pos..], b"QUIT\r\n", "step {step}");
            assert_eq!(body.size(), 11);
        }
    }

    #[test]
    fn oversize_is_known_at_begin_and_still_consumed() {
        let mut body = BdatBody::new(5);
        let mut out = Vec::new();
        body.begin_chunk(3, false);
        assert!(!body.is_oversize());
        assert_eq!(
            body.feed(b"abcdef", &mut out),
            BdatFeed::ChunkDone {
                consumed: 3,
                last: false,
                oversize: false
            }
        );
        body.begin_chunk(3, true);
        assert!(body.is_oversize());
        assert_eq!(
            body.feed(b"def", &mut out),
            BdatFeed::ChunkDone {
                consumed: 3,
                last: true,
                oversize: true
            }
        );
        assert_eq!(out, b"abc");
    }

    #[test]
    fn huge_chunk_size_does_not_overflow() {
        let mut body = BdatBody::new(10);
        body.begin_chunk(u64::MAX, false);
        body.begin_chunk(u64::MAX, true);
        assert_eq!(body.size(), u64::MAX);
        let mut out = Vec::new();
        assert_eq!(
            body.feed(b"xyz", &mut out),
            BdatFeed::NeedMore { consumed: 3 }
        );
        assert!(out.is_empty());
        assert_eq!(body.remaining(), u64::MAX - 3);
    }
}
