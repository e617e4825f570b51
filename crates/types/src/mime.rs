//! The structure of a message as IMAP reports it (ENVELOPE, BODYSTRUCTURE), parsed once
//! when the message arrives and stored beside it.
//!
//! Strings are kept as they appear in the header (encoded-words are not decoded), which
//! is what RFC 9051 asks ENVELOPE and BODYSTRUCTURE to return. Every part records the
//! byte offsets of its header and body inside the raw message, so a `BODY[1.2]` or
//! `BODY[1.MIME]` fetch can slice the stored body without parsing it again.

use serde::{Deserialize, Serialize};

/// One address of an ENVELOPE address list (RFC 9051 section 7.5.2).
///
/// A group is written as the RFC does: a start marker with `host: None` and the group
/// name in `mailbox`, the members, then an end marker with every field `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: Option<String>,
    pub adl: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

/// The ENVELOPE of a message or of an attached `message/rfc822` part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<Address>,
    /// Empty when the header is absent; the IMAP encoder then repeats `from`, as
    /// RFC 9051 requires.
    pub sender: Vec<Address>,
    /// Empty when the header is absent; the IMAP encoder then repeats `from`.
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// One MIME part (the whole message is the root part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimePart {
    /// Media type, lower case, e.g. `text`.
    pub media_type: String,
    /// Media subtype, lower case, e.g. `plain`.
    pub media_subtype: String,
    /// Content-Type parameters in header order; names lower case.
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding, upper case; `7BIT` when absent.
    pub encoding: String,
    /// Size of the body in octets, as it is stored (still transfer-encoded).
    pub size: u64,
    /// Number of lines of the body; meaningful for `text/*` and `message/rfc822`.
    pub lines: u64,
    pub md5: Option<String>,
    /// Content-Disposition value (lower case) and its parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Vec<String>,
    pub location: Option<String>,
    /// Offset of the first header octet of this part in the raw message.
    pub header_offset: u64,
    /// Offset of the first body octet (just after the blank line ending the header).
    pub body_offset: u64,
    /// Offset one past the last body octet.
    pub end_offset: u64,
    pub body: MimeBody,
}

/// What a part contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MimeBody {
    /// A single (non-multipart, non-message) body.
    Leaf,
    /// The sub-parts of a `multipart/*` part, in order.
    Multipart(Vec<MimePart>),
    /// An encapsulated `message/rfc822` (or `message/global`) message.
    Message {
        envelope: Box<Envelope>,
        part: Box<MimePart>,
    },
}

impl MimePart {
    /// A `text/plain` part with no parameters and the given extent, used when a message
    /// cannot be parsed at all: the client still gets a body it can fetch whole.
    pub fn opaque(header_end: u64, total: u64) -> MimePart {
        MimePart {
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            size: total.saturating_sub(header_end),
            lines: 0,
            md5: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            header_offset: 0,
            body_offset: header_end,
            end_offset: total,
            body: MimeBody::Leaf,
        }
    }

    /// Finds a part by its IMAP section number (`[1, 2]` for `1.2`). An empty path is
    /// the part itself. A non-multipart part has a part number 1 that is itself, as
    /// RFC 9051 section 6.4.5 specifies; `message/rfc822` parts descend into the
    /// encapsulated message.
    pub fn find(&self, path: &[u32]) -> Option<&MimePart> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        let index = usize::try_from(first.checked_sub(1)?).ok()?;
        match &self.body {
            MimeBody::Multipart(parts) => parts.get(index)?.find(rest),
            MimeBody::Message { part, .. } => part.find(path),
            MimeBody::Leaf if index == 0 && rest.is_empty() => Some(self),
            MimeBody::Leaf => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(start: u64) -> MimePart {
        MimePart::opaque(start, start + 10)
    }

    #[test]
    fn finds_parts_by_section() {
        let inner = MimePart {
            body: MimeBody::Multipart(vec![leaf(100), leaf(200)]),
            ..leaf(50)
        };
        let root = MimePart {
            body: MimeBody::Multipart(vec![leaf(10), inner]),
            ..leaf(0)
        };
        assert_eq!(root.find(&[]).unwrap().body_offset, 0);
        assert_eq!(root.find(&[1]).unwrap().body_offset, 10);
        assert_eq!(root.find(&[2, 2]).unwrap().body_offset, 200);
        assert!(root.find(&[3]).is_none());
        assert!(root.find(&[0]).is_none());
        // A leaf's part 1 is itself, but it has no part 1.1.
        assert_eq!(root.find(&[1, 1]).unwrap().body_offset, 10);
        assert!(root.find(&[1, 1, 1]).is_none());
    }

    #[test]
    fn serializes_as_json() {
        let part = leaf(0);
        let text = serde_json::to_string(&part).unwrap();
        assert_eq!(serde_json::from_str::<MimePart>(&text).unwrap(), part);
    }
}
