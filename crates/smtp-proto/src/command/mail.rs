//! `MAIL FROM:<reverse-path> [parameters]` (RFC 5321 section 4.1.1.2) with the
//! parameters of SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531) and
//! DSN (RFC 3461, whose RET and ENVID are kept but not acted upon).

use super::Command;
use crate::error::{CommandError, ErrorKind};
use crate::params::{self, required_value};
use crate::path::{ReversePath, parse_reverse_path};

/// The declared body type of a message (`BODY=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
    /// Only valid with BDAT; the session must refuse `DATA` for such a transaction
    /// (RFC 3030 section 3) and should refuse it altogether unless it advertised
    /// BINARYMIME.
    BinaryMime,
}

/// A parsed `MAIL FROM` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    pub reverse_path: ReversePath,
    /// `SIZE=n`: the client's estimate, which a session compares with its limit to
    /// refuse early; the real size is still checked while receiving.
    pub size: Option<u64>,
    pub body: Option<BodyType>,
    /// `SMTPUTF8` was given, so UTF-8 addresses and headers are allowed.
    pub smtputf8: bool,
    /// `RET=FULL|HDRS`, kept verbatim (DSN is not implemented, only tolerated).
    pub ret: Option<String>,
    /// `ENVID=xtext`, kept verbatim.
    pub envid: Option<String>,
    /// `XDELIVERY=<32 hex digits>`: evermail's own parameter, by which a proxy names
    /// the transaction it may replay on another node, so the replay stores nothing a
    /// first attempt already stored. Sent by `evermail proxy`, never by an MTA.
    pub delivery: Option<[u8; 16]>,
}

impl MailFrom {
    /// A `MAIL FROM` with no parameters, handy for tests of sessions.
    pub fn new(reverse_path: ReversePath) -> Self {
        MailFrom {
            reverse_path,
            size: None,
            body: None,
            smtputf8: false,
            ret: None,
            envid: None,
            delivery: None,
        }
    }
}

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    let rest = strip_prefix_ignore_case(args, "FROM:")
        .ok_or_else(|| params::syntax("expected MAIL FROM:<address>"))?;
    // `MAIL FROM: <a@b>` violates RFC 5321 but is common enough to tolerate.
    let rest = rest.trim_start_matches(' ');
    let (reverse_path, rest) = parse_reverse_path(rest)
        .map_err(|e| CommandError::new(ErrorKind::BadSenderAddress, e.0))?;
    let mut mail = MailFrom::new(reverse_path);
    for param in params::split(rest)? {
        if param.is("SIZE") {
            let value = required_value(&param)?;
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(params::syntax("SIZE must be a number"));
            }
            mail.size = Some(
                value
                    .parse()
                    .map_err(|_| params::syntax("SIZE is out of range"))?,
            );
        } else if param.is("BODY") {
            let value = required_value(&param)?;
            mail.body = Some(if value.eq_ignore_ascii_case("7BIT") {
                BodyType::SevenBit
            } else if value.eq_ignore_ascii_case("8BITMIME") {
                BodyType::EightBitMime
            } else if value.eq_ignore_ascii_case("BINARYMIME") {
                BodyType::BinaryMime
            } else {
                return Err(params::syntax("BODY must be 7BIT, 8BITMIME or BINARYMIME"));
            });
        } else if param.is("SMTPUTF8") {
            if param.value.is_some() {
                return Err(params::syntax("SMTPUTF8 takes no value"));
            }
            mail.smtputf8 = true;
        } else if param.is("RET") {
            mail.ret = Some(required_value(&param)?.to_owned());
        } else if param.is("ENVID") {
            mail.envid = Some(required_value(&param)?.to_owned());
        } else if param.is("XDELIVERY") {
            mail.delivery = Some(
                parse_delivery(required_value(&param)?)
                    .ok_or_else(|| params::syntax("XDELIVERY must be 32 hex digits"))?,
            );
        } else {
            return Err(params::unsupported(&param));
        }
    }
    Ok(Command::Mail(mail))
}

