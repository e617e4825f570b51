//! The header cache: a body's top-level header section, stored with its blob row at
//! delivery so FETCH of header items, header SEARCH keys, SORT and THREAD need no body
//! read. It is cut from the same bytes the blob id hashes, like the stored structure,
//! so serving it keeps "every byte served is verified" true.

use std::collections::HashMap;

use bytes::Bytes;
use evermail_types::{BlobId, MailboxId, Uid};

use crate::{ErrorKind, MailError, Mailstore, MessageStructure, MessageText};

/// What FETCH needs of a body besides its bytes: its structure and, when cached, its
/// header section.
#[derive(Debug, Clone)]
pub struct MessageSummary {
    /// Always there when asked for; without that, only when the header is not
    /// cached (the caller then cuts header items from the body at its offsets).
    pub structure: Option<MessageStructure>,
    /// The top-level header section (`BODY[HEADER]`), byte for byte; `None` when it is
    /// not cached and must be cut from the body.
    pub header: Option<Bytes>,
}

impl Mailstore {
    /// The summaries of many bodies, read in one query per 500 (never from the blob
    /// stores). A blob without a record or with an unreadable structure is left out,
    /// so the caller reports that message as unreadable.
    ///
    /// With `structure` false (a FETCH of header items only), the stored structure
    /// is not built where the header is cached: its root offsets, all that checking
    /// the cached header needs, are read from the JSON and the rest skipped.
    pub async fn summaries(
        &self,
        blobs: &[BlobId],
        structure: bool,
    ) -> Result<HashMap<BlobId, MessageSummary>, MailError> {
        let records = self.meta().blobs(blobs).await?;
        let mut out = HashMap::with_capacity(records.len());
        for record in records {
            if !structure
                && let Some(header) = &record.header
                && serde_json::from_str::<RootOffsets>(&record.structure)
                    .is_ok_and(|root| root.fits(header))
            {
                let summary = MessageSummary {
                    structure: None,
                    header: record.header.map(Bytes::from),
                };
                out.insert(record.id, summary);
                continue;
            }
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
            out.insert(
                record.id,
                MessageSummary {
                    structure: Some(structure),
                    header,
                },
            );
        }
        Ok(out)
    }

    /// [`summaries`](Self::summaries) without structures, for a FETCH of header
    /// items alone: `messages` are `(UID, blob)` of `mailbox` in UID order, read as
    /// [`headers_along`](Self::headers_along) reads them; a message whose header is
    /// not served that way is read as `summaries` reads it (its structure then checks
    /// the header).
    pub async fn header_summaries(
        &self,
        mailbox: MailboxId,
        messages: &[(Uid, BlobId)],
    ) -> Result<HashMap<BlobId, MessageSummary>, MailError> {
        let along = self.headers_along(mailbox, messages).await?;
        let mut out: HashMap<BlobId, MessageSummary> = along
            .into_iter()
            .map(|(blob, header)| {
                let summary = MessageSummary {
                    structure: None,
                    header: Some(header),
                };
                (blob, summary)
            })
            .collect();
        let rest = missing_from(messages, |blob| out.contains_key(blob));
        if !rest.is_empty() {
            out.extend(self.summaries(&rest, false).await?);
        }
        Ok(out)
    }

    /// The cached headers of `messages` (`(UID, blob)` of `mailbox`, in UID order)
    /// that can be served without their structure. When the UIDs are a dense run (a
    /// FETCH or SEARCH of `1:*` nearly always is), they are read along the mailbox's
    /// rows in one query that leaves the structure out, and a header is kept if it
    /// ends as a cut one does ([`ends_as_cut`]). Sparse UIDs are left to the caller
    /// (an empty map), which reads by blob id.
    async fn headers_along(
        &self,
        mailbox: MailboxId,
        messages: &[(Uid, BlobId)],
    ) -> Result<HashMap<BlobId, Bytes>, MailError> {
        let (Some(&(first, _)), Some(&(last, _))) = (messages.first(), messages.last()) else {
            return Ok(HashMap::new());
        };
        let span = u64::from(last.get()).saturating_sub(u64::from(first.get())) + 1;
        if span > 2 * messages.len() as u64 + 64 {
            return Ok(HashMap::new());
        }
        let wanted: std::collections::HashSet<BlobId> =
            messages.iter().map(|&(_, blob)| blob).collect();
        let mut out = HashMap::with_capacity(messages.len());
        for row in self.meta().message_headers(mailbox, first, last).await? {
            if let Some(header) = row.header
                && wanted.contains(&row.blob)
                && ends_as_cut(&header, row.size)
            {
                out.insert(row.blob, Bytes::from(header));
            }
        }
        Ok(out)
    }

