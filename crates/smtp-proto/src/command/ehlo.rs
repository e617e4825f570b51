//! `EHLO domain` (RFC 5321 section 4.1.1.1). LMTP forbids it (RFC 2033 section 4.1),
//! but it is parsed so the session can tell "wrong greeting" from "garbage", and so
//! SMTP submission can reuse this crate.

use super::{Command, greeting_domain};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    Ok(Command::Ehlo {
        domain: greeting_domain(args)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, Domain, ErrorKind::*};

    #[test]
    fn table() {
        check_table(&[
            (
                "EHLO client.example\r\n",
                Ok(Command::Ehlo {
                    domain: Domain::Name("client.example".into()),
                }),
            ),
            (
                "ehlo [IPv6:::1]\r\n",
                Ok(Command::Ehlo {
                    domain: Domain::Ipv6(std::net::Ipv6Addr::LOCALHOST),
                }),
            ),
            ("EHLO\r\n", Err(ParameterSyntax)),
            ("EHLO a..b\r\n", Err(ParameterSyntax)),
        ]);
    }
}
