//! IMAP dates (`1-Feb-1994` in SEARCH) and date-times (`"17-Jul-1996 02:44:25 -0700"`
//! in APPEND and INTERNALDATE), converted to and from Unix seconds without a date crate:
//! the proleptic Gregorian arithmetic is a dozen lines (Howard Hinnant's algorithms).

use crate::cursor::Cursor;
use crate::error::{PResult, ParseError};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date as SEARCH BEFORE/ON/SINCE name it; time zones do not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Returns `None` for a day that does not exist (`31-Feb-2020`).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01; negative before.
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        )
    }

    /// `date`: `d-Mon-yyyy`, optionally quoted.
    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<Date> {
        let quoted = c.eat(b'"');
        let day = digits(c, 1, 2)?;
        c.expect(b'-')?;
        let date = month_year(c, day)?;
        if quoted {
            c.expect(b'"')?;
        }
        Ok(date)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let month = MONTHS[usize::from(self.month.clamp(1, 12) - 1)];
        write!(f, "{}-{month}-{:04}", self.day, self.year)
    }
}

/// An instant with the UTC offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// The zone as written, in minutes east of UTC (`-0700` is -420).
    pub offset_minutes: i16,
}

impl DateTime {
    /// `date-time` of APPEND: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day possibly
    /// space-padded.
    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<DateTime> {
        c.expect(b'"')?;
        let day = if c.eat(b' ') {
            digits(c, 1, 1)?
        } else {
            digits(c, 2, 2)?
        };
        c.expect(b'-')?;
        let date = month_year(c, day)?;
        c.sp()?;
        let hour = digits(c, 2, 2)?;
        c.expect(b':')?;
        let minute = digits(c, 2, 2)?;
        c.expect(b':')?;
        let second = digits(c, 2, 2)?;
        // RFC 9051 has no leap seconds in date-time; 60 is tolerated as a leap second.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(ParseError::syntax("invalid time of day"));
        }
        c.sp()?;
        let sign: i64 = match c.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(c.unexpected("a time zone (+hhmm or -hhmm)")),
        };
        c.eat(if sign > 0 { b'+' } else { b'-' });
        let zone = digits(c, 4, 4)?;
        let (zh, zm) = (zone / 100, zone % 100);
        if zm > 59 {
            return Err(ParseError::syntax("invalid time zone"));
        }
        c.expect(b'"')?;
        let offset = sign * i64::from(zh * 60 + zm);
        let local = date.days_since_epoch() * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second);
        Ok(DateTime {
            unix: local - offset * 60,
            // zh <= 99 and zm <= 59, so this fits.
            offset_minutes: offset as i16,
        })
    }

    /// UTC, as the server reports INTERNALDATE.
    pub fn utc(unix: i64) -> DateTime {
        DateTime {
            unix,
            offset_minutes: 0,
        }
    }
}

impl std::fmt::Display for DateTime {
    /// `17-Jul-1996 02:44:25 -0700`, day padded to two digits, without the quotes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let local = self.unix + i64::from(self.offset_minutes) * 60;
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let month = MONTHS[(month - 1) as usize];
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{day:02}-{month}-{year:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            off / 60,
            off % 60
        )
    }
}

fn digits(c: &mut Cursor<'_>, min: usize, max: usize) -> PResult<u32> {
    let d = c.take_while(|b| b.is_ascii_digit());
    if d.len() < min || d.len() > max {
        return Err(ParseError::syntax("malformed date"));
    }
    Ok(d.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

fn month_year(c: &mut Cursor<'_>, day: u32) -> PResult<Date> {
    let name = c.take_while(|b| b.is_ascii_alphabetic());
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .ok_or_else(|| ParseError::syntax("malformed date: unknown month"))?;
    c.expect(b'-')?;
    let year = digits(c, 4, 4)?;
    Date::new(year as u16, month as u8 + 1, day as u8)
        .filter(|_| day <= 31)
        .ok_or_else(|| ParseError::syntax("malformed date: no such day"))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_date_times() {
        let cases: &[(&str, Option<(i64, i16)>)] = &[
            ("\"17-Jul-1996 02:44:25 -0700\"", Some((837_596_665, -420))),
            ("\" 1-Jan-1970 00:00:00 +0000\"", Some((0, 0))),
            ("\"01-jan-1970 01:00:00 +0100\"", Some((0, 60))),
            ("\"29-Feb-2024 12:00:00 +0000\"", Some((1_709_208_000, 0))),
            ("\"29-Feb-2023 12:00:00 +0000\"", None),
            ("\"1-Jan-1970 00:00:00 +0000\"", None),
            ("\"01-Foo-1970 00:00:00 +0000\"", None),
            ("\"01-Jan-1970 24:00:00 +0000\"", None),
            ("\"01-Jan-1970 00:00:00 0000\"", None),
            ("01-Jan-1970 00:00:00 +0000", None),
        ];
        for (text, want) in cases {
            let got = DateTime::parse(&mut Cursor::new(text.as_bytes()))
                .ok()
                .map(|d| (d.unix, d.offset_minutes));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn formats_date_times() {
        let cases: &[(i64, i16, &str)] = &[
            (837_596_665, -420, "17-Jul-1996 02:44:25 -0700"),
            (837_596_665, 0, "17-Jul-1996 09:44:25 +0000"),
            (0, 0, "01-Jan-1970 00:00:00 +0000"),
            (-1, 0, "31-Dec-1969 23:59:59 +0000"),
            (951_782_400, 330, "29-Feb-2000 05:30:00 +0530"),
        ];
        for (unix, offset, want) in cases {
            let dt = DateTime {
                unix: *unix,
                offset_minutes: *offset,
            };
            assert_eq!(dt.to_string(), *want);
        }
    }

    #[test]
    fn parses_dates() {
        let cases: &[(&str, Option<Date>)] = &[
            ("1-Feb-1994", Date::new(1994, 2, 1)),
            ("\"01-feb-1994\"", Date::new(1994, 2, 1)),
            ("31-Apr-2020", None),
            ("1-Feb-94", None),
            ("100-Feb-1994", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                Date::parse(&mut Cursor::new(text.as_bytes())).ok(),
                *want,
                "{text}"
            );
        }
        assert_eq!(Date::new(1970, 1, 2).unwrap().days_since_epoch(), 1);
        assert_eq!(Date::new(1994, 2, 1).unwrap().to_string(), "1-Feb-1994");
    }
}
