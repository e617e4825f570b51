//! QUOTA (RFC 9208) over a real listener and mail store: the one storage root of an
//! account, SETQUOTA refused, DELETED-STORAGE, and OVERQUOTA on APPEND and COPY.

mod common;

use common::{TestServer, has};

const ALICE: &str = "alice@example.com";

fn mail(size: usize) -> Vec<u8> {
    let head = b"Subject: q\r\n\r\n";
    let mut body = head.to_vec();
    body.resize(size, b'x');
    body
}

#[tokio::test]
async fn getquotaroot_and_getquota_report_storage_in_kib() {
    let server = TestServer::start().await;
    let alice = server
        .mailstore
        .create_account(ALICE, "pw", Some(10 * 1024))
        .await
        .unwrap();
    server.deliver(&alice, &mail(1500)).await;
    let mut client = server.login(ALICE).await;
    let reply = client.command("CAPABILITY").await;
    assert!(
        has(&reply, " QUOTA ") && has(&reply, " QUOTA=RES-STORAGE"),
        "{reply:?}"
    );

    // RFC 9208 section 4.3's example, with our one root "".
    let reply = client.command("GETQUOTAROOT INBOX").await;
    assert_eq!(
        reply[..2],
        [
            "* QUOTAROOT INBOX \"\"".to_string(),
            "* QUOTA \"\" (STORAGE 2 10)".to_string()
        ],
        "{reply:?}"
    );
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("GETQUOTA \"\"").await;
    assert_eq!(reply[0], "* QUOTA \"\" (STORAGE 2 10)");
    let reply = client.command("GETQUOTA other").await;
    assert!(has(&reply, "NO [NONEXISTENT]"), "{reply:?}");
    let reply = client.command("GETQUOTAROOT Nowhere").await;
    assert!(has(&reply, "NO [NONEXISTENT]"), "{reply:?}");
    let reply = client.command("SETQUOTA \"\" (STORAGE 100000)").await;
    assert!(has(&reply, "NO [NOPERM]"), "{reply:?}");
    let reply = client.command("GETQUOTA \"\"").await;
    assert_eq!(reply[0], "* QUOTA \"\" (STORAGE 2 10)", "unchanged");
}

#[tokio::test]
async fn without_a_limit_there_is_no_quota_root() {
    let server = TestServer::start().await;
    server.account(ALICE, "pw").await;
    let mut client = server.login(ALICE).await;
    let reply = client.command("GETQUOTAROOT INBOX").await;
    assert_eq!(reply[0], "* QUOTAROOT INBOX");
    assert!(client.ok(&reply), "{reply:?}");
    let reply = client.command("GETQUOTA \"\"").await;
    assert!(has(&reply, "NO [NONEXISTENT]"), "{reply:?}");
}

#[tokio::test]
async fn status_deleted_storage_counts_what_expunge_would_free() {
    let server = TestServer::start().await;
    let alice = server.account(ALICE, "pw").await;
    for size in [3000, 100, 2000] {
        server.deliver(&alice, &mail(size)).await;
    }
    let mut client = server.login(ALICE).await;
    client.command("SELECT INBOX").await;
    client.command("STORE 1,3 +FLAGS.SILENT (\\Deleted)").await;
    let reply = client
        .command("STATUS INBOX (DELETED DELETED-STORAGE)")
        .await;
    assert_eq!(reply[0], "* STATUS INBOX (DELETED 2 DELETED-STORAGE 5)");
}

#[tokio::test]
async fn append_and_copy_over_quota_get_overquota() {
    let server = TestServer::start().await;
    let alice = server
        .mailstore
        .create_account(ALICE, "pw", Some(5000))
        .await
        .unwrap();
    server.deliver(&alice, &mail(3000)).await;
    let mut client = server.login(ALICE).await;
    let big = mail(2500);
    let reply = client
        .command(&format!(
            "APPEND INBOX {{{}+}}\r\n{}",
            big.len(),
            String::from_utf8(big).unwrap()
        ))
        .await;
    assert!(has(&reply, "NO [OVERQUOTA]"), "{reply:?}");
    client.command("SELECT INBOX").await;
    let reply = client.command("COPY 1 Archive").await;
    assert!(has(&reply, "NO [OVERQUOTA]"), "{reply:?}");
    let reply = client.command("STATUS Archive (MESSAGES)").await;
    assert!(has(&reply, "(MESSAGES 0)"), "{reply:?}");
}

#[tokio::test]
async fn a_copy_over_quota_is_all_or_nothing() {
    let server = TestServer::start().await;
    let alice = server
        .mailstore
        .create_account(ALICE, "pw", Some(5000))
        .await
        .unwrap();
    for _ in 0..3 {
        server.deliver(&alice, &mail(1000)).await;
    }
    let mut client = server.login(ALICE).await;
    let before = client.command("STATUS Archive (MESSAGES UIDNEXT)").await;
    client.command("SELECT INBOX").await;
    // Two copies would fit (3000 + 2000 bytes); the third would not.
    let reply = client.command("COPY 1:3 Archive").await;
    assert!(has(&reply, "NO [OVERQUOTA]"), "{reply:?}");
    // Nothing was copied, not even for a moment: no UID of Archive was used up.
    let after = client.command("STATUS Archive (MESSAGES UIDNEXT)").await;
    assert_eq!(after[0], before[0]);
    let reply = client.command("COPY 1:2 Archive").await;
    assert!(client.ok(&reply), "{reply:?}");
}
