//! STORE and UID STORE, with CONDSTORE's UNCHANGEDSINCE (RFC 7162).

use evermail_types::Flag;

use crate::command::{parse_flag, parse_flag_list};
use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};
use crate::sequence::SequenceSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub set: SequenceSet,
    pub uid: bool,
    pub unchanged_since: Option<u64>,
    pub mode: StoreMode,
    /// `.SILENT`: no untagged FETCH for the changed flags (CONDSTORE may still send
    /// some, RFC 7162 section 3.1.3).
    pub silent: bool,
    /// Possibly empty: `FLAGS ()` clears every flag.
    pub flags: Vec<Flag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

pub(crate) fn parse(c: &mut Cursor<'_>, uid: bool) -> PResult<Store> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        c.list(|c| {
            let name = c.atom()?;
            if !name.eq_ignore_ascii_case("UNCHANGEDSINCE") {
                return Err(ParseError::syntax(format!("unknown STORE modifier {name}")));
            }
            c.sp()?;
            unchanged_since = Some(c.number64()?);
            Ok(())
        })?;
        c.sp()?;
    }
    let mode = if c.eat(b'+') {
        StoreMode::Add
    } else if c.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let silent = if c.eat_keyword("FLAGS") {
        false
    } else if c.eat_keyword("FLAGS.SILENT") {
        true
    } else {
        return Err(c.unexpected("FLAGS, +FLAGS or -FLAGS"));
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        parse_flag_list(c)?
    } else {
        // The rev1 form without parentheses: one or more flags.
        let mut flags = vec![parse_flag(c)?];
        while c.eat(b' ') {
            flags.push(parse_flag(c)?);
        }
        flags
    };
    Ok(Store {
        set,
        uid,
        unchanged_since,
        mode,
        silent,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    fn store(set: &str, mode: StoreMode, silent: bool, flags: Vec<Flag>) -> Store {
        Store {
            set: set.parse().unwrap(),
            uid: false,
            unchanged_since: None,
            mode,
            silent,
            flags,
        }
    }

    fn ok(s: Store) -> Result<CommandBody, &'static str> {
        Ok(CommandBody::Store(s))
    }

    #[test]
    fn parses_store() {
        use StoreMode::*;
        check(&[
            (
                "a STORE 2:4 +FLAGS (\\Deleted)\r\n",
                ok(store("2:4", Add, false, vec![Flag::Deleted])),
            ),
            (
                "a STORE 1 -flags.silent (\\Seen $Junk)\r\n",
                ok(store(
                    "1",
                    Remove,
                    true,
                    vec![Flag::Seen, Flag::Keyword("$Junk".into())],
                )),
            ),
            (
                "a STORE 1 FLAGS ()\r\n",
                ok(store("1", Replace, false, vec![])),
            ),
            (
                "a STORE 1 FLAGS \\Seen \\Draft\r\n",
                ok(store("1", Replace, false, vec![Flag::Seen, Flag::Draft])),
            ),
            (
                "a UID STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
                ok(Store {
                    uid: true,
                    unchanged_since: Some(320162338),
                    ..store("1:*", Add, true, vec![Flag::Deleted])
                }),
            ),
            ("a STORE 1 FLAGS\r\n", Err("expected a space")),
            (
                "a STORE 1 +FLAG (\\Seen)\r\n",
                Err("expected FLAGS, +FLAGS or -FLAGS"),
            ),
            (
                "a STORE 1 FLAGS.LOUD (\\Seen)\r\n",
                Err("expected FLAGS, +FLAGS or -FLAGS"),
            ),
            ("a STORE 1 FLAGS (\\Recent)\r\n", Err("cannot be set")),
            (
                "a STORE 1 (FOO 1) FLAGS (\\Seen)\r\n",
                Err("unknown STORE modifier FOO"),
            ),
            ("a STORE 1 FLAGS (\\Seen\r\n", Err("expected a space")),
        ]);
    }
}
