//! Spool files: where a large message body lives while the server works on it, so
//! that no step holds the whole body in the process's heap.
//!
//! A [`SpoolWriter`] is a temporary file in a directory of the node's data directory;
//! every byte written is hashed with BLAKE3 on the way, so the body's content id is
//! known when the last byte is written. [`Spool`] is the finished file, read through a
//! read-only memory map: its pages belong to the page cache, which the kernel can
//! reclaim and write back at will, and are not the process's anonymous memory.
//! Both remove their file when dropped, on every path (success, error, a client that
//! went away), so a spool file never outlives the operation that made it; a crash
//! leaves `.spool-*` files that [`clean`] removes at start-up.
//!
//! This crate holds the workspace's one use of `unsafe`: mapping a file. It must not
//! know about mail, blobs or protocols.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// The prefix of every spool file's name.
const PREFIX: &str = ".spool-";

/// A spool file being written. Dropping it removes the file.
pub struct SpoolWriter {
    file: io::BufWriter<File>,
    path: TempPath,
    hasher: blake3::Hasher,
    len: u64,
}

impl SpoolWriter {
    /// Creates an empty spool file in `dir`, creating the directory if needed.
    pub fn create_in(dir: &Path) -> io::Result<SpoolWriter> {
        std::fs::create_dir_all(dir)?;
        let (file, path) = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempfile_in(dir)?
            .into_parts();
        Ok(SpoolWriter {
            file: io::BufWriter::with_capacity(256 * 1024, file),
            path,
            hasher: blake3::Hasher::new(),
            len: 0,
        })
    }

    /// Appends `data` to the file and to the hash.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ends the writing and maps the file. Nothing is fsynced: a spool file is a
    /// scratch copy, made durable only by whoever stores it.
    pub fn finish(self) -> io::Result<Spool> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        let hash = *self.hasher.finalize().as_bytes();
        Spool::map(self.path, &file, hash)
    }
}

/// A finished spool file, mapped read-only. Dropping it unmaps and removes the file.
pub struct Spool {
    /// `None` for an empty file, which cannot be mapped.
    map: Option<memmap2::Mmap>,
    hash: [u8; 32],
    // Declared after `map`, so the file is unmapped before it is removed.
    path: TempPath,
}

impl Spool {
    /// Takes over a file someone else wrote (a body read from a blob store): hashes it
    /// through the map and maps it. The caller compares [`hash`](Self::hash) with what
    /// it expects before using a byte of it.
    pub fn open(path: TempPath) -> io::Result<Spool> {
        let file = File::open(&path)?;
        let mut spool = Spool::map(path, &file, [0; 32])?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&spool);
        spool.hash = *hasher.finalize().as_bytes();
        Ok(spool)
    }

    fn map(path: TempPath, file: &File, hash: [u8; 32]) -> io::Result<Spool> {
        let map = if file.metadata()?.len() == 0 {
            None
        } else {
            // SAFETY: mapping is unsafe because another process could change the file
            // under the map (Rust then sees the bytes of a `&[u8]` change). A spool
            // file is created by this process under a random name in the node's own
            // data directory and is never written again once mapped; what another
            // process with write access to that directory could do it could also do
            // to the process itself.
            #[allow(unsafe_code)]
            Some(unsafe { memmap2::Mmap::map(file)? })
        };
        Ok(Spool { map, hash, path })
    }

    /// The BLAKE3 hash of the content.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for Spool {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

impl AsRef<[u8]> for Spool {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// A new, empty temporary path in `dir` for someone else to fill (a blob read); it is
/// removed when dropped.
pub fn temp_path_in(dir: &Path) -> io::Result<TempPath> {
    std::fs::create_dir_all(dir)?;
    Ok(tempfile::Builder::new()
        .prefix(PREFIX)
        .tempfile_in(dir)?
        .into_temp_path())
}

/// Removes spool files a crash left in `dir`; returns how many. Call it before any
/// spool file is made (at start-up).
pub fn clean(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let stale: PathBuf = entry.path();
        if entry.file_name().to_string_lossy().starts_with(PREFIX)
            && std::fs::remove_file(&stale).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_are_hashed_mapped_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create_in(&dir.path().join("spool")).unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(7000) {
            w.write(chunk).unwrap();
        }
        assert_eq!(w.len(), body.len() as u64);
        let spool = w.finish().unwrap();
        assert_eq!(&spool[..], &body[..]);
        assert_eq!(spool.hash(), *blake3::hash(&body).as_bytes());
        let path = spool.path().to_path_buf();
        assert!(path.exists());
        drop(spool);
        assert!(!path.exists());
    }

    #[test]
    fn an_abandoned_writer_leaves_no_file_and_clean_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create_in(dir.path()).unwrap();
        w.write(b"half a message").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::write(dir.path().join(".spool-left"), b"x").unwrap();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        assert_eq!(clean(dir.path()).unwrap(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn open_hashes_what_another_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        for body in [&b""[..], b"some body\r\n"] {
            let path = temp_path_in(dir.path()).unwrap();
            std::fs::write(&path, body).unwrap();
            let spool = Spool::open(path).unwrap();
            assert_eq!(&spool[..], body);
            assert_eq!(spool.hash(), *blake3::hash(body).as_bytes());
        }
    }
}
