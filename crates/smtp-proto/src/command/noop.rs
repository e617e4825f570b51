//! `NOOP [string]` (RFC 5321 section 4.1.1.9). The optional argument means nothing,
//! so it is accepted and dropped.

use super::Command;
use crate::error::CommandError;

pub(super) fn parse(_args: &str) -> Result<Command, CommandError> {
    Ok(Command::Noop)
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::Command;

    #[test]
    fn table() {
        check_table(&[
            ("NOOP\r\n", Ok(Command::Noop)),
            ("NOOP anything at all\r\n", Ok(Command::Noop)),
            ("noop é\r\n", Ok(Command::Noop)),
        ]);
    }
}
