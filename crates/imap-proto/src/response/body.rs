//! ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 section 7.5.2), encoded straight from the
//! structure `evermail-types` stores for each message.

use evermail_types::{Address, Envelope, MimeBody, MimePart};

use super::encode::{nstr, string};

/// `envelope`. Sender and Reply-To repeat From when absent, as RFC 9051 requires; any
/// empty address list is NIL.
pub fn envelope<'a>(out: &mut Vec<u8>, env: &'a Envelope) {
    out.push(b'(');
    nstr(out, env.date.as_ref());
    out.push(b' ');
    nstr(out, env.subject.as_ref());
    let or_from = |list: &'a [Address]| if list.is_empty() { &env.from } else { list };
    for list in [
        &env.from[..],
        or_from(&env.sender),
        or_from(&env.reply_to),
        &env.to,
        &env.cc,
        &env.bcc,
    ] {
        out.push(b' ');
        addresses(out, list);
    }
    out.push(b' ');
    nstr(out, env.in_reply_to.as_ref());
    out.push(b' ');
    nstr(out, env.message_id.as_ref());
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstr(out, a.name.as_ref());
        out.push(b' ');
        nstr(out, a.adl.as_ref());
        out.push(b' ');
        nstr(out, a.mailbox.as_ref());
        out.push(b' ');
        nstr(out, a.host.as_ref());
        out.push(b')');
    }
    out.push(b')');
}

/// `body`: BODYSTRUCTURE when `extensible`, else the shorter BODY form.
pub fn body_structure(out: &mut Vec<u8>, part: &MimePart, extensible: bool) {
    out.push(b'(');
    match &part.body {
        MimeBody::Multipart(children) => {
            if children.is_empty() {
                // The grammar needs at least one part; a multipart without any (a
                // broken message) is shown with one empty text part.
                body_structure(out, &empty_text(), extensible);
            }
            for child in children {
                body_structure(out, child, extensible);
            }
            out.push(b' ');
            string(out, part.media_subtype.as_bytes());
            if extensible {
                out.push(b' ');
                params(out, &part.params);
                out.push(b' ');
                disposition_language_location(out, part);
            }
        }
        MimeBody::Message {
            envelope: env,
            part: inner,
        } if is_message(part) => {
            fields(out, part);
            out.push(b' ');
            envelope(out, env);
            out.push(b' ');
            body_structure(out, inner, extensible);
            out.push(b' ');
            out.extend_from_slice(part.lines.to_string().as_bytes());
            single_part_extension(out, part, extensible);
        }
        _ if is_message(part) => {
            // A message/rfc822 part we could not parse: the grammar still wants an
            // envelope and a body, so give empty ones rather than break the client.
            fields(out, part);
            out.push(b' ');
            envelope(out, &Envelope::default());
            out.push(b' ');
            body_structure(out, &empty_text(), extensible);
            out.push(b' ');
            out.extend_from_slice(part.lines.to_string().as_bytes());
            single_part_extension(out, part, extensible);
        }
        _ => {
            fields(out, part);
            if part.media_type.eq_ignore_ascii_case("text") {
                out.push(b' ');
                out.extend_from_slice(part.lines.to_string().as_bytes());
            }
            single_part_extension(out, part, extensible);
        }
    }
    out.push(b')');
}

fn is_message(part: &MimePart) -> bool {
    part.media_type.eq_ignore_ascii_case("message")
        && (part.media_subtype.eq_ignore_ascii_case("rfc822")
            || part.media_subtype.eq_ignore_ascii_case("global"))
}

fn empty_text() -> MimePart {
    MimePart {
        params: Vec::new(),
        ..MimePart::opaque(0, 0)
    }
}

/// `media-type SP body-fields`: type, subtype, params, id, description, encoding, size.
fn fields(out: &mut Vec<u8>, part: &MimePart) {
    string(out, part.media_type.as_bytes());
    out.push(b' ');
    string(out, part.media_subtype.as_bytes());
    out.push(b' ');
    params(out, &part.params);
    out.push(b' ');
    nstr(out, part.id.as_ref());
    out.push(b' ');
    nstr(out, part.description.as_ref());
    out.push(b' ');
    string(out, part.encoding.as_bytes());
    out.push(b' ');
    out.extend_from_slice(part.size.to_string().as_bytes());
}

/// `body-ext-1part`: md5, disposition, language, location.
fn single_part_extension(out: &mut Vec<u8>, part: &MimePart, extensible: bool) {
    if !extensible {
        return;
    }
    out.push(b' ');
    nstr(out, part.md5.as_ref());
    out.push(b' ');
    disposition_language_location(out, part);
}

