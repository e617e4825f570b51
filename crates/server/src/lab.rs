//! `evermail lab up|status|down`: a local cluster in one command, for people trying
//! evermail and for tests. Mailbox nodes and proxies are child processes of this
//! binary, each in its own process group with its own config, data directory and log
//! under the lab directory; their pids are kept in `DIR/pids` so `status` and `down`
//! find them again (by pid, never by name).
//!
//! With `--mysql-url` (one per node of a running MariaDB Galera cluster) the lab runs
//! three mailbox nodes on it. Without, when MariaDB with Galera is installed
//! (mariadbd, libgalera_smm.so, mariabackup, socat), it starts a 3-node Galera cluster
//! of its own in `DIR/galera` with the repository's scripts/galera (built into this
//! binary and written to `DIR/galera.sh`), on ports shifted by `--galera-port-offset`;
//! `down` stops it and `status` reports it. Otherwise, or with `--sqlite`, it uses SQLite, which one node only may serve
//! (two processes writing one SQLite file would each think they allocate UIDs alone),
//! so it runs one node and says so. Either way: two proxies, three fs stores in three
//! zones with replicas = 2, and a demo account.

use anyhow::{Context, bail};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one process may take to print `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const DEMO_USER: &str = "you@example.lab";
const DEMO_PASSWORD: &str = "lab-password";

#[derive(Subcommand)]
pub enum LabCommand {
    /// Start the lab: mailbox nodes, two proxies, three stores; print the endpoints.
    Up {
        /// Where configs, data, logs and pids go.
        #[arg(long, default_value = "evermail-lab")]
        dir: PathBuf,
        /// A MariaDB Galera node URL (mysql://user:password@host:port/database), once
        /// per node; the database must exist. Without: SQLite and one mailbox node.
        #[arg(long = "mysql-url", value_name = "URL")]
        mysql_urls: Vec<String>,
        /// Use SQLite and one mailbox node even when MariaDB/Galera is installed.
        #[arg(long, conflicts_with = "mysql_urls")]
        sqlite: bool,
        /// Added to scripts/galera's ports (33061.., 45671.., 45681.., 44441..) for the
        /// lab's own Galera cluster; the default keeps clear of the test clusters'.
        #[arg(long, default_value_t = 200)]
        galera_port_offset: u32,
    },
    /// Show each process of the lab (running or not) and its endpoints.
    Status {
        #[arg(long, default_value = "evermail-lab")]
        dir: PathBuf,
    },
    /// Stop every process of the lab (SIGTERM, then SIGKILL after 20 s). Data stays.
    Down {
        #[arg(long, default_value = "evermail-lab")]
        dir: PathBuf,
    },
}

pub async fn run(command: LabCommand) -> anyhow::Result<()> {
    match command {
        LabCommand::Up {
            dir,
            mysql_urls,
            sqlite,
            galera_port_offset,
        } => {
            let mut urls = mysql_urls;
            if urls.is_empty() && !sqlite && !read_pids(&dir)?.iter().any(|(_, p)| alive(*p)) {
                match galera_missing() {
                    None => urls = galera_up(&dir, galera_port_offset)?,
                    Some(what) => println!("MariaDB/Galera is not installed ({what} missing)"),
                }
            }
            up(&dir, &urls).await
        }
        LabCommand::Status { dir } => status(&dir),
        LabCommand::Down { dir } => down(&dir),
    }
}

/// One process of the lab as `DIR/pids` records it: `name pid` per line.
fn read_pids(dir: &Path) -> anyhow::Result<Vec<(String, u32)>> {
    let path = dir.join("pids");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect())
}

/// Whether `pid` is a live process running this lab's binary (a pid reused by an
/// unrelated process after a reboot is not ours to signal).
fn alive(pid: u32) -> bool {
    let Ok(me) = std::env::current_exe() else {
        return false;
    };
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == me)
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Starts `evermail --data-dir DATA --config CONFIG SUBCOMMAND` detached, waits for
/// its `ready` line, and returns its pid and the `listening` endpoints it printed.
fn spawn(
    dir: &Path,
    name: &str,
    subcommand: &str,
) -> anyhow::Result<(u32, BTreeMap<String, String>)> {
    let out_path = dir.join(format!("{name}.out"));
    let log_path = dir.join(format!("{name}.log"));
    let stdout = std::fs::File::create(&out_path)?;
    let stderr = std::fs::File::create(&log_path)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--data-dir")
        .arg(dir.join(name))
        .arg("--config")
        .arg(dir.join(format!("{name}.toml")))
        .arg(subcommand)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // Its own process group: a Ctrl-C in the terminal that ran `lab up` does not
    // stop the lab; `lab down` does.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        if text.lines().any(|l| l.trim() == "ready") {
            let endpoints = text
                .lines()
                .filter_map(|l| l.strip_prefix("listening "))
                .filter_map(|l| l.split_once(' '))
                .map(|(proto, addr)| (proto.to_string(), addr.to_string()))
                .collect();
            return Ok((pid, endpoints));
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{name} exited ({status}) before it was ready; see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            signal(pid, rustix::process::Signal::KILL);
            bail!(
                "{name} was not ready within {START_TIMEOUT:?}; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// scripts/galera, run from the lab directory as `DIR/galera.sh`.
const GALERA_SCRIPT: &str = include_str!("../../../scripts/galera");

/// What of MariaDB/Galera is missing for a lab cluster, or None when all is there.
fn galera_missing() -> Option<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    let found = |name: &str| dirs.iter().any(|d| d.join(name).is_file());
    if !found("mariadbd") {
        Some("mariadbd")
    } else if !Path::new("/usr/lib/galera/libgalera_smm.so").is_file() {
        Some("/usr/lib/galera/libgalera_smm.so")
    } else if !found("mariabackup") {
        Some("mariabackup")
    } else if !found("socat") {
        Some("socat")
    } else {
        None
    }
}

/// `bash DIR/galera.sh CMD DIR/galera` with the lab's port offset.
fn galera_command(dir: &Path, cmd: &str, offset: u32) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(dir.join("galera.sh"))
        .arg(cmd)
        .arg(dir.join("galera"))
        .env("EVERMAIL_GALERA_PORT_OFFSET", offset.to_string())
        .stdin(Stdio::null());
    command
}

/// Runs scripts/galera CMD for the lab (its progress on our stderr); its stdout.
fn galera_script(dir: &Path, cmd: &str, offset: u32) -> anyhow::Result<String> {
    let out = galera_command(dir, cmd, offset)
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/galera (DIR/galera.sh)")?;
    if !out.status.success() {
        bail!("scripts/galera {cmd} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts (or restarts) the lab's own 3-node Galera cluster; one URL per node.
fn galera_up(dir: &Path, offset: u32) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("galera.sh"), GALERA_SCRIPT)?;
    std::fs::write(dir.join("galera.offset"), offset.to_string())?;
    println!(
        "MariaDB/Galera is installed: starting a 3-node Galera cluster in {} \
         (scripts/galera, port offset {offset})",
        dir.join("galera").display()
    );
    let urls: Vec<String> = galera_script(dir, "up", offset)?
        .lines()
        .filter(|l| l.starts_with("mysql://"))
        .map(str::to_string)
        .collect();
    if urls.is_empty() {
        bail!("scripts/galera up printed no node URLs");
    }
    Ok(urls)
}

/// The port offset of the lab's own Galera cluster, when it has one.
fn galera_offset(dir: &Path) -> Option<u32> {
    if !dir.join("galera.sh").is_file() {
        return None;
    }
    std::fs::read_to_string(dir.join("galera.offset"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn up(dir: &Path, mysql_urls: &[String]) -> anyhow::Result<()> {
    if read_pids(dir)?.iter().any(|(_, pid)| alive(*pid)) {
        bail!(
            "a lab is already running in {}: `evermail lab down --dir {0}` first",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let secret: String = (0..4).map(|_| format!("{:016x}", rand_u64())).collect();
    let stores = dir.join("stores");
    let mut common =
        format!("[cluster]\nsecret = \"{secret}\"\n\n[storage]\nreplicas = 2\nmin_replicas = 2\n");
    for (i, zone) in ["z1", "z2", "z3"].iter().enumerate() {
        let n = i + 1;
        let path = stores.join(format!("s{n}"));
        let _ = write!(
            common,
            "\n[[storage.stores]]\nkind = \"fs\"\nid = \"s{n}\"\nzone = \"{zone}\"\npath = \"{}\"\n",
            path.display()
        );
    }
    let (metadata, nodes): (String, Vec<&str>) = if mysql_urls.is_empty() {
        println!(
            "no Galera cluster: metadata in SQLite, which only one mailbox node may serve; \
             starting 1 node (install MariaDB with Galera, or give --mysql-url, for 3)"
        );
        let db = dir.join("a").join("meta.sqlite");
        (
            format!(
                "[metadata]\nbackend = \"sqlite\"\nsqlite_path = \"{}\"\n",
                db.display()
            ),
            vec!["a"],
        )
    } else {
        let quoted: Vec<String> = mysql_urls.iter().map(|u| format!("\"{u}\"")).collect();
        (
            format!(
                "[metadata]\nbackend = \"mysql\"\nmysql_urls = [{}]\n",
                quoted.join(", ")
            ),
            vec!["a", "b", "c"],
        )
    };
    let listen = |keys: &[&str]| -> String {
        keys.iter()
            .map(|k| format!("{k} = [\"127.0.0.1:0\"]\n"))
            .collect()
    };
    for node in &nodes {
        let config = format!(
            "node_name = \"{node}\"\n{metadata}\n[imap]\n{}\n[pop3]\n{}\n[lmtp]\n{}\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\n{common}",
            listen(&["listen", "tls_listen"]),
            listen(&["listen", "tls_listen"]),
            listen(&["listen"]),
        );
        std::fs::write(dir.join(format!("{node}.toml")), config)?;
    }
    for proxy in ["p1", "p2"] {
        let config = format!(
            "node_name = \"{proxy}\"\n{metadata}\n[proxy]\n{}admin_listen = \"127.0.0.1:0\"\n\n\
             [cluster]\nsecret = \"{secret}\"\n",
            listen(&[
                "imap_listen",
                "imaps_listen",
                "pop3_listen",
                "pop3s_listen",
                "lmtp_listen"
            ]),
        );
        std::fs::write(dir.join(format!("{proxy}.toml")), config)?;
    }
    let first = crate::config::Config::load(Some(&dir.join("a.toml")))?;
    if !mysql_urls.is_empty() {
        crate::storage::db_migrate(&first, &dir.join("a")).await?;
    }

    let mut pids = std::fs::File::create(dir.join("pids"))?;
    let mut endpoints = Vec::new();
    for name in nodes.iter().chain(["p1", "p2"].iter()) {
        let subcommand = if name.starts_with('p') {
            "proxy"
        } else {
            "serve"
        };
        let (pid, listening) = match spawn(&dir, name, subcommand) {
            Ok(started) => started,
            Err(e) => {
                drop(pids);
                let _ = down(&dir);
                return Err(e);
            }
        };
        writeln!(pids, "{name} {pid}")?;
        endpoints.push((name.to_string(), listening));
        if *name == "a" {
            add_demo_account(&dir)?;
        }
    }
    std::fs::write(dir.join("endpoints"), format_endpoints(&endpoints))?;
    print!("{}", format_endpoints(&endpoints));
    let imap = endpoints
        .iter()
        .find(|(n, _)| n == "p1")
        .and_then(|(_, l)| l.get("imap"))
        .cloned()
        .unwrap_or_default();
    let (host, port) = imap.rsplit_once(':').unwrap_or(("127.0.0.1", "0"));
    println!(
        "lab up in {}: {} mailbox node(s), 2 proxies, 3 stores (replicas 2)",
        dir.display(),
        nodes.len()
    );
    println!(
        "try:  python3 -c \"import imaplib; c = imaplib.IMAP4('{host}', {port}); \
         print(c.login('{DEMO_USER}', '{DEMO_PASSWORD}')); print(c.select('INBOX'))\""
    );
    println!("stop: evermail lab down --dir {}", dir.display());
    Ok(())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

fn add_demo_account(dir: &Path) -> anyhow::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(dir.join("a"))
        .arg("--config")
        .arg(dir.join("a.toml"))
        .args(["account", "add", DEMO_USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{DEMO_PASSWORD}")?;
    }
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !err.contains("already") {
        bail!("adding the demo account: {err}");
    }
    Ok(())
}

fn format_endpoints(endpoints: &[(String, BTreeMap<String, String>)]) -> String {
    let mut out = String::new();
    for (name, listening) in endpoints {
        let kind = if name.starts_with('p') {
            "proxy"
        } else {
            "node"
        };
        let list: Vec<String> = listening.iter().map(|(p, a)| format!("{p}={a}")).collect();
        let _ = writeln!(out, "{kind} {name} {}", list.join(" "));
    }
    out
}

fn status(dir: &Path) -> anyhow::Result<()> {
    if let Some(offset) = galera_offset(dir) {
        // scripts/galera status reports each node on stderr (and exits 1 if one is down).
        match galera_command(dir, "status", offset).output() {
            Ok(out) => String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("node"))
                .for_each(|l| println!("galera {l}")),
            Err(e) => println!("galera: {e}"),
        }
    }
    let pids = read_pids(dir)?;
    if pids.is_empty() {
        println!("no lab in {}", dir.display());
        return Ok(());
    }
    let endpoints = std::fs::read_to_string(dir.join("endpoints")).unwrap_or_default();
    for (name, pid) in pids {
        let state = if alive(pid) { "running" } else { "stopped" };
        let line = endpoints
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(name.as_str()))
            .unwrap_or("");
        println!("{name} pid={pid} {state} {line}");
    }
    Ok(())
}

fn down(dir: &Path) -> anyhow::Result<()> {
    let pids = read_pids(dir)?;
    let live: Vec<(String, u32)> = pids.into_iter().filter(|(_, pid)| alive(*pid)).collect();
    for (_, pid) in &live {
        signal(*pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while live.iter().any(|(_, pid)| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (name, pid) in &live {
        if alive(*pid) {
            signal(*pid, rustix::process::Signal::KILL);
            println!("{name} (pid {pid}) killed after 20 s");
        } else {
            println!("{name} (pid {pid}) stopped");
        }
    }
    if live.is_empty() {
        println!("nothing running in {}", dir.display());
    }
    if let Some(offset) = galera_offset(dir) {
        galera_script(dir, "down", offset)?;
        println!("galera cluster in {} stopped", dir.join("galera").display());
    }
    Ok(())
}
