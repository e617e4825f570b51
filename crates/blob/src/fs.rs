//! The filesystem backend: one file per blob under a root directory, which may be a
//! local disk or a shared mount (NFS, CephFS).
//!
//! Keys are `<node>/<first two hex digits>/<hex id>`: the node name keeps several hosts
//! that share one mount from ever writing into each other's files, and 256 fan-out
//! directories keep directories small without making each write touch a new one.
//!
//! A put is durable before it returns: write a temporary file, fsync it, rename it into
//! place, fsync the directory. Directory fsyncs are grouped (see [`DirSync`]), so
//! concurrent deliveries into one directory share one fsync instead of queueing.
//!
//! A failed fsync is never retried. After one, Linux may have dropped the dirty pages
//! and a second fsync can report success for data that is gone, so the backend refuses
//! every further write until the process restarts and the store is checked again.

use crate::{BlobBackend, BlobError, ErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use evermail_types::BlobId;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct FsBackend {
    root: PathBuf,
    node: String,
    dir_sync: DirSync,
    /// Set after any failed fsync; see the module docs.
    poisoned: AtomicBool,
    /// Whether the store is on a local filesystem, where a small read is served from
    /// the page cache or one disk read; see [`INLINE_READ_BYTES`].
    local: bool,
}

/// A body of at most this size on a local filesystem is read on the async worker
/// that asks for it: from the page cache that takes microseconds, less than handing
/// the read to a blocking thread and back. On a network filesystem (NFS, CephFS,
/// SMB, FUSE) any read may wait on the network, so every read goes to a blocking
/// thread.
const INLINE_READ_BYTES: u64 = 128 * 1024;

/// Whether the filesystem holding `dir` is one of the local disk filesystems (so
/// unknown ones, which may be network mounts, are treated as remote).
fn is_local_filesystem(dir: &Path) -> bool {
    const LOCAL: [u64; 9] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0x2FC1_2FC1, // zfs
        0xF2F5_2010, // f2fs
        0x794C_7630, // overlayfs
        0xCA45_1A4E, // bcachefs
        0x4244,      // hfs
    ];
    rustix::fs::statfs(dir).is_ok_and(|s| LOCAL.contains(&(s.f_type as u64)))
}

/// Opens a body file for reading without updating its access time where the kernel
/// allows (`O_NOATIME`: the process owns the file). Under the default `relatime` the
/// first read after a file was written changes its atime, a metadata write to the
/// journal for every message the first time it is read; nothing here uses atimes.
/// Falls back to a plain open when refused (a file owned by another user).
fn open_body(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let noatime = rustix::fs::OFlags::NOATIME.bits() as i32;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(noatime)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => std::fs::File::open(path),
        opened => opened,
    }
}

