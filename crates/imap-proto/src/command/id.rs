//! ID (RFC 2971): `ID NIL` or `ID ("name" "value" ...)`.

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    /// `None` for `ID NIL`; otherwise field names and values (which may be NIL) in the
    /// order given. Non-UTF-8 bytes are replaced: the values are only informative.
    pub params: Option<Vec<(String, Option<String>)>>,
}

/// RFC 2971 caps the list at 30 pairs; more is a broken or hostile client.
const MAX_PAIRS: usize = 30;

pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<Id> {
    c.sp()?;
    if c.eat_keyword("NIL") {
        return Ok(Id { params: None });
    }
    c.expect(b'(')?;
    let mut params = Vec::new();
    if !c.eat(b')') {
        loop {
            let name = lossy(c.string()?);
            c.sp()?;
            let value = c.nstring()?.map(lossy);
            params.push((name, value));
            if params.len() > MAX_PAIRS {
                return Err(ParseError::syntax("too many ID fields"));
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(Id {
        params: Some(params),
    })
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn id(params: Option<&[(&str, Option<&str>)]>) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Id(Id {
            params: params.map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.map(String::from)))
                    .collect()
            }),
        }))
    }

    #[test]
    fn parses_id() {
        check(&[
            ("a ID NIL\r\n", id(None)),
            ("a ID ()\r\n", id(Some(&[]))),
            (
                "a ID (\"name\" \"mutt\" \"version\" NIL)\r\n",
                id(Some(&[("name", Some("mutt")), ("version", None)])),
            ),
            ("a ID (\"name\")\r\n", Err("expected a space")),
            ("a ID (name \"x\")\r\n", Err("expected a string")),
            ("a ID\r\n", Err("expected a space")),
        ]);
        let many = format!("a ID ({})\r\n", vec!["\"k\" \"v\""; 31].join(" "));
        check(&[(&many, Err("too many ID fields"))]);
    }
}
