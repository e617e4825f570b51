//! Rows going into and coming out of a metadata backend.

use evermail_types::{AccountId, BlobId, Flags, MailboxId, ModSeq, Uid, UidValidity};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    /// The login and primary address, lower case.
    pub address: String,
    /// A PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// `None` is unlimited.
    pub quota_bytes: Option<u64>,
    /// Sum of the sizes of the account's messages.
    pub used_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub address: String,
    pub password_hash: String,
    pub quota_bytes: Option<u64>,
    pub mailboxes: Vec<NewMailbox>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMailbox {
    pub name: String,
    /// A special-use attribute (RFC 6154) such as `\Sent`.
    pub special_use: Option<String>,
    pub subscribed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRecord {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
    pub special_use: Option<String>,
    pub subscribed: bool,
    pub uidvalidity: UidValidity,
    /// The UID the next message will get.
    pub uidnext: Uid,
    pub highest_modseq: ModSeq,
    /// The \Recent mark (RFC 3501 section 2.3.2): messages with a UID at or above it
    /// are recent to the next session that claims them (see `MetaBackend::claim_recent`).
    pub recent_uid: Uid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// `name@domain`, or `@domain` for a catch-all.
    pub alias: String,
    pub target: String,
}

/// Where one copy of a blob lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    /// The id of the store (a configured fs path or S3 bucket).
    pub store: String,
    /// The object key inside that store.
    pub key: String,
}

/// A message body's metadata, shared by every message with the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub id: BlobId,
    pub size: u64,
    /// The parsed envelope and MIME structure, as the mail model serialized it.
    pub structure: String,
    /// The body's top-level header section, through the blank line that ends it, cut
    /// from the body at delivery (the header cache FETCH and SEARCH read instead of the
    /// body). `None` when it was too long to cache or the row predates the cache.
    pub header: Option<Vec<u8>>,
}

/// A message's cached header, as FETCH of header items reads it: no structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    pub uid: Uid,
    pub blob: BlobId,
    /// The body's size.
    pub size: u64,
    /// The blob's cached header section ([`BlobRecord::header`]).
    pub header: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub blob: BlobRecord,
    /// Copies of the body that are already durable.
    pub locations: Vec<BlobLocation>,
    pub flags: Flags,
    /// Unix seconds.
    pub internal_date: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertedMessage {
    pub mailbox: MailboxId,
    pub uidvalidity: UidValidity,
    pub uid: Uid,
    pub modseq: ModSeq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: Flags,
    pub size: u64,
    /// Unix seconds.
    pub internal_date: i64,
    pub blob: BlobId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Messages added or changed after the given MODSEQ, in UID order.
    pub messages: Vec<MessageRecord>,
    /// UIDs expunged after the given MODSEQ, ascending.
    pub expunged: Vec<Uid>,
    pub highest_modseq: ModSeq,
}

/// What `update_flags_unchanged_since` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Messages whose flags changed, with their new MODSEQ.
    pub changed: Vec<MessageRecord>,
    /// Messages left alone because their MODSEQ was greater than the limit, ascending.
    pub modified: Vec<Uid>,
}

/// How `update_flags` combines the given flags with the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    Add,
    Remove,
    Replace,
}

impl FlagChange {
    /// `current` with this change of `flags` applied, as every backend stores it.
    pub fn apply(self, current: &Flags, flags: &Flags) -> Flags {
        match self {
            FlagChange::Add => flags.iter().fold(current.clone(), |mut f, x| {
                f.insert(&x);
                f
            }),
            FlagChange::Remove => flags.iter().fold(current.clone(), |mut f, x| {
                f.remove(&x);
                f
            }),
            FlagChange::Replace => flags.clone(),
        }
    }
}

/// The name `name` gets when mailbox `old` is renamed to `to`: `Some` for `old` itself
/// and the mailboxes under it (`old` + `delimiter` + ...), `None` for every other
/// (including look-alikes such as `oldx`). Backends use it for `rename_mailbox`.
pub fn renamed_mailbox_name(name: &str, old: &str, to: &str, delimiter: char) -> Option<String> {
    if name == old {
        return Some(to.to_string());
    }
    let rest = name.strip_prefix(old)?.strip_prefix(delimiter)?;
    Some(format!("{to}{delimiter}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::renamed_mailbox_name;

    #[test]
    fn children_follow_a_rename_and_look_alikes_do_not() {
        let cases = [
            ("a", Some("b")),
            ("a/x", Some("b/x")),
            ("a/x/y", Some("b/x/y")),
            ("ab", None),
            ("ab/x", None),
            ("b", None),
            ("x/a", None),
        ];
        for (name, want) in cases {
            let got = renamed_mailbox_name(name, "a", "b", '/');
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }
}