/// Reads the file at `path` if it is small: `Ok(None)` when it is larger than
/// [`INLINE_READ_BYTES`] (the caller reads it on a blocking thread).
fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = open_body(path)?;
    let len = file.metadata()?.len();
    if len > INLINE_READ_BYTES {
        return Ok(None);
    }
    // Exactly the length the metadata gave, in one read as a rule: `read_to_end`
    // would ask for the length again (fstat, lseek) and read once more to see the
    // end. A body file is never rewritten, and one that is not what its name says
    // fails the caller's BLAKE3 check whatever its length.
    let mut body = vec![0; len as usize];
    let mut filled = 0;
    while filled < body.len() {
        match file.read(&mut body[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    body.truncate(filled);
    Ok(Some(body))
}

impl FsBackend {
    /// Opens a store rooted at `root`, creating it if needed, writing under the
    /// sub-directory named after this node.
    pub fn open(root: &Path, node: &str) -> Result<FsBackend, BlobError> {
        if node.is_empty() || node.contains(['/', '\\']) || node.starts_with('.') {
            return Err(BlobError::new(
                ErrorKind::Unavailable,
                format!("node name {node:?} cannot be a directory name"),
            ));
        }
        std::fs::create_dir_all(root.join(node))
            .map_err(|e| BlobError::io(format!("creating {}", root.display()), e))?;
        Ok(FsBackend {
            root: root.to_path_buf(),
            node: node.to_string(),
            dir_sync: DirSync::default(),
            poisoned: AtomicBool::new(false),
            local: is_local_filesystem(&root.join(node)),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        // Keys come from our own database, but a key must still never escape the root.
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
        Ok(self.root.join(key))
    }

    fn check_poisoned(&self) -> Result<(), BlobError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(BlobError::new(
                ErrorKind::Unavailable,
                format!(
                    "store {} refuses writes after a failed fsync; restart once the disk is checked",
                    self.root.display()
                ),
            ));
        }
        Ok(())
    }

    fn poison(&self, e: BlobError) -> BlobError {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(root = %self.root.display(), error = %e, "fsync failed; store refuses writes from now on");
        e
    }
}

#[async_trait]
impl BlobBackend for FsBackend {
    fn key_for(&self, id: &BlobId) -> String {
        let hex = id.to_hex();
        format!("{}/{}/{}", self.node, &hex[..2], hex)
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.check_poisoned()?;
        let path = self.path(key)?;
        let dir = path
            .parent()
            .expect("a checked key has a parent")
            .to_path_buf();
        let written = tokio::task::spawn_blocking(move || write_file(&path, &dir, &body))
            .await
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("writer task: {e}")))?;
        let dir = match written {
            Ok(dir) => dir,
            Err(WriteError::Io(e)) => return Err(e),
            Err(WriteError::Fsync(e)) => return Err(self.poison(e)),
        };
        self.dir_sync.sync(&dir).await.map_err(|e| self.poison(e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let path = self.path(key)?;
        let read = if self.local {
            match read_small(&path) {
                Ok(Some(data)) => Ok(data),
                Ok(None) => tokio::fs::read(&path).await,
                Err(e) => Err(e),
            }
        } else {
            tokio::fs::read(&path).await
        };
        match read {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io(format!("reading {}", path.display()), e)),
        }
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<(), BlobError> {
        self.check_poisoned()?;
        let path = self.path(key)?;
        let dir = path
            .parent()
            .expect("a checked key has a parent")
            .to_path_buf();
        let src = src.to_path_buf();
        let written = tokio::task::spawn_blocking(move || copy_file(&path, &dir, &src))
            .await
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("writer task: {e}")))?;
        let dir = match written {
            Ok(dir) => dir,
            Err(WriteError::Io(e)) => return Err(e),
            Err(WriteError::Fsync(e)) => return Err(self.poison(e)),
        };
        self.dir_sync.sync(&dir).await.map_err(|e| self.poison(e))
    }

    async fn get_to_file(&self, key: &str, dest: &Path) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut source = match open_body(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(BlobError::io(format!("reading {}", path.display()), e)),
            };
            let mut out = std::fs::File::create(&dest)
                .map_err(|e| BlobError::io(format!("creating {}", dest.display()), e))?;
            std::io::copy(&mut source, &mut out)
                .map_err(|e| BlobError::io(format!("copying {}", path.display()), e))?;
            Ok(true)
        })
        .await
        .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("reader task: {e}")))?
    }

    async fn content_id(&self, key: &str) -> Result<Option<BlobId>, BlobError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            let mut file = match open_body(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(BlobError::io(format!("reading {}", path.display()), e)),
            };
            let mut hasher = blake3::Hasher::new();
            hasher
                .update_reader(&mut file)
                .map_err(|e| BlobError::io(format!("reading {}", path.display()), e))?;
            Ok(Some(BlobId(*hasher.finalize().as_bytes())))
        })
        .await
        .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("reader task: {e}")))?
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::io(format!("deleting {}", path.display()), e)),
        }
    }

    async fn capacity(&self) -> Result<Option<crate::Capacity>, BlobError> {
        let root = self.root.clone();
        let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&root))
            .await
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("statvfs task: {e}")))?
            .map_err(|e| BlobError::io(format!("statvfs of {}", self.root.display()), e.into()))?;
        let unit = stat.f_frsize.max(1);
        Ok(Some(crate::Capacity {
            // Blocks available to unprivileged users: what a write can actually use.
            free: stat.f_bavail.saturating_mul(unit),
            total: stat.f_blocks.saturating_mul(unit),
        }))
    }

    async fn old_keys(
        &self,
        shard: u8,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<String>, BlobError> {
        let prefix = format!("{}/{shard:02x}", self.node);
        let dir = self.root.join(&prefix);
        tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(BlobError::io(format!("listing {}", dir.display()), e)),
            };
            let mut keys = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files and files being collected start with a dot.
                if name.starts_with('.') {
                    continue;
                }
                if entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff)
                {
                    keys.push(format!("{prefix}/{name}"));
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("listing task: {e}")))?
    }

    /// Moves the file aside first, then looks at its modification time: a put that
    /// reused the file before the move stamped it (and is seen here, so the file is put
    /// back); one after the move finds no file and writes a new one, which this never
    /// touches.
    async fn delete_if_unchanged(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            let aside = path.with_file_name(format!(
                ".gc-{}-{:016x}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
                rand::random::<u64>()
            ));
            match std::fs::rename(&path, &aside) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(BlobError::io(format!("moving {} aside", path.display()), e)),
            }
            let stamped = std::fs::metadata(&aside)
                .and_then(|m| m.modified())
                .map_err(|e| BlobError::io(format!("reading {}", aside.display()), e))?;
            if stamped >= cutoff {
                std::fs::rename(&aside, &path)
                    .map_err(|e| BlobError::io(format!("putting back {}", path.display()), e))?;
                return Ok(false);
            }
            std::fs::remove_file(&aside)
                .map_err(|e| BlobError::io(format!("deleting {}", aside.display()), e))?;
            Ok(true)
        })
        .await
        .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("collector task: {e}")))?
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io(format!("reading {}", path.display()), e)),
        }
    }
}

