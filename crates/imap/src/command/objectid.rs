//! OBJECTID (RFC 8474): ids that name a mailbox or a message for as long as it exists,
//! across RENAME, COPY and MOVE, and that clients may cache across sessions.
//!
//! - MAILBOXID is `M`, the mailbox row's id and its UIDVALIDITY in hex. Both stay
//!   through RENAME, and UIDVALIDITY is never handed out twice, so an id is never
//!   reused for another mailbox.
//! - EMAILID is `E` and the first 96 bits of the body's BLAKE3 hash: a message is
//!   immutable and stored by content, so a copy or a move keeps it, as RFC 8474 wants.
//! - THREADID is NIL: threads are computed per THREAD command, not stored.

use evermail_mailbox::MailboxRecord;
use evermail_types::BlobId;

pub(crate) fn mailbox_id(record: &MailboxRecord) -> String {
    format!("M{:x}x{:x}", record.id.0, record.uidvalidity.get())
}

pub(crate) fn email_id(blob: BlobId) -> String {
    format!("E{}", &blob.to_hex()[..24])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_object_ids() {
        let blob = BlobId([0xab; 32]);
        let id = email_id(blob);
        assert_eq!(id, format!("E{}", "ab".repeat(12)));
        assert!(id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
