//! Mailboxes and paths of `MAIL FROM` and `RCPT TO` (RFC 5321 section 4.1.2, with the
//! UTF-8 extensions of RFC 6531).
//!
//! The parser accepts UTF-8 in local parts and domains whether or not the client
//! gave `SMTPUTF8`, because a stateless line parser cannot know; a session that cares
//! checks [`Mailbox::is_ascii`] against the transaction's `SMTPUTF8` flag.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The part of a mailbox after `@`.
///
/// Domain names are kept as the client spelled them; they compare case-insensitively,
/// which is the caller's business because the original spelling may matter in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A host name such as `example.com` (U-labels allowed).
    Name(String),
    /// An address literal `[192.0.2.1]`.
    Ipv4(Ipv4Addr),
    /// An address literal `[IPv6:2001:db8::1]`.
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(name) => f.write_str(name),
            Domain::Ipv4(addr) => write!(f, "[{addr}]"),
            Domain::Ipv6(addr) => write!(f, "[IPv6:{addr}]"),
        }
    }
}

impl Domain {
    /// Whether the domain is plain ASCII (address literals always are).
    pub fn is_ascii(&self) -> bool {
        match self {
            Domain::Name(name) => name.is_ascii(),
            Domain::Ipv4(_) | Domain::Ipv6(_) => true,
        }
    }
}

/// A mailbox `local-part@domain`.
///
/// `local_part` holds the decoded value: a quoted local part `"a b"` is stored as
/// `a b` without quotes or backslashes, so that two spellings of the same mailbox
/// compare equal. [`fmt::Display`] quotes it again when needed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub local_part: String,
    pub domain: Domain,
}

impl Mailbox {
    /// Whether the whole address is ASCII, i.e. usable without `SMTPUTF8`.
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.domain.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local_part) {
            f.write_str(&self.local_part)?;
        } else {
            f.write_str("\"")?;
            for c in self.local_part.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// Parses `local@domain` without angle brackets, as found in configuration or in a
/// session's own bookkeeping.
impl FromStr for Mailbox {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        let mut cursor = Cursor { s, i: 0 };
        let mailbox = cursor.mailbox()?;
        if cursor.i != s.len() {
            return Err(PathError("unexpected text after the mailbox"));
        }
        Ok(mailbox)
    }
}

/// Why a path or mailbox did not parse; the message is fit for a reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub(crate) &'static str);

/// The argument of `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: the message is a bounce and must not cause another one.
    Null,
    Mailbox(Mailbox),
}

/// The argument of `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain, which RFC 5321 requires servers to accept.
    Postmaster,
    Mailbox(Mailbox),
}

/// Parses a reverse-path at the start of `s`, returning it and the unparsed rest.
pub(crate) fn parse_reverse_path(s: &str) -> Result<(ReversePath, &str), PathError> {
    if let Some(rest) = s.strip_prefix("<>") {
        return Ok((ReversePath::Null, rest));
    }
    let (mailbox, rest) = parse_path(s, false)?;
    Ok((
        mailbox.map_or(ReversePath::Null, ReversePath::Mailbox),
        rest,
    ))
}

/// Parses a forward-path at the start of `s`, returning it and the unparsed rest.
pub(crate) fn parse_forward_path(s: &str) -> Result<(ForwardPath, &str), PathError> {
    let (mailbox, rest) = parse_path(s, true)?;
    Ok((
        mailbox.map_or(ForwardPath::Postmaster, ForwardPath::Mailbox),
        rest,
    ))
}

