//! Large APPEND literals go to a spool file while they arrive.
//!
//! The parser works on whole commands in the session's input buffer, so an APPEND of a
//! 50 MB message would otherwise be buffered whole before it is parsed. When the
//! command the buffer starts with is an APPEND waiting for a message literal of at
//! least [`SPOOL_THRESHOLD`] bytes, the session takes that literal's data out of the
//! buffer as it is read (plaintext, TLS or inflated COMPRESS input alike) and writes it
//! to a [`SpoolWriter`] in the spool directory, hashing it on the way. In the buffer the
//! literal is replaced by a short marker, a random token per literal, announced as a
//! non-synchronizing literal of the marker's length, so the parser then sees an
//! ordinary APPEND; `append` trades each marker back for its spool file. The limits
//! stay what they were: the announcement was checked against APPENDLIMIT before any
//! data was taken, and the bytes taken count against the command's size limit (so a
//! MULTIAPPEND still cannot carry more than one message's worth).
//!
//! A spool write error does not break the literal flow: the rest of the literal is
//! read and dropped, and APPEND answers `NO [UNAVAILABLE]` with the reason. Spool files
//! are removed when dropped: after the command, on a parse error, when the client goes
//! away.

use std::hash::{BuildHasher, Hasher};
use std::io;

use evermail_imap_proto::{PendingLiteral, pending_literal};
use evermail_mailbox::SPOOL_THRESHOLD;
use evermail_spool::{Spool, SpoolWriter};

use crate::session::Session;

/// A literal taken out of the input into a spool file.
pub(crate) struct SpooledLiteral {
    /// What stands for it in the command the parser sees.
    pub(crate) marker: Vec<u8>,
    /// The file, or why it could not be written.
    pub(crate) spool: Result<Spool, String>,
}

/// What [`Session::spool_literal`] did.
pub(crate) enum Spooling {
    /// Nothing: the pending literal (if any) stays in the buffer.
    No,
    /// The literal was taken into a file; parse again.
    Done,
    /// The session must end (the client went away, shutdown or autologout; any BYE has
    /// been written).
    End,
}

impl Session {
    /// If the command at the start of the input is an APPEND waiting for a large message
    /// literal, reads that literal into a spool file and puts a marker in its place.
    pub(crate) async fn spool_literal(&mut self) -> io::Result<Spooling> {
        if self.account.is_none() {
            return Ok(Spooling::No);
        }
        let Some(pending) = pending_literal(&self.input, &self.limits()) else {
            return Ok(Spooling::No);
        };
        if pending.len < SPOOL_THRESHOLD || !is_append_message(&self.input, &pending) {
            return Ok(Spooling::No);
        }
        let dir = self.mailstore.spool_dir();
        let mut writer = SpoolWriter::create_in(&dir)
            .map_err(|e| format!("cannot create a spool file in {}: {e}", dir.display()));
        let mut remaining = pending.len;
        let at = pending.data_offset;
        loop {
            let available = ((self.input.len() - at) as u64).min(remaining) as usize;
            if available > 0 {
                if let Ok(w) = &mut writer
                    && let Err(e) = w.write(&self.input[at..at + available])
                {
                    writer = Err(format!("cannot write a spool file: {e}"));
                }
                self.input.drain(at..at + available);
                remaining -= available as u64;
            }
            if remaining == 0 {
                break;
            }
            if !self.wait_for_input().await? {
                return Ok(Spooling::End);
            }
        }
        let spool = writer.and_then(|w| {
            w.finish()
                .map_err(|e| format!("cannot finish a spool file: {e}"))
        });
        if let Err(reason) = &spool {
            tracing::warn!(%reason, "APPEND literal not spooled");
        }
        let marker = marker();
        let mut replacement = format!("{{{}+}}\r\n", marker.len()).into_bytes();
        replacement.extend_from_slice(&marker);
        self.input
            .splice(pending.announcement..pending.data_offset, replacement);
        self.spooled_bytes += pending.len;
        self.spooled.push(SpooledLiteral { marker, spool });
        Ok(Spooling::Done)
    }

    /// Drops the spool files of the command just finished (or refused).
    pub(crate) fn clear_spooled(&mut self) {
        self.spooled.clear();
        self.spooled_bytes = 0;
    }

    /// The spooled literal `data` stands for, if it is one of this command's markers.
    pub(crate) fn take_spooled(&mut self, data: &[u8]) -> Option<Result<Spool, String>> {
        let i = self.spooled.iter().position(|s| s.marker == data)?;
        Some(self.spooled.swap_remove(i).spool)
    }
}

/// Whether `pending` is a message literal of an APPEND: the command is APPEND and the
/// literal is not its mailbox name (which can only be the first literal, announced
/// right after `tag APPEND`).
fn is_append_message(input: &[u8], pending: &PendingLiteral) -> bool {
    let first_line_end = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    let mut words = input[..first_line_end].split(|&b| b == b' ');
    let (_tag, command) = (words.next(), words.next());
    if !command.is_some_and(|c| c.eq_ignore_ascii_case(b"APPEND")) {
        return false;
    }
    if pending.line_start > 0 {
        return true;
    }
    // On the first line: `tag APPEND {N}` announces the mailbox name; anything between
    // APPEND and the announcement means the mailbox came before it.
    let before = &input[..pending.announcement];
    let before = before.strip_suffix(b"~").unwrap_or(before);
    before
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .count()
        > 2
}

/// A token no client can guess, to stand for a spooled literal in the input.
fn marker() -> Vec<u8> {
    let random = |n: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.finish()
    };
    format!(
        "evermail-spooled-literal-{:016x}{:016x}",
        random(1),
        random(2)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_append_message_literals_are_spooled() {
        let limits = evermail_imap_proto::Limits::default();
        let cases: &[(&[u8], bool)] = &[
            (b"a APPEND INBOX {2000000}\r\n", true),
            (b"a append INBOX (\\Seen) {2000000+}\r\nxx", true),
            (b"a APPEND INBOX ~{2000000}\r\n", true),
            (b"a APPEND {2000000}\r\n", false),
            (b"a APPEND {5}\r\nINBOX (\\Seen) {2000000}\r\n", true),
            (b"a APPEND INBOX {2}\r\nab {2000000}\r\n", true),
            (b"a APPEND APPEND {2000000}\r\n", true),
            (b"a APPEND \"My box\" {2000000}\r\n", true),
            (b"a LOGIN {2000000}\r\n", false),
            (b"a SEARCH TEXT {2000000}\r\n", false),
        ];
        for (input, want) in cases {
            let pending = pending_literal(input, &limits).expect("a pending literal");
            assert_eq!(
                is_append_message(input, &pending),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_ne!(marker(), marker());
    }
}
