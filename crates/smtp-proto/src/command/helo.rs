//! `HELO domain` (RFC 5321 section 4.1.1.1). LMTP forbids it (RFC 2033 section 4.1),
//! but it is parsed so the session can tell "wrong greeting" from "garbage".

use super::{Command, greeting_domain};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    Ok(Command::Helo {
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
                "HELO client.example\r\n",
                Ok(Command::Helo {
                    domain: Domain::Name("client.example".into()),
                }),
            ),
            ("helo\r\n", Err(ParameterSyntax)),
            ("HELO -bad\r\n", Err(ParameterSyntax)),
        ]);
    }
}
