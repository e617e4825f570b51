//! Modified UTF-7 (RFC 3501 section 5.1.3), the mailbox name encoding of IMAP4rev1
//! clients that have not enabled UTF8=ACCEPT.
//!
//! `&` starts a base64 run of UTF-16 (with `,` instead of `/` and no padding), `-` ends
//! it, and `&-` is a literal `&`. Printable ASCII stands for itself.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// The name was not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMutf7;

impl std::fmt::Display for BadMutf7 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailbox name is not valid modified UTF-7")
    }
}

impl std::error::Error for BadMutf7 {}

/// Encodes a UTF-8 name for a rev1 client.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut out, &mut pending);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.push('-');
    pending.clear();
}

/// Decodes a rev1 client's name to UTF-8. Rejects what RFC 3501 forbids: non-printable
/// bytes, unterminated or padded runs, and runs that encode plain ASCII or bad UTF-16.
pub fn decode(name: &str) -> Result<String, BadMutf7> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(BadMutf7);
            }
            out.push(b as char);
            continue;
        }
        let end = rest.iter().position(|&b| b == b'-').ok_or(BadMutf7)?;
        let (run, tail) = rest.split_at(end);
        rest = &tail[1..];
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        let mut pair: Option<u8> = None;
        for &c in run {
            let v = ALPHABET.iter().position(|&a| a == c).ok_or(BadMutf7)? as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                let byte = (bits >> nbits) as u8;
                bits &= (1 << nbits) - 1;
                match pair.take() {
                    None => pair = Some(byte),
                    Some(hi) => units.push(u16::from_be_bytes([hi, byte])),
                }
            }
        }
        // Leftover bits must be zero padding, and no half UTF-16 unit may remain.
        if pair.is_some() || bits != 0 || nbits >= 6 {
            return Err(BadMutf7);
        }
        let decoded = String::from_utf16(&units).map_err(|_| BadMutf7)?;
        if decoded.chars().any(|c| (' '..='~').contains(&c)) {
            return Err(BadMutf7);
        }
        out.push_str(&decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            ("INBOX", "INBOX"),
            ("&", "&-"),
            ("a&b", "a&-b"),
            ("Entw\u{fc}rfe", "Entw&APw-rfe"),
            (
                "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}",
                "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
            ),
            ("\u{1F600}", "&2D3eAA-"),
            ("", ""),
        ];
        for (utf8, mutf7) in cases {
            assert_eq!(encode(utf8), mutf7, "{utf8}");
            assert_eq!(decode(mutf7).as_deref(), Ok(utf8), "{mutf7}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "&",
            "&U,BTFw",
            "&AGE-",
            "&Jjo!-",
            "caf\u{e9}",
            "&2D0-",
            "&APw",
            "&APx-",
        ] {
            assert_eq!(decode(bad), Err(BadMutf7), "{bad}");
        }
    }
}
