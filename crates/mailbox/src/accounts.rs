//! Accounts, passwords and aliases.
//!
//! Passwords are hashed with Argon2id at the OWASP-recommended parameters (19 MiB,
//! two passes, one lane). Hashing is CPU-heavy, so it runs on the blocking pool, and a
//! login for an unknown address verifies against a dummy hash so that timing does not
//! reveal which addresses exist.

use crate::login_guard::LockScope;
use crate::{ErrorKind, MailError, Mailstore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use evermail_meta::{AccountRecord, AliasRecord, NewAccount, NewMailbox};
use evermail_types::AccountId;
use std::sync::OnceLock;

/// An authenticated or resolved account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub address: String,
}

impl From<&AccountRecord> for Account {
    fn from(r: &AccountRecord) -> Account {
        Account {
            id: r.id,
            address: r.address.clone(),
        }
    }
}

/// How a login through [`Mailstore::log_in`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn(Account),
    /// Wrong address or password, deliberately indistinguishable (IMAP
    /// `[AUTHENTICATIONFAILED]`, POP3 `[AUTH]`).
    Failed,
    /// Too many recent failures: refused without looking at the password, for a while
    /// (IMAP `[UNAVAILABLE]`, POP3 `[SYS/TEMP]`), so clients retry later rather than
    /// ask the user for another password.
    LockedOut(LockScope),
}

/// The mailboxes every new account starts with (RFC 6154 special-use attributes).
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Drafts", Some("\\Drafts")),
    ("Sent", Some("\\Sent")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// The longest password accepted; Argon2 would take any length, but an unbounded one
/// is a free way to make the server hash megabytes.
const MAX_PASSWORD: usize = 1024;

/// Checks that `address` is a usable mailbox address, `local@domain`, or with
/// `catch_all` also `@domain`. Deliberately stricter than RFC 5321 allows (no quoted
/// local parts, no address literals): these are names an admin types for accounts and
/// aliases, and a typo such as a space should fail loudly rather than create an
/// address no MTA will ever deliver to.
pub fn check_address(address: &str, catch_all: bool) -> Result<(), MailError> {
    let bad = |why: &str| {
        Err(MailError::new(
            ErrorKind::Invalid,
            format!("{address:?} is not a valid address: {why}"),
        ))
    };
    let Some((local, domain)) = address.rsplit_once('@') else {
        return bad("it has no @domain");
    };
    if local.is_empty() && !catch_all {
        return bad("the part before @ is empty");
    }
    if local.len() > 64 {
        return bad("the part before @ is longer than 64 bytes");
    }
    let special = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    if local.chars().any(special) {
        return bad("the part before @ has a space or one of <>()[]\\,;:\"@");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return bad("the part before @ has a misplaced dot");
    }
    if domain.is_empty() || domain.len() > 253 {
        return bad("the domain is empty or longer than 253 bytes");
    }
    for label in domain.split('.') {
        let ok_char = |c: char| c.is_alphanumeric() || c == '-';
        if label.is_empty()
            || label.len() > 63
            || !label.chars().all(ok_char)
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return bad("the domain is not a host name such as example.com");
        }
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn check_password(password: &str) -> Result<(), MailError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(MailError::new(
            ErrorKind::Invalid,
            format!("a password must be 1 to {MAX_PASSWORD} bytes long"),
        ));
    }
    Ok(())
}

/// Hashes a password into a PHC string.
pub async fn hash_password(password: &str) -> Result<String, MailError> {
    check_password(password)?;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| MailError::new(ErrorKind::Invalid, e.to_string()))?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| MailError::new(ErrorKind::Invalid, e.to_string()))
    })
    .await
    .map_err(|e| MailError::new(ErrorKind::Unavailable, format!("hashing task: {e}")))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[0u8; 16]).expect("a fixed salt encodes");
        argon2()
            .hash_password(b"no such account", &salt)
            .expect("hashing a constant works")
            .to_string()
    })
}

