//! The S3 blob backend: message bodies as objects in a bucket of any S3-compatible
//! store (AWS S3, Garage, MinIO, Ceph RGW), through the `object_store` crate.
//!
//! Keys are `<node>/<first two hex digits>/<hex id>`, the fs backend's layout, so one
//! bucket can be shared by several nodes and a store can be copied between kinds
//! without renaming anything.
//!
//! A put is durable when the PUT is answered 200: S3 acknowledges a write only once
//! it is stored (Garage: on a quorum of its nodes). Replication across stores,
//! checksums and metrics are not done here but once, in `evermail_blob::BlobStore`.
//!
//! Large bodies stream both ways, in bounded memory. `put_file` of a body over
//! [`PART_SIZE`] is a multipart upload of parts read from the file, at most
//! [`PARTS_IN_FLIGHT`] of them in memory and on the wire at once per copy; S3 exposes a
//! multipart object only when CompleteMultipartUpload is answered, so a failed or
//! cancelled upload never leaves half an object under the key, and it is aborted
//! (its parts deleted). Only a crash between the first part and the abort leaves
//! parts behind, invisible to GET and LIST: a bucket lifecycle rule
//! (AbortIncompleteMultipartUpload) or Garage's `garage bucket
//! cleanup-incomplete-uploads` removes them. `get_to_file` writes the GET body to the
//! file as it arrives, and `content_id` (the deep scrub) hashes it as it arrives.
//!
//! Timeouts bound progress, not a transfer's length: `timeout_secs` is how long one
//! request may wait for its answer (a PUT of at most one part, a HEAD, a DELETE, the
//! headers of a GET) and how long a GET body may stall between two reads. A total
//! per-request timeout that suits a 50 KB message would cut off a 50 MB one on a
//! slow link, and one that suits 50 MB would let a stalled small request hang for
//! minutes; with parts of bounded size, every request is bounded and a transfer that
//! moves continues.
//!
//! This crate must not know about the metadata database or any protocol; only the
//! `server` crate names it.
//!
//! ```no_run
//! # async fn example() -> Result<(), evermail_blob::BlobError> {
//! use evermail_blob::BlobBackend;
//! use evermail_blob_s3::{S3Backend, S3Options};
//! let options: S3Options = toml::from_str(
//!     r#"
//!     endpoint = "http://127.0.0.1:3900"
//!     region = "garage"
//!     bucket = "evermail"
//!     access_key_id = "GK..."
//!     secret_access_key = "..."
//!     "#,
//! ).unwrap();
//! let s3 = S3Backend::open(&options, "mail1")?;
//! let key = s3.key_for(&evermail_blob::blob_id(b"hello"));
//! s3.put(&key, bytes::Bytes::from_static(b"hello")).await?;
//! # Ok(()) }
//! ```

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use evermail_blob::{BlobBackend, BlobError, ErrorKind};
use evermail_types::BlobId;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The size of one part of a multipart upload, and the largest body stored with a
/// single PUT. S3 wants parts of at least 5 MiB (all but the last); 8 MiB takes 30 s
/// (the default `timeout_secs`) at 280 KB/s.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts of one upload sent at once. The next part is read from the file only when
/// fewer are in flight, so one copy holds at most this many parts in memory (a
/// replicated put writes its copies in parallel, each holding its own). One: reading
/// 8 MiB from a file takes milliseconds next to sending it, and a body written to
/// three stores then holds 24 MiB at most, never more than the body.
pub const PARTS_IN_FLIGHT: usize = 1;

/// How to reach one bucket: the `s3` table of a `[[storage.stores]]` entry. Its
/// `Debug` output leaves the secret out, since `evermail config check` prints it.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// The endpoint URL, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:3900` for a local Garage.
    pub endpoint: String,
    /// The region the bucket is in (Garage's default is `garage`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The bucket; it must exist, evermail does not create it.
    pub bucket: String,
    /// The access key id and its secret, with read and write rights on the bucket.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A prefix for every key, e.g. `mail/`, to share a bucket with other data.
    #[serde(default)]
    pub prefix: String,
    /// Allow a plain `http://` endpoint. Off by default, since credentials and mail
    /// would cross the network in clear; meant for a store on loopback.
    #[serde(default)]
    pub allow_http: bool,
    /// Address the bucket as `bucket.endpoint` instead of `endpoint/bucket`. Path
    /// style (the default) works with every S3-compatible server.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Seconds a request may wait for its answer (a PUT of at most one
    /// [`PART_SIZE`] part, a HEAD, a DELETE, a GET's headers), and a GET body may
    /// stall between two reads, before the store counts as failed. Not a limit on a
    /// whole transfer: a large body streams for as long as it moves.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Seconds to wait for a connection to the endpoint.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Retries of a failed request within one operation. Few, because `BlobStore`
    /// already writes to another store when this one fails, and a delivery should
    /// not wait long on a store that is down.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_connect_timeout_secs() -> u64 {
    5
}
fn default_max_retries() -> usize {
    2
}

