//! The header cache: a body's top-level header section, stored with its blob row at
//! delivery so FETCH of header items, header SEARCH keys, SORT and THREAD need no body
//! read. It is cut from the same bytes the blob id hashes, like the stored structure,
//! so serving it keeps "every byte served is verified" true.

use crate::MessageStructure;

/// The longest header cached; a longer one is read from the body when needed.
pub const MAX_CACHED_HEADER: usize = 64 * 1024;

/// The header section as FETCH `BODY[HEADER]` cuts it from `body` (the root part's
/// header through the blank line that ends it), or `None` when it is longer than
/// [`MAX_CACHED_HEADER`] or the structure's offsets do not fit the body.
pub(crate) fn cut(body: &[u8], structure: &MessageStructure) -> Option<Vec<u8>> {
    let from = usize::try_from(structure.body.header_offset).ok()?;
    let to = usize::try_from(structure.body.body_offset).ok()?;
    let header = body.get(from..to)?;
    (header.len() <= MAX_CACHED_HEADER).then(|| header.to_vec())
}

/// Whether a cached header still agrees with the structure stored beside it: its
/// length is the root header's. A row that disagrees is not served from the cache.
pub(crate) fn fits(header: &[u8], structure: &MessageStructure) -> bool {
    structure
        .body
        .body_offset
        .checked_sub(structure.body.header_offset)
        .is_some_and(|len| len == header.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_structure;

    #[test]
    fn cut_is_the_root_header_of_tricky_messages() {
        let long = format!("X-Long: {}\r\n\r\nbody", "a".repeat(MAX_CACHED_HEADER));
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"Subject: a\r\n\r\nbody\r\n", Some(b"Subject: a\r\n\r\n")),
            (
                b"Subject: a\nTo: b@c\n\nbare LF\n",
                Some(b"Subject: a\nTo: b@c\n\n"),
            ),
            (
                b"Subject: no body\r\n\r\n",
                Some(b"Subject: no body\r\n\r\n"),
            ),
            (
                b"Subject: two\r\n  lines\r\nFrom: J\xf6rg <j@x>\r\n\r\nhi",
                Some(b"Subject: two\r\n  lines\r\nFrom: J\xf6rg <j@x>\r\n\r\n"),
            ),
            (long.as_bytes(), None),
        ];
        for (raw, want) in cases {
            let structure = parse_structure(raw);
            let got = cut(raw, &structure);
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(raw));
            if let Some(h) = &got {
                assert!(fits(h, &structure));
            }
        }
        // No blank line at all: whatever the parser calls the header is what is cached.
        let raw = b"Subject: only a header\r\n";
        let structure = parse_structure(raw);
        let got = cut(raw, &structure).unwrap();
        assert!(fits(&got, &structure));
        assert!(!fits(b"x", &structure));
    }
}
