//! The self-signed certificate a server uses when none is configured: generated once
//! into the data directory and reused, so a client that was told to trust it keeps
//! trusting it across restarts.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rcgen::{CertificateParams, DnType, KeyPair};

use crate::{ErrorKind, TlsError};

/// Where the self-signed certificate lives, relative to the data directory.
pub const SELF_SIGNED_CERT: &str = "tls/cert.pem";
/// Where its private key lives, relative to the data directory (mode 0600).
pub const SELF_SIGNED_KEY: &str = "tls/key.pem";

/// Generates the pair unless both files are already there.
pub(crate) fn ensure(cert_path: &Path, key_path: &Path, host_name: &str) -> Result<(), TlsError> {
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    if cert_path.exists() || key_path.exists() {
        tracing::warn!(
            cert = %cert_path.display(),
            key = %key_path.display(),
            "only half of the self-signed pair exists; generating a new pair"
        );
    }
    let (cert_pem, key_pem) = generate(host_name)?;
    for path in [cert_path, key_path] {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error(dir, e))?;
        }
    }
    // The key first and the certificate last: a crash in between leaves no
    // certificate, so the next start generates a fresh pair instead of pairing a
    // new certificate with an old key.
    write_atomically(key_path, key_pem.as_bytes())?;
    write_atomically(cert_path, cert_pem.as_bytes())?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

/// A certificate for `host_name`, `localhost`, `127.0.0.1` and `::1`, and its key
/// (ECDSA P-256), both PEM.
fn generate(host_name: &str) -> Result<(String, String), TlsError> {
    let rejected = |e: rcgen::Error| {
        TlsError::new(
            ErrorKind::Rejected,
            format!("cannot generate a self-signed certificate: {e}"),
        )
    };
    let mut names = vec!["localhost".to_string()];
    // A node name that is not a usable DNS name (rcgen refuses some) is left out
    // rather than failing the start; localhost still works.
    if !host_name.is_empty() && host_name != "localhost" {
        if CertificateParams::new(vec![host_name.to_string()]).is_ok() {
            names.insert(0, host_name.to_string());
        } else {
            tracing::warn!(
                host_name,
                "host name left out of the self-signed certificate"
            );
        }
    }
    names.extend(["127.0.0.1".to_string(), "::1".to_string()]);
    let mut params = CertificateParams::new(names).map_err(rejected)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name(host_name));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "evermail (self-signed)");
    let key = KeyPair::generate().map_err(rejected)?;
    let cert = params.self_signed(&key).map_err(rejected)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn common_name(host_name: &str) -> String {
    if host_name.is_empty() {
        "localhost".to_string()
    } else {
        host_name.to_string()
    }
}

/// Writes a temporary file (mode 0600), syncs it and renames it over `path`, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(path, e)
    })
}

fn io_error(path: &Path, e: std::io::Error) -> TlsError {
    TlsError::new(
        ErrorKind::Io,
        format!(
            "cannot write the self-signed certificate at {}: {e}",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_private_and_a_lost_half_is_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (
            dir.path().join(SELF_SIGNED_CERT),
            dir.path().join(SELF_SIGNED_KEY),
        );
        ensure(&cert, &key, "mail1.example").unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&cert).unwrap();
        std::fs::remove_file(&key).unwrap();
        ensure(&cert, &key, "mail1.example").unwrap();
        assert!(key.exists());
        assert_ne!(std::fs::read(&cert).unwrap(), first);
    }

    #[test]
    fn odd_host_names_still_give_a_certificate() {
        for name in ["", "localhost", "mail1", "bad name with spaces", "ünïcode"] {
            generate(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
    }
}
