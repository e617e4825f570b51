//! Accounts, passwords and aliases.
//!
//! Passwords are hashed with Argon2id at the OWASP-recommended parameters (19 MiB,
//! two passes, one lane). Hashing is CPU-heavy, so it runs on the blocking pool, and a
//! login for an unknown address verifies against a dummy hash so that timing does not
//! reveal which addresses exist.

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
