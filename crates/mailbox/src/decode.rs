//! Undoing a part's Content-Transfer-Encoding, for IMAP BINARY (RFC 3516) and anything
//! else that needs a part's content rather than its stored form.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

/// The content of a part body stored with `encoding` (a Content-Transfer-Encoding
/// value, any case). `None` when the encoding is not one of RFC 2045's, or the data is
/// not valid for it; IMAP answers that with `[UNKNOWN-CTE]`.
pub fn decode_transfer_encoding<'a>(encoding: &str, body: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    match encoding.trim().to_ascii_uppercase().as_str() {
        "" | "7BIT" | "8BIT" | "BINARY" => Some(Cow::Borrowed(body)),
        "BASE64" => base64_decode(body).map(Cow::Owned),
        "QUOTED-PRINTABLE" => quoted_printable_decode(body).map(Cow::Owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (encoding, stored body, content or `None` for UNKNOWN-CTE)
    type Case = (&'static str, &'static [u8], Option<&'static [u8]>);

    #[test]
    fn decodes_each_encoding() {
        let cases: &[Case] = &[
            ("7BIT", b"plain\r\n", Some(b"plain\r\n")),
            ("binary", b"a\0b", Some(b"a\0b")),
            ("BASE64", b"AAEC\r\nAwQ=\r\n", Some(b"\0\x01\x02\x03\x04")),
            ("base64", b"", Some(b"")),
            (
                "Quoted-Printable",
                b"caf=C3=A9 soft=\r\nbreak\r\n",
                Some("café softbreak\r\n".as_bytes()),
            ),
            ("X-UUENCODE", b"begin 644 x\r\n", None),
            ("BASE64", b"not*base64", None),
        ];
        for (encoding, body, want) in cases {
            let got = decode_transfer_encoding(encoding, body);
            assert_eq!(got.as_deref(), *want, "{encoding} {body:?}");
        }
    }
}
