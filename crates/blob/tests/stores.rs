//! RAIS against real failures of real filesystem stores: a store's directory deleted,
//! a byte flipped in one copy, a store that refuses writes. Each test uses three fs
//! stores in temporary directories and the public API only.

use bytes::Bytes;
use evermail_blob::fs::FsBackend;
use evermail_blob::{BlobStore, ErrorKind, StoreHandle, StoredCopy};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

struct Stores {
    dirs: Vec<tempfile::TempDir>,
    handles: Vec<StoreHandle>,
}

impl Stores {
    fn new(n: usize) -> Stores {
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let handles = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let backend = FsBackend::open(d.path(), "node1").unwrap();
                StoreHandle::new(format!("s{i}"), Arc::new(backend))
            })
            .collect();
        Stores { dirs, handles }
    }

    fn blob_store(&self, replicas: usize, min_replicas: usize) -> BlobStore {
        BlobStore::new(self.handles.clone(), replicas, min_replicas).unwrap()
    }

    fn root(&self, store: &str) -> &Path {
        self.dirs[store[1..].parse::<usize>().unwrap()].path()
    }

    fn path(&self, copy: &StoredCopy) -> PathBuf {
        self.root(&copy.store).join(&copy.key)
    }
}

fn body(i: usize) -> Bytes {
    Bytes::from(format!(
        "From: a@example.net\r\nSubject: message {i}\r\n\r\n{}\r\n",
        "x".repeat(i * 37 % 500)
    ))
}

/// Makes a directory tree refuse writes for as long as this lives: mode 0555, and
/// where that does not stop us (root ignores modes) a read-only bind mount, which
/// fails writes with EROFS as a remounted or full disk would.
struct Unwritable {
    path: PathBuf,
    mounted: bool,
}

impl Unwritable {
    fn new(path: &Path) -> Unwritable {
        set_dir_modes(path, 0o555);
        let mut guard = Unwritable {
            path: path.to_path_buf(),
            mounted: false,
        };
        if std::fs::write(path.join("node1").join(".write-test"), b"x").is_ok() {
            std::fs::remove_file(path.join("node1").join(".write-test")).unwrap();
            set_dir_modes(path, 0o755);
            run("mount", &["--bind", path_str(path), path_str(path)]);
            guard.mounted = true;
            run("mount", &["-o", "remount,ro,bind", path_str(path)]);
            assert!(
                std::fs::write(path.join("node1").join(".write-test"), b"x").is_err(),
                "{} is still writable",
                path.display()
            );
        }
        guard
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        } else {
            set_dir_modes(&self.path, 0o755);
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?}: {status}");
}

fn set_dir_modes(root: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
}

#[tokio::test]
async fn every_body_survives_losing_a_whole_store() {
    let stores = Stores::new(3);
    let blobs = stores.blob_store(2, 2);
    let mut written = Vec::new();
    for i in 0..60 {
        let (id, copies) = blobs.put(body(i)).await.unwrap();
        assert_eq!(copies.len(), 2);
        assert_ne!(copies[0].store, copies[1].store);
        written.push((i, id, copies));
    }
    // Placement spreads the bodies, so every store holds some of them.
    for s in ["s0", "s1", "s2"] {
        let held = written
            .iter()
            .filter(|(_, _, c)| c.iter().any(|c| c.store == s))
            .count();
        assert!(held > 10, "{s} holds only {held} of 60");
    }
    std::fs::remove_dir_all(stores.root("s1")).unwrap();
    for (i, id, copies) in &written {
        assert_eq!(blobs.get(*id, copies).await.unwrap(), body(*i), "body {i}");
    }
}

#[tokio::test]
async fn a_flipped_byte_is_never_served() {
    let stores = Stores::new(3);
    let blobs = stores.blob_store(2, 2);
    for i in 0..20 {
        let (id, copies) = blobs.put(body(i)).await.unwrap();
        // Corrupt the first copy for even bodies, the second for odd ones, so both
        // read orders are covered.
        let bad = &copies[i % 2];
        let path = stores.path(bad);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        for _ in 0..3 {
            assert_eq!(blobs.get(id, &copies).await.unwrap(), body(i), "body {i}");
        }
        // With only the corrupt copy left, the read fails instead of serving it.
        let err = blobs.get(id, std::slice::from_ref(bad)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Lost, "body {i}");
    }
}

