//! Identifier newtypes. Each wraps the integer or hash the storage layer keeps, so
//! that a mailbox id can never be passed where an account id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// The database identity of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(pub i64);

/// The database identity of a mailbox; never reused, so a recreated mailbox with the
/// same name gets a new id (and a new UIDVALIDITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxId(pub i64);

/// An IMAP UID (RFC 9051 section 2.3.1.1): non-zero, strictly ascending per mailbox and
/// never reused within one UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Uid(pub NonZeroU32);

impl Uid {
    /// The first UID of a new mailbox.
    pub const FIRST: Uid = Uid(NonZeroU32::MIN);

    /// Returns `None` for zero, which is never a valid UID.
    pub fn new(value: u32) -> Option<Uid> {
        NonZeroU32::new(value).map(Uid)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A modification sequence (RFC 7162): grows with every change in a mailbox.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct ModSeq(pub u64);

impl fmt::Display for ModSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// UIDVALIDITY of a mailbox: fixed for the mailbox's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UidValidity(pub NonZeroU32);

impl UidValidity {
    pub fn new(value: u32) -> Option<UidValidity> {
        NonZeroU32::new(value).map(UidValidity)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for UidValidity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The content id of a message body: its BLAKE3 hash. Two identical bodies share one id
/// and so one stored copy.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

/// The text was not 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBlobId;

impl fmt::Display for BadBlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a blob id is 64 hexadecimal digits")
    }
}

impl std::error::Error for BadBlobId {}

impl FromStr for BlobId {
    type Err = BadBlobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadBlobId)?;
        Ok(BlobId(out))
    }
}

impl Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_hex_round_trips() {
        let id = BlobId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<BlobId>().unwrap(), id);
    }

    #[test]
    fn blob_id_rejects_bad_text() {
        for bad in ["", "zz", &"a".repeat(63), &"g".repeat(64)] {
            assert!(bad.parse::<BlobId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uid_zero_is_not_a_uid() {
        assert!(Uid::new(0).is_none());
        assert_eq!(Uid::new(7).unwrap().get(), 7);
    }
}