enum WriteError {
    Io(BlobError),
    Fsync(BlobError),
}

/// Writes `body` to `path` through a fsynced temporary file; returns the directory
/// whose entry still needs an fsync.
fn write_file(path: &Path, dir: &Path, body: &[u8]) -> Result<PathBuf, WriteError> {
    let io = |what: &str, e| WriteError::Io(BlobError::io(format!("{what} {}", path.display()), e));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    if reuse_existing(path, body) {
        // Its directory entry may predate a crash, so the caller still fsyncs the
        // directory.
        return Ok(dir.to_path_buf());
    }
    write_through_temp(path, dir, |file| file.write_all(body))
}

/// Writes the file at `src` to `path` through a fsynced temporary file, by a
/// streaming copy (bounded memory, however large the body); returns the directory
/// whose entry still needs an fsync. An existing file is not compared, since that
/// would read both whole: the rename replaces it with identical content.
fn copy_file(path: &Path, dir: &Path, src: &Path) -> Result<PathBuf, WriteError> {
    let io = |what: &str, e| WriteError::Io(BlobError::io(format!("{what} {}", path.display()), e));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let mut source = std::fs::File::open(src).map_err(|e| io("opening the spool file for", e))?;
    write_through_temp(path, dir, |file| {
        std::io::copy(&mut source, file).map(|_| ())
    })
}

/// Fills a new temporary file with `fill`, fsyncs it and renames it to `path`.
fn write_through_temp(
    path: &Path,
    dir: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<PathBuf, WriteError> {
    let io = |what: &str, e| WriteError::Io(BlobError::io(format!("{what} {}", path.display()), e));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file =
            std::fs::File::create_new(&tmp).map_err(|e| io("creating a temporary file for", e))?;
        fill(&mut file).map_err(|e| io("writing", e))?;
        file.sync_all().map_err(|e| {
            WriteError::Fsync(BlobError::io(format!("fsync of {}", tmp.display()), e))
        })?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into place", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| dir.to_path_buf())
}

/// Whether an existing file at `path` is this body and may stand for a new write.
///
/// Content-addressed: an existing file with this exact content is this body. The
/// content is compared, not just the length: a copy that rotted in place keeps its
/// length, and a delivery acknowledged on it would be unreadable. Reusing it stamps its
/// modification time, which is what tells the orphan collector that someone is about
/// to reference it; the stamp counts only if the file is still at `path` afterwards
/// (the collector moves a file away before it decides, see `delete_if_unchanged`).
fn reuse_existing(path: &Path, body: &[u8]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let same = std::fs::metadata(path).is_ok_and(|m| m.len() == body.len() as u64)
        && std::fs::read(path).is_ok_and(|existing| existing == body);
    if !same {
        return false;
    }
    let Ok(file) = std::fs::File::options().write(true).open(path) else {
        return false;
    };
    if file.set_modified(std::time::SystemTime::now()).is_err() {
        return false;
    }
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(stamped), Ok(now_there)) => {
            stamped.dev() == now_there.dev() && stamped.ino() == now_there.ino()
        }
        _ => false,
    }
}