fn disposition_language_location(out: &mut Vec<u8>, part: &MimePart) {
    match &part.disposition {
        Some((kind, p)) => {
            out.push(b'(');
            string(out, kind.as_bytes());
            out.push(b' ');
            params(out, p);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one.as_bytes()),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l.as_bytes());
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstr(out, part.location.as_ref());
}

/// `body-fld-param`: NIL when empty.
fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_part(params: &[(&str, &str)], size: u64, lines: u64) -> MimePart {
        MimePart {
            media_type: "TEXT".into(),
            media_subtype: "PLAIN".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            lines,
            size,
            ..MimePart::opaque(0, 0)
        }
    }

    /// The two-part message of RFC 3501 section 7.4.2 (and RFC 9051's BODYSTRUCTURE
    /// example), with strings in the RFC's case so the output can be compared exactly.
    fn rfc_example() -> MimePart {
        let first = text_part(&[("CHARSET", "US-ASCII")], 1152, 23);
        let second = MimePart {
            id: Some("<960723163407.20117h@cac.washington.edu>".into()),
            description: Some("Compiler diff".into()),
            encoding: "BASE64".into(),
            ..text_part(&[("CHARSET", "US-ASCII"), ("NAME", "cc.diff")], 4554, 73)
        };
        MimePart {
            media_type: "MULTIPART".into(),
            media_subtype: "MIXED".into(),
            params: vec![],
            body: MimeBody::Multipart(vec![first, second]),
            ..MimePart::opaque(0, 0)
        }
    }

    fn enc(part: &MimePart, extensible: bool) -> String {
        let mut out = Vec::new();
        body_structure(&mut out, part, extensible);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_the_rfc_example() {
        assert_eq!(
            enc(&rfc_example(), false),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)\
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
             \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \
             \"MIXED\")"
        );
        // BODYSTRUCTURE adds the extension data after the same shape.
        assert_eq!(
            enc(&rfc_example(), true),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL NIL)\
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
             \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73 NIL NIL NIL NIL) \
             \"MIXED\" NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn encodes_extension_fields_and_nesting() {
        let attachment = MimePart {
            media_type: "application".into(),
            media_subtype: "pdf".into(),
            params: vec![("name".into(), "a.pdf".into())],
            encoding: "BASE64".into(),
            size: 10,
            md5: Some("Q2hlY2s=".into()),
            disposition: Some((
                "attachment".into(),
                vec![("filename".into(), "a.pdf".into())],
            )),
            language: vec!["en".into(), "de".into()],
            location: Some("http://x/a.pdf".into()),
            ..MimePart::opaque(0, 0)
        };
        assert_eq!(
            enc(&attachment, true),
            "(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"BASE64\" 10 \"Q2hlY2s=\" \
             (\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") \"http://x/a.pdf\")"
        );
        assert_eq!(
            enc(&attachment, false),
            "(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"BASE64\" 10)"
        );
        let inner = text_part(&[], 5, 1);
        let message = MimePart {
            media_type: "message".into(),
            media_subtype: "rfc822".into(),
            params: vec![],
            size: 50,
            lines: 4,
            body: MimeBody::Message {
                envelope: Box::new(Envelope {
                    subject: Some("hi".into()),
                    ..Envelope::default()
                }),
                part: Box::new(inner),
            },
            ..MimePart::opaque(0, 0)
        };
        assert_eq!(
            enc(&message, false),
            "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 50 \
             (NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1) 4)"
        );
        // An unparsed message/rfc822 still follows the grammar.
        let broken = MimePart {
            body: MimeBody::Leaf,
            ..message
        };
        assert_eq!(
            enc(&broken, false),
            "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 50 \
             (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"text\" \"plain\" NIL NIL NIL \"7BIT\" 0 0) 4)"
        );
    }

    #[test]
    fn envelope_defaults_sender_and_reply_to() {
        let addr = |name: Option<&str>, mailbox: &str, host: &str| Address {
            name: name.map(String::from),
            adl: None,
            mailbox: Some(mailbox.into()),
            host: Some(host.into()),
        };
        let env = Envelope {
            date: Some("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".into()),
            subject: Some("IMAP4rev2 WG mtg summary and minutes".into()),
            from: vec![addr(Some("Terry Gray"), "gray", "cac.washington.edu")],
            to: vec![addr(None, "imap", "cac.washington.edu")],
            cc: vec![
                addr(None, "minutes", "CNRI.Reston.VA.US"),
                addr(Some("John Klensin"), "KLENSIN", "MIT.EDU"),
            ],
            message_id: Some("<B27397-0100000@cac.washington.edu>".into()),
            ..Envelope::default()
        };
        let mut out = Vec::new();
        envelope(&mut out, &env);
        // RFC 9051 section 7.5.2's example, which has the same From, Sender and Reply-To.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) \
             ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")\
             (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
             \"<B27397-0100000@cac.washington.edu>\")"
        );
    }
}
