//! Sequence sets (`1,3:5,7:*`, `$`) as commands carry them and as responses (COPYUID,
//! VANISHED, ESEARCH ALL) send them.
//!
//! A set is kept as the ranges the client wrote, never expanded: `1:4294967295` is two
//! numbers, and a session that needs the members walks them with [`SequenceSet::iter`]
//! or asks [`SequenceSet::contains`].

use std::fmt;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};

/// One end of a range: a number or `*`, the largest number in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqBound {
    Value(NonZeroU32),
    Largest,
}

impl SeqBound {
    fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqBound::Value(n) => n.get(),
            SeqBound::Largest => largest,
        }
    }
}

/// `a:b`, or a single number when `start == end`. The order of the ends is as written;
/// RFC 9051 says `4:2` means `2:4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: SeqBound,
    pub end: SeqBound,
}

impl SeqRange {
    pub fn single(n: NonZeroU32) -> SeqRange {
        SeqRange {
            start: SeqBound::Value(n),
            end: SeqBound::Value(n),
        }
    }

    /// The members with `*` standing for `largest`. With an empty mailbox
    /// (`largest == 0`) a range that mentions `*` is empty: `*` names the last message,
    /// and there is none.
    pub fn resolve(&self, largest: u32) -> Option<RangeInclusive<u32>> {
        let mentions_star = self.start == SeqBound::Largest || self.end == SeqBound::Largest;
        if mentions_star && largest == 0 {
            return None;
        }
        let (a, b) = (self.start.resolve(largest), self.end.resolve(largest));
        Some(a.min(b)..=a.max(b))
    }
}

/// A non-empty sequence set, or `$` (the saved search result, RFC 5182), which only the
/// session can resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Ranges(Vec<SeqRange>),
    LastResult,
}

impl SequenceSet {
    /// `$`.
    pub fn last_result() -> SequenceSet {
        SequenceSet(Repr::LastResult)
    }

    /// Returns `None` for an empty list: the grammar has no empty set.
    pub fn from_ranges(ranges: Vec<SeqRange>) -> Option<SequenceSet> {
        (!ranges.is_empty()).then_some(SequenceSet(Repr::Ranges(ranges)))
    }

    /// Builds a compact set from numbers in the order given, merging ascending runs
    /// (`1,2,3,7` becomes `1:3,7`). The order is kept because COPYUID pairs its source
    /// and destination sets member by member. Zeros are skipped.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Option<SequenceSet> {
        let mut ranges: Vec<(NonZeroU32, NonZeroU32)> = Vec::new();
        for n in numbers.into_iter().filter_map(NonZeroU32::new) {
            match ranges.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(n) => *end = n,
                _ => ranges.push((n, n)),
            }
        }
        let ranges = ranges
            .into_iter()
            .map(|(a, b)| SeqRange {
                start: SeqBound::Value(a),
                end: SeqBound::Value(b),
            })
            .collect();
        SequenceSet::from_ranges(ranges)
    }

    pub fn is_last_result(&self) -> bool {
        self.0 == Repr::LastResult
    }

    /// The ranges as written; empty for `$`.
    pub fn ranges(&self) -> &[SeqRange] {
        match &self.0 {
            Repr::Ranges(r) => r,
            Repr::LastResult => &[],
        }
    }

    /// The members as sorted, merged, disjoint ranges. Allocates one entry per range the
    /// client wrote (bounded by the line length), never one per member. Empty for `$`.
    pub fn normalized(&self, largest: u32) -> Vec<RangeInclusive<u32>> {
        let mut ranges: Vec<_> = self
            .ranges()
            .iter()
            .filter_map(|r| r.resolve(largest))
            .collect();
        ranges.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if *r.start() <= last.end().saturating_add(1) => {
                    *last = *last.start()..=(*last.end()).max(*r.end());
                }
                _ => merged.push(r),
            }
        }
        merged
    }

    /// Every member once, ascending. Lazy: iterating `1:*` over a mailbox of 10 yields
    /// 10 numbers and holds only the ranges. A session should still intersect with the
    /// numbers that exist rather than walk a huge UID range.
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> {
        self.normalized(largest).into_iter().flatten()
    }

    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges()
            .iter()
            .filter_map(|r| r.resolve(largest))
            .any(|r| r.contains(&n))
    }

    /// The largest explicit number in the set (`*` not counted), so a session can reject
    /// a message sequence number beyond EXISTS with BAD as RFC 9051 asks.
    pub fn max_explicit(&self) -> Option<u32> {
        self.ranges()
            .iter()
            .flat_map(|r| [r.start, r.end])
            .filter_map(|b| match b {
                SeqBound::Value(n) => Some(n.get()),
                SeqBound::Largest => None,
            })
            .max()
    }

    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
        if c.eat(b'$') {
            return Ok(SequenceSet::last_result());
        }
        let mut ranges = Vec::new();
        loop {
            let start = bound(c)?;
            let end = if c.eat(b':') { bound(c)? } else { start };
            ranges.push(SeqRange { start, end });
            if !c.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet(Repr::Ranges(ranges)))
    }

    /// Whether the next token looks like a sequence set (for SEARCH, where a set is a
    /// key of its own).
    pub(crate) fn starts(c: &Cursor<'_>) -> bool {
        matches!(c.peek(), Some(b'0'..=b'9' | b'*' | b'$'))
    }
}

