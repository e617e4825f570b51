//! How strings go on the wire.
//!
//! We pick the simplest form every client accepts: an atom where the grammar allows one
//! and the text is atom-safe, a quoted string for short printable ASCII, and a literal
//! for anything else, including 8-bit UTF-8. RFC 9051 lets a rev2 server put UTF-8 in
//! quoted strings, but a rev1 client without UTF8=ACCEPT must not see 8-bit quoted
//! strings, and a literal is valid for both, so the encoder need not know which
//! protocol revision the session speaks.

use crate::cursor::is_astring_char;

/// Longer strings go as literals even when printable, keeping response lines short.
const MAX_QUOTED: usize = 1024;

fn quotable(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED && s.iter().all(|&b| (0x20..=0x7e).contains(&b))
}

/// `string`: quoted or literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if quotable(s) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `{N}\r\n` and the bytes.
pub fn literal(out: &mut Vec<u8>, data: &[u8]) {
    let _ = std::io::Write::write_fmt(out, format_args!("{{{}}}\r\n", data.len()));
    out.extend_from_slice(data);
}

/// `literal8` (`~{N}`) when the data holds NUL, which a plain literal may not carry.
pub fn literal8(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        out.push(b'~');
    }
    literal(out, data);
}

/// `nstring`: NIL for `None`.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `nstring` from an optional `String`.
pub fn nstr(out: &mut Vec<u8>, s: Option<&String>) {
    nstring(out, s.map(|s| s.as_bytes()));
}

/// `astring`: an atom when possible. `NIL` is quoted so a reader expecting an nstring
/// cannot mistake it.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// Human-readable `text`: CR and LF would end the response early, so they become
/// spaces.
pub fn text(out: &mut Vec<u8>, s: &str) {
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn picks_the_simplest_form() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"abc", "abc", "\"abc\""),
            (b"a]b", "a]b", "\"a]b\""),
            (b"", "\"\"", "\"\""),
            (b"a b", "\"a b\"", "\"a b\""),
            (b"nil", "\"nil\"", "\"nil\""),
            (b"q\"\\", "\"q\\\"\\\\\"", "\"q\\\"\\\\\""),
            (b"caf\xc3\xa9", "{5}\r\ncaf\u{e9}", "{5}\r\ncaf\u{e9}"),
            (b"a\r\nb", "{4}\r\na\r\nb", "{4}\r\na\r\nb"),
        ];
        for (input, as_astring, as_string) in cases {
            assert_eq!(enc(|o| astring(o, input)), *as_astring, "{input:?}");
            assert_eq!(enc(|o| string(o, input)), *as_string, "{input:?}");
        }
        assert_eq!(enc(|o| nstring(o, None)), "NIL");
        assert_eq!(enc(|o| string(o, &[b'a'; 2000])).len(), 2000 + 8);
        assert_eq!(enc(|o| literal8(o, b"a\0")), "~{2}\r\na\0");
        assert_eq!(enc(|o| literal8(o, b"ab")), "{2}\r\nab");
        assert_eq!(enc(|o| text(o, "a\r\nb")), "a  b");
    }
}