#[tokio::test]
async fn writes_go_around_a_read_only_store_and_it_comes_back_after_a_probe() {
    let stores = Stores::new(3);
    let blobs = stores.blob_store(2, 2);
    let frozen = Unwritable::new(stores.root("s0"));
    let mut written = Vec::new();
    for i in 0..30 {
        let (id, copies) = blobs.put(body(i)).await.unwrap();
        assert_eq!(copies.len(), 2, "body {i}");
        assert!(
            copies.iter().all(|c| c.store != "s0"),
            "body {i}: {copies:?}"
        );
        written.push((i, id, copies));
    }
    assert!(!blobs.stores()[0].healthy(), "s0 is out of write placement");
    // Still unwritable: the probe keeps it out.
    assert_eq!(blobs.probe_unhealthy().await, 0);
    drop(frozen);
    assert_eq!(blobs.probe_unhealthy().await, 1);
    assert!(blobs.stores()[0].healthy());
    let mut used_s0 = false;
    for i in 30..60 {
        let (_, copies) = blobs.put(body(i)).await.unwrap();
        used_s0 |= copies.iter().any(|c| c.store == "s0");
    }
    assert!(used_s0, "s0 takes new bodies again");
    for (i, id, copies) in &written {
        assert_eq!(blobs.get(*id, copies).await.unwrap(), body(*i));
    }
}

#[tokio::test]
async fn the_background_probe_puts_a_recovered_store_back() {
    let stores = Stores::new(3);
    let blobs = stores.blob_store(2, 2);
    let _probes = blobs.spawn_health_probes(Duration::from_millis(50));
    let frozen = Unwritable::new(stores.root("s2"));
    // Some body whose first choice is s2 marks it failed.
    for i in 0..20 {
        blobs.put(body(i)).await.unwrap();
    }
    assert!(!blobs.stores()[2].healthy());
    drop(frozen);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !blobs.stores()[2].healthy() {
        assert!(
            std::time::Instant::now() < deadline,
            "not probed back in 10s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn too_few_writable_stores_refuse_the_put() {
    let stores = Stores::new(3);
    let blobs = stores.blob_store(2, 2);
    let _a = Unwritable::new(stores.root("s0"));
    let _b = Unwritable::new(stores.root("s1"));
    for i in 0..10 {
        let err = blobs.put(body(i)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotEnoughReplicas, "{err}");
        assert!(err.to_string().contains("only 1 of the 2"), "{err}");
    }
}

/// A full disk (a 256 KiB tmpfs mounted over one store's directory): writes that no
/// longer fit go to another store, and every body still has its two copies. Needs
/// root for the mount; otherwise says so and passes without running.
#[tokio::test]
async fn writes_go_around_a_full_store() {
    let stores = Stores::new(3);
    let root = stores.root("s1").to_path_buf();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs", path_str(&root)])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: writes_go_around_a_full_store needs root to mount a small tmpfs"
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(root.clone());
    let blobs = stores.blob_store(2, 2);
    let big = |i: usize| Bytes::from(format!("{i:08}").repeat(4_000)); // 32 KB each
    let mut written = Vec::new();
    let mut failed_over = false;
    for i in 0..40 {
        let (id, copies) = blobs.put(big(i)).await.unwrap();
        assert_eq!(copies.len(), 2, "body {i}");
        failed_over |= !blobs.stores()[1].healthy();
        written.push((i, id, copies));
    }
    assert!(failed_over, "s1 never filled up");
    let on_s1 = written
        .iter()
        .filter(|(_, _, c)| c.iter().any(|c| c.store == "s1"))
        .count();
    assert!(on_s1 <= 8, "{on_s1} bodies of 32 KB in 256 KB");
    for (i, id, copies) in &written {
        assert_eq!(blobs.get(*id, copies).await.unwrap(), big(*i));
    }
}
