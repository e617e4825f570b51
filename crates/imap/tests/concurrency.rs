//! Many sessions on one mailbox at once, over a real listener and mail store: each
//! appends, stores flags, expunges, moves and fetches in a random order while the
//! others do the same and new mail is delivered. Every session keeps its own model of the mailbox (sequence
//! number to UID) and applies the untagged responses of each command to it; the model
//! must never contradict what the server says, UIDs must ascend with sequence
//! numbers, and UIDs and MODSEQs only grow. At the end every session sees the same
//! mailbox, which is the stored one.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use common::{Client, TestServer};

const ALICE: &str = "alice@example.com";
const SESSIONS: usize = 8;
const STEPS: usize = 100;
const INITIAL: usize = 30;
/// Messages delivered into the INBOX while the sessions run.
const DELIVERIES: usize = 60;
/// The whole run must end within this, or the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What one session believes about the selected mailbox.
#[derive(Default)]
struct View {
    /// By sequence number - 1: the UID, once the server has told us.
    uids: Vec<Option<u32>>,
    /// The highest MODSEQ seen per UID.
    modseqs: HashMap<u32, u64>,
    highest_modseq: u64,
    /// Every UID this session's own APPENDs were given.
    appended: Vec<u32>,
    /// EXISTS and EXPUNGE responses to commands that add or remove nothing themselves
    /// (FETCH, STORE, NOOP): other sessions' changes arriving mid-run.
    foreign_updates: usize,
}

fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = line.split_once(key)?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl View {
    /// Applies the untagged responses of one command, checking each against the view.
    fn apply(&mut self, session: usize, command: &str, lines: &[String]) {
        let passive = ["FETCH", "STORE", "NOOP"]
            .iter()
            .any(|c| command.starts_with(c));
        let context = |line: &str| format!("session {session}, {command:?}: {line}");
        for line in lines.iter().filter(|l| l.starts_with("* ")) {
            let mut words = line[2..].splitn(3, ' ');
            let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if let Some(m) = number_after(line, "[HIGHESTMODSEQ ") {
                assert!(
                    m >= self.highest_modseq,
                    "HIGHESTMODSEQ went down: {}",
                    context(line)
                );
                self.highest_modseq = m;
            }
            let Ok(n) = first.parse::<usize>() else {
                continue;
            };
            match second {
                "EXISTS" => {
                    assert!(
                        n >= self.uids.len(),
                        "EXISTS shrank the mailbox: {}",
                        context(line)
                    );
                    if passive && n > self.uids.len() {
                        self.foreign_updates += 1;
                    }
                    self.uids.resize(n, None);
                }
                "EXPUNGE" => {
                    assert!(
                        (1..=self.uids.len()).contains(&n),
                        "EXPUNGE of a message we do not have: {}",
                        context(line)
                    );
                    // RFC 9051 section 7.5.1: not during FETCH, STORE or SEARCH by
                    // sequence number, whose numbers the client is still using.
                    assert!(
                        !command.starts_with("FETCH") && !command.starts_with("STORE"),
                        "EXPUNGE sent during a sequence-number command: {}",
                        context(line)
                    );
                    self.uids.remove(n - 1);
                    if passive {
                        self.foreign_updates += 1;
                    }
                }
                "FETCH" => {
                    assert!(
                        (1..=self.uids.len()).contains(&n),
                        "FETCH of a message we do not have: {}",
                        context(line)
                    );
                    if let Some(uid) = number_after(line, "UID ") {
                        let uid = uid as u32;
                        if let Some(known) = self.uids[n - 1] {
                            assert_eq!(
                                known,
                                uid,
                                "sequence number {n} changed UID: {}",
                                context(line)
                            );
                        }
                        self.uids[n - 1] = Some(uid);
                        if let Some(m) = number_after(line, "MODSEQ (") {
                            let last = self.modseqs.entry(uid).or_insert(0);
                            assert!(
                                m >= *last,
                                "MODSEQ of UID {uid} went down: {}",
                                context(line)
                            );
                            *last = m;
                        }
                    }
                }
                "RECENT" => {}
                other => panic!("unexpected untagged response {other}: {}", context(line)),
            }
        }
        let known: Vec<u32> = self.uids.iter().flatten().copied().collect();
        assert!(
            known.windows(2).all(|w| w[0] < w[1]),
            "session {session}, {command:?}: UIDs do not ascend with sequence numbers: {known:?}"
        );
    }
}

/// The UID in `[APPENDUID uidvalidity uid]`.
fn appended_uid(tagged: &str) -> Option<u32> {
    let code = tagged.split_once("[APPENDUID ")?.1.split_once(']')?.0;
    code.split(' ').nth(1)?.parse().ok()
}

async fn run(client: &mut Client, view: &mut View, session: usize, command: &str) -> Vec<String> {
    let reply = client.command(command).await;
    let tagged = reply.last().unwrap();
    assert!(
        !tagged.contains(" BAD "),
        "session {session}, {command:?}: {reply:?}"
    );
    view.apply(session, command, &reply);
    reply
}

