//! The searchable text of a message, for IMAP SEARCH's FROM, TO, CC, BCC, SUBJECT,
//! HEADER, BODY, TEXT and SENT* keys: header fields with encoded words decoded, and the
//! text of the body parts with transfer encodings and charsets undone; and the fields
//! SORT and THREAD order by (RFC 5256). It is made on demand from the verified body,
//! never stored.

use mail_parser::{HeaderValue, MessageParser};

/// A message as SEARCH sees it. Matching is by case-insensitive substring (RFC 9051
/// section 6.4.4), so everything is kept lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageText {
    /// (lower-case field name, lower-case value) of the top-level header, in order.
    /// The value holds the decoded form and, after a newline, the field as written,
    /// so both `SUBJECT Grüße` and `HEADER Message-ID <a@b>` find it.
    headers: Vec<(String, String)>,
    /// The text of every body part meant to be read, lower-cased.
    body: String,
    /// The day of the Date: field as written (time and zone disregarded, RFC 9051
    /// SENTBEFORE), in days since 1970-01-01.
    pub sent_day: Option<i64>,
    /// What SORT and THREAD order by.
    pub fields: HeaderFields,
}

/// The header fields SORT and THREAD order by (RFC 5256), small enough to keep for
/// every message of a mailbox while sorting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// The Date: field as an instant (Unix seconds), for SORT DATE and THREAD.
    pub sent_at: Option<i64>,
    /// The Subject: field, encoded words decoded, as written otherwise.
    pub subject: Option<String>,
    /// The local part of the first From, To and Cc address, lower case (SORT FROM,
    /// TO, CC compare `addr-mailbox`).
    pub from_mailbox: Option<String>,
    pub to_mailbox: Option<String>,
    pub cc_mailbox: Option<String>,
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The ids of References, or of In-Reply-To when there is no References (RFC
    /// 5256 THREAD=REFERENCES step 1), oldest first, without angle brackets.
    pub references: Vec<String>,
}

impl MessageText {
    /// Reads `raw`; a message mail-parser cannot read has no header and no text.
    pub fn parse(raw: &[u8]) -> MessageText {
        let Some(message) = MessageParser::default().parse(raw) else {
            return MessageText::default();
        };
        let mut headers = Vec::new();
        for header in message.headers() {
            let written = raw
                .get(header.offset_start as usize..header.offset_end as usize)
                .map(|b| String::from_utf8_lossy(b).replace(['\r', '\n'], ""))
                .unwrap_or_default();
            let decoded = match &header.value {
                HeaderValue::Text(text) => text.to_string(),
                HeaderValue::TextList(list) => list.join(", "),
                HeaderValue::Address(address) => address
                    .iter()
                    .map(|a| match (&a.name, &a.address) {
                        (Some(name), Some(addr)) => format!("{name} <{addr}>"),
                        (None, Some(addr)) => addr.to_string(),
                        (Some(name), None) => name.to_string(),
                        (None, None) => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            headers.push((
                header.name.as_str().to_lowercase(),
                format!("{decoded}\n{}", written.trim()).to_lowercase(),
            ));
        }
        let mut body = String::new();
        for i in 0..message.text_body_count() {
            if let Some(text) = message.body_text(i) {
                body.push_str(&text.to_lowercase());
                body.push('\n');
            }
        }
        let sent_day = message
            .date()
            .map(|d| days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day)));
        let first_mailbox = |address: Option<&mail_parser::Address<'_>>| {
            let addr = address?.first()?.address.as_deref()?;
            let local = addr.rsplit_once('@').map_or(addr, |(local, _)| local);
            Some(local.to_lowercase())
        };
        let ids = |value: &HeaderValue<'_>| -> Vec<String> {
            value
                .as_text_list()
                .unwrap_or_default()
                .iter()
                .map(|id| id.trim_matches(['<', '>', ' ']).to_string())
                .filter(|id| !id.is_empty())
                .collect()
        };
        let mut references = ids(message.references());
        if references.is_empty() {
            references = ids(message.in_reply_to()).into_iter().take(1).collect();
        }
        let fields = HeaderFields {
            sent_at: message.date().map(|d| d.to_timestamp()),
            subject: message.subject().map(str::to_string),
            from_mailbox: first_mailbox(message.from()),
            to_mailbox: first_mailbox(message.to()),
            cc_mailbox: first_mailbox(message.cc()),
            message_id: message
                .message_id()
                .map(|id| id.trim_matches(['<', '>', ' ']).to_string()),
            references,
        };
        MessageText {
            headers,
            body,
            sent_day,
            fields,
        }
    }

    /// Like [`MessageText::parse`], for the header alone: the body text stays empty.
    pub fn parse_header(raw: &[u8]) -> MessageText {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
            .unwrap_or(raw.len());
        MessageText::parse(&raw[..end])
    }

    /// The header fields and body text as the text index stores them
    /// (`crate::fts`): (lower-case name, lower-case value) pairs and the lower-case
    /// body.
    pub(crate) fn searchable(&self) -> (&[(String, String)], &str) {
        (&self.headers, &self.body)
    }

    /// A message's text as [`MessageText::searchable`] gave it, for checking a
    /// candidate the text index found with the same rules as a scan.
    pub(crate) fn from_searchable(headers: Vec<(String, String)>, body: String) -> MessageText {
        MessageText {
            headers,
            body,
            ..MessageText::default()
        }
    }

    /// Whether a field called `name` (any case) contains `needle`; an empty needle
    /// matches any message that has the field (RFC 9051 `HEADER`).
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        let (name, needle) = (name.to_lowercase(), needle.to_lowercase());
        self.headers
            .iter()
            .any(|(n, v)| *n == name && v.contains(&needle))
    }

    /// Whether the body text contains `needle`, ignoring case (`BODY`).
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body.contains(&needle.to_lowercase())
    }

    /// Whether the header or the body contains `needle`, ignoring case (`TEXT`).
    pub fn text_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.body.contains(&needle)
            || self
                .headers
                .iter()
                .any(|(n, v)| n.contains(&needle) || v.contains(&needle))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\n\
