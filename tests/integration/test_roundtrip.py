"""LMTP in, IMAP out: what is delivered is what is fetched, byte for byte."""

import imaplib
import time

import pytest

from conftest import (
    ALICE,
    BOB,
    deliver_ok,
    fetch_bodies,
    imap_quote,
    message,
    parse_fetch,
    parse_list,
    select,
)

MULTIPART = (
    b"From: Sender <sender@example.net>\r\n"
    b"To: Alice <alice@example.com>, Bob <bob@example.com>\r\n"
    b"Subject: Quarterly report attached\r\n"
    b"Message-ID: <multipart-1@test.example>\r\n"
    b"Date: Mon, 23 Nov 2026 10:01:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="=-=b0undary=-="\r\n'
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"\r\n"
    b"--=-=b0undary=-=\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Please find the report attached.\r\n"
    b"\r\n"
    b"--=-=b0undary=-=\r\n"
    b'Content-Type: application/octet-stream; name="report.bin"\r\n'
    b'Content-Disposition: attachment; filename="report.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n"
    b"OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\n"
    b"cnN0dXZ3eHl6e3x9fn8=\r\n"
    b"\r\n"
    b"--=-=b0undary=-=--\r\n"
)

UTF8 = (
    "From: Jörg <joerg@example.net>\r\n"
    "To: alice@example.com\r\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    "Message-ID: <utf8-1@test.example>\r\n"
    "Date: Mon, 23 Nov 2026 10:02:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Köln, 日本語のテキスト, emoji 📬.\r\n"
    "Ünïcödé on a second line.\r\n"
).encode("utf-8")

DOTS = (
    b"From: sender@example.net\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: dots\r\n"
    b"Message-ID: <dots-1@test.example>\r\n"
    b"Date: Mon, 23 Nov 2026 10:03:00 +0000\r\n"
    b"\r\n"
    b".starts with a dot\r\n"
    b"..starts with two dots\r\n"
    b".\r\n"
    b"the line above is a single dot\r\n"
    b"...\r\n"
)

HEADERS_ONLY = (
    b"From: sender@example.net\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: headers only\r\n"
    b"Message-ID: <headers-only-1@test.example>\r\n"
    b"Date: Mon, 23 Nov 2026 10:04:00 +0000\r\n"
)

PLAIN = message("plain text", "Hello Alice and Bob.\r\nSecond line.\r\n",
                msgid="<plain-1@test.example>")

MESSAGES = [PLAIN, MULTIPART, UTF8, DOTS, HEADERS_ONLY]
SUBJECTS = [b"plain text", b"Quarterly report attached", b"=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
            b"dots", b"headers only"]

SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash",
               "Junk": "\\Junk", "Archive": "\\Archive"}


@pytest.fixture
def delivered(users):
    """alice and bob each got MESSAGES, in order, in one transaction each."""
    for data in MESSAGES:
        deliver_ok(users, [ALICE[0], BOB[0]], data, mail_options=["BODY=8BITMIME"])
    return users


def fetch_all(client):
    typ, data = client.fetch(
        "1:*",
        "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[])",
    )
    assert typ == "OK", (typ, data)
    return parse_fetch(data)


@pytest.mark.parametrize("user", [ALICE, BOB], ids=["alice", "bob"])
def test_each_recipient_fetches_every_message_byte_for_byte(delivered, user):
    client = delivered.imap(*user)
    try:
        assert select(client) == len(MESSAGES)
        msgs = fetch_all(client)
    finally:
        client.logout()
    assert sorted(msgs) == list(range(1, len(MESSAGES) + 1))
    for seq, sent in enumerate(MESSAGES, start=1):
        got = msgs[seq]
        assert got["BODY[]"] == sent, f"message {seq} differs"
        assert int(got["RFC822.SIZE"]) == len(sent), f"RFC822.SIZE of message {seq}"
        assert "\\Seen" not in got["FLAGS"], "BODY.PEEK[] must not set \\Seen"
        assert imaplib.Internaldate2tuple(
            b'INTERNALDATE "' + got["INTERNALDATE"] + b'"'
        ), f"unparseable INTERNALDATE {got['INTERNALDATE']!r}"
        envelope = got["ENVELOPE"]
        assert isinstance(envelope, list) and len(envelope) == 10, envelope
        assert envelope[1] == SUBJECTS[seq - 1], f"ENVELOPE subject of message {seq}"
    uids = [int(msgs[s]["UID"]) for s in sorted(msgs)]
    assert uids == sorted(set(uids)), f"UIDs not strictly ascending: {uids}"