async fn session(
    server_addr: std::net::SocketAddr,
    session: usize,
    done: Arc<Barrier>,
) -> (View, Vec<u32>) {
    let mut client = Client::connect(server_addr).await;
    let reply = client.command(&format!("LOGIN {ALICE} pw")).await;
    assert!(client.ok(&reply), "{reply:?}");
    let mut view = View::default();
    run(&mut client, &mut view, session, "SELECT INBOX (CONDSTORE)").await;
    run(&mut client, &mut view, session, "FETCH 1:* (UID MODSEQ)").await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((session as u64 + 1) * 0x1000_0001));
    for step in 0..STEPS {
        let len = view.uids.len();
        let seq = if len == 0 { 0 } else { 1 + rng.below(len) };
        let uid = seq
            .checked_sub(1)
            .and_then(|i| view.uids[i])
            .unwrap_or(u32::MAX);
        let command = match rng.below(9) {
            0 | 1 => {
                let body = format!("Subject: s{session} step {step}\r\n\r\nfrom {session}\r\n");
                format!("APPEND INBOX {{{}+}}\r\n{body}", body.len())
            }
            2 if seq > 0 => format!("STORE {seq} +FLAGS (\\Flagged)"),
            3 if seq > 0 => format!("STORE {seq} +FLAGS (\\Deleted)"),
            4 => "EXPUNGE".to_string(),
            5 if seq > 0 => format!("MOVE {seq} Archive"),
            // The UID forms may see EXPUNGEs of other sessions in their replies.
            6 => format!("UID STORE {uid} +FLAGS (\\Seen \\Deleted)"),
            7 => format!("UID EXPUNGE {uid}"),
            _ => "FETCH 1:* (UID MODSEQ FLAGS)".to_string(),
        };
        let reply = run(&mut client, &mut view, session, &command).await;
        if let Some(uid) = appended_uid(reply.last().unwrap()) {
            if let Some(&last) = view.appended.last() {
                assert!(
                    uid > last,
                    "session {session}: APPENDUID {uid} after {last}"
                );
            }
            view.appended.push(uid);
        }
    }
    // Once every session is done, look once more: the view must be complete and
    // the same for all.
    done.wait().await;
    let appended = view.appended.clone();
    (view_after_all(client, view, session).await, appended)
}

async fn view_after_all(mut client: Client, mut view: View, session: usize) -> View {
    run(&mut client, &mut view, session, "NOOP").await;
    run(&mut client, &mut view, session, "FETCH 1:* (UID MODSEQ)").await;
    assert!(
        view.uids.iter().all(Option::is_some),
        "session {session}: FETCH 1:* left sequence numbers without a UID"
    );
    client.command("LOGOUT").await;
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_keep_consistent_views() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    for i in 0..INITIAL {
        server
            .deliver(
                &alice,
                format!("Subject: initial {i}\r\n\r\nbody\r\n").as_bytes(),
            )
            .await;
    }
    let addr = server.addr;
    // The sessions, and LMTP-style deliveries into the same INBOX meanwhile.
    let done = Arc::new(Barrier::new(SESSIONS + 1));
    let mut tasks: Vec<_> = (0..SESSIONS)
        .map(|s| tokio::spawn(session(addr, s, done.clone())))
        .collect();
    let mailstore = server.mailstore.clone();
    let delivered = done.clone();
    let account = alice.id;
    let deliveries = tokio::spawn(async move {
        for i in 0..DELIVERIES {
            let body = format!("Subject: delivered {i}\r\n\r\nbody\r\n");
            let results = mailstore
                .deliver(bytes::Bytes::from(body), &[account])
                .await
                .unwrap();
            results.into_iter().next().unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delivered.wait().await;
    });
    let results = tokio::time::timeout(DEADLINE, async {
        let results = futures_join(std::mem::take(&mut tasks)).await;
        deliveries.await.expect("the delivering task panicked");
        results
    })
    .await
    .expect("the sessions finished in time");

    // Every session ends with the same view, and it is the stored mailbox.
    let inbox = server
        .mailstore
        .find_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let stored: Vec<u32> = server
        .mailstore
        .messages(alice.id, inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid.get())
        .collect();
    let mut all_appended = BTreeSet::new();
    let mut appends = 0;
    let mut foreign_updates = 0;
    for (session, (view, appended)) in results.into_iter().enumerate() {
        let uids: Vec<u32> = view.uids.iter().flatten().copied().collect();
        assert_eq!(uids, stored, "session {session} ends with a different view");
        appends += appended.len();
        foreign_updates += view.foreign_updates;
        all_appended.extend(appended);
    }
    assert_eq!(
        all_appended.len(),
        appends,
        "two APPENDs were given one UID"
    );
    assert!(
        foreign_updates > 0,
        "no session saw another's change mid-run"
    );
    assert!(
        all_appended.iter().all(|&uid| uid > INITIAL as u32),
        "an APPEND reused an initial UID"
    );
}

/// Awaits every task, failing the test with the first panic.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("a session task panicked"));
    }
    out
}
