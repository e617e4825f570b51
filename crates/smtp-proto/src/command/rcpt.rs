//! `RCPT TO:<forward-path> [parameters]` (RFC 5321 section 4.1.1.3). In LMTP each
//! accepted recipient gets its own reply after the data (RFC 2033 section 4.2), which
//! is the session's business; here it is only a path and the DSN parameters of
//! RFC 3461, which are kept but not acted upon.

use super::Command;
use super::mail::strip_prefix_ignore_case;
use crate::error::{CommandError, ErrorKind};
use crate::params::{self, required_value};
use crate::path::{ForwardPath, parse_forward_path};

/// A parsed `RCPT TO` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub forward_path: ForwardPath,
    /// `NOTIFY=...`, kept verbatim (DSN is tolerated, not implemented).
    pub notify: Option<String>,
    /// `ORCPT=addr-type;xtext`, kept verbatim.
    pub orcpt: Option<String>,
}

impl RcptTo {
    /// An `RCPT TO` with no parameters.
    pub fn new(forward_path: ForwardPath) -> Self {
        RcptTo {
            forward_path,
            notify: None,
            orcpt: None,
        }
    }
}

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    let rest = strip_prefix_ignore_case(args, "TO:")
        .ok_or_else(|| params::syntax("expected RCPT TO:<address>"))?;
    // `RCPT TO: <a@b>` violates RFC 5321 but is common enough to tolerate.
    let rest = rest.trim_start_matches(' ');
    let (forward_path, rest) = parse_forward_path(rest)
        .map_err(|e| CommandError::new(ErrorKind::BadRecipientAddress, e.0))?;
    let mut rcpt = RcptTo::new(forward_path);
    for param in params::split(rest)? {
        if param.is("NOTIFY") {
            rcpt.notify = Some(required_value(&param)?.to_owned());
        } else if param.is("ORCPT") {
            rcpt.orcpt = Some(required_value(&param)?.to_owned());
        } else {
            return Err(params::unsupported(&param));
        }
    }
    Ok(Command::Rcpt(rcpt))
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use super::*;
    use crate::{Domain, ErrorKind::*, Mailbox};

    fn to(local: &str, domain: &str) -> RcptTo {
        RcptTo::new(ForwardPath::Mailbox(Mailbox {
            local_part: local.into(),
            domain: Domain::Name(domain.into()),
        }))
    }

    #[test]
    fn table() {
        check_table(&[
            (
                "RCPT TO:<u@example.com>\r\n",
                Ok(Command::Rcpt(to("u", "example.com"))),
            ),
            (
                "rcpt to:<u@example.com>\r\n",
                Ok(Command::Rcpt(to("u", "example.com"))),
            ),
            (
                "RCPT TO: <u@example.com>\r\n",
                Ok(Command::Rcpt(to("u", "example.com"))),
            ),
            (
                "RCPT TO:<\"a b\"@example.com>\r\n",
                Ok(Command::Rcpt(to("a b", "example.com"))),
            ),
            (
                "RCPT TO:<@x.org,@y.org:u@example.com>\r\n",
                Ok(Command::Rcpt(to("u", "example.com"))),
            ),
            (
                "RCPT TO:<用户@例子.广告>\r\n",
                Ok(Command::Rcpt(to("用户", "例子.广告"))),
            ),
            (
                "RCPT TO:<Postmaster>\r\n",
                Ok(Command::Rcpt(RcptTo::new(ForwardPath::Postmaster))),
            ),
            (
                "RCPT TO:<u@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.com\r\n",
                Ok(Command::Rcpt(RcptTo {
                    notify: Some("SUCCESS,FAILURE".into()),
                    orcpt: Some("rfc822;u@example.com".into()),
                    ..to("u", "example.com")
                })),
            ),
            ("RCPT\r\n", Err(ParameterSyntax)),
            ("RCPT FROM:<u@example.com>\r\n", Err(ParameterSyntax)),
            ("RCPT TO:\r\n", Err(BadRecipientAddress)),
            ("RCPT TO:<>\r\n", Err(BadRecipientAddress)),
            ("RCPT TO:<u>\r\n", Err(BadRecipientAddress)),
            ("RCPT TO:u@example.com\r\n", Err(BadRecipientAddress)),
            ("RCPT TO:<u@example..com>\r\n", Err(BadRecipientAddress)),
            ("RCPT TO:<u@example.com> NOTIFY\r\n", Err(ParameterSyntax)),
            (
                "RCPT TO:<u@example.com> SIZE=1\r\n",
                Err(UnsupportedParameter),
            ),
        ]);
    }
}