def test_envelope_names_sender_and_message_id(delivered):
    client = delivered.imap(*ALICE)
    try:
        select(client)
        typ, data = client.fetch("1", "(ENVELOPE)")
        assert typ == "OK", (typ, data)
    finally:
        client.logout()
    env = parse_fetch(data)[1]["ENVELOPE"]
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, msgid = env
    assert subject == b"plain text"
    assert msgid == b"<plain-1@test.example>"
    assert from_[0][2:] == [b"sender", b"example.net"], from_
    assert to[0][2:] == [b"alice", b"example.com"], to


def _lower(x):
    if isinstance(x, list):
        return [_lower(i) for i in x]
    if isinstance(x, (bytes, str)):
        return (x.decode() if isinstance(x, bytes) else x).lower()
    return x


def test_bodystructure_of_multipart_names_both_parts(delivered):
    client = delivered.imap(*ALICE)
    try:
        select(client)
        typ, data = client.fetch("2", "(BODYSTRUCTURE)")
        assert typ == "OK", (typ, data)
    finally:
        client.logout()
    bs = _lower(parse_fetch(data)[2]["BODYSTRUCTURE"])
    # body-type-mpart: the parts (lists), then the subtype, then extensions.
    parts = []
    for item in bs:
        if not isinstance(item, list):
            break
        parts.append(item)
    assert len(parts) >= 2, f"expected two body parts in {bs!r}"
    # The first non-list element after the parts is the multipart subtype.
    assert bs[len(parts)] == "mixed", bs
    assert parts[0][:2] == ["text", "plain"], parts[0]
    assert parts[1][:2] == ["application", "octet-stream"], parts[1]
    assert "report.bin" in repr(parts[1]), parts[1]
    # body-fld-enc of the attachment.
    assert parts[1][5] == "base64", parts[1]


def test_bodystructure_of_plain_text(delivered):
    client = delivered.imap(*ALICE)
    try:
        select(client)
        typ, data = client.fetch("1", "(BODYSTRUCTURE)")
        assert typ == "OK", (typ, data)
    finally:
        client.logout()
    bs = _lower(parse_fetch(data)[1]["BODYSTRUCTURE"])
    assert bs[:2] == ["text", "plain"], bs
    body_len = len(PLAIN) - PLAIN.index(b"\r\n\r\n") - 4
    assert int(bs[6]) == body_len, f"body size {bs[6]} != {body_len}"


def test_uid_fetch_returns_the_same_bytes(delivered):
    client = delivered.imap(*BOB)
    try:
        bodies = fetch_bodies(client)
        assert list(bodies.values()) == MESSAGES
        for uid, body in bodies.items():
            typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[] RFC822.SIZE)")
            assert typ == "OK", (typ, data)
            (items,) = parse_fetch(data).values()
            assert int(items["UID"]) == uid
            assert items["BODY[]"] == body
            assert int(items["RFC822.SIZE"]) == len(body)
    finally:
        client.logout()


def test_select_reports_exists_uidvalidity_uidnext(delivered):
    client = delivered.imap(*ALICE)
    try:
        exists = select(client)
        _, uidvalidity = client.response("UIDVALIDITY")
        _, uidnext = client.response("UIDNEXT")
        bodies = fetch_bodies(client)
    finally:
        client.logout()
    assert exists == len(MESSAGES)
    assert uidvalidity and uidvalidity[0] and int(uidvalidity[0]) > 0, uidvalidity
    assert uidnext and uidnext[0], uidnext
    assert int(uidnext[0]) > max(bodies), f"UIDNEXT {uidnext[0]} <= max UID {max(bodies)}"


