//! `VRFY string` (RFC 5321 section 4.1.1.6). Sessions usually answer `252` without
//! looking anything up, so the argument is kept as plain text rather than parsed as
//! a mailbox (it may legitimately be a bare user name).

use super::Command;
use crate::error::CommandError;
use crate::params;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    if args.is_empty() {
        return Err(params::syntax("VRFY requires an argument"));
    }
    Ok(Command::Vrfy {
        argument: args.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, ErrorKind::*};

    #[test]
    fn table() {
        let vrfy = |a: &str| Ok(Command::Vrfy { argument: a.into() });
        check_table(&[
            ("VRFY alice\r\n", vrfy("alice")),
            ("vrfy <alice@example.com>\r\n", vrfy("<alice@example.com>")),
            ("VRFY  Alice Smith \r\n", vrfy("Alice Smith")),
            ("VRFY\r\n", Err(ParameterSyntax)),
            ("VRFY \r\n", Err(ParameterSyntax)),
        ]);
    }
}
