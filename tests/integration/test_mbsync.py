"""mbsync (isync) against the real binary: a mailbox of a few thousand messages
delivered over LMTP is synced both ways with a local Maildir, then both sides
change (flags, expunges, new mail, new nested folders) and are synced again,
twice; in the end both sides hold the same messages with the same flags.

Bodies are compared byte for byte after undoing what mbsync itself does to every
message it copies, against any server: Maildir files get LF line ends (IMAP
carries CRLF) and an X-TUID header line. mbsync talks implicit TLS to the imaps listener
and trusts exactly the certificate the server generated (CertificateFile)."""

import imaplib
import os
import re
import shutil
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ALICE, HOST, NET_TIMEOUT, lmtp_deliver, message, parse_fetch, parse_list

MESSAGES = 2000  # delivered before the first sync
LMTP_CONNECTIONS = 4
MBSYNC_TIMEOUT = 240.0  # seconds for one mbsync run
# Maildir info flags (the letters after ":2,") and the IMAP flags mbsync maps them to.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}

pytestmark = pytest.mark.skipif(
    shutil.which("mbsync") is None and not os.environ.get("CI"),
    reason="mbsync is not installed (apt-get install isync; .ci/run does)",
)


def deliver_many(server, count: int) -> None:
    """Delivers `count` distinct messages to alice over a few LMTP connections."""
    errors: list[str] = []

    def worker(start: int) -> None:
        client = smtplib.LMTP(HOST, server.ports["lmtp"], timeout=NET_TIMEOUT)
        try:
            client.ehlo("client.test")
            for i in range(start, count, LMTP_CONNECTIONS):
                body = message(f"sync {i}", body=f"Message number {i}.\r\n" * (1 + i % 7))
                result = lmtp_deliver(client, "sender@example.net", [ALICE[0]], body)
                code, text = result[ALICE[0]]
                if code != 250:
                    errors.append(f"{i}: {code} {text}")
                    return
            client.quit()
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(LMTP_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "delivery threads did not finish"
    assert not errors, errors[:5]


def mbsyncrc(server, tmp_path: Path) -> Path:
    maildir = tmp_path / "Maildir"
    maildir.mkdir()
    cert = server.data_dir / "tls" / "cert.pem"
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""\
IMAPAccount evermail
Host {HOST}
Port {server.ports["imaps"]}
User {ALICE[0]}
Pass {ALICE[1]}
SSLType IMAPS
CertificateFile {cert}
PipelineDepth 50

IMAPStore remote
Account evermail

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
"""
    )
    return rc


def run_mbsync(rc: Path, what: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        ["mbsync", "-c", str(rc), "-a"],
        capture_output=True,
        text=True,
        timeout=MBSYNC_TIMEOUT,
    )
    assert proc.returncode == 0, f"mbsync failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    # Reported, never asserted: `pytest -s` shows it.
    print(f"mbsync {what}: {time.monotonic() - started:.1f} s")


def normalise(body: bytes) -> bytes:
    """LF line ends, and no X-TUID header line (mbsync's own bookkeeping, which it
    adds to every message it copies into a Maildir)."""
    body = body.replace(b"\r\n", b"\n")
    head, sep, rest = body.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.startswith(b"X-TUID: ")]
    return b"\n".join(lines) + sep + rest


def maildir_messages(folder: Path) -> list[tuple[Path, bytes, frozenset]]:
    """(path, body, IMAP flags) of every message in a Maildir folder."""
    out = []
    for sub in ("cur", "new"):
        for path in sorted((folder / sub).iterdir()) if (folder / sub).is_dir() else []:
            info = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            flags = frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)
            out.append((path, path.read_bytes(), flags))
    return out


def maildir_folders(root: Path) -> dict[str, Path]:
    """{mailbox name: folder} for every Maildir folder mbsync made."""
    folders = {}
    for cur in root.rglob("cur"):
        folders[str(cur.parent.relative_to(root))] = cur.parent
    return folders


def server_messages(client: imaplib.IMAP4, mailbox: str) -> dict[int, tuple[bytes, frozenset]]:
    """{UID: (body, flags)} of a mailbox, read without changing \\Seen."""
    typ, data = client.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK", (mailbox, data)
    if int(data[-1]) == 0:
        return {}
    typ, data = client.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for items in parse_fetch(data).values():
        flags = frozenset(str(f) for f in items["FLAGS"] if str(f) != "\\Recent")
        out[int(items["UID"])] = (items["BODY[]"], flags)
    return out


def server_mailboxes(client: imaplib.IMAP4) -> list[str]:
    typ, data = client.list('""', "*")
    assert typ == "OK", data
    return [name for attrs, _, name in parse_list(data) if "\\Noselect" not in attrs]


def assert_in_sync(client: imaplib.IMAP4, maildir: Path) -> int:
    """Both sides hold the same messages with the same flags; returns the count."""
    folders = maildir_folders(maildir)
    total = 0
    for mailbox in server_mailboxes(client):
        remote = sorted(
            (normalise(body), sorted(flags)) for body, flags in server_messages(client, mailbox).values()
        )
        folder = folders.get(mailbox)
        local = sorted(
            (normalise(body), sorted(flags)) for _, body, flags in maildir_messages(folder)
        ) if folder else []
        assert len(remote) == len(local), f"{mailbox}: server {len(remote)}, Maildir {len(local)}"
        for i, (r, l) in enumerate(zip(remote, local)):
            assert r == l, f"{mailbox}: message {i} differs:\nserver  {r[1]} {r[0][:200]!r}\nMaildir {l[1]} {l[0][:200]!r}"
        total += len(remote)
    return total


def maildir_uid(path: Path) -> int:
    """The server UID mbsync recorded in a Maildir file name (0 for new local mail)."""
    m = re.search(r",U=(\d+)", path.name)
    return int(m.group(1)) if m else 0


def set_maildir_flags(path: Path, flags: str) -> None:
    """Gives a Maildir message new info flags, moving it to cur/ as a client would."""
    base = path.name.split(":2,", 1)[0]
    path.rename(path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}")


def test_mbsync_two_way_sync_of_thousands_of_messages(users, tmp_path):
    started = time.monotonic()
    deliver_many(users, MESSAGES)
    print(f"LMTP delivery of {MESSAGES} messages: {time.monotonic() - started:.1f} s")
    rc = mbsyncrc(users, tmp_path)
    maildir = tmp_path / "Maildir"

    run_mbsync(rc, f"first sync of {MESSAGES} messages")
    client = imaplib.IMAP4(HOST, users.ports["imap"], timeout=NET_TIMEOUT)
    client.login(*ALICE)
    assert assert_in_sync(client, maildir) == MESSAGES
    expected = MESSAGES

    for round_ in range(2):
        # Server side: flag some, delete and expunge some, append new mail.
        client.select("INBOX")
        base = 10 + round_ * 100
        client.store(f"{base}:{base + 20}", "+FLAGS", "(\\Flagged)")
        client.store(f"{base + 21}:{base + 40}", "+FLAGS", "(\\Seen \\Answered)")
        client.store(f"{base + 41}:{base + 50}", "+FLAGS", "(\\Deleted)")
        typ, _ = client.expunge()
        assert typ == "OK"
        for i in range(5):
            typ, data = client.append(
                "Archive", "(\\Seen)", None, message(f"server round {round_} {i}")
            )
            assert typ == "OK", data

        # Maildir side: change flags, delete files, add new mail; only messages the
        # server side left alone (by UID, which mbsync puts in the file name).
        inbox = sorted(maildir_messages(maildir / "INBOX"), key=lambda m: maildir_uid(m[0]))
        for path, _, _ in inbox[1000 + round_ * 100 : 1020 + round_ * 100]:
            set_maildir_flags(path, "FS")
        for path, _, _ in inbox[1050 + round_ * 100 : 1065 + round_ * 100]:
            path.unlink()
        for i in range(5):
            name = f"local-{round_}-{i}.{os.getpid()}.evermail-test"
            body = message(f"local round {round_} {i}").replace(b"\r\n", b"\n")
            (maildir / "INBOX" / "new" / name).write_bytes(body)
        expected += 5 + 5 - 10 - 15

        if round_ == 0:
            # New folders on each side, nested, created by the other side's sync.
            assert client.create("Lists/rust")[0] == "OK"
            for i in range(3):
                assert client.append("Lists/rust", None, None, message(f"list {i}"))[0] == "OK"
            folder = maildir / "Projects" / "2026"
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True)
            for i in range(3):
                body = message(f"project {i}").replace(b"\r\n", b"\n")
                (folder / "new" / f"project-{i}.{os.getpid()}.evermail-test").write_bytes(body)
            expected += 6

        run_mbsync(rc, f"round {round_}, changes on both sides")
        # mbsync found both sides' changes in this run; a second run has nothing
        # left to do and must keep them equal.
        run_mbsync(rc, f"round {round_}, nothing changed")
        client.noop()
        total = assert_in_sync(client, maildir)
        assert "Projects/2026" in server_mailboxes(client)
        assert "Lists/rust" in maildir_folders(maildir)
        assert total == expected, f"round {round_}: {total} messages, expected {expected}"

    client.logout()
