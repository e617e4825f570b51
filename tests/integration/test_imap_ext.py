"""IMAP extensions through imaplib against the real binary: CONDSTORE and QRESYNC
(RFC 7162), following the RFC's examples with this server's own MODSEQ values."""

import imaplib
import re

from conftest import ALICE, BOB, deliver_ok, message


def deliver(server, n: int) -> None:
    for i in range(n):
        deliver_ok(server, [ALICE[0]], message(f"ext {i}"))


def command(client: imaplib.IMAP4, name: str, args: str = ""):
    """Runs one command; (status, tagged text, {untagged type: [data]})."""
    client.untagged_responses.clear()
    typ, data = client._simple_command(name, *([args] if args else []))
    untagged = {k: list(v) for k, v in client.untagged_responses.items()}
    client.untagged_responses.clear()
    text = data[-1].decode() if data and data[-1] else ""
    return typ, text, untagged


def raw_select(client: imaplib.IMAP4, args: str):
    """SELECT with parameters imaplib's select() cannot send."""
    result = command(client, "SELECT", args)
    assert result[0] == "OK", result
    client.state = "SELECTED"
    return result


def code_value(untagged: dict, name: str) -> int:
    return int(untagged[name][0])


def texts(untagged: dict, kind: str) -> list[str]:
    return [d.decode() for d in untagged.get(kind, [])]


def test_capability_lists_condstore_and_qresync(users):
    client = users.imap(*ALICE)
    caps = client.capabilities
    assert "CONDSTORE" in caps and "QRESYNC" in caps, caps
    typ, _, untagged = command(client, "ENABLE", "QRESYNC")
    assert typ == "OK" and texts(untagged, "ENABLED") == ["QRESYNC"], untagged
    client.logout()


def test_condstore_store_fetch_search(users):
    deliver(users, 4)
    client = users.imap(*ALICE)
    _, _, untagged = raw_select(client, "INBOX (CONDSTORE)")
    highest = code_value(untagged, "HIGHESTMODSEQ")

    # RFC 7162 section 3.1.3, example 6: a conditional store that fails for one
    # message changed since the client's MODSEQ.
    typ, data = client.store("2", "+FLAGS.SILENT", "(\\Answered)")
    assert typ == "OK", data
    typ, text, untagged = command(
        client, "STORE", f"1:3 (UNCHANGEDSINCE {highest}) +FLAGS.SILENT (\\Deleted)"
    )
    assert typ == "OK" and text.startswith("[MODIFIED 2]"), (typ, text)
    fetched = texts(untagged, "FETCH")
    assert len(fetched) == 2, fetched
    assert all(re.match(r"[13] \(UID [13] FLAGS \(\\Deleted\) MODSEQ \(\d+\)\)", f) for f in fetched), fetched

    # FETCH (CHANGEDSINCE) returns only what changed, with MODSEQ.
    typ, data = client.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {highest})")
    assert typ == "OK", data
    seqs = sorted(int(d.split()[0]) for d in data)
    assert seqs == [1, 2, 3], data
    assert all(b"MODSEQ (" in d for d in data), data

    # SEARCH MODSEQ: the reply ends with the highest MODSEQ among the matches.
    typ, data = client.search(None, f"MODSEQ {highest + 1}")
    assert typ == "OK", data
    match = re.fullmatch(rb"1 2 3 \(MODSEQ (\d+)\)", data[0])
    assert match, data

    # STATUS HIGHESTMODSEQ agrees.
    typ, data = client.status("INBOX", "(HIGHESTMODSEQ)")
    assert typ == "OK", data
    assert f"HIGHESTMODSEQ {match.group(1).decode()}".encode() in data[0], data
    client.logout()


def test_qresync_select_and_vanished(users):
    deliver(users, 6)
    client = users.imap(*ALICE)
    typ, data = client.enable("QRESYNC")
    assert typ == "OK", data
    _, _, untagged = raw_select(client, "INBOX")
    uidvalidity = code_value(untagged, "UIDVALIDITY")
    highest = code_value(untagged, "HIGHESTMODSEQ")

    # Another client removes 2 and 5 and flags 3 while this one keeps its cache.
    other = users.imap(*ALICE)
    other.select("INBOX")
    other.store("2,5", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    other.uid("STORE", "3", "+FLAGS.SILENT", "(\\Flagged)")
    other.logout()

    # The live session hears of the removals as VANISHED, never EXPUNGE.
    typ, text, untagged = command(client, "NOOP")
    assert texts(untagged, "VANISHED") == ["2,5"], untagged
    assert "EXPUNGE" not in untagged, untagged
    client.logout()

    # RFC 7162 section 3.2.5.2: a reconnecting client resynchronizes in its SELECT.
    client = users.imap(*ALICE)
    client.enable("QRESYNC")
    _, _, untagged = raw_select(client, f"INBOX (QRESYNC ({uidvalidity} {highest} 1:6))")
    assert texts(untagged, "VANISHED") == ["(EARLIER) 2,5"], untagged
    fetched = texts(untagged, "FETCH")
    assert len(fetched) == 1 and re.fullmatch(
        r"2 \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", fetched[0]
    ), fetched

    # UID FETCH (CHANGEDSINCE n VANISHED), section 3.2.6.
    client.untagged_responses.clear()
    typ, data = client.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {highest} VANISHED)")
    assert typ == "OK", data
    assert texts(client.untagged_responses, "VANISHED") == ["(EARLIER) 2,5"]

    # EXPUNGE in this session: VANISHED and the new HIGHESTMODSEQ in the tagged OK.
    client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    typ, text, untagged = command(client, "EXPUNGE")
    assert typ == "OK" and text.startswith("[HIGHESTMODSEQ "), (typ, text)
    assert texts(untagged, "VANISHED") == ["1"], untagged
    client.logout()


def test_qresync_needs_enable(users):
    deliver(users, 1)
    client = users.imap(*BOB)
    try:
        command(client, "SELECT", "INBOX (QRESYNC (1 1))")
    except imaplib.IMAP4.error as e:
        assert "QRESYNC is not enabled" in str(e), e
    else:
        raise AssertionError("SELECT (QRESYNC ...) without ENABLE was accepted")
    client.logout()
