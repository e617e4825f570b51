//! The lexical layer: a cursor over one framed command with the RFC 9051 token rules
//! (atoms, numbers, quoted strings, literals, astrings, lists).
//!
//! The cursor only ever sees a whole command (see [`crate::frame`]), so running out of
//! input is always a syntax error here, never "wait for more".

use crate::error::{PResult, ParseError};

/// `ATOM-CHAR`: any CHAR except atom-specials.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR`: an atom char or `]`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A tag is any ASTRING-CHAR except `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char`: what an unquoted LIST pattern may hold.
pub(crate) fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Whether the rest starts with `text`, ASCII case-insensitively.
    pub(crate) fn peek_keyword(&self, text: &str) -> bool {
        self.buf
            .get(self.pos..self.pos + text.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(text.as_bytes()))
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", b as char)))
        }
    }

    /// Exactly one space, as the grammar demands.
    pub(crate) fn sp(&mut self) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else {
            Err(self.unexpected("a space"))
        }
    }

    /// The end of the command: CRLF (or a bare LF, which we accept like most servers)
    /// and nothing after it.
    pub(crate) fn end(&mut self) -> PResult<()> {
        self.eat(b'\r');
        if self.eat(b'\n') && self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.unexpected("the end of the line"))
        }
    }

    pub(crate) fn at_line_end(&self) -> bool {
        matches!(self.peek(), Some(b'\r' | b'\n') | None)
    }

    /// A syntax error naming what was expected and what was found.
    pub(crate) fn unexpected(&self, expected: &str) -> ParseError {
        let found = match self.peek() {
            None | Some(b'\r' | b'\n') => "the end of the line".to_string(),
            Some(b' ') => "a space".to_string(),
            Some(b) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Some(b) => format!("byte 0x{b:02x}"),
        };
        ParseError::syntax(format!("expected {expected}, found {found}"))
    }

    /// Takes the longest run of bytes matching `pred` (possibly empty).
    pub(crate) fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// An atom. Atom chars are ASCII, so the result is always valid UTF-8.
    pub(crate) fn atom(&mut self) -> PResult<&'a str> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err(self.unexpected("an atom"));
        }
        Ok(std::str::from_utf8(atom).unwrap_or_default())
    }

    /// An atom cut short before `[` or `<`, for FETCH attributes such as
    /// `BODY.PEEK[1]<0.10>` where the grammar glues a section to the name.
    pub(crate) fn word(&mut self) -> PResult<&'a str> {
        let word = self.take_while(|b| is_atom_char(b) && b != b'[' && b != b'<');
        if word.is_empty() {
            return Err(self.unexpected("a word"));
        }
        Ok(std::str::from_utf8(word).unwrap_or_default())
    }

    /// `number`: up to 4,294,967,295.
    pub(crate) fn number(&mut self) -> PResult<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| ParseError::syntax("number too large"))
    }

    /// `nz-number`.
    pub(crate) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err(ParseError::syntax("expected a non-zero number")),
            n => Ok(n),
        }
    }

    /// `number64`: up to 2^63 - 1.
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.unexpected("a number"));
        }
        let mut n: u64 = 0;
        for d in digits {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| ParseError::syntax("number too large"))?;
        }
        Ok(n)
    }

    /// A quoted string, unescaped.
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b @ (b'"' | b'\\')) => {
                            out.push(b);
                            self.pos += 1;
                        }
                        _ => return Err(ParseError::syntax("bad escape in quoted string")),
                    }
                }
                Some(b'\r' | b'\n' | 0) | None => {
                    return Err(ParseError::syntax("unterminated quoted string"));
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal `{N}`, `{N+}` or, when `binary_ok`, `~{N}`; returns its bytes and whether
    /// it was a literal8.
    pub(crate) fn literal(&mut self, binary_ok: bool) -> PResult<(&'a [u8], bool)> {
        let binary = binary_ok && self.eat(b'~');
        self.expect(b'{')?;
        let len = self.number64()?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.eat(b'\r');
        self.expect(b'\n')?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| ParseError::syntax("literal data missing"))?;
        self.pos = end;
        let data = &self.buf[start..end];
        // RFC 9051 forbids NUL in a plain literal; literal8 exists to carry it.
        if !binary && data.contains(&0) {
            return Err(ParseError::syntax("NUL in a literal; use literal8 (~{N})"));
        }
        Ok((data, binary))
    }

    /// `string`: quoted or literal.
    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.literal(false)?.0.to_vec()),
            _ => Err(self.unexpected("a string")),
        }
    }

    /// `astring`: an atom (with `]` allowed) or a string.
    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    return Err(self.unexpected("an atom or a string"));
                }
                Ok(atom.to_vec())
            }
        }
    }

    /// An astring that must be UTF-8 (user names, passwords, mailbox names).
    pub(crate) fn astring_utf8(&mut self, what: &str) -> PResult<String> {
        String::from_utf8(self.astring()?)
            .map_err(|_| ParseError::syntax(format!("{what} is not valid UTF-8")))
    }

    /// `nstring`: a string or NIL.
    pub(crate) fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.peek_nil() {
            self.pos += 3;
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// Whether the next token is the atom NIL (and not, say, `NILS`).
    pub(crate) fn peek_nil(&self) -> bool {
        self.peek_keyword("NIL")
            && !self
                .buf
                .get(self.pos + 3)
                .is_some_and(|&b| is_astring_char(b))
    }

    /// Consumes `keyword` if the next atom is exactly it (case-insensitively).
    pub(crate) fn eat_keyword(&mut self, keyword: &str) -> bool {
        let end = self.pos + keyword.len();
        if self.peek_keyword(keyword) && !self.buf.get(end).is_some_and(|&b| is_atom_char(b)) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    /// A parenthesised, space-separated, non-empty list of items; `(` must be next.
    pub(crate) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let items = self.list_or_empty(&mut item)?;
        if items.is_empty() {
            return Err(ParseError::syntax("empty list"));
        }
        Ok(items)
    }

    /// Like [`Cursor::list`] but `()` is allowed.
    pub(crate) fn list_or_empty<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        if self.eat(b')') {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings() {
        type Case<'a> = (&'a [u8], Result<&'a [u8], &'a str>);
        let cases: &[Case<'_>] = &[
            (b"abc ", Ok(b"abc")),
            (b"a]c ", Ok(b"a]c")),
            (b"\"a b\\\"c\\\\\" ", Ok(b"a b\"c\\")),
            (b"\"\" ", Ok(b"")),
            (b"{3}\r\na\"b ", Ok(b"a\"b")),
            (b"{3+}\r\nxyz", Ok(b"xyz")),
            (b"{0}\r\n", Ok(b"")),
            (b"\"abc", Err("unterminated quoted string")),
            (b"\"a\\b\"", Err("bad escape in quoted string")),
            (b"{5}\r\nab", Err("literal data missing")),
            (b"{2}\r\na\0", Err("NUL in a literal; use literal8 (~{N})")),
            (b"(", Err("expected an atom or a string, found '('")),
            (
                b"",
                Err("expected an atom or a string, found the end of the line"),
            ),
        ];
        for (input, want) in cases {
            let got = Cursor::new(input).astring();
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(&got[..], *want, "{input:?}"),
                (Err(e), Err(want)) => assert_eq!(e.message(), *want, "{input:?}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn reads_numbers() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"42 ", Some(42)),
            (b"9223372036854775807", Some(i64::MAX as u64)),
            (b"9223372036854775808", None),
            (b"99999999999999999999999", None),
            (b"x", None),
        ];
        for (input, want) in cases {
            assert_eq!(Cursor::new(input).number64().ok(), *want, "{input:?}");
        }
        assert!(Cursor::new(b"4294967296").number().is_err());
        assert!(Cursor::new(b"0").nz_number().is_err());
    }

    #[test]
    fn keywords_match_whole_atoms() {
        let mut c = Cursor::new(b"NILS");
        assert!(!c.peek_nil());
        assert!(!c.eat_keyword("NIL"));
        let mut c = Cursor::new(b"nil)");
        assert!(c.peek_nil());
        assert!(c.eat_keyword("NIL"));
        assert_eq!(c.peek(), Some(b')'));
    }

    #[test]
    fn reads_lists() {
        let mut c = Cursor::new(b"(a b c)");
        assert_eq!(
            c.list(|c| c.atom().map(String::from)).unwrap(),
            ["a", "b", "c"]
        );
        assert!(
            Cursor::new(b"()")
                .list(|c| c.atom().map(String::from))
                .is_err()
        );
        assert!(
            Cursor::new(b"()")
                .list_or_empty(|c| c.atom().map(String::from))
                .unwrap()
                .is_empty()
        );
        assert!(
            Cursor::new(b"(a  b)")
                .list(|c| c.atom().map(String::from))
                .is_err()
        );
    }
}
