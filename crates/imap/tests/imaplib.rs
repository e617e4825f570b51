//! A real client: Python's imaplib logs in, lists, selects, fetches every message back
//! byte for byte, stores flags, appends and expunges, against the in-process server.

mod common;

use common::{MULTIPART, SIMPLE, TestServer};

const SCRIPT: &str = r#"
import imaplib, sys
port = int(sys.argv[1])
expected = [open(p, 'rb').read() for p in sys.argv[2:]]
m = imaplib.IMAP4('127.0.0.1', port)
assert 'IMAP4REV1' in m.capabilities, m.capabilities
m.login('alice@example.com', 'pw')
typ, boxes = m.list()
assert typ == 'OK'
names = [b.decode().rsplit(' ', 1)[1] for b in boxes]
for want in ['INBOX', 'Drafts', 'Sent', 'Trash', 'Junk', 'Archive']:
    assert want in names, names
typ, data = m.select('INBOX')
assert typ == 'OK' and int(data[0]) == len(expected), data
for i, want in enumerate(expected, 1):
    typ, data = m.fetch(str(i), '(BODY.PEEK[])')
    assert typ == 'OK', data
    assert data[0][1] == want, (data[0][1], want)
typ, data = m.uid('FETCH', '1:*', '(UID FLAGS RFC822.SIZE)')
assert typ == 'OK' and len(data) == len(expected), data
typ, data = m.store('1', '+FLAGS', r'(\Deleted)')
assert typ == 'OK', data
typ, data = m.search(None, 'DELETED')
assert data == [b'1'], data
typ, data = m.expunge()
assert data == [b'1'], data
typ, data = m.append('Sent', r'(\Seen)', None, b'Subject: sent\r\n\r\nbody\r\n')
assert typ == 'OK' and b'APPENDUID' in data[0], data
typ, data = m.status('Sent', '(MESSAGES UNSEEN)')
assert data == [b'Sent (MESSAGES 1 UNSEEN 0)'], data
m.close()
m.logout()
print('imaplib ok')
"#;

#[tokio::test]
async fn python_imaplib_reads_every_message_back() {
    let server = TestServer::start().await;
    let alice = server.account("alice@example.com", "pw").await;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, message) in [SIMPLE, MULTIPART].into_iter().enumerate() {
        server.deliver(&alice, message).await;
        let path = dir.path().join(format!("{i}.eml"));
        std::fs::write(&path, message).unwrap();
        paths.push(path);
    }
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(server.addr.port().to_string())
        .args(&paths)
        .output()
        .await
        .expect("python3 runs (the integration suite needs it anyway)");
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "imaplib ok");
}