/// Group commit for directory fsyncs.
///
/// Every caller takes a ticket after its rename. Whoever holds a directory's lock
/// fsyncs it once and marks every ticket issued before the fsync began as done, so a
/// burst of N renames into one directory costs about two fsyncs, not N.
#[derive(Default)]
pub struct DirSync {
    dirs: Mutex<HashMap<PathBuf, Arc<DirState>>>,
}

#[derive(Default)]
struct DirState {
    issued: AtomicU64,
    /// The highest ticket known to be covered by a completed fsync.
    synced: tokio::sync::Mutex<u64>,
}

impl DirSync {
    pub async fn sync(&self, dir: &Path) -> Result<(), BlobError> {
        let state = {
            let mut dirs = self.dirs.lock().expect("dir sync map poisoned");
            dirs.entry(dir.to_path_buf()).or_default().clone()
        };
        let ticket = state.issued.fetch_add(1, Ordering::AcqRel) + 1;
        let mut synced = state.synced.lock().await;
        if *synced >= ticket {
            metrics::counter!("evermail_blob_dir_fsync_shared_total").increment(1);
            return Ok(());
        }
        // Every ticket issued up to now belongs to a rename that has already happened,
        // so the fsync below covers all of them.
        let covers = state.issued.load(Ordering::Acquire);
        let path = dir.to_path_buf();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || std::fs::File::open(&path).and_then(|d| d.sync_all()))
            .await
            .map_err(|e| BlobError::new(ErrorKind::Unavailable, format!("fsync task: {e}")))?
            .map_err(|e| BlobError::io(format!("fsync of directory {}", dir.display()), e))?;
        metrics::histogram!("evermail_blob_dir_fsync_seconds").record(started.elapsed());
        *synced = covers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> (FsBackend, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (FsBackend::open(dir.path(), "node1").unwrap(), dir)
    }