/// A bucket as a blob store. Cheap to share behind an `Arc`.
pub struct S3Backend {
    store: AmazonS3,
    prefix: String,
    node: String,
}

impl S3Backend {
    /// Checks the options and builds the client; does not contact the endpoint (the
    /// first write or a health probe does).
    pub fn open(options: &S3Options, node: &str) -> Result<S3Backend, BlobError> {
        let invalid = |m: String| BlobError::new(ErrorKind::Unavailable, m);
        if node.is_empty() || node.contains(['/', '\\']) || node.starts_with('.') {
            return Err(invalid(format!(
                "node name {node:?} cannot be a key prefix"
            )));
        }
        if !options.prefix.is_empty() && !options.prefix.ends_with('/') {
            return Err(invalid(format!(
                "prefix {:?} must end with '/'",
                options.prefix
            )));
        }
        // reqwest is built without a TLS crypto provider of its own; use ring, as the
        // rest of evermail does. Fails harmlessly when a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No total timeout (object_store's default is 30 s for a whole request, body
        // included): reqwest's read timeout runs from the request's start to its
        // response headers, so it bounds every PUT (at most one part) and HEAD, and
        // then restarts at every read of a response body, so a GET of any size runs
        // as long as bytes keep coming. See the crate documentation.
        let client = ClientOptions::new()
            .with_allow_http(options.allow_http)
            .with_timeout_disabled()
            .with_read_timeout(Duration::from_secs(options.timeout_secs))
            .with_connect_timeout(Duration::from_secs(options.connect_timeout_secs));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: options.max_retries,
            retry_timeout: Duration::from_secs(options.timeout_secs),
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&options.endpoint)
            .with_region(&options.region)
            .with_bucket_name(&options.bucket)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key)
            .with_allow_http(options.allow_http)
            .with_virtual_hosted_style_request(options.virtual_hosted_style)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| invalid(format!("S3 store {}: {e}", options.endpoint)))?;
        Ok(S3Backend {
            store,
            prefix: options.prefix.clone(),
            node: node.to_string(),
        })
    }

    fn path(&self, key: &str) -> Result<Path, BlobError> {
        let safe = !key.is_empty()
            && key
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
        if !safe {
            return Err(BlobError::new(
                ErrorKind::Unavailable,
                format!("refusing unsafe blob key {key:?}"),
            ));
        }
        Path::parse(format!("{}{key}", self.prefix))
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("blob key {key:?}: {e}")))
    }
}

fn unavailable(what: &str, key: &str, e: object_store::Error) -> BlobError {
    BlobError::new(ErrorKind::Unavailable, format!("S3 {what} of {key}: {e}"))
}

fn io_error(context: impl std::fmt::Display, e: std::io::Error) -> BlobError {
    BlobError::new(ErrorKind::Unavailable, format!("{context}: {e}"))
}

/// A multipart upload that is aborted if it is dropped unfinished: a put cancelled
/// from outside (`BlobStore` drops a copy slower than its `slow_copy_timeout`) must
/// not leave its parts in the bucket. The abort is a request, so it runs in a task of
/// its own.
struct Upload(Option<WriteMultipart>);

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, "could not abort a cancelled S3 multipart upload; its parts stay until the bucket cleans up incomplete uploads");
                }
            });
        }
    }
}

