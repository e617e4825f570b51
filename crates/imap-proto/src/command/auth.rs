//! AUTHENTICATE (with SASL-IR, RFC 4959) and LOGIN, plus the client's SASL response
//! lines that follow an AUTHENTICATE continuation.

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};

/// `AUTHENTICATE mechanism [initial-response]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    /// Upper-cased, e.g. `PLAIN`.
    pub mechanism: String,
    /// The SASL-IR initial response, base64-decoded; `Some(vec![])` for `=`, which
    /// means "an empty response" as opposed to "none".
    pub initial_response: Option<Vec<u8>>,
}

/// `LOGIN user password`. Both must be UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    // Commands end up in logs and test failures; a password must not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub(crate) fn parse_authenticate(c: &mut Cursor<'_>) -> PResult<Authenticate> {
    c.sp()?;
    let mechanism = c.atom()?.to_ascii_uppercase();
    let initial_response = if c.eat(b' ') {
        let text = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        Some(
            decode_sasl(text)
                .ok_or_else(|| ParseError::syntax("initial response is not base64"))?,
        )
    } else {
        None
    };
    Ok(Authenticate {
        mechanism,
        initial_response,
    })
}

pub(crate) fn parse_login(c: &mut Cursor<'_>) -> PResult<Login> {
    c.sp()?;
    let username = c.astring_utf8("user name")?;
    c.sp()?;
    let password = c.astring_utf8("password")?;
    Ok(Login { username, password })
}

/// A client line during an AUTHENTICATE exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslResponse {
    /// The decoded response; drop `consumed` bytes.
    Data {
        consumed: usize,
        data: Vec<u8>,
    },
    /// `*`: the client gives up; reply `tag BAD`.
    Cancel {
        consumed: usize,
    },
    Incomplete,
    /// Not base64, or longer than `max_line`: reply `tag BAD` and end the exchange.
    Error {
        consumed: usize,
    },
}

/// Reads one SASL response line (RFC 9051 section 6.2.2).
pub fn parse_sasl_response(input: &[u8], max_line: usize) -> SaslResponse {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        return if input.len() > max_line {
            SaslResponse::Error {
                consumed: input.len(),
            }
        } else {
            SaslResponse::Incomplete
        };
    };
    let consumed = lf + 1;
    let line = &input[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"*" {
        return SaslResponse::Cancel { consumed };
    }
    match decode_sasl(line) {
        Some(data) if line.len() <= max_line => SaslResponse::Data { consumed, data },
        _ => SaslResponse::Error { consumed },
    }
}

/// Decodes SASL base64, where `=` alone is an empty response.
fn decode_sasl(text: &[u8]) -> Option<Vec<u8>> {
    if text == b"=" {
        return Some(Vec::new());
    }
    if text.is_empty() {
        return None;
    }
    decode_base64(text)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Strict standard base64 with padding; `None` on anything else.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let chunks = text.len() / 4;
    for (i, chunk) in text.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n: u32 = 0;
        for &b in &chunk[..4 - pad] {
            n = (n << 6) | BASE64.iter().position(|&a| a == b)? as u32;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding, for server challenges.
pub fn encode_base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn login(u: &str, p: &str) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Login(Login {
            username: u.into(),
            password: p.into(),
        }))
    }

    fn auth(m: &str, ir: Option<&[u8]>) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Authenticate(Authenticate {
            mechanism: m.into(),
            initial_response: ir.map(<[u8]>::to_vec),
        }))
    }

    #[test]
    fn parses_login() {
        check(&[
            ("a LOGIN alice secret\r\n", login("alice", "secret")),
            ("a login \"al ice\" \"p\\\"w\"\r\n", login("al ice", "p\"w")),
            (
                "a LOGIN {5}\r\nalice {3+}\r\na b\r\n",
                login("alice", "a b"),
            ),
            ("a LOGIN a]b x\r\n", login("a]b", "x")),
            ("a LOGIN \"\" \"\"\r\n", login("", "")),
            ("a LOGIN alice\r\n", Err("expected a space")),
            ("a LOGIN alice \r\n", Err("expected an atom or a string")),
            ("a LOGIN (alice) x\r\n", Err("expected an atom or a string")),
            ("a LOGIN alice x y\r\n", Err("expected the end of the line")),
        ]);
    }

    #[test]
    fn parses_authenticate() {
        check(&[
            ("a AUTHENTICATE plain\r\n", auth("PLAIN", None)),
            ("a AUTHENTICATE PLAIN =\r\n", auth("PLAIN", Some(b""))),
            (
                "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
                auth("PLAIN", Some(b"\0alice\0secret")),
            ),
            (
                "a AUTHENTICATE PLAIN AGFsaWN!\r\n",
                Err("initial response is not base64"),
            ),
            (
                "a AUTHENTICATE PLAIN abc\r\n",
                Err("initial response is not base64"),
            ),
            ("a AUTHENTICATE\r\n", Err("expected a space")),
        ]);
    }

    #[test]
    fn login_rejects_non_utf8() {
        let e = super::super::parse(b"a LOGIN alice \"\xff\"\r\n").unwrap_err();
        assert_eq!(e.message(), "password is not valid UTF-8");
    }

    #[test]
    fn login_debug_hides_password() {
        let l = Login {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{l:?}").contains("hunter2"));
    }

    #[test]
    fn reads_sasl_lines() {
        let cases: &[(&[u8], SaslResponse)] = &[
            (b"", SaslResponse::Incomplete),
            (b"*\r\n", SaslResponse::Cancel { consumed: 3 }),
            (
                b"=\r\n",
                SaslResponse::Data {
                    consumed: 3,
                    data: vec![],
                },
            ),
            (
                b"YQ==\r\n",
                SaslResponse::Data {
                    consumed: 6,
                    data: b"a".to_vec(),
                },
            ),
            (b"YQ=\r\n", SaslResponse::Error { consumed: 5 }),
            (b"\r\n", SaslResponse::Error { consumed: 2 }),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_sasl_response(input, 100), want, "{input:?}");
        }
    }

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"\0\xff\x10"] {
            let text = encode_base64(data);
            assert_eq!(decode_base64(text.as_bytes()).as_deref(), Some(data));
        }
        for bad in ["Y===", "=YQ=", "YQ==YQ==", "Y", "YQ=a"] {
            assert_eq!(decode_base64(bad.as_bytes()), None, "{bad}");
        }
    }
}