/// Parses a whole string as a domain or address literal (the argument of LHLO).
pub(crate) fn parse_domain(s: &str) -> Result<Domain, PathError> {
    let mut cursor = Cursor { s, i: 0 };
    let domain = cursor.domain_or_literal()?;
    if cursor.i != s.len() {
        return Err(PathError("unexpected text after the domain"));
    }
    Ok(domain)
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"`. Returns `None` for `<Postmaster>` when
/// `allow_postmaster` is set.
fn parse_path(s: &str, allow_postmaster: bool) -> Result<(Option<Mailbox>, &str), PathError> {
    let mut cursor = Cursor { s, i: 0 };
    if !cursor.eat(b'<') {
        return Err(PathError("the address must be enclosed in <>"));
    }
    // The source route is obsolete (RFC 5321 appendix C): we must accept it and
    // ignore it, so it is parsed only to find where the mailbox begins.
    if cursor.peek() == Some(b'@') {
        loop {
            if !cursor.eat(b'@') {
                return Err(PathError("bad source route"));
            }
            cursor.domain_or_literal()?;
            if !cursor.eat(b',') {
                break;
            }
        }
        if !cursor.eat(b':') {
            return Err(PathError("bad source route"));
        }
    }
    if allow_postmaster {
        let rest = &s[cursor.i..];
        if rest.len() >= 11
            && rest.is_char_boundary(10)
            && rest[..10].eq_ignore_ascii_case("postmaster")
            && rest.as_bytes()[10] == b'>'
        {
            return Ok((None, &rest[11..]));
        }
    }
    let mailbox = cursor.mailbox()?;
    if !cursor.eat(b'>') {
        return Err(PathError("the address must be enclosed in <>"));
    }
    Ok((Some(mailbox), &s[cursor.i..]))
}

/// `atext` of RFC 5322 plus any non-ASCII byte (RFC 6531). Non-ASCII bytes only ever
/// occur inside whole UTF-8 sequences here, because the input is a `&str` and every
/// slice boundary we cut at is an ASCII byte.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// `Mailbox = Local-part "@" ( Domain / address-literal )`
    fn mailbox(&mut self) -> Result<Mailbox, PathError> {
        let local_part = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            self.dot_string()?
        };
        if !self.eat(b'@') {
            return Err(PathError("the address must contain @ and a domain"));
        }
        let domain = self.domain_or_literal()?;
        Ok(Mailbox { local_part, domain })
    }

    fn dot_string(&mut self) -> Result<String, PathError> {
        let start = self.i;
        loop {
            if self.take_while(is_atext).is_empty() {
                return Err(PathError("bad local part"));
            }
            if !self.eat(b'.') {
                break;
            }
        }
        Ok(self.s[start..self.i].to_owned())
    }

    /// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`, returned decoded.
    fn quoted_string(&mut self) -> Result<String, PathError> {
        self.i += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b @ 32..=126) => value.push(b),
                        _ => return Err(PathError("bad quoted local part")),
                    }
                    self.i += 1;
                }
                Some(b @ (32..=126 | 0x80..)) => {
                    value.push(b);
                    self.i += 1;
                }
                _ => return Err(PathError("bad quoted local part")),
            }
        }
        // The bytes are whole UTF-8 sequences copied from a `&str`, so this never
        // fails; mapping instead of unwrapping keeps the parser panic-free by design.
        String::from_utf8(value).map_err(|_| PathError("bad quoted local part"))
    }

    fn domain_or_literal(&mut self) -> Result<Domain, PathError> {
        if self.eat(b'[') {
            let literal = self.take_while(|b| b != b']' && b != b'>' && b != b' ');
            if !self.eat(b']') {
                return Err(PathError("unterminated address literal"));
            }
            return parse_address_literal(literal);
        }
        let start = self.i;
        loop {
            let label = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80);
            if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
                return Err(PathError("bad domain"));
            }
            // Only consume a dot that is followed by another label, so that `a.b.`
            // fails at the dot instead of being read as `a.b`.
            if self.peek() != Some(b'.') {
                break;
            }
            self.i += 1;
        }
        Ok(Domain::Name(self.s[start..self.i].to_owned()))
    }
}

