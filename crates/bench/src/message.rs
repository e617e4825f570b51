//! Generated messages: sizes drawn from a realistic mix, content fixed by the seed and
//! the message's index, so two servers provisioned with the same seed hold the same
//! mail whatever order the connections delivered it in.
//!
//! Every message carries search targets the `imap-read` workload looks for: a subject
//! with `topicNNN` and a body line with `zqNNNx` (NNN = index mod 1000), so a header
//! search and a body-text search each match one message in a thousand.

use rand::{Rng, SeedableRng};
use std::fmt;
use std::str::FromStr;

/// How big the generated messages are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeSpec {
    /// Every message `n` bytes of plain text.
    Fixed(usize),
    /// The realistic mix: 90% plain text of 2-20 KiB, 10% multipart with a base64
    /// attachment of 100 KiB-1 MiB.
    Mix,
    /// Plain text of 4-20 KiB (the delivery target's mix, without attachments).
    Small,
}

impl FromStr for SizeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mix" => Ok(SizeSpec::Mix),
            "small" => Ok(SizeSpec::Small),
            _ => {
                let (digits, unit) = match s.strip_suffix(['k', 'K']) {
                    Some(d) => (d, 1024),
                    None => (s, 1),
                };
                digits
                    .parse::<usize>()
                    .map(|n| SizeSpec::Fixed(n * unit))
                    .map_err(|_| format!("{s:?} is not a size: bytes, NK, \"mix\" or \"small\""))
            }
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fixed(n) if n % 1024 == 0 => write!(f, "{}K", n / 1024),
            SizeSpec::Fixed(n) => write!(f, "{n}"),
            SizeSpec::Mix => f.write_str("mix"),
            SizeSpec::Small => f.write_str("small"),
        }
    }
}

/// The random generator for message `index` of a run: a function of both, so content
/// does not depend on which connection sends the message.
pub fn rng_for(seed: u64, index: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index)
}

const WORDS: &[&str] = &[
    "meeting", "report", "budget", "invoice", "project", "deadline", "review", "draft", "schedule",
    "customer", "server", "release", "update", "question", "answer", "thanks", "please",
    "attached", "tomorrow", "morning", "agenda", "minutes", "contract", "offer", "holiday", "team",
    "office", "travel", "ticket", "issue", "support", "network", "backup", "the", "and", "for",
    "with", "this", "that", "will", "have", "from", "about", "into",
];

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Lines of words until `out` has grown by about `len` bytes.
fn text(out: &mut Vec<u8>, len: usize, rng: &mut impl Rng) {
    let end = out.len() + len;
    while out.len() < end {
        let mut line = 0;
        while line < 70 {
            let w = WORDS[rng.random_range(0..WORDS.len())];
            out.extend_from_slice(w.as_bytes());
            out.push(b' ');
            line += w.len() + 1;
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Base64 lines (76 characters, a multiple of 4, so it decodes) of about `len` bytes.
fn base64(out: &mut Vec<u8>, len: usize, rng: &mut impl Rng) {
    let end = out.len() + len;
    while out.len() < end {
        for _ in 0..76 {
            out.push(BASE64[rng.random_range(0..BASE64.len())]);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Message `index` of a run with `seed`: headers (distinct Message-ID, one of 100
/// senders, a subject with `topicNNN`), then text or text plus an attachment, about
/// the size `spec` draws. Lines end in CRLF; none starts with a dot.
pub fn message(spec: SizeSpec, seed: u64, index: u64) -> Vec<u8> {
    let mut rng = rng_for(seed, index);
    let (size, attachment) = match spec {
        SizeSpec::Fixed(n) => (n, false),
        SizeSpec::Small => (rng.random_range(4096..=20 * 1024), false),
        SizeSpec::Mix if rng.random_range(0..10) == 0 => {
            (rng.random_range(100 * 1024..=1024 * 1024), true)
        }
        SizeSpec::Mix => (rng.random_range(2048..=20 * 1024), false),
    };
    let topic = index % 1000;
    let sender = index % 100;
    let mut out = format!(
        "From: Sender {sender} <sender{sender}@example.net>\r\n\
         To: bench@example.com\r\n\
         Subject: bench {seed}.{index} topic{topic:03}\r\n\
         Message-ID: <{seed}.{index}@bench.example.net>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n"
    )
    .into_bytes();
    let token = format!("zq{topic:03}x");
    if attachment {
        let boundary = format!("=_bench_{seed}_{index}");
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                 --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
                 {token}\r\n"
            )
            .as_bytes(),
        );
        text(&mut out, 1500, &mut rng);
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"file{index}.bin\"\r\n\r\n"
            )
            .as_bytes(),
        );
        let rest = size.saturating_sub(out.len() + boundary.len() + 8);
        base64(&mut out, rest, &mut rng);
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    } else {
        out.extend_from_slice(
            format!("Content-Type: text/plain; charset=us-ascii\r\n\r\n{token}\r\n").as_bytes(),
        );
        let rest = size.saturating_sub(out.len());
        text(&mut out, rest, &mut rng);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        for (text, spec) in [
            ("mix", SizeSpec::Mix),
            ("small", SizeSpec::Small),
            ("4096", SizeSpec::Fixed(4096)),
            ("100k", SizeSpec::Fixed(102400)),
        ] {
            assert_eq!(text.parse::<SizeSpec>(), Ok(spec));
            assert_eq!(spec.to_string().parse::<SizeSpec>(), Ok(spec));
        }
        assert!("big".parse::<SizeSpec>().is_err());
    }

    #[test]
    fn messages_are_deterministic_sized_and_dot_safe() {
        for spec in [SizeSpec::Fixed(100), SizeSpec::Fixed(4096), SizeSpec::Small] {
            for i in 0..20 {
                let m = message(spec, 7, i);
                assert_eq!(m, message(spec, 7, i));
                assert_ne!(m, message(spec, 8, i));
                assert!(!m.windows(3).any(|w| w == b"\n.\r" || w == b"\n.."));
                assert!(m.ends_with(b"\r\n"));
            }
        }
        let m = message(SizeSpec::Fixed(4096), 1, 0);
        assert!(m.len() >= 4096 && m.len() < 4096 + 100, "{}", m.len());
    }

    #[test]
    fn the_mix_is_mostly_small_with_some_large_attachments() {
        let sizes: Vec<(usize, bool)> = (0..500)
            .map(|i| {
                let m = message(SizeSpec::Mix, 3, i);
                let multipart = m.windows(15).any(|w| w == b"multipart/mixed");
                (m.len(), multipart)
            })
            .collect();
        let large = sizes.iter().filter(|(_, multi)| *multi).count();
        assert!((25..=80).contains(&large), "{large} large of 500");
        for (len, multi) in sizes {
            if multi {
                assert!((100 * 1024..=1024 * 1024 + 200).contains(&len), "{len}");
            } else {
                assert!((2048..=20 * 1024 + 200).contains(&len), "{len}");
            }
        }
    }

    #[test]
    fn search_targets_are_in_place() {
        let m = String::from_utf8(message(SizeSpec::Mix, 1, 1042)).unwrap();
        assert!(m.contains("Subject: bench 1.1042 topic042\r\n"));
        assert!(m.contains("\r\n\r\nzq042x\r\n") || m.contains("\r\n\r\n--=_bench"));
        assert!(m.contains("zq042x"));
    }
}