fn bound(c: &mut Cursor<'_>) -> PResult<SeqBound> {
    if c.eat(b'*') {
        return Ok(SeqBound::Largest);
    }
    let n = c.number()?;
    NonZeroU32::new(n)
        .map(SeqBound::Value)
        .ok_or_else(|| ParseError::syntax("0 is not a valid sequence number"))
}

impl fmt::Display for SeqBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqBound::Value(n) => n.fmt(f),
            SeqBound::Largest => f.write_str("*"),
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::LastResult => f.write_str("$"),
            Repr::Ranges(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if r.start == r.end {
                        write!(f, "{}", r.start)?;
                    } else {
                        write!(f, "{}:{}", r.start, r.end)?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for SequenceSet {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(s.as_bytes());
        let set = SequenceSet::parse(&mut c)?;
        if c.peek().is_some() {
            return Err(c.unexpected("the end of the sequence set"));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        for text in ["1", "1,3:5,7:*", "*", "*:4", "$", "4294967295"] {
            assert_eq!(set(text).to_string(), text);
        }
        for bad in ["", "0", "1:", ",1", "1,,2", "a", "$,1", "4294967296", "1:0"] {
            assert!(bad.parse::<SequenceSet>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolves_star_per_rfc() {
        let cases: &[(&str, u32, &[RangeInclusive<u32>])] = &[
            // `3:*` when the largest is 2 means 2:3.
            ("3:*", 2, &[2..=3]),
            ("1:*", 10, &[1..=10]),
            ("*", 10, &[10..=10]),
            ("1:*", 0, &[]),
            ("5,1:3,2:4", 10, &[1..=5]),
            ("7,1:2", 10, &[1..=2, 7..=7]),
            ("4:2", 10, &[2..=4]),
            ("$", 10, &[]),
        ];
        for (text, largest, want) in cases {
            assert_eq!(
                &set(text).normalized(*largest),
                want,
                "{text} over {largest}"
            );
        }
    }

    #[test]
    fn iterates_without_expanding() {
        let huge = set("1:4294967295");
        assert_eq!(huge.iter(5).take(3).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(huge.contains(4_000_000_000, 5));
        assert_eq!(set("2:3,3:4").iter(9).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(set("7:*").contains(2, 2));
        assert!(!set("7:*").contains(1, 2));
        assert_eq!(set("3,9:*").max_explicit(), Some(9));
    }

    #[test]
    fn compresses_numbers_in_order() {
        let s = SequenceSet::from_numbers([1, 2, 3, 7, 5, 6, 0]).unwrap();
        assert_eq!(s.to_string(), "1:3,7,5:6");
        assert!(SequenceSet::from_numbers([]).is_none());
        assert_eq!(
            SequenceSet::from_numbers([u32::MAX, 1])
                .unwrap()
                .to_string(),
            "4294967295,1"
        );
    }
}