fn parse_address_literal(literal: &str) -> Result<Domain, PathError> {
    if literal.len() >= 5
        && literal.is_char_boundary(5)
        && literal[..5].eq_ignore_ascii_case("IPv6:")
    {
        return literal[5..]
            .parse()
            .map(Domain::Ipv6)
            .map_err(|_| PathError("bad IPv6 address literal"));
    }
    // General address literals (`[tag:content]`) have no registered tags in use, so
    // anything else must be IPv4.
    literal
        .parse()
        .map(Domain::Ipv4)
        .map_err(|_| PathError("bad address literal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(local: &str, domain: &str) -> Mailbox {
        Mailbox {
            local_part: local.into(),
            domain: Domain::Name(domain.into()),
        }
    }

    #[test]
    fn forward_paths() {
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        type Want = Result<(ForwardPath, &'static str), ()>;
        let cases: Vec<(&str, Want)> = vec![
            ("<a@b>", Ok((ForwardPath::Mailbox(mb("a", "b")), ""))),
            (
                "<a.b@c.d> X",
                Ok((ForwardPath::Mailbox(mb("a.b", "c.d")), " X")),
            ),
            (
                "<\"a b\"@example.com>",
                Ok((ForwardPath::Mailbox(mb("a b", "example.com")), "")),
            ),
            (
                "<\"a\\\"b\"@x>",
                Ok((ForwardPath::Mailbox(mb("a\"b", "x")), "")),
            ),
            ("<\"\"@x>", Ok((ForwardPath::Mailbox(mb("", "x")), ""))),
            (
                "<\"a>b\"@x>",
                Ok((ForwardPath::Mailbox(mb("a>b", "x")), "")),
            ),
            (
                "<@a,@b.c:u@h>",
                Ok((ForwardPath::Mailbox(mb("u", "h")), "")),
            ),
            ("<@a:u@h>", Ok((ForwardPath::Mailbox(mb("u", "h")), ""))),
            (
                "<u@[192.0.2.1]>",
                Ok((
                    ForwardPath::Mailbox(Mailbox {
                        local_part: "u".into(),
                        domain: Domain::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
                    }),
                    "",
                )),
            ),
            (
                "<u@[ipv6:2001:db8::1]>",
                Ok((
                    ForwardPath::Mailbox(Mailbox {
                        local_part: "u".into(),
                        domain: Domain::Ipv6(v6),
                    }),
                    "",
                )),
            ),
            (
                "<josé@bücher.de>",
                Ok((ForwardPath::Mailbox(mb("josé", "bücher.de")), "")),
            ),
            (
                "<\"jo sé\"@x>",
                Ok((ForwardPath::Mailbox(mb("jo sé", "x")), "")),
            ),
            ("<Postmaster>", Ok((ForwardPath::Postmaster, ""))),
            (
                "<postmaster> NOTIFY=NEVER",
                Ok((ForwardPath::Postmaster, " NOTIFY=NEVER")),
            ),
            (
                "<postmaster@x>",
                Ok((ForwardPath::Mailbox(mb("postmaster", "x")), "")),
            ),
            (
                "<a-b@x-y.z>",
                Ok((ForwardPath::Mailbox(mb("a-b", "x-y.z")), "")),
            ),
            ("<>", Err(())),
            ("a@b", Err(())),
            ("<a@b", Err(())),
            ("<a>", Err(())),
            ("<@b>", Err(())),
            ("<a@>", Err(())),
            ("<.a@b>", Err(())),
            ("<a.@b>", Err(())),
            ("<a..b@c>", Err(())),
            ("<a b@c>", Err(())),
            ("<a@b.>", Err(())),
            ("<a@.b>", Err(())),
            ("<a@-b>", Err(())),
            ("<a@b->", Err(())),
            ("<a@b_c>", Err(())),
            ("<\"a@b>", Err(())),
            ("<\"a\tb\"@c>", Err(())),
            ("<a@[300.1.1.1]>", Err(())),
            ("<a@[IPv6:zz]>", Err(())),
            ("<a@[1.2.3.4>", Err(())),
            ("<@a,u@h>", Err(())),
            ("<@a;u@h>", Err(())),
            ("", Err(())),
            ("<", Err(())),
        ];
        let mut failures = Vec::new();
        for (input, want) in cases {
            let got = parse_forward_path(input).map_err(|_| ());
            if got != want {
                failures.push(format!("{input:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn reverse_paths() {
        assert_eq!(parse_reverse_path("<> X"), Ok((ReversePath::Null, " X")));
        assert_eq!(
            parse_reverse_path("<a@b>"),
            Ok((ReversePath::Mailbox(mb("a", "b")), ""))
        );
        // Postmaster without a domain is a forward-path only.
        assert!(parse_reverse_path("<postmaster>").is_err());
    }

    #[test]
    fn display_round_trips() {
        let cases = [
            ("a@b", "a@b"),
            ("\"a b\"@example.com", "\"a b\"@example.com"),
            ("\"ab\"@x", "ab@x"),
            ("\"a\\\\b\"@x", "\"a\\\\b\"@x"),
            ("u@[192.0.2.1]", "u@[192.0.2.1]"),
            ("u@[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]"),
            ("josé@bücher.de", "josé@bücher.de"),
        ];
        for (input, want) in cases {
            let parsed: Mailbox = input.parse().unwrap();
            assert_eq!(parsed.to_string(), want, "{input}");
            assert_eq!(want.parse::<Mailbox>().unwrap(), parsed, "{input}");
        }
        assert!("a@b c".parse::<Mailbox>().is_err());
    }

    #[test]
    fn domains() {
        assert_eq!(
            parse_domain("mx.example"),
            Ok(Domain::Name("mx.example".into()))
        );
        assert_eq!(
            parse_domain("[127.0.0.1]"),
            Ok(Domain::Ipv4(Ipv4Addr::LOCALHOST))
        );
        assert!(parse_domain("mx.example x").is_err());
        assert!(parse_domain("").is_err());
        assert!(!mb("josé", "x").is_ascii());
        assert!(mb("jose", "x").is_ascii());
    }
}
