//! A 50 MiB body through S3 stores in bounded memory: stored from a file by multipart
//! upload (`BlobStore::put_file`), read back by streaming into a spool file
//! (`BlobStore::get_to_spool`), a corrupted copy caught at the end of its stream and
//! the other copy served, and the deep scrub hashing both copies as they stream.
//!
//! One test in this binary, so the anonymous memory it samples is its own. Needs the
//! `EVERMAIL_TEST_S3_*` variables of `scripts/garage up`; without them it is skipped
//! (with a notice), except under `CI`.

use evermail_blob::{BadCopy, BlobStore, CopyCheck, CopyProblem, StoreHandle};
use evermail_blob_s3::{S3Backend, S3Options};
use evermail_types::BlobId;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const SIZE: usize = 50 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

fn options() -> Option<S3Options> {
    let var = |v: &str| std::env::var(format!("EVERMAIL_TEST_S3_{v}")).unwrap_or_default();
    let values = [
        "ENDPOINT",
        "REGION",
        "BUCKET",
        "ACCESS_KEY_ID",
        "SECRET_ACCESS_KEY",
    ]
    .map(var);
    if values.iter().any(String::is_empty) {
        assert!(
            std::env::var_os("CI").is_none(),
            "EVERMAIL_TEST_S3_* are not all set, but CI is: the S3 tests must run in CI"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: EVERMAIL_TEST_S3_* are not set; run `set -a; eval \"$(scripts/garage up)\"; set +a`"
        );
        return None;
    }
    let [endpoint, region, bucket, access_key_id, secret_access_key] = values;
    Some(S3Options {
        endpoint,
        region,
        bucket,
        access_key_id,
        secret_access_key,
        prefix: format!("test-{:016x}/", rand::random::<u64>()),
        allow_http: true,
        virtual_hosted_style: false,
        timeout_secs: 30,
        connect_timeout_secs: 5,
        max_retries: 2,
    })
}

/// This process's anonymous resident memory (heap, stacks: not the page cache or a
/// memory-mapped file), in bytes.
fn rss_anon() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Samples [`rss_anon`] every few milliseconds until dropped; `peak` is the highest.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Sampler {
        let peak = Arc::new(AtomicU64::new(rss_anon()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_anon(), Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        });
        Sampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `SIZE` pseudo-random bytes (from `seed`) to a new file in `dir`, 1 MiB at a
/// time, with the last byte replaced by `last`; returns the path and the body's id.
fn write_body(dir: &Path, name: &str, seed: &[u8], last: Option<u8>) -> (PathBuf, BlobId) {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut xof = blake3::Hasher::new().update(seed).finalize_xof();
    let mut hasher = blake3::Hasher::new();
    let mut chunk = vec![0u8; MIB as usize];
    for i in 0..SIZE / chunk.len() {
        xof.fill(&mut chunk);
        if i == SIZE / chunk.len() - 1
            && let Some(last) = last
        {
            *chunk.last_mut().unwrap() = last;
        }
        hasher.update(&chunk);
        file.write_all(&chunk).unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    (path, BlobId(*hasher.finalize().as_bytes()))
}

/// Whether the file holds exactly `body`, compared 1 MiB at a time.
fn same_content(body: &[u8], file: &Path) -> bool {
    let mut file = std::fs::File::open(file).unwrap();
    let mut chunk = vec![0u8; MIB as usize];
    let mut offset = 0;
    loop {
        let n = file.read(&mut chunk).unwrap();
        if n == 0 {
            return offset == body.len();
        }
        if body.get(offset..offset + n) != Some(&chunk[..n]) {
            return false;
        }
        offset += n;
    }
}

#[tokio::test]
async fn a_50_mib_body_streams_through_s3_in_bounded_memory() {
    let Some(options) = options() else { return };
    let dir =
        std::env::temp_dir().join(format!("evermail-s3-stream-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let spool_dir = dir.join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let (good, id) = write_body(&dir, "good", b"fifty", None);
    let last = {
        let mut f = std::fs::File::open(&good).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(-1)).unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        b[0]
    };
    let (rotten, rotten_id) = write_body(&dir, "rotten", b"fifty", Some(last ^ 1));
    assert_ne!(id, rotten_id);

    let backend = |node: &str| Arc::new(S3Backend::open(&options, node).unwrap());
    let (a, b) = (backend("a"), backend("b"));
    let blobs = BlobStore::new(
        vec![
            StoreHandle::new("garage-a", a.clone()),
            StoreHandle::new("garage-b", b.clone()),
        ],
        2,
        2,
    )
    .unwrap();

    let sampler = Sampler::start();
    let before = sampler.peak();
    let started = std::time::Instant::now();
    let (put_id, copies) = blobs.put_file(id, SIZE as u64, &good).await.unwrap();
    let put_secs = started.elapsed().as_secs_f64();
    assert_eq!(put_id, id);
    assert_eq!(copies.len(), 2);
    let put_peak = sampler.peak();

    let started = std::time::Instant::now();
    let (read, bad) = blobs.get_to_spool(id, &copies, &spool_dir).await;
    let get_secs = started.elapsed().as_secs_f64();
    let read = read.unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(read.len(), SIZE);
    assert!(same_content(&read, &good), "the body read back differs");
    drop(read);
    let peak = sampler.peak();
    // Two copies of 50 MiB went up in parallel and one came down; held whole, the
    // body alone would have taken 50 MiB of heap. Each copy holds one 8 MiB part at a
    // time, plus buffers.
    let grown = peak.saturating_sub(before);
    let _ = writeln!(
        std::io::stderr(),
        "50 MiB to 2 S3 stores: put_file {put_secs:.2} s, get_to_spool {get_secs:.2} s; \
         RssAnon before {} MiB, peak after put {} MiB, peak after get {} MiB",
        before / MIB,
        put_peak / MIB,
        peak / MIB
    );
    assert!(
        grown < 30 * MIB,
        "anonymous memory grew by {} MiB for a 50 MiB body",
        grown / MIB
    );

    // Both copies hash right as they stream (the deep scrub's check).
    for copy in &copies {
        assert_eq!(
            blobs.check_copy(id, SIZE as u64, copy, true).await,
            CopyCheck::Ok
        );
    }

    // Overwrite the first copy with a PUT of a body differing in its last byte: only
    // the end of the stream can tell, and the other copy is served.
    let first = &copies[0];
    let first_backend = if first.store == "garage-a" { &a } else { &b };
    evermail_blob::BlobBackend::put_file(first_backend.as_ref(), &first.key, &rotten)
        .await
        .unwrap();
    let (read, bad) = blobs.get_to_spool(id, &copies, &spool_dir).await;
    let read = read.unwrap();
    assert!(same_content(&read, &good), "the good copy is served");
    assert_eq!(
        bad,
        [BadCopy {
            copy: first.clone(),
            problem: CopyProblem::Corrupt
        }]
    );
    drop(read);
    assert_eq!(
        blobs.check_copy(id, SIZE as u64, first, true).await,
        CopyCheck::Corrupt
    );
    assert_eq!(
        blobs.check_copy(id, SIZE as u64, &copies[1], true).await,
        CopyCheck::Ok
    );
    // No spool file is left behind by the corrupt copy or the dropped reads.
    assert_eq!(std::fs::read_dir(&spool_dir).unwrap().count(), 0);
    drop(sampler);

    for copy in &copies {
        blobs.delete_copy(copy).await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
