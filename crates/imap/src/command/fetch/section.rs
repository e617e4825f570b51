//! The bytes a `BODY[section]<partial>` names, cut from the stored message with the
//! part offsets recorded at delivery (no MIME parsing at fetch time).

use std::borrow::Cow;

use evermail_imap_proto::command::{Partial, Section, SectionText};
use evermail_types::{MimeBody, MimePart};

/// The data of `section`, or `None` for a part the message does not have (sent as NIL).
pub(super) fn section_data<'a>(
    message: &'a [u8],
    root: &MimePart,
    section: &Section,
) -> Option<Cow<'a, [u8]>> {
    let slice = |from: u64, to: u64| {
        let (from, to) = (usize::try_from(from).ok()?, usize::try_from(to).ok()?);
        message.get(from..to).map(Cow::Borrowed)
    };
    let part = root.find(&section.part)?;
    let Some(text) = &section.text else {
        if section.part.is_empty() {
            return Some(Cow::Borrowed(message));
        }
        return slice(part.body_offset, part.end_offset);
    };
    if let SectionText::Mime = text {
        return slice(part.header_offset, part.body_offset);
    }
    // HEADER, HEADER.FIELDS and TEXT are about a message: the whole one, or one
    // encapsulated in a message/rfc822 part.
    let inner = if section.part.is_empty() {
        root
    } else {
        match &part.body {
            MimeBody::Message { part, .. } => part,
            _ => return None,
        }
    };
    let header = || slice(inner.header_offset, inner.body_offset);
    match text {
        SectionText::Header => header(),
        SectionText::Text => slice(inner.body_offset, inner.end_offset),
        SectionText::HeaderFields(names) => {
            Some(Cow::Owned(filter_header(&header()?, names, true)))
        }
        SectionText::HeaderFieldsNot(names) => {
            Some(Cow::Owned(filter_header(&header()?, names, false)))
        }
        SectionText::Mime => None,
    }
}

/// What `BINARY[part]` sends: the part's body with its Content-Transfer-Encoding
/// undone (RFC 3516, RFC 9051 section 6.4.5). `BINARY[]` is the whole message as
/// stored. `Ok(None)` for a part the message does not have; `Err` when the encoding is
/// unknown or the data is not valid for it, which the client hears as `[UNKNOWN-CTE]`.
pub(super) fn binary_data<'a>(
    message: &'a [u8],
    root: Option<&MimePart>,
    part: &[u32],
) -> Result<Option<Cow<'a, [u8]>>, String> {
    if part.is_empty() {
        return Ok(Some(Cow::Borrowed(message)));
    }
    let Some(found) = root.and_then(|r| r.find(part)) else {
        return Ok(None);
    };
    let range = usize::try_from(found.body_offset).ok()..usize::try_from(found.end_offset).ok();
    let (Some(from), Some(to)) = (range.start, range.end) else {
        return Ok(None);
    };
    let Some(body) = message.get(from..to) else {
        return Ok(None);
    };
    evermail_mailbox::decode_transfer_encoding(&found.encoding, body)
        .map(Some)
        .ok_or_else(|| format!("cannot decode {} content", found.encoding))
}

/// The header fields whose names are (`keep`) or are not in `names`, with the blank
/// line that ends a header (RFC 9051 section 6.4.5 includes it).
pub(super) fn filter_header(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    evermail_mailbox::filter_header_fields(header, names, keep)
}

/// Applies `<offset.length>`: an offset past the end gives an empty string.
pub(super) fn apply_partial(data: &[u8], partial: Option<Partial>) -> &[u8] {
    let Some(p) = partial else { return data };
    let start = (p.offset as usize).min(data.len());
    let end = start
        .saturating_add(p.length.get() as usize)
        .min(data.len());
    &data[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    const HEADER: &[u8] =
        b"From: a@example.com\r\nSubject: two\r\n  lines\r\nTo: b@example.com\r\n\r\n";

    #[test]
    fn filters_header_fields() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], bool, &[u8])] = &[
            (&["subject"], true, b"Subject: two\r\n  lines\r\n\r\n"),
            (
                &["FROM", "to"],
                true,
                b"From: a@example.com\r\nTo: b@example.com\r\n\r\n",
            ),
            (&["X-None"], true, b"\r\n"),
            (
                &["Subject"],
                false,
                b"From: a@example.com\r\nTo: b@example.com\r\n\r\n",
            ),
        ];
        for (list, keep, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&filter_header(HEADER, &names(list), *keep)),
                String::from_utf8_lossy(want),
                "{list:?} keep={keep}"
            );
        }
    }

    #[test]
    fn cuts_partials() {
        let p = |offset, length| {
            Some(Partial {
                offset,
                length: NonZeroU32::new(length).unwrap(),
            })
        };
        assert_eq!(apply_partial(b"abcdef", p(0, 3)), b"abc");
        assert_eq!(apply_partial(b"abcdef", p(4, 10)), b"ef");
        assert_eq!(apply_partial(b"abcdef", p(10, 1)), b"");
        assert_eq!(apply_partial(b"abcdef", None), b"abcdef");
    }

    #[test]
    fn finds_sections_of_a_simple_message() {
        let mut message = HEADER.to_vec();
        message.extend_from_slice(b"hello\r\n");
        let root = MimePart::opaque(HEADER.len() as u64, message.len() as u64);
        let get = |part: Vec<u32>, text: Option<SectionText>| {
            section_data(&message, &root, &Section { part, text }).map(|d| d.into_owned())
        };
        assert_eq!(get(vec![], None).unwrap(), message);
        assert_eq!(get(vec![], Some(SectionText::Header)).unwrap(), HEADER);
        assert_eq!(get(vec![], Some(SectionText::Text)).unwrap(), b"hello\r\n");
        // A single-part message's part 1 is its body.
        assert_eq!(get(vec![1], None).unwrap(), b"hello\r\n");
        assert_eq!(get(vec![1], Some(SectionText::Mime)).unwrap(), HEADER);
        assert_eq!(get(vec![2], None), None);
        assert_eq!(get(vec![1], Some(SectionText::Header)), None);
    }

    #[test]
    fn binary_undoes_the_transfer_encoding() {
        let header = b"Content-Transfer-Encoding: base64\r\n\r\n";
        let mut message = header.to_vec();
        message.extend_from_slice(b"AGhpAA==\r\n");
        let mut root = MimePart::opaque(header.len() as u64, message.len() as u64);
        root.encoding = "BASE64".into();
        let get = |part: &[u32]| binary_data(&message, Some(&root), part);
        assert_eq!(get(&[1]).unwrap().unwrap().as_ref(), b"\0hi\0");
        assert_eq!(get(&[]).unwrap().unwrap().as_ref(), message.as_slice());
        assert_eq!(get(&[2]).unwrap(), None);
        root.encoding = "X-ROT13".into();
        assert!(binary_data(&message, Some(&root), &[1]).is_err());
    }
}
