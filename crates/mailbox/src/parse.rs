//! Parses a message once, at delivery, into the ENVELOPE and MIME structure IMAP
//! reports, using mail-parser. The result is stored beside the body, so FETCH never
//! parses a message again.

use base64::Engine;
use evermail_types::{Address, Envelope, MimeBody, MimePart};
use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// What is stored for each body: its envelope and MIME tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStructure {
    pub envelope: Envelope,
    pub body: MimePart,
}

/// Parses `raw`. Never fails: a message mail-parser cannot make sense of is described
/// as a single text/plain body, so the client can still fetch it whole.
pub fn parse_structure(raw: &[u8]) -> MessageStructure {
    match MessageParser::default().parse(raw) {
        Some(message) if !message.parts.is_empty() => MessageStructure {
            envelope: envelope(&message),
            body: part(&message, raw, 0, 0),
        },
        _ => {
            let header_end = find_header_end(raw);
            MessageStructure {
                envelope: Envelope::default(),
                body: MimePart::opaque(header_end as u64, raw.len() as u64),
            }
        }
    }
}

fn find_header_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4)
}

/// A header's raw value, unfolded and trimmed: ENVELOPE fields are reported as they
/// appear in the message, encoded-words and all.
fn raw_header(message: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let value = message.header_raw(name)?;
    let unfolded = value
        .split(['\r', '\n'])
        .map(|line| line.trim_matches([' ', '\t']))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let trimmed = unfolded.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn envelope(message: &Message<'_>) -> Envelope {
    let addresses = |name: HeaderName<'_>| match message.header(name) {
        Some(HeaderValue::Address(a)) => address_list(a),
        _ => Vec::new(),
    };
    Envelope {
        date: raw_header(message, HeaderName::Date),
        subject: raw_header(message, HeaderName::Subject),
        from: addresses(HeaderName::From),
        sender: addresses(HeaderName::Sender),
        reply_to: addresses(HeaderName::ReplyTo),
        to: addresses(HeaderName::To),
        cc: addresses(HeaderName::Cc),
        bcc: addresses(HeaderName::Bcc),
        in_reply_to: raw_header(message, HeaderName::InReplyTo),
        message_id: raw_header(message, HeaderName::MessageId),
    }
}

/// A display name as ENVELOPE should carry it: mail-parser has decoded it, so a
/// non-ASCII name is encoded again as an RFC 2047 word, which every client decodes and
/// which keeps the response 7-bit for IMAP4rev1 clients.
fn encode_name(name: &str) -> String {
    if name.is_ascii() {
        name.to_string()
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
        )
    }
}

fn one_address(addr: &mail_parser::Addr<'_>) -> Address {
    let (mailbox, host) = match addr.address.as_deref() {
        Some(a) => match a.rsplit_once('@') {
            Some((m, h)) => (Some(m.to_string()), Some(h.to_string())),
            None => (Some(a.to_string()), Some(String::new())),
        },
        None => (None, None),
    };
    Address {
        name: addr.name.as_deref().map(encode_name),
        adl: None,
        mailbox,
        host,
    }
}

fn address_list(value: &mail_parser::Address<'_>) -> Vec<Address> {
    match value {
        mail_parser::Address::List(list) => list.iter().map(one_address).collect(),
        mail_parser::Address::Group(groups) => {
            let mut out = Vec::new();
            for group in groups {
                match &group.name {
                    // RFC 9051 7.5.2: a group is a start marker with the group name in
                    // the mailbox field and NIL host, its members, and an end marker.
                    Some(name) => {
                        out.push(Address {
                            mailbox: Some(encode_name(name)),
                            ..Address::default()
                        });
                        out.extend(group.addresses.iter().map(one_address));
                        out.push(Address::default());
                    }
                    None => out.extend(group.addresses.iter().map(one_address)),
                }
            }
            out
        }
    }
}

