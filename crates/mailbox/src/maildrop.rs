//! The POP3 maildrop lock (RFC 1939 section 8): while one POP3 session of an account is
//! in the TRANSACTION state, no other may enter it, so message numbers and deletion
//! marks cannot be pulled out from under it.
//!
//! The lock is held in this process only, which is enough for one node. A cluster
//! needs it in the metadata store instead (a lease row per account with the holding
//! node and an expiry it renews while the session lives, taken in one conditional
//! write), or a proxy that sends every POP3 session of a user to the same node.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use evermail_types::AccountId;

use crate::Mailstore;

/// The accounts whose maildrop is locked.
#[derive(Debug, Default)]
pub(crate) struct MaildropLocks(Arc<Mutex<HashSet<AccountId>>>);

/// Exclusive access to an account's maildrop; released when dropped, however the
/// session ends.
#[derive(Debug)]
pub struct MaildropLock {
    locks: Arc<Mutex<HashSet<AccountId>>>,
    account: AccountId,
}

impl MaildropLocks {
    fn take(&self, account: AccountId) -> Option<MaildropLock> {
        // A panic while holding this mutex cannot leave the set inconsistent (one
        // insert or remove), so a poisoned lock is used as is.
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(account).then(|| MaildropLock {
            locks: self.0.clone(),
            account,
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.account);
    }
}

impl Mailstore {
    /// Takes the maildrop lock of `account`, or `None` when another session holds it.
    pub fn lock_maildrop(&self, account: AccountId) -> Option<MaildropLock> {
        self.inner.maildrops.take(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_account_until_dropped() {
        let locks = MaildropLocks::default();
        let take = |account: i64| locks.take(AccountId(account));
        let first = take(1).expect("free");
        assert!(take(1).is_none(), "taken twice");
        let other = take(2).expect("another account is independent");
        drop(first);
        assert!(take(1).is_some(), "released on drop");
        drop(other);
    }
}