To: alice@example.com, Bob <bob@example.org>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Köln\r\n\
Message-ID: <m1@example.net>\r\n\
X-Tracker: Ticket-42\r\n\
Date: Mon, 23 Nov 2026 23:30:00 -0800\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Sch=F6ne Gr=FC=DFe, see the REPORT.\r\n"
        .as_bytes();

    #[test]
    fn finds_decoded_and_written_text() {
        let text = MessageText::parse(MESSAGE);
        let cases = [
            (text.header_contains("from", "jörg"), true),
            (text.header_contains("FROM", "JOERG@EXAMPLE"), true),
            (text.header_contains("to", "bob"), true),
            (text.header_contains("subject", "grüße aus"), true),
            (text.header_contains("Message-ID", "<m1@example.net>"), true),
            (text.header_contains("x-tracker", ""), true),
            (text.header_contains("x-missing", ""), false),
            (text.header_contains("cc", "bob"), false),
            (text.body_contains("schöne grüße"), true),
            (text.body_contains("report"), true),
            (text.body_contains("köln"), false),
            (text.text_contains("köln"), true),
            (text.text_contains("x-tracker"), true),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
        assert_eq!(text.fields.subject.as_deref(), Some("Grüße aus Köln"));
        assert_eq!(text.fields.from_mailbox.as_deref(), Some("joerg"));
        assert_eq!(text.fields.to_mailbox.as_deref(), Some("alice"));
        assert_eq!(text.fields.cc_mailbox, None);
        assert_eq!(text.fields.message_id.as_deref(), Some("m1@example.net"));
        assert!(text.fields.references.is_empty());
        // 23 Nov 2026 as written, although it is already the 24th in UTC.
        assert_eq!(text.sent_day, Some(days_from_civil(2026, 11, 23)));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn references_fall_back_to_in_reply_to() {
        let with_refs = MessageText::parse(
            b"Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\nIn-Reply-To: <b@x>\r\n\r\nhi\r\n",
        );
        assert_eq!(with_refs.fields.references, ["a@x", "b@x"]);
        let reply = MessageText::parse(b"In-Reply-To: <b@x>\r\n\r\nhi\r\n");
        assert_eq!(reply.fields.references, ["b@x"]);
    }

    #[test]
    fn the_header_alone_has_no_body_text() {
        let full = MessageText::parse(MESSAGE);
        let header = MessageText::parse_header(MESSAGE);
        assert_eq!(header.fields, full.fields);
        assert_eq!(header.sent_day, full.sent_day);
        assert!(header.header_contains("from", "jörg"));
        assert!(!header.body_contains("report"));
    }

    #[test]
    fn garbage_has_no_text() {
        let text = MessageText::parse(b"\0\0\0");
        assert!(!text.body_contains("x"));
        assert_eq!(text.sent_day, None);
    }
}