fn params(attributes: Option<&Vec<mail_parser::Attribute<'_>>>) -> Vec<(String, String)> {
    attributes
        .map(|list| {
            list.iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the part `index` of `message`. mail-parser's offsets, even inside an
/// attached message, count from the start of the whole message `raw`.
fn part(message: &Message<'_>, raw: &[u8], index: usize, depth: usize) -> MimePart {
    let p = &message.parts[index];
    let (header_offset, body_offset, end_offset) = (
        u64::from(p.offset_header),
        u64::from(p.offset_body),
        u64::from(p.offset_end),
    );
    let (media_type, media_subtype, content_params) = match p.content_type() {
        Some(ct) => (
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype
                .as_deref()
                .map_or_else(String::new, str::to_ascii_lowercase),
            params(ct.attributes.as_ref()),
        ),
        None => (String::new(), String::new(), Vec::new()),
    };
    let (media_type, media_subtype, content_params) = if media_type.is_empty() {
        // RFC 2045 5.2 default; inside multipart/digest it would be message/rfc822, but
        // mail-parser has already applied that when it parsed the part as a message.
        match &p.body {
            PartType::Message(_) => ("message".into(), "rfc822".into(), Vec::new()),
            _ => (
                "text".into(),
                "plain".into(),
                vec![("charset".into(), "us-ascii".into())],
            ),
        }
    } else if media_subtype.is_empty() {
        (media_type, "plain".into(), content_params)
    } else {
        (media_type, media_subtype, content_params)
    };
    let body_bytes = raw
        .get(p.offset_body as usize..p.offset_end as usize)
        .unwrap_or_default();
    let lines = body_bytes.iter().filter(|&&b| b == b'\n').count() as u64
        + u64::from(body_bytes.last().is_some_and(|&b| b != b'\n'));
    let body = match &p.body {
        // Limit nesting: a message can nest parts arbitrarily deep, and the stored
        // structure (and the IMAP response built from it) must stay bounded.
        PartType::Multipart(children) if depth < 32 => MimeBody::Multipart(
            children
                .iter()
                .map(|&child| part(message, raw, child as usize, depth + 1))
                .collect(),
        ),
        PartType::Message(inner) if depth < 32 && !inner.parts.is_empty() => MimeBody::Message {
            envelope: Box::new(envelope(inner)),
            part: Box::new(part(inner, raw, 0, depth + 1)),
        },
        _ => MimeBody::Leaf,
    };
    MimePart {
        media_type,
        media_subtype,
        params: content_params,
        id: p.content_id().map(str::to_string),
        description: p.content_description().map(str::to_string),
        encoding: p
            .content_transfer_encoding()
            .map_or_else(|| "7BIT".to_string(), str::to_ascii_uppercase),
        size: end_offset.saturating_sub(body_offset),
        lines,
        md5: p
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case("Content-MD5"))
            .and_then(|h| match &h.value {
                HeaderValue::Text(t) => Some(t.trim().to_string()),
                _ => None,
            }),
        disposition: p
            .content_disposition()
            .map(|d| (d.c_type.to_ascii_lowercase(), params(d.attributes.as_ref()))),
        language: match p.content_language() {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        },
        location: p.content_location().map(str::to_string),
        header_offset,
        body_offset,
        end_offset,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &[u8] = b"From: \"Ann Example\" <ann@example.com>\r\n\
To: bob@example.org, Group: c@d.e, f@g.h;\r\n\
Subject: =?utf-8?q?caf=C3=A9?= and\r\n more\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <id1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
hello\r\n\
world\r\n\
--XX\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
From: x@y.z\r\n\
\r\n\
inner body\r\n\
--XX\r\n\
Content-Type: application/pdf; name=a.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=a.pdf\r\n\
\r\n\
AAAA\r\n\
--XX--\r\n";

    #[test]
    fn envelope_keeps_raw_fields() {
        let s = parse_structure(MULTIPART);
        let e = &s.envelope;
        assert_eq!(e.subject.as_deref(), Some("=?utf-8?q?caf=C3=A9?= and more"));
        assert_eq!(e.message_id.as_deref(), Some("<id1@example.com>"));
        assert_eq!(e.date.as_deref(), Some("Mon, 23 Nov 2026 10:00:00 +0000"));
        assert_eq!(e.from[0].name.as_deref(), Some("Ann Example"));
        assert_eq!(e.from[0].mailbox.as_deref(), Some("ann"));
        assert_eq!(e.from[0].host.as_deref(), Some("example.com"));
        assert!(e.sender.is_empty() && e.reply_to.is_empty());
    }

    #[test]
    fn multipart_offsets_slice_the_raw_message() {
        let s = parse_structure(MULTIPART);
        assert_eq!(
            (s.body.media_type.as_str(), s.body.media_subtype.as_str()),
            ("multipart", "mixed")
        );
        let MimeBody::Multipart(parts) = &s.body.body else {
            panic!("not multipart: {:?}", s.body.body)
        };
        assert_eq!(parts.len(), 3);
        let slice = |p: &MimePart| &MULTIPART[p.body_offset as usize..p.end_offset as usize];
        assert!(
            slice(&parts[0]).starts_with(b"hello\r\nworld"),
            "{:?}",
            String::from_utf8_lossy(slice(&parts[0]))
        );
        assert_eq!(
            parts[0].params,
            [("charset".to_string(), "utf-8".to_string())]
        );
        assert_eq!(parts[0].lines, 2);

        let MimeBody::Message { envelope, part } = &parts[1].body else {
            panic!("not a message: {:?}", parts[1].body)
        };
        assert_eq!(envelope.subject.as_deref(), Some("inner"));
        assert!(
            slice(part).starts_with(b"inner body"),
            "{:?}",
            String::from_utf8_lossy(slice(part))
        );

        let pdf = &parts[2];
        assert_eq!(pdf.encoding, "BASE64");
        assert!(slice(pdf).starts_with(b"AAAA"));
        let (kind, params) = pdf.disposition.as_ref().unwrap();
        assert_eq!(kind, "attachment");
        assert_eq!(params[0], ("filename".to_string(), "a.pdf".to_string()));
    }

    #[test]
    fn plain_message_defaults() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let s = parse_structure(raw);
        assert_eq!(s.body.media_type, "text");
        assert_eq!(s.body.media_subtype, "plain");
        assert_eq!(s.body.encoding, "7BIT");
        assert_eq!(s.body.size, 6);
        assert_eq!(s.body.lines, 1);
    }

    #[test]
    fn garbage_still_has_a_structure() {
        for raw in [&b""[..], b"\x00\xff\xfe", b"no header end", b"\r\n\r\n"] {
            let s = parse_structure(raw);
            assert!(s.body.end_offset <= raw.len() as u64);
        }
    }

    #[test]
    fn group_addresses_use_markers() {
        let s = parse_structure(MULTIPART);
        let to: Vec<_> = s
            .envelope
            .to
            .iter()
            .map(|a| (a.mailbox.clone(), a.host.clone()))
            .collect();
        assert!(to.contains(&(Some("Group".into()), None)), "{to:?}");
        assert!(to.contains(&(None, None)), "{to:?}");
    }
}