def test_non_peek_body_fetch_sets_seen(delivered):
    client = delivered.imap(*ALICE)
    try:
        select(client)
        typ, data = client.fetch("1", "(BODY[])")
        assert typ == "OK", (typ, data)
        assert parse_fetch(data)[1]["BODY[]"] == PLAIN
        typ, data = client.fetch("1:2", "(FLAGS)")
        assert typ == "OK", (typ, data)
        flags = parse_fetch(data)
        assert "\\Seen" in flags[1]["FLAGS"], flags
        assert "\\Seen" not in flags[2]["FLAGS"], flags
    finally:
        client.logout()
    # The flag is stored, not only remembered by the session.
    client = delivered.imap(*ALICE)
    try:
        select(client)
        typ, data = client.fetch("1", "(FLAGS)")
        assert "\\Seen" in parse_fetch(data)[1]["FLAGS"], data
    finally:
        client.logout()
    # And it is alice's flag only: bob's copy is still unseen.
    client = delivered.imap(*BOB)
    try:
        select(client)
        typ, data = client.fetch("1", "(FLAGS)")
        assert "\\Seen" not in parse_fetch(data)[1]["FLAGS"], data
    finally:
        client.logout()


def test_list_shows_inbox_and_special_use_mailboxes(users):
    client = users.imap(*ALICE)
    try:
        typ, data = client.list('""', "*")
        assert typ == "OK", (typ, data)
    finally:
        client.logout()
    mailboxes = {name: attrs for attrs, _, name in parse_list(data)}
    assert "INBOX" in {n.upper() for n in mailboxes}, mailboxes
    for name, attr in SPECIAL_USE.items():
        assert name in mailboxes, f"{name} missing from LIST: {mailboxes}"
        assert attr.lower() in [a.lower() for a in mailboxes[name]], (name, mailboxes[name])


def test_special_use_mailboxes_are_selectable_and_empty(users):
    client = users.imap(*ALICE)
    try:
        for name in SPECIAL_USE:
            assert select(client, name) == 0, name
    finally:
        client.logout()


def test_wrong_password_is_authenticationfailed(users):
    client = imaplib.IMAP4("127.0.0.1", users.ports["imap"], timeout=30)
    try:
        with pytest.raises(imaplib.IMAP4.error) as err:
            client.login(ALICE[0], "not-the-password")
        assert "AUTHENTICATIONFAILED" in str(err.value), str(err.value)
        # The session stays usable: a correct LOGIN after a wrong one works.
        typ, _ = client.login(ALICE[0], ALICE[1])
        assert typ == "OK"
    finally:
        client.logout()


def test_unknown_user_is_authenticationfailed(users):
    client = imaplib.IMAP4("127.0.0.1", users.ports["imap"], timeout=30)
    try:
        with pytest.raises(imaplib.IMAP4.error) as err:
            client.login("nobody@example.com", ALICE[1])
        assert "AUTHENTICATIONFAILED" in str(err.value), str(err.value)
    finally:
        client.shutdown()


def test_select_unknown_mailbox_is_no(users):
    client = users.imap(*ALICE)
    try:
        typ, data = client.select(imap_quote("No Such Mailbox"))
        assert typ == "NO", (typ, data)
    finally:
        client.logout()


def test_noop_shows_a_delivery_to_the_selected_inbox(users):
    first = message("already there")
    deliver_ok(users, [ALICE[0]], first)
    client = users.imap(*ALICE)
    try:
        assert select(client) == 1
        later = message("arrives while selected")
        deliver_ok(users, [ALICE[0]], later)
        exists = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            typ, _ = client.noop()
            assert typ == "OK"
            _, data = client.response("EXISTS")
            if data and data[-1]:
                exists = int(data[-1])
                if exists == 2:
                    break
            time.sleep(0.2)
        assert exists == 2, f"NOOP never reported `* 2 EXISTS` (last: {exists})"
        typ, data = client.fetch("2", "(BODY.PEEK[])")
        assert parse_fetch(data)[2]["BODY[]"] == later
    finally:
        client.logout()


def test_long_body_line_is_stored_intact(users):
    # Longer than RFC 5322's 998 characters; MTAs pass such lines on, and the
    # store must keep them as sent.
    data = message("long line", "a" * 20_000 + "\r\nshort\r\n" + "." + "b" * 5_000 + "\r\n")
    deliver_ok(users, [ALICE[0]], data)
    client = users.imap(*ALICE)
    try:
        assert list(fetch_bodies(client).values()) == [data]
    finally:
        client.logout()
