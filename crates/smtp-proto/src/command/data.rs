//! `DATA` (RFC 5321 section 4.1.1.4). The message that follows is read with
//! [`crate::DataDecoder`], not by this parser.

use super::{Command, no_arguments};
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    no_arguments(args, Command::Data)
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, ErrorKind::*};

    #[test]
    fn table() {
        check_table(&[
            ("DATA\r\n", Ok(Command::Data)),
            ("data\r\n", Ok(Command::Data)),
            ("DATA \r\n", Ok(Command::Data)),
            ("DATA x\r\n", Err(ParameterSyntax)),
        ]);
    }
}
