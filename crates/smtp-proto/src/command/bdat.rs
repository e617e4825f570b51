//! `BDAT size [LAST]` (RFC 3030 section 2). Exactly `size` bytes follow the line and
//! are read with [`crate::BdatBody`], even when the command is refused, because the
//! client sends them without waiting for a reply.

use super::Command;
use crate::error::CommandError;
use crate::params;

pub(super) fn parse(args: &str) -> Result<Command, CommandError> {
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .ok_or_else(|| params::syntax("BDAT requires a chunk size"))?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(params::syntax("BDAT chunk size must be a number"));
    }
    let size = size
        .parse()
        .map_err(|_| params::syntax("BDAT chunk size is out of range"))?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(params::syntax("expected BDAT size [LAST]")),
    };
    if words.next().is_some() {
        return Err(params::syntax("expected BDAT size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::super::check_table;
    use crate::{Command, ErrorKind::*};

    #[test]
    fn table() {
        let bdat = |size, last| Ok(Command::Bdat { size, last });
        check_table(&[
            ("BDAT 100\r\n", bdat(100, false)),
            ("BDAT 0 LAST\r\n", bdat(0, true)),
            ("bdat 42 last\r\n", bdat(42, true)),
            ("BDAT  7  LAST \r\n", bdat(7, true)),
            ("BDAT 18446744073709551615\r\n", bdat(u64::MAX, false)),
            ("BDAT\r\n", Err(ParameterSyntax)),
            ("BDAT LAST\r\n", Err(ParameterSyntax)),
            ("BDAT -1\r\n", Err(ParameterSyntax)),
            ("BDAT +1\r\n", Err(ParameterSyntax)),
            ("BDAT 18446744073709551616\r\n", Err(ParameterSyntax)),
            ("BDAT 1 FIRST\r\n", Err(ParameterSyntax)),
            ("BDAT 1 LAST x\r\n", Err(ParameterSyntax)),
        ]);
    }
}
