//! The message of a transaction while its data arrives: in memory while small, then
//! in a spool file in the node's data directory, so a session holds at most about
//! `spool_threshold` bytes of a message however large it is.
//!
//! The decoders (dot-unstuffing, BDAT chunk counting, the size limit) still write
//! into a `Vec`; [`MessageBuffer::spill`] moves what they wrote to the file once it
//! passes the threshold. The spool file is removed when the buffer (or the body made
//! from it) is dropped: after the delivery, on an error, and when the client goes away
//! mid-data, since the session then drops its transaction.

use evermail_mailbox::Body;
use evermail_spool::SpoolWriter;
use std::path::PathBuf;

pub(crate) struct MessageBuffer {
    /// What the decoders wrote since the last spill.
    memory: Vec<u8>,
    file: Option<SpoolWriter>,
    /// Above this many bytes in memory, move them to the file.
    threshold: usize,
    dir: PathBuf,
    /// A spool write failed: the message is lost to us, and the recipients hear a
    /// temporary failure once its data has been read.
    failed: Option<std::io::Error>,
}

impl MessageBuffer {
    pub(crate) fn new(capacity: usize, threshold: u64, dir: PathBuf) -> MessageBuffer {
        let threshold = usize::try_from(threshold).unwrap_or(usize::MAX);
        MessageBuffer {
            memory: Vec::with_capacity(capacity.min(threshold)),
            file: None,
            threshold,
            dir,
            failed: None,
        }
    }

    /// The same buffer with room for `capacity` bytes reserved up front.
    pub(crate) fn with_capacity(mut self, capacity: usize) -> MessageBuffer {
        self.memory.reserve(capacity.min(self.threshold));
        self
    }

    /// A buffer for data that is read only to be thrown away.
    pub(crate) fn discarding() -> MessageBuffer {
        MessageBuffer::new(0, u64::MAX, PathBuf::new())
    }

    /// Where the decoders write.
    pub(crate) fn memory(&mut self) -> &mut Vec<u8> {
        &mut self.memory
    }

    /// Moves the bytes in memory to the spool file once they pass the threshold.
    pub(crate) fn spill(&mut self) {
        if self.memory.len() < self.threshold && self.file.is_none() {
            return;
        }
        if self.failed.is_some() {
            self.memory.clear();
            return;
        }
        let written = (|| {
            if self.file.is_none() {
                self.file = Some(SpoolWriter::create_in(&self.dir)?);
            }
            let file = self.file.as_mut().expect("just created");
            file.write(&self.memory)
        })();
        self.memory.clear();
        if let Err(error) = written {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot spool a message");
            self.file = None;
            self.failed = Some(error);
        }
    }

    /// Drops what was received (an oversize message), file included.
    pub(crate) fn discard(&mut self) {
        self.memory = Vec::new();
        self.file = None;
    }

    /// The whole message: the bytes in memory, or the finished spool file.
    pub(crate) fn into_body(mut self) -> std::io::Result<Body> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        match self.file.take() {
            None => Ok(Body::Memory(self.memory.into())),
            Some(mut file) => {
                file.write(&self.memory)?;
                Ok(Body::from(file.finish()?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[test]
    fn small_messages_stay_in_memory_large_ones_go_to_a_file_that_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = MessageBuffer::new(0, 100, dir.path().to_path_buf());
        small.memory().extend_from_slice(b"short");
        small.spill();
        assert_eq!(files(dir.path()), 0);
        assert!(matches!(small.into_body().unwrap(), Body::Memory(b) if &b[..] == b"short"));

        let mut large = MessageBuffer::new(0, 100, dir.path().to_path_buf());
        let mut want = Vec::new();
        for i in 0..50u8 {
            let chunk = [i; 37];
            large.memory().extend_from_slice(&chunk);
            want.extend_from_slice(&chunk);
            large.spill();
            assert!(large.memory.len() < 100 + 37);
        }
        assert_eq!(files(dir.path()), 1);
        let body = large.into_body().unwrap();
        assert!(matches!(body, Body::Spooled(_)));
        assert_eq!(&body[..], &want[..]);
        drop(body);
        assert_eq!(files(dir.path()), 0, "removed after use");

        let mut abandoned = MessageBuffer::new(0, 10, dir.path().to_path_buf());
        abandoned.memory().extend_from_slice(&[0; 64]);
        abandoned.spill();
        assert_eq!(files(dir.path()), 1);
        drop(abandoned);
        assert_eq!(files(dir.path()), 0, "removed when the client goes away");
    }

    #[test]
    fn a_spool_that_cannot_be_written_fails_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        // A directory under a regular file cannot be created.
        let mut buffer = MessageBuffer::new(0, 4, blocker.join("spool"));
        buffer.memory().extend_from_slice(b"more than four");
        buffer.spill();
        buffer.memory().extend_from_slice(b"and more");
        buffer.spill();
        assert!(buffer.into_body().is_err());
    }
}
