//! `HELP [string]` (RFC 5321 section 4.1.1.8).

use super::Command;
use crate::error::CommandError;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    Ok(Command::Help {
        topic: (!args.is_empty()).then(|| args.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::Command;

    #[test]
    fn table() {
        check_table(&[
            ("HELP\r\n", Ok(Command::Help { topic: None })),
            ("help \r\n", Ok(Command::Help { topic: None })),
            (
                "HELP RCPT\r\n",
                Ok(Command::Help {
                    topic: Some("RCPT".into()),
                }),
            ),
        ]);
    }
}
