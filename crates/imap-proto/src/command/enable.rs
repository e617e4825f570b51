//! ENABLE (RFC 5161): `ENABLE cap [cap ...]`.

use crate::cursor::Cursor;
use crate::error::PResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enable {
    /// Upper-cased capability names, in the order given; unknown ones are kept so the
    /// session can ignore them, as RFC 5161 asks.
    pub capabilities: Vec<String>,
}

pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<Enable> {
    let mut capabilities = Vec::new();
    loop {
        c.sp()?;
        capabilities.push(c.atom()?.to_ascii_uppercase());
        if c.at_line_end() {
            return Ok(Enable { capabilities });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn enable(caps: &[&str]) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Enable(Enable {
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
        }))
    }

    #[test]
    fn parses_enable() {
        check(&[
            ("a ENABLE CONDSTORE\r\n", enable(&["CONDSTORE"])),
            (
                "a enable qresync utf8=accept X-FOO\r\n",
                enable(&["QRESYNC", "UTF8=ACCEPT", "X-FOO"]),
            ),
            ("a ENABLE\r\n", Err("expected a space")),
            ("a ENABLE \r\n", Err("expected an atom")),
            ("a ENABLE (X)\r\n", Err("expected an atom")),
        ]);
    }
}
