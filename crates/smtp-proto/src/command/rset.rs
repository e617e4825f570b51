//! `RSET` (RFC 5321 section 4.1.1.5): abort the current transaction.

use super::{Command, no_arguments};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    no_arguments(args, Command::Rset)
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, ErrorKind::*};

    #[test]
    fn table() {
        check_table(&[
            ("RSET\r\n", Ok(Command::Rset)),
            ("rset\r\n", Ok(Command::Rset)),
            ("RSET now\r\n", Err(ParameterSyntax)),
        ]);
    }
}
