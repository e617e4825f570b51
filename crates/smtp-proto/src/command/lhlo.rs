//! `LHLO domain` (RFC 2033 section 4.1): the LMTP replacement for EHLO.

use super::{Command, greeting_domain};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    Ok(Command::Lhlo {
        domain: greeting_domain(args)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, Domain, ErrorKind::*};
    use std::net::Ipv4Addr;

    #[test]
    fn table() {
        let name = |s: &str| Command::Lhlo {
            domain: Domain::Name(s.into()),
        };
        check_table(&[
            ("LHLO mx.example.com\r\n", Ok(name("mx.example.com"))),
            ("lhlo localhost\r\n", Ok(name("localhost"))),
            ("LHLO  mx \r\n", Ok(name("mx"))),
            (
                "LHLO [127.0.0.1]\r\n",
                Ok(Command::Lhlo {
                    domain: Domain::Ipv4(Ipv4Addr::LOCALHOST),
                }),
            ),
            ("LHLO\r\n", Err(ParameterSyntax)),
            ("LHLO \r\n", Err(ParameterSyntax)),
            ("LHLO a b\r\n", Err(ParameterSyntax)),
            ("LHLO a_b\r\n", Err(ParameterSyntax)),
            ("LHLO [1.2.3]\r\n", Err(ParameterSyntax)),
        ]);
    }
}
