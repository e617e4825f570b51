//! What SASL needs on the wire (RFC 5034): base64, and the client's line after a
//! server challenge (`+ challenge`), which is base64 data or `*` to cancel.

use crate::command::next_line;

/// What [`parse_sasl_response`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslResponse {
    /// The decoded response; drop `consumed` bytes.
    Data { consumed: usize, data: Vec<u8> },
    /// The client sent `*`: the exchange is cancelled (`-ERR`).
    Cancel { consumed: usize },
    /// Not base64 (or longer than allowed): drop `consumed` bytes and fail the exchange.
    Error { consumed: usize },
    /// No whole line yet.
    Incomplete,
}

/// Parses the client's line after a challenge; lines longer than `max` bytes are an
/// [`SaslResponse::Error`] that consumes everything buffered.
pub fn parse_sasl_response(buf: &[u8], max: usize) -> SaslResponse {
    let Some((line, consumed)) = next_line(buf, max) else {
        if buf.len() >= max {
            return SaslResponse::Error {
                consumed: buf.len(),
            };
        }
        return SaslResponse::Incomplete;
    };
    if line == b"*" {
        return SaslResponse::Cancel { consumed };
    }
    let decoded = std::str::from_utf8(line).ok().and_then(base64_decode);
    match decoded {
        Some(data) => SaslResponse::Data { consumed, data },
        None => SaslResponse::Error { consumed },
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4); `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &b in &chunk[..4 - pad] {
            let v = ALPHABET.iter().position(|&a| a == b)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9*", "Zm9v\n"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn responses() {
        assert_eq!(parse_sasl_response(b"AGE", 100), SaslResponse::Incomplete);
        assert_eq!(
            parse_sasl_response(b"AGEAYg==\r\nSTAT\r\n", 100),
            SaslResponse::Data {
                consumed: 10,
                data: b"\0a\0b".to_vec()
            }
        );
        assert_eq!(
            parse_sasl_response(b"*\r\n", 100),
            SaslResponse::Cancel { consumed: 3 }
        );
        assert_eq!(
            parse_sasl_response(b"!!\r\n", 100),
            SaslResponse::Error { consumed: 4 }
        );
        assert_eq!(
            parse_sasl_response(&[b'A'; 8], 8),
            SaslResponse::Error { consumed: 8 }
        );
        // An empty line is an empty response.
        assert_eq!(
            parse_sasl_response(b"\r\n", 100),
            SaslResponse::Data {
                consumed: 2,
                data: Vec::new()
            }
        );
    }
}