/// 32 hex digits as 16 bytes.
fn parse_delivery(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `s` without a leading ASCII `prefix`, compared case-insensitively.
pub(super) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use super::*;
    use crate::{Domain, ErrorKind::*, Mailbox};

    fn from(local: &str, domain: &str) -> MailFrom {
        MailFrom::new(ReversePath::Mailbox(Mailbox {
            local_part: local.into(),
            domain: Domain::Name(domain.into()),
        }))
    }

    #[test]
    fn table() {
        let with = |f: fn(&mut MailFrom)| {
            let mut m = from("a", "b.c");
            f(&mut m);
            Ok(Command::Mail(m))
        };
        check_table(&[
            ("MAIL FROM:<a@b.c>\r\n", Ok(Command::Mail(from("a", "b.c")))),
            ("mail from:<a@b.c>\r\n", Ok(Command::Mail(from("a", "b.c")))),
            (
                "MAIL FROM: <a@b.c>\r\n",
                Ok(Command::Mail(from("a", "b.c"))),
            ),
            (
                "MAIL  FROM:<a@b.c>  \r\n",
                Ok(Command::Mail(from("a", "b.c"))),
            ),
            (
                "MAIL FROM:<>\r\n",
                Ok(Command::Mail(MailFrom::new(ReversePath::Null))),
            ),
            (
                "MAIL FROM:<@r1,@r2:a@b.c>\r\n",
                Ok(Command::Mail(from("a", "b.c"))),
            ),
            (
                "MAIL FROM:<\"x y\"@b.c>\r\n",
                Ok(Command::Mail(from("x y", "b.c"))),
            ),
            (
                "MAIL FROM:<a@b.c> SIZE=12345\r\n",
                with(|m| m.size = Some(12345)),
            ),
            ("MAIL FROM:<a@b.c> size=0\r\n", with(|m| m.size = Some(0))),
            (
                "MAIL FROM:<a@b.c> BODY=8BITMIME\r\n",
                with(|m| m.body = Some(BodyType::EightBitMime)),
            ),
            (
                "MAIL FROM:<a@b.c> BODY=7bit\r\n",
                with(|m| m.body = Some(BodyType::SevenBit)),
            ),
            (
                "MAIL FROM:<a@b.c> BODY=BINARYMIME\r\n",
                with(|m| m.body = Some(BodyType::BinaryMime)),
            ),
            (
                "MAIL FROM:<a@b.c> SMTPUTF8\r\n",
                with(|m| m.smtputf8 = true),
            ),
            (
                "MAIL FROM:<a@b.c> RET=HDRS ENVID=QQ314159\r\n",
                with(|m| {
                    m.ret = Some("HDRS".into());
                    m.envid = Some("QQ314159".into());
                }),
            ),
            (
                "MAIL FROM:<a@b.c> SIZE=1 BODY=8BITMIME SMTPUTF8\r\n",
                with(|m| {
                    m.size = Some(1);
                    m.body = Some(BodyType::EightBitMime);
                    m.smtputf8 = true;
                }),
            ),
            (
                "MAIL FROM:<ü@b.c> SMTPUTF8\r\n",
                Ok(Command::Mail(MailFrom {
                    smtputf8: true,
                    ..from("ü", "b.c")
                })),
            ),
            (
                "MAIL FROM:<a@b.c> XDELIVERY=000102030405060708090a0b0c0d0eff\r\n",
                with(|m| {
                    m.delivery = Some([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255])
                }),
            ),
            ("MAIL FROM:<a@b.c> XDELIVERY=00\r\n", Err(ParameterSyntax)),
            (
                "MAIL FROM:<a@b.c> XDELIVERY=zz0102030405060708090a0b0c0d0eff\r\n",
                Err(ParameterSyntax),
            ),
            ("MAIL\r\n", Err(ParameterSyntax)),
            ("MAIL TO:<a@b.c>\r\n", Err(ParameterSyntax)),
            ("MAIL FROM<a@b.c>\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:\r\n", Err(BadSenderAddress)),
            ("MAIL FROM:a@b.c\r\n", Err(BadSenderAddress)),
            ("MAIL FROM:<a@b.c\r\n", Err(BadSenderAddress)),
            ("MAIL FROM:<a@@b.c>\r\n", Err(BadSenderAddress)),
            ("MAIL FROM:<postmaster>\r\n", Err(BadSenderAddress)),
            ("MAIL FROM:<a@b.c>SIZE=1\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> SIZE=x\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> SIZE=+1\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> SIZE\r\n", Err(ParameterSyntax)),
            (
                "MAIL FROM:<a@b.c> SIZE=99999999999999999999999\r\n",
                Err(ParameterSyntax),
            ),
            ("MAIL FROM:<a@b.c> SIZE=1 SIZE=2\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> BODY=9BIT\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> SMTPUTF8=yes\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> RET\r\n", Err(ParameterSyntax)),
            ("MAIL FROM:<a@b.c> AUTH=<>\r\n", Err(UnsupportedParameter)),
            ("MAIL FROM:<a@b.c> XFOO\r\n", Err(UnsupportedParameter)),
        ]);
    }
}
