//! Accounts, passwords and aliases.
//!
//! Passwords are hashed with Argon2id at the OWASP-recommended parameters (19 MiB,
//! two passes, one lane). Hashing is CPU-heavy, so it runs on the blocking pool, at
//! most one computation per core in reused memory (see [`Argon2Slots`]), and a
//! login for an unknown address verifies against a dummy hash so that timing does not
//! reveal which addresses exist.

use crate::login_guard::LockScope;
use crate::{ErrorKind, MailError, Mailstore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// The Argon2id parameters new hashes get: OWASP's 19 MiB, two passes, one lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid")
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

/// Where Argon2 runs. One computation fills 19 MiB. Left alone, a burst of logins would
/// run one computation per blocking thread (tokio allows 512): gigabytes at once, much
/// of which the allocator keeps afterwards, so every connection that once logged in
/// would seem to cost megabytes. Instead at most one computation per core runs at a
/// time (more would not finish sooner; the others wait their turn) and each works in
/// one of a fixed set of memory buffers that is reused, never freed. The argon2 crate's
/// PHC verifier allocates its own memory each time, which is why hashing and verifying
/// are written here over `hash_password_into_with_memory`.
struct Argon2Slots {
    permits: tokio::sync::Semaphore,
    buffers: std::sync::Mutex<Vec<Vec<Block>>>,
    /// Buffers are kept at this many blocks; a stored hash with a bigger memory cost
    /// (made with other parameters) gets a one-off larger buffer.
    kept_blocks: usize,
}

fn slots() -> &'static Argon2Slots {
    static SLOTS: OnceLock<Argon2Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Argon2Slots {
            permits: tokio::sync::Semaphore::new(cores),
            buffers: std::sync::Mutex::new(Vec::new()),
            kept_blocks: params().block_count(),
        }
    })
}

/// Runs Argon2 `argon2` over `password` and `salt` into `out`, in a turn and a buffer
/// from [`Argon2Slots`].
async fn argon2_into(
    argon2: Argon2<'static>,
    password: Vec<u8>,
    salt: Vec<u8>,
    out_len: usize,
) -> Result<Vec<u8>, MailError> {
    let slots = slots();
    // The permit moves into the blocking task, so a caller that gives up waiting (a
    // client that disconnects) does not free its turn while the computation runs.
    let permit = slots
        .permits
        .acquire()
        .await
        .map_err(|_| MailError::new(ErrorKind::Unavailable, "password hashing stopped"))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let blocks = argon2.params().block_count();
        let mut buffer = slots
            .buffers
            .lock()
            .expect("argon2 buffer list lock")
            .pop()
            .unwrap_or_default();
        if buffer.len() < blocks {
            buffer.resize(blocks, Block::default());
        }
        let mut out = vec![0u8; out_len];
        let result = argon2.hash_password_into_with_memory(
            &password,
            &salt,
            &mut out,
            &mut buffer[..blocks],
        );
        if buffer.len() > slots.kept_blocks {
            buffer.truncate(slots.kept_blocks);
            buffer.shrink_to_fit();
        }
        slots
            .buffers
            .lock()
            .expect("argon2 buffer list lock")
            .push(buffer);
        result
            .map(|()| out)
            .map_err(|e| MailError::new(ErrorKind::Invalid, format!("argon2: {e}")))
    })
    .await
    .map_err(|e| MailError::new(ErrorKind::Unavailable, format!("hashing task: {e}")))?
}

/// Hashes a password into a PHC string.
pub async fn hash_password(password: &str) -> Result<String, MailError> {
    check_password(password)?;
    hash_with_salt(password.as_bytes(), &rand::random::<[u8; 16]>()).await
}

async fn hash_with_salt(password: &[u8], salt: &[u8]) -> Result<String, MailError> {
    let invalid =
        |e: argon2::password_hash::Error| MailError::new(ErrorKind::Invalid, e.to_string());
    let params = params();
    let out_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let out = argon2_into(argon2, password.to_vec(), salt.to_vec(), out_len).await?;
    let salt = SaltString::encode_b64(salt).map_err(invalid)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(invalid)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(invalid)?),
    };
    Ok(phc.to_string())
}

/// The hash an unknown address is verified against, so its login costs the same.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            hash_with_salt(b"no such account", &[0u8; 16])
                .await
                .expect("hashing a constant works")
        })
        .await
        .clone()
}

/// Whether `password` matches the PHC string `hash` (any Argon2 variant, version and
/// parameters it names). The comparison of the outputs is constant-time.
async fn verify(password: String, hash: String) -> bool {
    let Ok(parsed) = PasswordHash::new(&hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    match argon2_into(argon2, password.into_bytes(), salt.to_vec(), expected.len()).await {
        // Output's equality is constant-time.
        Ok(out) => Output::new(&out).is_ok_and(|out| out == expected),
        Err(_) => false,
    }
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
        let hash = record.as_ref().map(|r| r.password_hash.clone());
        let hash = match hash {
            Some(hash) => hash,
            None => dummy_hash().await,
        };
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

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify("correct horse".into(), hash.clone()).await);
        assert!(!verify("correct horsf".into(), hash.clone()).await);
        assert!(!verify(String::new(), hash.clone()).await);
        // A fresh salt every time.
        assert_ne!(hash, hash_password("correct horse").await.unwrap());
        for garbage in [
            "",
            "$argon2id$",
            "plain",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
        ] {
            assert!(!verify("x".into(), garbage.into()).await, "{garbage}");
        }
    }

    /// Hashes stored by the argon2 crate's own PHC hasher (what earlier releases wrote),
    /// with other parameters and variants, still verify.
    #[tokio::test]
    async fn verifies_hashes_made_by_the_argon2_crate() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        for (algorithm, params) in [
            (Algorithm::Argon2id, params()),
            (
                Algorithm::Argon2id,
                Params::new(32 * 1024, 1, 2, Some(16)).unwrap(),
            ),
            (
                Algorithm::Argon2i,
                Params::new(8 * 1024, 3, 1, None).unwrap(),
            ),
        ] {
            let hash = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            assert!(verify("pw".into(), hash.clone()).await, "{hash}");
            assert!(!verify("pW".into(), hash.clone()).await, "{hash}");
        }
    }

    /// More logins at once than there are cores (and buffers): every one gets its own
    /// right answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_verifications_do_not_mix_up_buffers() {
        let hash = hash_password("pw").await.unwrap();
        let checks: Vec<_> = (0..12)
            .map(|i| {
                let hash = hash.clone();
                tokio::spawn(async move {
                    let password = if i % 3 == 0 { "pw" } else { "wrong" };
                    (i, verify(password.into(), hash).await)
                })
            })
            .collect();
        for check in checks {
            let (i, ok) = check.await.unwrap();
            assert_eq!(ok, i % 3 == 0, "verification {i}");
        }
        assert!(slots().buffers.lock().unwrap().len() <= slots().permits.available_permits());
    }

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
