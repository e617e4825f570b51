//! Writing a FETCH response whose message data may be large.
//!
//! A FETCH response is built as one [`FetchResponse`] whose literals borrow the body,
//! which for a large message is a memory-mapped spool file
//! ([`evermail_mailbox::Body::Spooled`]). Encoding it whole would copy a 50 MB body
//! into the output buffer (and the deflate buffer after it); instead, literal data
//! longer than [`LARGE_LITERAL`] is left out of the encoding
//! ([`FetchResponse::encode_deferring`]) and written after its `{N}` announcement in
//! pieces of [`OUTPUT_FLUSH`], each flushed before the next is copied. Every piece goes
//! through [`Session::flush`], so under COMPRESS=DEFLATE the compressor sees each piece
//! in order, and TLS encrypts it like any other output: the bytes on the wire are the
//! same as for a response encoded whole.

use std::io;

use evermail_imap_proto::response::FetchResponse;

use crate::session::{OUTPUT_FLUSH, Session};

/// Literal data longer than this is written in pieces rather than encoded in place.
pub(super) const LARGE_LITERAL: usize = OUTPUT_FLUSH;

impl Session {
    /// Writes `response` to the output, its large literals in pieces of at most
    /// [`OUTPUT_FLUSH`] bytes with a flush after each, so the output buffer never holds
    /// more than about two pieces whatever the size of the message.
    pub(super) async fn write_fetch(&mut self, response: &FetchResponse<'_>) -> io::Result<()> {
        let deferred = response.encode_deferring(&mut self.output, LARGE_LITERAL);
        let Some(&(first, _)) = deferred.first() else {
            return self.flush_if_large().await;
        };
        // What follows the first large literal's announcement: the rest of the
        // response, with the announcements of any further large literals.
        let rest = self.output.split_off(first);
        let mut at = first;
        for (pos, data) in deferred {
            self.output
                .extend_from_slice(&rest[at - first..pos - first]);
            at = pos;
            for piece in data.chunks(OUTPUT_FLUSH) {
                self.output.extend_from_slice(piece);
                self.flush_if_large().await?;
            }
        }
        self.output.extend_from_slice(&rest[at - first..]);
        self.flush_if_large().await
    }
}
