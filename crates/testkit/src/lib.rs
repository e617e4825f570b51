//! Helpers for evermail's tests, so every front end's tests start from the same real
//! parts: a [`Mailstore`] over SQLite and a filesystem blob store in a temporary
//! directory, and a TLS client that trusts the certificate a node generated.
//!
//! Only tests depend on this crate (as a dev-dependency); it panics on any setup
//! failure, since a test cannot go on without its fixture.

use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, StoreHandle};
use evermail_mailbox::{Mailstore, MailstoreOptions};
use evermail_meta::Meta;
use evermail_meta_sqlite::SqliteMeta;
use evermail_tls::rustls;
use std::path::Path;
use std::sync::Arc;

/// A mail store over a real SQLite database and one fs blob store (`local`, one
/// replica) under `dir`, as a single node with no config would have.
pub async fn local_mailstore(dir: &Path, options: MailstoreOptions) -> Mailstore {
    let meta = SqliteMeta::open(&dir.join("meta.sqlite"))
        .await
        .expect("open the test database");
    let backend = FsBackend::open(&dir.join("blobs"), "test").expect("open the test blob store");
    let blobs = BlobStore::new(vec![StoreHandle::new("local", Arc::new(backend))], 1, 1)
        .expect("one store, one replica");
    Mailstore::new(Meta::new(meta), blobs, options)
}

/// A TLS client configuration that trusts exactly the certificates in the PEM file
/// `cert` (a node's self-signed `DATA/tls/cert.pem`, say).
pub fn trusting_client_config(cert: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).expect("read the certificate") {
        roots
            .add(der.expect("a PEM certificate"))
            .expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
