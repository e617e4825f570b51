"""SEARCH's header keys (SUBJECT, FROM, TO, CC, BCC, HEADER) through the text
index (issue 7), with imaplib against the real binary. The first search of a
mailbox without an index answers by scanning and the indexer builds the index
in the background; later searches use it (the evermail_text_index_searches_total
metric says so) and answer the same, also after new mail and an expunge. With
`[search] index_new_mail` (the default) the index is built after delivery, so even
the first search reads it."""

import time

from conftest import ALICE, CONFIG, deliver_ok, message, select

BUILD_ON_SEARCH = CONFIG + "\n[search]\nindex_new_mail = false\n"

QUARTERLY = (
    b"From: Bob Report <bob@example.org>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: Quarterly report\r\n"
    b"\r\n"
    b"The figures.\r\n"
)

JOERG = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.net>\r\n"
    b"Cc: Team <team@example.com>\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"\r\n"
    b"Hello.\r\n"
)

CASES = [
    (("SUBJECT", "report"), [1]),
    (("SUBJECT", "REPORT"), [1]),
    (("FROM", "report"), [1]),
    (("FROM", "joerg"), [2]),
    (("SUBJECT", "lunch"), [3, 4]),
    (("HEADER", "X-Ticket", "4242"), [3]),
    (("BCC", "hidden"), [3]),
    (("CC", "team"), [2]),
    (("TO", "alice"), [1, 3, 4]),
    (("SUBJECT", "lu"), [3, 4]),  # too short for the index: scanned
    (("OR", "FROM", "joerg", "SUBJECT", "lunch"), [2, 3, 4]),
    (("NOT", "SUBJECT", "lunch"), [1, 2]),
    (("UID", "4:*", "SUBJECT", "lunch"), [4]),
    (("TEXT", "report"), [1, 4]),
]

# After message 5 ("lunch report") arrives and 3 is expunged.
CASES_AFTER = [
    (("SUBJECT", "lunch"), [4, 5]),
    (("SUBJECT", "report"), [1, 5]),
    (("HEADER", "X-Ticket", "4242"), []),
    (("BCC", "hidden"), []),
    (("TO", "alice"), [1, 4, 5]),
    (("NOT", "SUBJECT", "lunch"), [1, 2]),
]


def uid_search(client, *criteria) -> list[int]:
    client.noop()  # take in deliveries and expunges first
    typ, data = client.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def searches(server, index: str) -> float:
    """evermail_text_index_searches_total{index=...}: "used" or "none"."""
    status, _, body = server.http_get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("evermail_text_index_searches_total{") and f'index="{index}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def eventually(what: str, done) -> None:
    """Waits for the background indexer; fails after a minute rather than hang."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_header_search_without_then_with_the_index(make_server):
    server = make_server("hdr", BUILD_ON_SEARCH).start()
    server.add_account(*ALICE)
    for body in [
        QUARTERLY,  # 1
        JOERG,  # 2
        message("lunch", "Soup.\r\n",
                extra_headers="X-Ticket: T-4242\r\nBcc: hidden@example.com\r\n"),  # 3
        message("re: lunch", "The report body.\r\n"),  # 4
    ]:
        deliver_ok(server, [ALICE[0]], body)
    client = server.imap(*ALICE)
    assert select(client) == 4

    # No index yet: the first search is answered by scanning and asks for one.
    assert uid_search(client, "SUBJECT", "report") == [1]
    assert searches(server, "none") == 1
    assert searches(server, "used") == 0
    # The indexer builds it in the background; a later search uses it.
    eventually("a search uses the index",
               lambda: uid_search(client, "SUBJECT", "report") == [1]
               and searches(server, "used") >= 1)
    assert any((server.data_dir / "index").glob("*/*/meta.json"))

    used = searches(server, "used")
    for criteria, want in CASES:
        assert uid_search(client, *criteria) == want, criteria
    assert searches(server, "used") > used

    # New mail and an expunge: still the scan's answers, through the index.
    deliver_ok(server, [ALICE[0]], message("lunch report", "Later.\r\n"))  # 5
    client.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    client.expunge()
    used = searches(server, "used")
    for criteria, want in CASES_AFTER:
        assert uid_search(client, *criteria) == want, criteria
    assert searches(server, "used") >= used + len(CASES_AFTER)
    client.logout()


def test_new_mail_is_indexed_before_the_first_search(make_server):
    server = make_server("auto").start()
    server.add_account(*ALICE)
    for body in [QUARTERLY, JOERG, message("lunch", "Soup.\r\n")]:
        deliver_ok(server, [ALICE[0]], body)
    # The indexer builds INBOX's index a little after the deliveries, unasked.
    eventually("the index is built after delivery",
               lambda: any((server.data_dir / "index").glob("*/*/meta.json")))
    client = server.imap(*ALICE)
    assert select(client) == 3
    eventually("the first search uses the index",
               lambda: uid_search(client, "SUBJECT", "report") == [1]
               and searches(server, "used") >= 1)
    assert searches(server, "none") == 0
    assert uid_search(client, "FROM", "joerg") == [2]
    assert uid_search(client, "BODY", "soup") == [3]
    assert searches(server, "none") == 0
    client.logout()
