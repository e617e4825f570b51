//! `QUIT` (RFC 5321 section 4.1.1.10).

use super::{Command, no_arguments};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    no_arguments(args, Command::Quit)
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, ErrorKind::*};

    #[test]
    fn table() {
        check_table(&[
            ("QUIT\r\n", Ok(Command::Quit)),
            ("Quit\n", Ok(Command::Quit)),
            ("QUIT please\r\n", Err(ParameterSyntax)),
        ]);
    }
}