    /// [`header_texts`](Self::header_texts) of `messages` (`(UID, blob)` of
    /// `mailbox`, in UID order), reading their cached headers along the mailbox's
    /// rows where [`headers_along`](Self::headers_along) can.
    pub async fn header_texts_in(
        &self,
        mailbox: MailboxId,
        messages: &[(Uid, BlobId)],
        fields: Option<&[String]>,
    ) -> Result<HashMap<BlobId, MessageText>, MailError> {
        let mut headers = self.headers_along(mailbox, messages).await?;
        let rest = missing_from(messages, |blob| headers.contains_key(blob));
        if !rest.is_empty() {
            headers.extend(self.header_bytes(&rest).await?);
        }
        parse_headers(headers, fields).await
    }

    /// The header text of many bodies (SEARCH's header keys, SORT, THREAD): parsed
    /// from the header cache, and from the verified body for a body whose header is not
    /// cached. Fails if such a body cannot be read.
    ///
    /// With `fields` (lower- or any-case names), only those header fields are parsed:
    /// a search on SUBJECT need not decode every address and date of every message.
    /// The text then answers `header_contains` for those names exactly as the whole
    /// header would, and knows nothing of the others.
    pub async fn header_texts(
        &self,
        blobs: &[BlobId],
        fields: Option<&[String]>,
    ) -> Result<HashMap<BlobId, MessageText>, MailError> {
        parse_headers(self.header_bytes(blobs).await?, fields).await
    }

    /// The header section of each of `blobs`: from the header cache where it fits
    /// the stored structure, else from the verified body. Fails if such a body
    /// cannot be read.
    async fn header_bytes(&self, blobs: &[BlobId]) -> Result<HashMap<BlobId, Bytes>, MailError> {
        let records = self.meta().blobs(blobs).await?;
        let mut headers: HashMap<BlobId, Bytes> = HashMap::with_capacity(records.len());
        for record in records {
            let Some(header) = record.header else {
                continue;
            };
            // Only the root part's offsets are needed to check the cached header
            // against its structure; the rest of the JSON is skipped, not built.
            match serde_json::from_str::<RootOffsets>(&record.structure) {
                Ok(root) if root.fits(&header) => {
                    headers.insert(record.id, Bytes::from(header));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(blob = %record.id, %error, "stored structure is unreadable");
                }
            }
        }
        for &blob in blobs {
            if let std::collections::hash_map::Entry::Vacant(entry) = headers.entry(blob) {
                entry.insert(self.body(blob).await?);
            }
        }
        Ok(headers)
    }
}

/// The blobs of `messages` that `have` does not, each once.
fn missing_from(messages: &[(Uid, BlobId)], have: impl Fn(&BlobId) -> bool) -> Vec<BlobId> {
    let mut rest: Vec<BlobId> = messages
        .iter()
        .map(|&(_, blob)| blob)
        .filter(|blob| !have(blob))
        .collect();
    rest.sort_unstable();
    rest.dedup();
    rest
}

/// Parses each header section on a blocking thread: with `fields` (lower- or
/// any-case names), only those fields (see [`Mailstore::header_texts`]).
async fn parse_headers(
    headers: HashMap<BlobId, Bytes>,
    fields: Option<&[String]>,
) -> Result<HashMap<BlobId, MessageText>, MailError> {
    let fields = fields.map(<[String]>::to_vec);
    tokio::task::spawn_blocking(move || {
        headers
            .into_iter()
            .map(|(id, raw)| {
                let text = match &fields {
                    Some(names) => {
                        MessageText::parse_header(&filter_header_fields(&raw, names, true))
                    }
                    None => MessageText::parse_header(&raw),
                };
                (id, text)
            })
            .collect()
    })
    .await
    .map_err(|e| MailError::new(ErrorKind::Unavailable, format!("parser task: {e}")))
}

/// The offsets of a stored structure's root part, all a header check needs.
#[derive(serde::Deserialize)]
struct RootOffsets {
    body: PartOffsets,
}

