//! SORT and THREAD (RFC 5256), and their UID forms: `SORT (criteria) charset keys`,
//! `THREAD algorithm charset keys`. The search keys are SEARCH's.

use crate::command::search::{SearchKey, parse_criteria};
use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub uid: bool,
    /// At least one; earlier criteria take precedence.
    pub criteria: Vec<SortCriterion>,
    /// Upper-cased; SORT has no default charset.
    pub charset: String,
    pub key: SearchKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    /// Upper-cased.
    pub charset: String,
    pub key: SearchKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

pub(crate) fn parse_sort(c: &mut Cursor<'_>, uid: bool) -> PResult<Sort> {
    c.sp()?;
    let criteria = c.list(|c| {
        let mut name = c.atom()?.to_ascii_uppercase();
        let reverse = name == "REVERSE";
        if reverse {
            c.sp()?;
            name = c.atom()?.to_ascii_uppercase();
        }
        let key = match name.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            _ => return Err(ParseError::syntax(format!("unknown sort key {name}"))),
        };
        Ok(SortCriterion { reverse, key })
    })?;
    let (charset, key) = charset_and_criteria(c)?;
    Ok(Sort {
        uid,
        criteria,
        charset,
        key,
    })
}

pub(crate) fn parse_thread(c: &mut Cursor<'_>, uid: bool) -> PResult<Thread> {
    c.sp()?;
    let name = c.atom()?.to_ascii_uppercase();
    let algorithm = match name.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => {
            return Err(ParseError::syntax(format!(
                "unknown threading algorithm {name}"
            )));
        }
    };
    let (charset, key) = charset_and_criteria(c)?;
    Ok(Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

fn charset_and_criteria(c: &mut Cursor<'_>) -> PResult<(String, SearchKey)> {
    c.sp()?;
    let charset = String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase();
    c.sp()?;
    Ok((charset, parse_criteria(c)?))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;
    use evermail_types::Flag;

    fn crit(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    #[test]
    fn parses_sort_and_thread() {
        check(&[
            (
                "a SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
                Ok(CommandBody::Sort(Sort {
                    uid: false,
                    criteria: vec![crit(false, SortKey::Subject)],
                    charset: "UTF-8".into(),
                    key: SearchKey::Since(crate::Date::new(1994, 2, 1).unwrap()),
                })),
            ),
            (
                "a UID SORT (REVERSE DATE size) us-ascii UNDELETED UNKEYWORD $Junk\r\n",
                Ok(CommandBody::Sort(Sort {
                    uid: true,
                    criteria: vec![crit(true, SortKey::Date), crit(false, SortKey::Size)],
                    charset: "US-ASCII".into(),
                    key: SearchKey::And(vec![
                        SearchKey::NotFlag(Flag::Deleted),
                        SearchKey::NotFlag(Flag::Keyword("$Junk".into())),
                    ]),
                })),
            ),
            (
                "a THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
                Ok(CommandBody::Thread(Thread {
                    uid: false,
                    algorithm: ThreadAlgorithm::OrderedSubject,
                    charset: "UTF-8".into(),
                    key: SearchKey::Since(crate::Date::new(2000, 3, 5).unwrap()),
                })),
            ),
            (
                "a UID THREAD references US-ASCII ALL\r\n",
                Ok(CommandBody::Thread(Thread {
                    uid: true,
                    algorithm: ThreadAlgorithm::References,
                    charset: "US-ASCII".into(),
                    key: SearchKey::All,
                })),
            ),
            ("a SORT () UTF-8 ALL\r\n", Err("empty list")),
            ("a SORT (REVERSE) UTF-8 ALL\r\n", Err("expected a space")),
            ("a SORT (SUBJECT) UTF-8\r\n", Err("expected a space")),
            (
                "a SORT (COLOUR) UTF-8 ALL\r\n",
                Err("unknown sort key COLOUR"),
            ),
            (
                "a THREAD X UTF-8 ALL\r\n",
                Err("unknown threading algorithm X"),
            ),
        ]);
    }
}
