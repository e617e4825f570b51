//! Message flags: the five system flags RFC 9051 lets a client store, plus keywords.
//!
//! `\Recent` is deliberately absent: it is per-session state (rev1 only) that the IMAP
//! session computes, never something stored with the message.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One flag as a client names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// A keyword such as `$Forwarded` or `Junk`; stored as given, compared
    /// case-insensitively (RFC 9051 section 2.3.2).
    Keyword(String),
}

impl Flag {
    /// Parses `\Seen`, `\Answered`, ... case-insensitively, or a keyword (an IMAP atom).
    /// Returns `None` for `\Recent`, unknown `\`-flags and anything that is not an atom.
    pub fn parse(text: &str) -> Option<Flag> {
        if let Some(system) = text.strip_prefix('\\') {
            return match system.to_ascii_lowercase().as_str() {
                "seen" => Some(Flag::Seen),
                "answered" => Some(Flag::Answered),
                "flagged" => Some(Flag::Flagged),
                "deleted" => Some(Flag::Deleted),
                "draft" => Some(Flag::Draft),
                _ => None,
            };
        }
        let is_atom_char = |c: char| {
            c.is_ascii_graphic() && !matches!(c, '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']')
        };
        if !text.is_empty() && text.chars().all(is_atom_char) {
            Some(Flag::Keyword(text.to_string()))
        } else {
            None
        }
    }

    fn bit(&self) -> Option<u8> {
        match self {
            Flag::Seen => Some(1),
            Flag::Answered => Some(2),
            Flag::Flagged => Some(4),
            Flag::Deleted => Some(8),
            Flag::Draft => Some(16),
            Flag::Keyword(_) => None,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Keyword(k) => f.write_str(k),
        }
    }
}

/// The flags of one message: system flags as a bit set (stored as one integer column)
/// and keywords in their given spelling, deduplicated case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    system: u8,
    keywords: BTreeSet<String>,
}

impl Flags {
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Rebuilds flags from their stored form (see [`Flags::system_bits`] and
    /// [`Flags::keywords`]).
    pub fn from_stored(system_bits: u8, keywords: impl IntoIterator<Item = String>) -> Flags {
        let mut flags = Flags {
            system: system_bits & 0x1f,
            keywords: BTreeSet::new(),
        };
        for k in keywords {
            flags.insert(&Flag::Keyword(k));
        }
        flags
    }

    pub fn system_bits(&self) -> u8 {
        self.system
    }

    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(String::as_str)
    }

    pub fn contains(&self, flag: &Flag) -> bool {
        match (flag.bit(), flag) {
            (Some(bit), _) => self.system & bit != 0,
            (None, Flag::Keyword(k)) => self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
            (None, _) => false,
        }
    }

    /// Adds a flag; returns whether anything changed.
    pub fn insert(&mut self, flag: &Flag) -> bool {
        if self.contains(flag) {
            return false;
        }
        match (flag.bit(), flag) {
            (Some(bit), _) => self.system |= bit,
            (None, Flag::Keyword(k)) => {
                self.keywords.insert(k.clone());
            }
            (None, _) => return false,
        }
        true
    }

    /// Removes a flag; returns whether anything changed.
    pub fn remove(&mut self, flag: &Flag) -> bool {
        if !self.contains(flag) {
            return false;
        }
        match (flag.bit(), flag) {
            (Some(bit), _) => self.system &= !bit,
            (None, Flag::Keyword(k)) => self.keywords.retain(|x| !x.eq_ignore_ascii_case(k)),
            (None, _) => return false,
        }
        true
    }

    /// Every flag, system flags first in a fixed order, then keywords.
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        [
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
        ]
        .into_iter()
        .filter(|f| self.contains(f))
        .chain(self.keywords.iter().cloned().map(Flag::Keyword))
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        let mut flags = Flags::new();
        for f in iter {
            flags.insert(&f);
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let cases: &[(&str, Option<Flag>)] = &[
            ("\\Seen", Some(Flag::Seen)),
            ("\\SEEN", Some(Flag::Seen)),
            ("\\deleted", Some(Flag::Deleted)),
            ("\\Recent", None),
            ("\\Foo", None),
            ("$Forwarded", Some(Flag::Keyword("$Forwarded".into()))),
            ("", None),
            ("a b", None),
            ("a(b", None),
        ];
        for (text, want) in cases {
            assert_eq!(&Flag::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn keywords_compare_case_insensitively() {
        let mut f = Flags::new();
        assert!(f.insert(&Flag::Keyword("Junk".into())));
        assert!(!f.insert(&Flag::Keyword("junk".into())));
        assert!(f.contains(&Flag::Keyword("JUNK".into())));
        assert!(f.remove(&Flag::Keyword("jUnK".into())));
        assert_eq!(f, Flags::new());
    }

    #[test]
    fn stored_form_round_trips() {
        let f: Flags = [Flag::Seen, Flag::Draft, Flag::Keyword("$label1".into())]
            .into_iter()
            .collect();
        let back = Flags::from_stored(f.system_bits(), f.keywords().map(String::from));
        assert_eq!(back, f);
        assert_eq!(
            back.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            ["\\Seen", "\\Draft", "$label1"]
        );
    }
}
