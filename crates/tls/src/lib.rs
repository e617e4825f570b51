//! TLS for evermail's front ends, with rustls (the `ring` provider, which builds with a
//! C compiler alone). Three things live here:
//!
//! - [`TlsOptions`], the `[tls]` section of the configuration file: the certificate
//!   and key, as PEM files.
//! - [`server_config`], which loads them, or, when none are configured, generates a
//!   self-signed certificate once into `DATA/tls/` and reuses it on later starts, and
//!   returns the `rustls::ServerConfig` every listener shares.
//! - [`SessionStream`], a connection that starts in plaintext or in TLS and can be
//!   upgraded once (STARTTLS in IMAP, STLS in POP3), so each protocol's session code
//!   does not repeat it.
//!
//! ```no_run
//! # fn run() -> Result<(), evermail_tls::TlsError> {
//! use evermail_tls::{TlsOptions, server_config};
//! use std::path::Path;
//!
//! // No cert_path or key_path: DATA/tls/cert.pem and key.pem are made on first use.
//! let config = server_config(&TlsOptions::default(), Path::new("evermail-data"), "mail1")?;
//! let acceptor = tokio_rustls::TlsAcceptor::from(config);
//! # let _ = acceptor; Ok(()) }
//! ```
//!
//! # Layout
//! - `lib.rs`: the options, the error type, loading the PEM files into a config.
//! - `self_signed`: generating and storing the self-signed certificate.
//! - `stream`: [`SessionStream`].
//!
//! # What this crate must not do
//! - Know any protocol: what a command is, when to upgrade, what to advertise.
//! - Offer anything below TLS 1.2: the protocol versions are rustls' safe defaults.

mod policy;
mod self_signed;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

pub use policy::{ListenerTls, PlaintextAuth};
pub use self_signed::{SELF_SIGNED_CERT, SELF_SIGNED_KEY};
pub use stream::SessionStream;

#[doc(no_inline)]
pub use rustls;
#[doc(no_inline)]
pub use tokio_rustls::TlsAcceptor;

/// The `[tls]` section of the configuration file: the certificate every TLS listener
/// and STARTTLS present.
///
/// Set both paths or neither. With neither, a self-signed certificate for the node's
/// host name, `localhost`, `127.0.0.1` and `::1` is generated into `DATA/tls/` the
/// first time the server starts and reused afterwards; clients must be told to trust
/// it (or use a real certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsOptions {
    /// The certificate chain, PEM: the server's certificate first, then any
    /// intermediates (Let's Encrypt's `fullchain.pem`). Relative paths are inside the
    /// data directory. Default: unset (self-signed).
    pub cert_path: Option<PathBuf>,
    /// The private key of that certificate, PEM (PKCS#8, PKCS#1 or SEC1; Let's
    /// Encrypt's `privkey.pem`). Relative paths are inside the data directory.
    /// Default: unset (self-signed).
    pub key_path: Option<PathBuf>,
}

impl TlsOptions {
    /// The certificate and key files in use for `data_dir`: the configured ones, or
    /// where the self-signed pair lives.
    pub fn files(&self, data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
        match (&self.cert_path, &self.key_path) {
            (Some(cert), Some(key)) => Ok((data_dir.join(cert), data_dir.join(key))),
            (None, None) => Ok((
                data_dir.join(SELF_SIGNED_CERT),
                data_dir.join(SELF_SIGNED_KEY),
            )),
            (Some(_), None) => Err(TlsError::new(
                ErrorKind::Config,
                "[tls] cert_path is set but key_path is not; set both or neither",
            )),
            (None, Some(_)) => Err(TlsError::new(
                ErrorKind::Config,
                "[tls] key_path is set but cert_path is not; set both or neither",
            )),
        }
    }

    /// Whether the certificate is the generated self-signed one.
    pub fn is_self_signed(&self) -> bool {
        self.cert_path.is_none() && self.key_path.is_none()
    }
}

/// What went wrong setting TLS up; [`TlsError::kind`] says which kind of mistake.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    kind: ErrorKind,
    message: String,
}

/// The kinds of [`TlsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The options are inconsistent (one path without the other).
    Config,
    /// A file is missing or cannot be read or written.
    Io,
    /// A file is not PEM, or holds no certificate or no private key.
    BadPem,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// rustls refused the certificate or key for another reason, or generating the
    /// self-signed certificate failed.
    Rejected,
}