    #[tokio::test]
    async fn put_get_delete() {
        let (fs, _dir) = backend();
        let id = crate::blob_id(b"hello");
        let key = fs.key_for(&id);
        assert!(key.starts_with("node1/"));
        assert_eq!(fs.get(&key).await.unwrap(), None);
        fs.put(&key, Bytes::from_static(b"hello")).await.unwrap();
        fs.put(&key, Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(fs.get(&key).await.unwrap().as_deref(), Some(&b"hello"[..]));
        fs.delete(&key).await.unwrap();
        fs.delete(&key).await.unwrap();
        assert_eq!(fs.get(&key).await.unwrap(), None);
    }

    /// Reading a body leaves its access time alone, even where `relatime` would
    /// update it (an atime older than the mtime).
    #[tokio::test]
    async fn reading_a_body_does_not_touch_its_atime() {
        use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
        let (fs, dir) = backend();
        let id = crate::blob_id(b"atime");
        let key = fs.key_for(&id);
        fs.put(&key, Bytes::from_static(b"atime")).await.unwrap();
        let path = dir.path().join(&key);
        let old = Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: old,
            last_modification: Timespec {
                tv_sec: 1_000_000_100,
                tv_nsec: 0,
            },
        };
        utimensat(CWD, &path, &times, AtFlags::empty()).unwrap();
        assert_eq!(fs.get(&key).await.unwrap().as_deref(), Some(&b"atime"[..]));
        assert!(fs.content_id(&key).await.unwrap().is_some());
        let atime = std::fs::metadata(&path).unwrap().accessed().unwrap();
        let since_epoch = atime.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch.as_secs(), 1_000_000_000);
    }

    /// Both read paths of a local store (small bodies on the worker, larger ones on a
    /// blocking thread) and the remote one return the bytes, and a missing file as
    /// `None`.
    #[tokio::test]
    async fn reads_small_and_large_bodies_locally_and_remotely() {
        let (mut fs, _dir) = backend();
        assert!(
            fs.local,
            "a temporary directory is on a local filesystem here"
        );
        let len = INLINE_READ_BYTES as usize;
        let small: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let large: Vec<u8> = (0..len + 1).map(|i| (i % 241) as u8).collect();
        for local in [true, false] {
            fs.local = local;
            for body in [&small, &large] {
                let key = fs.key_for(&crate::blob_id(body));
                fs.put(&key, Bytes::from(body.clone())).await.unwrap();
                assert_eq!(fs.get(&key).await.unwrap().as_deref(), Some(&body[..]));
                fs.delete(&key).await.unwrap();
                assert_eq!(fs.get(&key).await.unwrap(), None);
            }
        }
    }

    #[tokio::test]
    async fn leaves_no_temporary_files() {
        let (fs, dir) = backend();
        for i in 0..20u32 {
            let body = Bytes::from(i.to_string());
            let key = fs.key_for(&crate::blob_id(&body));
            fs.put(&key, body).await.unwrap();
        }
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                assert!(!name.starts_with(".tmp"), "leftover {name}");
                if entry.file_type().unwrap().is_dir() {
                    stack.push(entry.path());
                }
            }
        }
    }

    #[tokio::test]
    async fn refuses_keys_outside_the_root() {
        let (fs, _dir) = backend();
        for key in ["", "../x", "a/../../x", "a//b", "/etc/passwd", "a\\b"] {
            assert!(fs.get(key).await.is_err(), "{key:?}");
            assert!(fs.put(key, Bytes::new()).await.is_err(), "{key:?}");
        }
    }

    #[tokio::test]
    async fn concurrent_puts_share_directory_fsyncs() {
        let (fs, _dir) = backend();
        let fs = Arc::new(fs);
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let fs = fs.clone();
            tasks.push(tokio::spawn(async move {
                // Same fan-out directory for all: force the keys by hand.
                let key = format!("node1/aa/{i:064x}");
                fs.put(&key, Bytes::from(vec![i as u8; 100])).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        for i in 0..64u32 {
            let got = fs
                .get(&format!("node1/aa/{i:064x}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, vec![i as u8; 100]);
        }
    }

    #[tokio::test]
    async fn a_rotted_copy_of_the_same_length_is_rewritten() {
        let (backend, dir) = backend();
        let body = Bytes::from_static(b"the real body");
        let key = backend.key_for(&crate::blob_id(&body));
        backend.put(&key, body.clone()).await.unwrap();
        std::fs::write(dir.path().join(&key), b"the rEal body").unwrap();
        backend.put(&key, body.clone()).await.unwrap();
        assert_eq!(backend.get(&key).await.unwrap().unwrap(), body);
    }

    #[tokio::test]
    async fn only_old_unstamped_files_are_collected() {
        use std::time::{Duration, SystemTime};
        let (backend, dir) = backend();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let cutoff = SystemTime::now() - Duration::from_secs(60);
        let mut keys = Vec::new();
        for body in [&b"orphan"[..], b"reused", b"fresh"] {
            let body = Bytes::copy_from_slice(body);
            let key = backend.key_for(&crate::blob_id(&body));
            backend.put(&key, body).await.unwrap();
            keys.push(key);
        }
        for key in &keys[..2] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(key))
                .unwrap();
            file.set_modified(old).unwrap();
        }
        // A delivery of identical content reuses the old file: that stamps it.
        backend
            .put(&keys[1], Bytes::from_static(b"reused"))
            .await
            .unwrap();
        let mut found = Vec::new();
        for shard in 0..=255u8 {
            found.extend(backend.old_keys(shard, cutoff).await.unwrap());
        }
        assert_eq!(found, [keys[0].clone()]);
        // Collected once; the others stay even when asked directly.
        assert!(backend.delete_if_unchanged(&keys[0], cutoff).await.unwrap());
        assert!(!backend.delete_if_unchanged(&keys[0], cutoff).await.unwrap());
        for key in &keys[1..] {
            assert!(!backend.delete_if_unchanged(key, cutoff).await.unwrap());
            assert!(dir.path().join(key).exists());
        }
        assert!(!dir.path().join(&keys[0]).exists());
    }

    #[tokio::test]
    async fn reports_its_capacity() {
        let (backend, _dir) = backend();
        let c = backend
            .capacity()
            .await
            .unwrap()
            .expect("a filesystem knows");
        assert!(c.total > 0 && c.free <= c.total, "{c:?}");
    }

    #[test]
    fn rejects_bad_node_names() {
        let dir = tempfile::tempdir().unwrap();
        for node in ["", "a/b", ".hidden", "..", "a\\b"] {
            assert!(FsBackend::open(dir.path(), node).is_err(), "{node:?}");
        }
    }
}
