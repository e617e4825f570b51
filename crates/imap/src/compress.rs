//! COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951, no zlib header) both ways.
//!
//! Input is read compressed into `raw` and inflated into the session's input buffer;
//! output is deflated with a sync flush each time the session flushes, so every
//! response burst reaches the client whole (RFC 4978 section 4).

use std::io;

use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

/// The working buffer each deflate or inflate step writes into.
const STEP: usize = 16 * 1024;

/// zlib's default level: most of the gain for a modest cost in CPU.
const LEVEL: i32 = 6;

pub(crate) struct Deflate {
    compressor: Box<CompressorOxide>,
    inflater: Box<InflateState>,
    /// Compressed bytes read and not yet inflated.
    pub(crate) raw: Vec<u8>,
}

impl Deflate {
    pub(crate) fn new() -> Deflate {
        // Negative window bits select raw DEFLATE; 15 is the largest window.
        let flags = create_comp_flags_from_zip_params(LEVEL, -15, 0);
        Deflate {
            compressor: Box::new(CompressorOxide::new(flags)),
            inflater: InflateState::new_boxed(DataFormat::Raw),
            raw: Vec::new(),
        }
    }

    /// Inflates everything in `raw` onto the end of `out`. A block cut short by the
    /// read is kept in the inflater's state until the rest arrives.
    pub(crate) fn inflate_into(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = vec![0u8; STEP];
        let mut pos = 0;
        loop {
            let result = miniz_oxide::inflate::stream::inflate(
                &mut self.inflater,
                &self.raw[pos..],
                &mut buf,
                MZFlush::None,
            );
            pos += result.bytes_consumed;
            out.extend_from_slice(&buf[..result.bytes_written]);
            // No progress: the rest waits for more input (and the loop cannot spin).
            if result.bytes_consumed == 0 && result.bytes_written == 0 && result.status.is_ok() {
                break;
            }
            match result.status {
                Ok(MZStatus::Ok) if pos < self.raw.len() || result.bytes_written == buf.len() => {}
                Ok(MZStatus::Ok) => break,
                // Nothing more can be done with what we have: wait for more input.
                Err(miniz_oxide::MZError::Buf) => break,
                Ok(MZStatus::StreamEnd) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the client ended its DEFLATE stream",
                    ));
                }
                Ok(MZStatus::NeedDict) | Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the client's DEFLATE stream is corrupt",
                    ));
                }
            }
        }
        self.raw.drain(..pos);
        Ok(())
    }

    /// Deflates `input` and sync-flushes, so the client can inflate all of it now.
    pub(crate) fn deflate(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let mut buf = vec![0u8; STEP];
        let mut pos = 0;
        loop {
            let result = miniz_oxide::deflate::stream::deflate(
                &mut self.compressor,
                &input[pos..],
                &mut buf,
                MZFlush::Sync,
            );
            pos += result.bytes_consumed;
            out.extend_from_slice(&buf[..result.bytes_written]);
            if result.bytes_consumed == 0 && result.bytes_written == 0 {
                return Ok(out);
            }
            match result.status {
                // A full buffer may hold back more of the flush.
                Ok(_) if pos < input.len() || result.bytes_written == buf.len() => {}
                Ok(_) | Err(miniz_oxide::MZError::Buf) => return Ok(out),
                Err(e) => return Err(io::Error::other(format!("DEFLATE failed: {e:?}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_pieces() {
        let mut server = Deflate::new();
        let mut client = Deflate::new();
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("* {i} FETCH (FLAGS (\\Seen))\r\n").into_bytes())
            .collect();
        let packed = server.deflate(&text).unwrap();
        assert!(packed.len() < text.len() / 4, "{}", packed.len());
        let mut got = Vec::new();
        // Fed a few bytes at a time, as reads may split it.
        for piece in packed.chunks(7) {
            client.raw.extend_from_slice(piece);
            client.inflate_into(&mut got).unwrap();
        }
        assert_eq!(got, text);
        // The stream continues across flushes.
        let more = server.deflate(b"a1 OK done\r\n").unwrap();
        client.raw.extend_from_slice(&more);
        client.inflate_into(&mut got).unwrap();
        assert!(got.ends_with(b"a1 OK done\r\n"));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Deflate::new();
        d.raw.extend_from_slice(&[0xff; 64]);
        assert!(d.inflate_into(&mut Vec::new()).is_err());
    }
}