impl TlsError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> TlsError {
        TlsError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Loads the configured certificate and key, or the self-signed pair in
/// `data_dir/tls/` (generating it, for `host_name`, if it is not there yet), and
/// returns the server configuration every TLS listener and STARTTLS share.
///
/// Only TLS 1.2 and 1.3 are offered (rustls' defaults); no client certificates are
/// asked for.
pub fn server_config(
    options: &TlsOptions,
    data_dir: &Path,
    host_name: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = options.files(data_dir)?;
    if options.is_self_signed() {
        self_signed::ensure(&cert_path, &key_path, host_name)?;
    }
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    // Name the provider rather than rely on the process default: a default is only
    // chosen automatically when exactly one provider is compiled in, which another
    // crate in the build could change.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(ErrorKind::Rejected, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::new(
                ErrorKind::KeyMismatch,
                format!(
                    "the private key {} does not belong to the certificate {}",
                    key_path.display(),
                    cert_path.display()
                ),
            ),
            other => TlsError::new(
                ErrorKind::Rejected,
                format!(
                    "the certificate {} or key {} cannot be used: {other}",
                    cert_path.display(),
                    key_path.display()
                ),
            ),
        })?;
    Ok(Arc::new(config))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        TlsError::new(
            ErrorKind::Io,
            format!("cannot read the TLS {what} {}: {e}", path.display()),
        )
    })
}

fn bad_pem(path: &Path, what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::new(
        ErrorKind::BadPem,
        format!("the TLS {what} {} is not readable PEM: {e}", path.display()),
    )
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read_file(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| bad_pem(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(bad_pem(
            path,
            "certificate",
            "no BEGIN CERTIFICATE section found",
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => bad_pem(path, "private key", "no PRIVATE KEY section found"),
        other => bad_pem(path, "private key", other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_unknown_fields() {
        let options: TlsOptions = toml::from_str("").unwrap();
        assert!(options.is_self_signed());
        let options: TlsOptions =
            toml::from_str("cert_path = \"/etc/c.pem\"\nkey_path = \"k.pem\"\n").unwrap();
        let (cert, key) = options.files(Path::new("/data")).unwrap();
        assert_eq!(cert, Path::new("/etc/c.pem"));
        assert_eq!(key, Path::new("/data/k.pem"));
        assert!(toml::from_str::<TlsOptions>("cert = \"x\"\n").is_err());
    }

    #[test]
    fn one_path_without_the_other_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for options in [
            TlsOptions {
                cert_path: Some("c.pem".into()),
                key_path: None,
            },
            TlsOptions {
                cert_path: None,
                key_path: Some("k.pem".into()),
            },
        ] {
            let e = server_config(&options, dir.path(), "mail1").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        }
    }

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let options = TlsOptions::default();
        server_config(&options, dir.path(), "mail1.example").unwrap();
        let cert = dir.path().join(SELF_SIGNED_CERT);
        let first = std::fs::read(&cert).unwrap();
        server_config(&options, dir.path(), "mail1.example").unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "regenerated");
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        // Two self-signed pairs, to pair one's key with the other's certificate.
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        server_config(&TlsOptions::default(), &a, "a").unwrap();
        server_config(&TlsOptions::default(), &b, "b").unwrap();
        std::fs::write(dir.path().join("junk.pem"), "not pem at all\n").unwrap();
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("broken.pem"), broken).unwrap();
        let cases = [
            ("missing.pem", "a/tls/key.pem", ErrorKind::Io, "missing.pem"),
            ("junk.pem", "a/tls/key.pem", ErrorKind::BadPem, "junk.pem"),
            (
                "broken.pem",
                "a/tls/key.pem",
                ErrorKind::BadPem,
                "broken.pem",
            ),
            ("a/tls/cert.pem", "a/tls/cert.pem", ErrorKind::BadPem, "key"),
            (
                "a/tls/cert.pem",
                "b/tls/key.pem",
                ErrorKind::KeyMismatch,
                "belong",
            ),
        ];
        for (cert, key, kind, mentions) in cases {
            let options = TlsOptions {
                cert_path: Some(cert.into()),
                key_path: Some(key.into()),
            };
            let e = server_config(&options, dir.path(), "x").unwrap_err();
            assert_eq!(e.kind(), kind, "{cert} {key}: {e}");
            assert!(e.to_string().contains(mentions), "{cert} {key}: {e}");
        }
        let good = TlsOptions {
            cert_path: Some("b/tls/cert.pem".into()),
            key_path: Some("b/tls/key.pem".into()),
        };
        server_config(&good, dir.path(), "x").unwrap();
    }
}