async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl Mailstore {
    /// Creates an account with the default mailboxes.
    pub async fn create_account(
        &self,
        address: &str,
        password: &str,
        quota_bytes: Option<u64>,
    ) -> Result<Account, MailError> {
        check_address(address.trim(), false)?;
        let password_hash = hash_password(password).await?;
        let record = self
            .meta()
            .create_account(NewAccount {
                address: address.to_string(),
                password_hash,
                quota_bytes: quota_bytes.or(self.options().default_quota),
                mailboxes: DEFAULT_MAILBOXES
                    .iter()
                    .map(|(name, special_use)| NewMailbox {
                        name: name.to_string(),
                        special_use: special_use.map(str::to_string),
                        subscribed: true,
                    })
                    .collect(),
            })
            .await?;
        Ok(Account::from(&record))
    }

    async fn account_record(&self, address: &str) -> Result<AccountRecord, MailError> {
        self.meta()
            .account_by_address(address)
            .await?
            .ok_or_else(|| MailError::not_found(format!("account {address}")))
    }

    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), MailError> {
        let account = self.account_record(address).await?;
        let hash = hash_password(password).await?;
        Ok(self.meta().set_password_hash(account.id, &hash).await?)
    }

    pub async fn set_quota(
        &self,
        address: &str,
        quota_bytes: Option<u64>,
    ) -> Result<(), MailError> {
        let account = self.account_record(address).await?;
        Ok(self.meta().set_quota(account.id, quota_bytes).await?)
    }

    pub async fn remove_account(&self, address: &str) -> Result<(), MailError> {
        let account = self.account_record(address).await?;
        Ok(self.meta().remove_account(account.id).await?)
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MailError> {
        Ok(self.meta().list_accounts().await?)
    }

    pub async fn add_alias(&self, alias: &str, target: &str) -> Result<(), MailError> {
        check_address(alias.trim(), true)?;
        let account = self.account_record(target).await?;
        Ok(self.meta().add_alias(alias, account.id).await?)
    }

    pub async fn remove_alias(&self, alias: &str) -> Result<(), MailError> {
        if self.meta().remove_alias(alias).await? {
            Ok(())
        } else {
            Err(MailError::not_found(format!("alias {alias}")))
        }
    }

    pub async fn list_aliases(&self) -> Result<Vec<AliasRecord>, MailError> {
        Ok(self.meta().list_aliases().await?)
    }

    pub async fn list_domains(&self) -> Result<Vec<String>, MailError> {
        Ok(self.meta().list_domains().await?)
    }

    /// Checks a login. `Ok(None)` means wrong address or password, deliberately
    /// indistinguishable.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Account>, MailError> {
        if password.len() > MAX_PASSWORD {
            return Ok(None);
        }
        let record = self.meta().account_by_address(login).await?;
        let hash = record
            .as_ref()
            .map_or_else(|| dummy_hash().to_string(), |r| r.password_hash.clone());
        let ok = verify(password.to_string(), hash).await;
        Ok(record.filter(|_| ok).as_ref().map(Account::from))
    }

    /// A login from `peer`, through the failed-login lockout (`login_guard`): a
    /// locked-out login is refused before the password is hashed, a failure is
    /// counted, a success forgives the pair and trusts the address for the user.
    pub async fn log_in(
        &self,
        peer: std::net::IpAddr,
        login: &str,
        password: &str,
    ) -> Result<LoginOutcome, MailError> {
        let guard = &self.inner.login_guard;
        if let Some(scope) = guard.refused(std::time::Instant::now(), peer, login) {
            metrics::counter!("evermail_login_refused_total", "scope" => scope.as_str())
                .increment(1);
            return Ok(LoginOutcome::LockedOut(scope));
        }
        match self.authenticate(login, password).await? {
            Some(account) => {
                guard.succeeded(std::time::Instant::now(), peer, login);
                Ok(LoginOutcome::LoggedIn(account))
            }
            None => {
                for scope in guard.failed(std::time::Instant::now(), peer, login) {
                    tracing::warn!(%peer, login, scope = scope.as_str(), "login locked out");
                    metrics::counter!("evermail_login_lockouts_total", "scope" => scope.as_str())
                        .increment(1);
                }
                Ok(LoginOutcome::Failed)
            }
        }
    }

    /// The account that receives mail for `address` (its own address, an alias or a
    /// catch-all), if any.
    pub async fn resolve_recipient(&self, address: &str) -> Result<Option<Account>, MailError> {
        Ok(self
            .meta()
            .resolve_address(address)
            .await?
            .as_ref()
            .map(Account::from))
    }

    /// The quota state of an account: `(used, quota)`.
    pub async fn usage(&self, account: AccountId) -> Result<(u64, Option<u64>), MailError> {
        let record = self
            .meta()
            .account(account)
            .await?
            .ok_or_else(|| MailError::not_found("account"))?;
        Ok((record.used_bytes, record.quota_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_addresses() {
        let cases: &[(&str, bool, bool)] = &[
            ("alice@example.com", false, true),
            ("a.b+tag@mail.example.co.uk", false, true),
            ("jörg@bücher.example", false, true),
            ("@example.com", false, false),
            ("@example.com", true, true),
            ("a b@example.com", false, false),
            ("alice", false, false),
            ("alice@", false, false),
            ("alice@exa mple.com", false, false),
            ("alice@-example.com", false, false),
            ("alice@example..com", false, false),
            (".alice@example.com", false, false),
            ("al..ice@example.com", false, false),
            ("<alice>@example.com", false, false),
            ("a\u{0}b@example.com", false, false),
        ];
        for &(address, catch_all, ok) in cases {
            assert_eq!(check_address(address, catch_all).is_ok(), ok, "{address:?}");
        }
        assert!(check_address(&format!("{}@example.com", "a".repeat(65)), false).is_err());
    }
}
