//! The `mixed` workload: IMAP sessions shaped like real clients checking mail (log in,
//! select INBOX, fetch what is new, mark it \Seen, idle a while, log out) while LMTP
//! connections keep delivering to the same users. Each step of a session is a row of
//! its own; so are the deliveries.

use crate::imap::{ImapConn, quote};
use crate::lmtp::Conn;
use crate::message::{SizeSpec, message, rng_for};
use crate::report::{Row, Samples};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct MixedRun {
    pub imap: SocketAddr,
    pub lmtp: SocketAddr,
    pub users: Vec<String>,
    pub password: String,
    /// Concurrent clients, each a loop of sessions as one user.
    pub clients: usize,
    /// Concurrent LMTP connections delivering while the clients run.
    pub deliverers: usize,
    pub size: SizeSpec,
    /// Sessions in all (upper bound).
    pub sessions: u64,
    pub duration: Duration,
    /// The longest a session idles before it logs out.
    pub idle_max: Duration,
    pub seed: u64,
}

const STEPS: [&str; 6] = [
    "session",
    "login",
    "select",
    "fetch-new",
    "store-seen",
    "logout",
];

#[derive(Default)]
struct ClientStats {
    steps: [Samples; 6],
    wakeups: u64,
}

/// One session; the UID last seen moves forward as a real client's would.
async fn session(
    run: &MixedRun,
    user: &str,
    last_uid: &mut Option<u32>,
    i: u64,
    stats: &mut ClientStats,
) -> anyhow::Result<()> {
    let mut rng = rng_for(run.seed, i);
    let started = Instant::now();
    let mut conn = ImapConn::login(run.imap, user, &run.password).await?;
    stats.steps[1].ok(started.elapsed());

    let t = Instant::now();
    let selected = conn.command(&format!("SELECT {}", quote("INBOX"))).await?;
    stats.steps[2].ok(t.elapsed());

    const ITEMS: &str = "(UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])";
    let t = Instant::now();
    let fetched = match *last_uid {
        // A new device looks at the last 50 messages only.
        None => {
            let exists = selected.exists.unwrap_or(0);
            if exists == 0 {
                None
            } else {
                let from = exists.saturating_sub(49).max(1);
                Some(conn.command(&format!("FETCH {from}:* {ITEMS}")).await?)
            }
        }
        Some(uid) => Some(
            conn.command(&format!("UID FETCH {}:* {ITEMS}", uid + 1))
                .await?,
        ),
    };
    stats.steps[3].ok(t.elapsed());

    if let Some((min, max)) = fetched.and_then(|f| Some((f.min_uid?, f.max_uid?))) {
        // Only what this session fetched is marked, as a client marks what it showed.
        let from = last_uid.map_or(min, |u| (u + 1).max(min));
        if max >= from {
            let t = Instant::now();
            conn.command(&format!("UID STORE {from}:{max} +FLAGS.SILENT (\\Seen)"))
                .await?;
            stats.steps[4].ok(t.elapsed());
        }
        *last_uid = Some(max.max(last_uid.unwrap_or(0)));
    }

    let tag = conn.idle_start().await?;
    let idle_ms = rng.random_range(100..=run.idle_max.as_millis().max(100) as u64);
    if conn.idle_wait(Duration::from_millis(idle_ms)).await? {
        stats.wakeups += 1;
    }
    conn.idle_done(&tag).await?;

    let t = Instant::now();
    conn.command("LOGOUT").await?;
    stats.steps[5].ok(t.elapsed());
    stats.steps[0].ok(started.elapsed());
    Ok(())
}

pub async fn mixed(run: MixedRun) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(!run.users.is_empty(), "mixed needs at least one user");
    let started = Instant::now();
    let deadline = started + run.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let next_delivery = Arc::new(AtomicU64::new(0));
    let mut deliverers = Vec::new();
    for _ in 0..run.deliverers {
        let (run, stop, next) = (run.clone(), stop.clone(), next_delivery.clone());
        deliverers.push(tokio::spawn(async move {
            let mut conn = Conn::open(run.lmtp).await?;
            let mut samples = Samples::default();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                // Indexes far past provisioned and appended mail: new bodies.
                let body = message(run.size, run.seed, 1 << 41 | i);
                let user = &run.users[i as usize % run.users.len()];
                match conn.deliver(&[user.as_str()], &body).await {
                    Ok(took) => samples.ok(took),
                    Err(e) => {
                        samples.error(e);
                        conn = Conn::open(run.lmtp).await?;
                    }
                }
            }
            anyhow::Ok(samples)
        }));
    }

    let next_session = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..run.clients {
        let (run, next) = (run.clone(), next_session.clone());
        clients.push(tokio::spawn(async move {
            let user = run.users[c % run.users.len()].clone();
            let mut last_uid = None;
            let mut stats = ClientStats::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= run.sessions || Instant::now() >= deadline {
                    break;
                }
                if let Err(e) = session(&run, &user, &mut last_uid, i, &mut stats).await {
                    stats.steps[0].error(e);
                }
            }
            stats
        }));
    }
    let mut total = ClientStats::default();
    for c in clients {
        let stats = c.await?;
        for (all, one) in total.steps.iter_mut().zip(stats.steps) {
            all.merge(one);
        }
        total.wakeups += stats.wakeups;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut delivered = Samples::default();
    for d in deliverers {
        delivered.merge(d.await??);
    }
    let deliver_elapsed = started.elapsed();

    let params = format!("clients={} lmtp={}", run.clients, run.deliverers);
    let mut rows = Vec::new();
    for (name, samples) in STEPS.iter().zip(total.steps) {
        let mut row = Row::new("mixed", *name, params.clone(), samples, elapsed);
        if *name == "session" {
            row = row.with("idle_wakeups", total.wakeups);
        }
        rows.push(row);
    }
    rows.push(Row::new(
        "mixed",
        "deliver",
        format!("{params} size={}", run.size),
        delivered,
        deliver_elapsed,
    ));
    Ok(rows)
}
