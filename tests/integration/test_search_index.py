"""SEARCH BODY/TEXT through the text index (issue 3), with Python's imaplib
against the real binary: the right UIDs after deliveries, an expunge, a restart
of the server and the deletion of the index directory; combined with flag keys,
NOT and OR; CHARSET UTF-8 with a non-ASCII string matching a quoted-printable
ISO-8859-1 body."""

import shutil
import time

from conftest import ALICE, deliver_ok, message, select

LATIN1_QP = (
    "From: Sender <sender@example.net>\r\n"
    "To: Alice <alice@example.com>\r\n"
    "Subject: greetings\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Sch=F6ne Gr=FC=DFe aus K=F6ln.\r\n"
).encode()

WITH_ATTACHMENT = (
    "From: Sender <sender@example.net>\r\n"
    "To: Alice <alice@example.com>\r\n"
    "Subject: figures\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n'
    "\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nThe spreadsheet is attached.\r\n"
    '--b\r\nContent-Type: application/octet-stream; name="x.bin"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\n"
    "c2VjcmV0d29yZCBpbnNpZGU=\r\n--b--\r\n"
).encode()


def uid_search(client, *criteria) -> list[int]:
    client.noop()  # take in deliveries and expunges first
    typ, data = client.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def utf8_body_search(client, needle: str) -> list[int]:
    client.noop()
    client.literal = needle.encode()
    typ, data = client.uid("SEARCH", "CHARSET", "UTF-8", "BODY")
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def wait_for_index(server) -> None:
    """Waits for the background indexer to make an index; fails after a minute."""
    deadline = time.monotonic() + 60
    while not any((server.data_dir / "index").glob("*/*/meta.json")):
        assert time.monotonic() < deadline, "the index was never built"
        time.sleep(0.05)


def test_search_body_and_text_with_the_index(make_server):
    server = make_server("fts").start()
    server.add_account(*ALICE)
    bodies = [
        message("Quarterly numbers", "The REPORT is late.\r\n"),  # 1
        LATIN1_QP,  # 2
        WITH_ATTACHMENT,  # 3
        message("reports", "Nothing to see.\r\n"),  # 4
        message("misc", "deport the reporting unit\r\n"),  # 5
    ]
    for body in bodies:
        deliver_ok(server, [ALICE[0]], body)

    client = server.imap(*ALICE)
    assert select(client) == 5
    assert uid_search(client, "BODY", "report") == [1, 5]
    assert uid_search(client, "TEXT", "report") == [1, 4, 5]
    assert uid_search(client, "BODY", "secretword") == []
    assert uid_search(client, "BODY", "attached") == [3]
    assert utf8_body_search(client, "grüße") == [2]
    assert utf8_body_search(client, "SCHÖNE GRÜSSE") == []  # ß is not ss
    assert utf8_body_search(client, "SCHÖNE GRÜ") == [2]
    wait_for_index(server)  # the first search asked the background indexer

    # Combined with other keys: the index only decides the BODY/TEXT part.
    client.uid("STORE", "1", "+FLAGS", r"(\Seen)")
    assert uid_search(client, "UNSEEN", "BODY", "report") == [5]
    assert uid_search(client, "NOT", "BODY", "report") == [2, 3, 4]
    assert uid_search(client, "OR", "BODY", "spreadsheet", "SUBJECT", "misc") == [3, 5]
    assert uid_search(client, "UID", "2:5", "TEXT", "report") == [4, 5]
    # Short strings are not indexed and still work.
    assert uid_search(client, "BODY", "is") == [1, 3]

    # A delivery after the index was built is found; an expunged message is not.
    deliver_ok(server, [ALICE[0]], message("late", "A new report arrived.\r\n"))  # 6
    assert uid_search(client, "BODY", "report") == [1, 5, 6]
    client.uid("STORE", "5", "+FLAGS", r"(\Deleted)")
    client.expunge()
    assert uid_search(client, "BODY", "report") == [1, 6]
    client.logout()

    # A restart keeps the index; a deleted index is rebuilt.
    server.restart()
    client = server.imap(*ALICE)
    select(client)
    assert uid_search(client, "BODY", "report") == [1, 6]
    assert uid_search(client, "TEXT", "report") == [1, 4, 6]
    client.logout()
    server.stop()
    shutil.rmtree(server.data_dir / "index")
    server.start()
    client = server.imap(*ALICE)
    select(client)
    assert uid_search(client, "BODY", "report") == [1, 6]
    assert utf8_body_search(client, "grüße") == [2]
    wait_for_index(server)
    client.logout()