impl S3Backend {
    /// The multipart upload of `put_file`: parts of [`PART_SIZE`] read from `file`,
    /// at most [`PARTS_IN_FLIGHT`] in flight, completed only once every part is
    /// stored, aborted on any error.
    async fn put_multipart_from(
        &self,
        key: &str,
        path: &Path,
        file: &mut tokio::fs::File,
    ) -> Result<(), BlobError> {
        let multipart = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| unavailable("CreateMultipartUpload", key, e))?;
        let mut upload = Upload(Some(WriteMultipart::new_with_chunk_size(
            multipart, PART_SIZE,
        )));
        let sent = async {
            let writer = upload.0.as_mut().expect("taken only below");
            loop {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| unavailable("UploadPart", key, e))?;
                let mut part = BytesMut::with_capacity(PART_SIZE);
                while part.len() < PART_SIZE {
                    let n = file
                        .read_buf(&mut part)
                        .await
                        .map_err(|e| io_error("reading a body to upload", e))?;
                    if n == 0 {
                        break;
                    }
                }
                let last = part.len() < PART_SIZE;
                if !part.is_empty() {
                    writer.put(part.freeze());
                }
                if last {
                    return Ok(());
                }
            }
        }
        .await;
        let writer = upload.0.take().expect("taken only here");
        match sent {
            // Completes, or aborts itself when a part or the completion fails.
            Ok(()) => writer
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| unavailable("CompleteMultipartUpload", key, e)),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key, error = %abort, "could not abort a failed S3 multipart upload");
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl BlobBackend for S3Backend {
    fn key_for(&self, id: &BlobId) -> String {
        let hex = id.to_hex();
        format!("{}/{}/{}", self.node, &hex[..2], hex)
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let path = self.path(key)?;
        // A 200 to a single PUT means the object is stored; content-addressed keys
        // make overwriting an existing copy harmless.
        self.store
            .put(&path, body.into())
            .await
            .map(|_| ())
            .map_err(|e| unavailable("PUT", key, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|e| unavailable("GET", key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable("GET", key, e)),
        }
    }

    /// A body up to [`PART_SIZE`] is one PUT; a larger one a multipart upload (see
    /// the crate documentation), never held in memory whole.
    async fn put_file(&self, key: &str, src: &std::path::Path) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let reading = |e| io_error(format!("reading {}", src.display()), e);
        let mut file = tokio::fs::File::open(src).await.map_err(reading)?;
        let size = file.metadata().await.map_err(reading)?.len();
        if size <= PART_SIZE as u64 {
            let mut body = Vec::with_capacity(size as usize);
            file.read_to_end(&mut body).await.map_err(reading)?;
            return self.put(key, Bytes::from(body)).await;
        }
        self.put_multipart_from(key, &path, &mut file).await
    }

    /// Streams the GET body into the file as it arrives.
    async fn get_to_file(&self, key: &str, dest: &std::path::Path) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(unavailable("GET", key, e)),
        };
        let writing = |e| io_error(format!("writing {}", dest.display()), e);
        let file = tokio::fs::File::create(dest).await.map_err(writing)?;
        // Chunks arrive in tens of KB; a buffer makes each file write larger.
        let mut out = tokio::io::BufWriter::with_capacity(1024 * 1024, file);
        let mut body = result.into_stream();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| unavailable("GET", key, e))?
        {
            out.write_all(&chunk).await.map_err(writing)?;
        }
        out.flush().await.map_err(writing)?;
        Ok(true)
    }

    /// Hashes the GET body as it arrives.
    async fn content_id(&self, key: &str) -> Result<Option<BlobId>, BlobError> {
        let path = self.path(key)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable("GET", key, e)),
        };
        let mut hasher = blake3::Hasher::new();
        let mut body = result.into_stream();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| unavailable("GET", key, e))?
        {
            // Chunks are small (tens of KB): hashing one takes microseconds.
            hasher.update(&chunk);
        }
        Ok(Some(BlobId(*hasher.finalize().as_bytes())))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable("DELETE", key, e)),
        }
    }

    /// Lists `<prefix><node>/<shard>/` and keeps the objects whose LastModified is
    /// before `cutoff` (a PUT of the same content stamps it afresh).
    async fn old_keys(
        &self,
        shard: u8,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<String>, BlobError> {
        let dir = format!("{}/{shard:02x}", self.node);
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.path(&dir)?))
            .try_collect()
            .await
            .map_err(|e| unavailable("LIST", &dir, e))?;
        Ok(listed
            .into_iter()
            .filter(|meta| std::time::SystemTime::from(meta.last_modified) < cutoff)
            .filter_map(|meta| {
                meta.location
                    .as_ref()
                    .strip_prefix(&self.prefix)
                    .map(str::to_string)
            })
            .collect())
    }

    /// HEAD, then DELETE if LastModified is still before `cutoff`. Not atomic, unlike
    /// the fs backend's: S3 has no delete conditional on a racing write (If-Match
    /// compares ETags, and a re-put of the same content has the same ETag), so a PUT
    /// landing between the HEAD and the DELETE is deleted. The orphan collector
    /// (`evermail_rais`) makes up for it: it holds the verified body while it deletes
    /// and re-checks the location rows afterwards.
    async fn delete_if_unchanged(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        let meta = match self.store.head(&path).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(unavailable("HEAD", key, e)),
        };
        if std::time::SystemTime::from(meta.last_modified) >= cutoff {
            return Ok(false);
        }
        self.delete(key).await?;
        Ok(true)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable("HEAD", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> S3Options {
        toml::from_str(
            "endpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\n\
             access_key_id = \"k\"\nsecret_access_key = \"s\"\nallow_http = true\n",
        )
        .unwrap()
    }

    #[test]
    fn options_have_defaults_and_refuse_unknown_fields() {
        let o = options();
        assert_eq!(o.region, "us-east-1");
        assert!(!o.virtual_hosted_style);
        assert_eq!(
            (o.timeout_secs, o.connect_timeout_secs, o.max_retries),
            (30, 5, 2)
        );
        let err = toml::from_str::<S3Options>(
            "endpoint = \"x\"\nbucket = \"b\"\naccess_key_id = \"k\"\n\
             secret_access_key = \"s\"\nsecret = \"s\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
        let shown = format!("{o:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("\"s\""),
            "{shown}"
        );
    }

    #[test]
    fn keys_carry_the_node_name_and_prefix() {
        let mut o = options();
        o.prefix = "mail/".into();
        let s3 = S3Backend::open(&o, "node1").unwrap();
        let id = evermail_blob::blob_id(b"x");
        let key = s3.key_for(&id);
        assert_eq!(key, format!("node1/{}/{}", &id.to_hex()[..2], id.to_hex()));
        assert_eq!(s3.path(&key).unwrap().as_ref(), format!("mail/{key}"));
        for bad in ["", "../x", "a//b", "a/./b"] {
            assert!(s3.path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_bad_settings() {
        let mut o = options();
        assert!(S3Backend::open(&o, "a/b").is_err());
        o.prefix = "mail".into();
        assert!(S3Backend::open(&o, "n").is_err());
        let mut o = options();
        o.allow_http = false;
        // object_store checks the scheme when a request is made, not at build time;
        // what matters is that the build itself does not panic.
        let _ = S3Backend::open(&o, "n");
    }

    /// An S3 endpoint on loopback that answers every request with a 200 and a body
    /// of `pieces` 1000-byte pieces, sent `gap` apart.
    async fn trickling_endpoint(pieces: usize, gap: Duration) -> String {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        pieces * 1000
                    );
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..pieces {
                        tokio::time::sleep(gap).await;
                        if socket.write_all(&[b'x'; 1000]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{address}")
    }

    /// `timeout_secs` bounds the wait for each read, not the whole transfer: a body
    /// that keeps arriving streams for longer than it, a stalled one fails.
    #[tokio::test]
    async fn a_transfer_is_bounded_by_its_progress_not_its_length() {
        let open = |endpoint: String| {
            let mut o = options();
            o.endpoint = endpoint;
            o.timeout_secs = 1;
            o.max_retries = 0;
            S3Backend::open(&o, "n").unwrap()
        };
        let dir =
            std::env::temp_dir().join(format!("evermail-s3-unit-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("body");
        // Six pieces 400 ms apart: 2.4 s in all, more than twice the timeout.
        let moving = open(trickling_endpoint(6, Duration::from_millis(400)).await);
        assert!(moving.get_to_file("n/aa/x", &dest).await.unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), vec![b'x'; 6000]);
        assert_eq!(
            moving.content_id("n/aa/x").await.unwrap(),
            Some(evermail_blob::blob_id(&[b'x'; 6000]))
        );
        // Two pieces 3 s apart: the first read already waits three times the timeout.
        let stalled = open(trickling_endpoint(2, Duration::from_secs(3)).await);
        let err = stalled
            .get_to_file("n/aa/x", &dir.join("stalled"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_fast() {
        let s3 = S3Backend::open(&options(), "n").unwrap();
        let started = std::time::Instant::now();
        let err = s3
            .put("n/aa/x", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(s3.get("n/aa/x").await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