#[derive(serde::Deserialize)]
struct PartOffsets {
    header_offset: u64,
    body_offset: u64,
}

impl RootOffsets {
    /// [`fits`] on the offsets alone.
    fn fits(&self, header: &[u8]) -> bool {
        self.body
            .body_offset
            .checked_sub(self.body.header_offset)
            .is_some_and(|len| len == header.len() as u64)
    }
}

/// Whether a cached header read without its structure ends as [`cut`] leaves one: no
/// longer than the body of `size` bytes, and ending with the blank line that ends a
/// header section, or else the whole body (a message with no body). A header that
/// does not is read with its structure, which checks it exactly.
fn ends_as_cut(header: &[u8], size: u64) -> bool {
    let len = header.len() as u64;
    len <= size
        && (header.ends_with(b"\n\n")
            || header.ends_with(b"\n\r\n")
            || matches!(header, b"\r\n" | b"\n")
            || len == size)
}

/// The header fields whose names are (`keep`) or are not in `names`, each with its
/// continuation lines, followed by the blank line that ends a header (RFC 9051
/// section 6.4.5 includes it).
pub fn filter_header_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    // At most the whole header and the blank line: one allocation, no regrowth.
    let mut out = Vec::with_capacity(header.len() + 2);
    let mut including = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map_or(&line[..0], |colon| &line[..colon]);
            let name = name.trim_ascii_end();
            let listed = names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
            including = !name.is_empty() && listed == keep;
        }
        if including {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
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
                // What is read without the structure passes the cheaper check too,
                // and a header cut short does not.
                assert!(ends_as_cut(h, raw.len() as u64));
                assert!(!ends_as_cut(&h[..h.len() - 1], raw.len() as u64));
                assert!(!ends_as_cut(h, h.len() as u64 - 1));
            }
        }
        // No blank line at all: whatever the parser calls the header is what is cached.
        let raw = b"Subject: only a header\r\n";
        let structure = parse_structure(raw);
        let got = cut(raw, &structure).unwrap();
        assert!(fits(&got, &structure));
        assert!(!fits(b"x", &structure));
        assert!(ends_as_cut(&got, raw.len() as u64));
        assert!(!ends_as_cut(b"Subject: only a", raw.len() as u64));
    }

    /// Parsing only the fields a search names answers those fields as the whole
    /// header does, folded lines, encoded words, bare LF and repeated fields included.
    #[test]
    fn a_filtered_header_answers_its_fields_as_the_whole_one() {
        let messages: &[&[u8]] = &[
            b"From: =?UTF-8?B?SsO2cmc=?= <j@example.com>\r\nTo: a@example.com,\r\n b@example.com\r\nSubject: =?ISO-8859-1?Q?caf=E9?= report\r\n  for Monday\r\nDate: Tue, 3 Nov 2026 10:00:00 +0100\r\nX-Tag: one\r\nX-Tag: two\r\n\r\nbody\r\n",
            b"subject: lower case name\nfrom: x@y\ncc: c@d\n\nbare LF body\n",
            b"Subject: only\r\n\r\n",
            b"X-Other: nothing searched\r\n\r\nbody",
        ];
        let probes = [
            ("from", "j\u{f6}rg"),
            ("from", "x@y"),
            ("to", "b@example.com"),
            ("cc", "c@d"),
            ("subject", "caf\u{e9} report"),
            ("subject", "monday"),
            ("subject", "lower case"),
            ("subject", "only"),
            ("subject", ""),
            ("x-tag", "two"),
            ("x-tag", ""),
            ("bcc", ""),
        ];
        for raw in messages {
            let whole = MessageText::parse_header(raw);
            for (name, needle) in probes {
                let names = [name.to_string(), "date".to_string()];
                let filtered = MessageText::parse_header(&filter_header_fields(raw, &names, true));
                assert_eq!(
                    filtered.header_contains(name, needle),
                    whole.header_contains(name, needle),
                    "{name} {needle:?} in {:?}",
                    String::from_utf8_lossy(raw)
                );
                assert_eq!(filtered.sent_day, whole.sent_day);
            }
        }
        // And the probes are not all false.
        let whole = MessageText::parse_header(messages[0]);
        assert!(whole.header_contains("subject", "caf\u{e9} report"));
        assert!(whole.header_contains("x-tag", "two"));
    }
}
