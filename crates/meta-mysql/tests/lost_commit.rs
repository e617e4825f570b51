//! A connection lost while COMMIT is in flight: the delivery committed on the server,
//! but evermail never heard so. The replay (on another node) must find that delivery
//! by its id instead of delivering it a second time.

mod common;

use evermail_meta::*;
use evermail_meta_mysql::MysqlMeta;
use evermail_types::{BlobId, Flags};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy on 127.0.0.1 in front of one database node. Once armed, it forwards the
/// first COMMIT a client sends, gives the server time to commit, and closes that
/// connection without passing the server's answer on.
struct CommitCutter {
    port: u16,
    armed: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
}

impl CommitCutter {
    async fn start(upstream: String) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let (a, c) = (armed.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, a.clone(), c.clone()));
            }
        });
        CommitCutter { port, armed, cut }
    }
}

/// Whether the bytes a client sent hold a COMMIT: a packet (3-byte length, sequence
/// number) whose command is a text query (COM_QUERY) or a prepare (COM_STMT_PREPARE)
/// of `COMMIT`. Packets may arrive several to a read.
fn has_commit(mut bytes: &[u8]) -> bool {
    while bytes.len() >= 5 {
        let len = usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16;
        let packet = &bytes[4..bytes.len().min(4 + len)];
        if matches!(packet[0], 0x03 | 0x16)
            && packet.len() >= 7
            && packet[1..7].eq_ignore_ascii_case(b"COMMIT")
        {
            return true;
        }
        bytes = &bytes[bytes.len().min(4 + len)..];
    }
    false
}

async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cut: Arc<AtomicBool>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Set once this connection's COMMIT went out: the server's answers are dropped, but
    // the client's side stays open until the server has had time to commit.
    let mute = Arc::new(AtomicBool::new(false));
    let muted = mute.clone();
    let answers = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = server_rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if !muted.load(Ordering::SeqCst) && client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = client_rx.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if has_commit(&buf[..n]) && armed.swap(false, Ordering::SeqCst) {
            mute.store(true, Ordering::SeqCst);
            let _ = server_tx.write_all(&buf[..n]).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            cut.store(true, Ordering::SeqCst);
            break;
        }
        if server_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Closes both connections.
    answers.abort();
}

fn message(account: &AccountRecord, inbox: &MailboxRecord, i: u8) -> NewMessage {
    let mut id = [0u8; 32];
    id[0] = i;
    id[31] = 0xcc;
    NewMessage {
        account: account.id,
        mailbox: inbox.id,
        blob: BlobRecord {
            id: BlobId(id),
            size: 10,
            structure: "{}".into(),
            header: None,
        },
        locations: vec![BlobLocation {
            store: "local".into(),
            key: BlobId(id).to_hex(),
        }],
        flags: Flags::default(),
        internal_date: 0,
    }
}

#[tokio::test]
async fn a_delivery_whose_commit_answer_was_lost_is_not_delivered_twice() {
    let Some(db) = common::test_db().await else {
        return;
    };
    // mysql://user:password@host:port/database: the cutter takes host:port's place.
    let url = &db.urls[0];
    let start = url.rfind('@').unwrap() + 1;
    let end = start + url[start..].find('/').unwrap_or(url.len() - start);
    let cutter = CommitCutter::start(url[start..end].to_string()).await;
    let mut options = db.options(&[0, 1]);
    options.urls[0] = format!("{}127.0.0.1:{}{}", &url[..start], cutter.port, &url[end..]);
    options.connect_timeout_ms = 1000;
    options.probe_interval_ms = 200;
    let meta = MysqlMeta::connect(&options).await.unwrap();
    let alice = meta
        .create_account(NewAccount {
            address: "alice@example.com".into(),
            password_hash: "$argon2id$test".into(),
            quota_bytes: None,
            mailboxes: vec![NewMailbox {
                name: "INBOX".into(),
                special_use: None,
                subscribed: true,
            }],
        })
        .await
        .unwrap();
    let inbox = meta.mailboxes(alice.id).await.unwrap().remove(0);

    // Transactions go round robin over the two nodes; deliver until one of them went
    // through the cutter and lost its COMMIT's answer.
    cutter.armed.store(true, Ordering::SeqCst);
    let mut delivered = Vec::new();
    for i in 0..20u8 {
        if cutter.cut.load(Ordering::SeqCst) {
            break;
        }
        let got = meta
            .insert_message(message(&alice, &inbox, i))
            .await
            .unwrap_or_else(|e| panic!("delivery {i}: {e}"));
        delivered.push(got.uid);
    }
    assert!(
        cutter.cut.load(Ordering::SeqCst),
        "no COMMIT went through the cutter in 20 deliveries"
    );

    // Each delivery is stored once, under the UID it was acknowledged with.
    let stored: Vec<_> = meta
        .messages(inbox.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(stored, delivered, "a delivery was doubled or lost");
}
