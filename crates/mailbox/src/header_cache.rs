//! The header cache: a body's top-level header section, stored with its blob row at
//! delivery so FETCH of header items, header SEARCH keys, SORT and THREAD need no body
//! read. It is cut from the same bytes the blob id hashes, like the stored structure,
//! so serving it keeps "every byte served is verified" true.

use std::collections::HashMap;

use bytes::Bytes;
use evermail_types::BlobId;

use crate::{ErrorKind, MailError, Mailstore, MessageStructure, MessageText};

/// What FETCH needs of a body besides its bytes: its structure and, when cached, its
/// header section.
#[derive(Debug, Clone)]
pub struct MessageSummary {
    pub structure: MessageStructure,
    /// The top-level header section (`BODY[HEADER]`), byte for byte; `None` when it is
    /// not cached and must be cut from the body.
    pub header: Option<Bytes>,
}

impl Mailstore {
    /// The summaries of many bodies, read in one query per 500 (never from the blob
    /// stores). A blob without a record or with an unreadable structure is left out,
    /// so the caller reports that message as unreadable.
    pub async fn summaries(
        &self,
        blobs: &[BlobId],
    ) -> Result<HashMap<BlobId, MessageSummary>, MailError> {
        let records = self.meta().blobs(blobs).await?;
        let mut out = HashMap::with_capacity(records.len());
        for record in records {
            let structure: MessageStructure = match serde_json::from_str(&record.structure) {
                Ok(s) => s,
                Err(error) => {
                    tracing::error!(blob = %record.id, %error, "stored structure is unreadable");
                    continue;
                }
            };
            let header = record
                .header
                .filter(|h| fits(h, &structure))
                .map(Bytes::from);
            out.insert(record.id, MessageSummary { structure, header });
        }
        Ok(out)
    }

    /// The header text of many bodies (SEARCH's header keys, SORT, THREAD): parsed
    /// from the header cache, and from the verified body for a body whose header is not
    /// cached. Fails if such a body cannot be read.
    pub async fn header_texts(
        &self,
        blobs: &[BlobId],
    ) -> Result<HashMap<BlobId, MessageText>, MailError> {
        let mut headers: HashMap<BlobId, Bytes> = self
            .summaries(blobs)
            .await?
            .into_iter()
            .filter_map(|(id, s)| Some((id, s.header?)))
            .collect();
        for &blob in blobs {
            if let std::collections::hash_map::Entry::Vacant(entry) = headers.entry(blob) {
                entry.insert(self.body(blob).await?);
            }
        }
        tokio::task::spawn_blocking(move || {
            headers
                .into_iter()
                .map(|(id, raw)| (id, MessageText::parse_header(&raw)))
                .collect()
        })
        .await
        .map_err(|e| MailError::new(ErrorKind::Unavailable, format!("parser task: {e}")))
    }
}

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
