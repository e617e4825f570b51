//! ESMTP parameters after a path: `SP keyword[=value]` repeated (RFC 5321 4.1.2).
//! Splitting is shared; what each keyword means lives with its command.

use crate::error::{CommandError, ErrorKind};

/// One `keyword[=value]`, borrowed from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub keyword: &'a str,
    pub value: Option<&'a str>,
}

impl Param<'_> {
    pub fn is(&self, keyword: &str) -> bool {
        self.keyword.eq_ignore_ascii_case(keyword)
    }
}

/// Splits what follows a path into parameters.
///
/// `rest` must be empty or start with a space: `<a@b>SIZE=1` is an error. Runs of
/// spaces are tolerated because some clients pad, and being strict about it buys
/// nothing.
pub(crate) fn split(rest: &str) -> Result<Vec<Param<'_>>, CommandError> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(syntax("expected a space after the address"));
    }
    let mut params = Vec::new();
    for word in rest.split(' ').filter(|w| !w.is_empty()) {
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under RFC 6531.
        let value_ok = value.is_none_or(|v| {
            !v.is_empty() && v.bytes().all(|b| matches!(b, 33..=60 | 62..=126 | 0x80..))
        });
        if !keyword_ok || !value_ok {
            return Err(syntax("malformed parameter"));
        }
        if params.iter().any(|p: &Param<'_>| p.is(keyword)) {
            return Err(syntax("duplicate parameter"));
        }
        params.push(Param { keyword, value });
    }
    Ok(params)
}

pub(crate) fn syntax(message: &str) -> CommandError {
    CommandError::new(ErrorKind::ParameterSyntax, message)
}

pub(crate) fn unsupported(param: &Param<'_>) -> CommandError {
    // The keyword is validated ASCII, so echoing it back cannot inject anything.
    CommandError::new(
        ErrorKind::UnsupportedParameter,
        format!(
            "parameter {} not supported",
            param.keyword.to_ascii_uppercase()
        ),
    )
}

/// The value of a parameter that must have one.
pub(crate) fn required_value<'a>(param: &Param<'a>) -> Result<&'a str, CommandError> {
    param
        .value
        .ok_or_else(|| syntax("parameter requires a value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        type Params = &'static [(&'static str, Option<&'static str>)];
        let ok: &[(&str, Params)] = &[
            ("", &[]),
            (" ", &[]),
            (" SIZE=10", &[("SIZE", Some("10"))]),
            (
                "  SIZE=10   BODY=8BITMIME ",
                &[("SIZE", Some("10")), ("BODY", Some("8BITMIME"))],
            ),
            (" SMTPUTF8", &[("SMTPUTF8", None)]),
            (" ENVID=a+2Bb", &[("ENVID", Some("a+2Bb"))]),
            (" X-1=é", &[("X-1", Some("é"))]),
        ];
        for (input, want) in ok {
            let got: Vec<_> = split(input)
                .unwrap_or_else(|e| panic!("{input:?}: {e}"))
                .iter()
                .map(|p| (p.keyword, p.value))
                .collect();
            assert_eq!(&got, want, "{input:?}");
        }
        let bad = [
            "SIZE=1",
            " =1",
            " -X",
            " SIZE=",
            " SIZE=a=b",
            " SIZE=1 size=2",
            " A_B",
        ];
        for input in bad {
            let err = split(input).expect_err(input);
            assert_eq!(err.kind(), ErrorKind::ParameterSyntax, "{input:?}");
        }
    }
}
