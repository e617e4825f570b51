"""IMAP extensions through imaplib against the real binary: CONDSTORE and QRESYNC
(RFC 7162), BINARY, SEARCHRES, LIST-STATUS, LITERAL- and ENABLE IMAP4rev2, following
the RFCs' examples with this server's own UIDs and MODSEQ values."""

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
    assert all(re.match(r"[13] \(UID [13] FLAGS \(\\Recent \\Deleted\) MODSEQ \(\d+\)\)", f) for f in fetched), fetched

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


ATTACHMENT = (
    b"From: Sender <sender@example.net>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: binary\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="xx"\r\n'
    b"\r\n"
    b"--xx\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"see attached\r\n"
    b"--xx\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
    b"--xx--\r\n"
)


def test_binary_fetch_and_literal8_append(users):
    deliver_ok(users, [ALICE[0]], ATTACHMENT)
    client = users.imap(*ALICE)
    client.select("INBOX")
    # RFC 3516: the part with its base64 undone; NULs force literal8, which imaplib
    # reads like a literal.
    typ, data = client.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2])")
    assert typ == "OK", data
    assert data[0][1] == bytes(range(32)), data
    assert b"BINARY.SIZE[2] 32" in data[1], data
    typ, data = client.fetch("1", "(BINARY.PEEK[2]<30.10>)")
    assert data[0][0].endswith(b"BINARY[2]<30> {2}") and data[0][1] == b"\x1e\x1f", data

    # APPEND with literal8 stores bytes a plain literal could not carry.
    body = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\nx\x00y\r\n"
    tag = client._new_tag()
    client.tagged_commands[tag] = None
    client.send(tag + f" APPEND INBOX ~{{{len(body)}+}}\r\n".encode() + body + b"\r\n")
    typ, data = client._command_complete("APPEND", tag)
    assert typ == "OK", data
    client.select("INBOX")
    typ, data = client.fetch("2", "(BINARY.PEEK[1])")
    assert data[0][1] == b"x\x00y\r\n", data
    client.logout()


def test_searchres_and_list_status(users):
    deliver(users, 4)
    client = users.imap(*ALICE)
    client.select("INBOX")
    client.store("2:3", "+FLAGS.SILENT", "(\\Flagged)")
    # RFC 5182 section 4 example: save, then use `$`.
    typ, text, untagged = command(client, "SEARCH", "RETURN (SAVE) FLAGGED")
    assert typ == "OK" and "ESEARCH" not in untagged and "SEARCH" not in untagged, untagged
    typ, data = client.fetch("$", "(UID)")
    assert typ == "OK" and [d.split()[0] for d in data] == [b"2", b"3"], data
    typ, data = client.uid("SEARCH", "NOT", "UID", "$")
    assert data == [b"1 4"], data

    # LIST-STATUS (RFC 5819): a STATUS line for each mailbox listed.
    client.create("Archive")
    typ, text, untagged = command(
        client, "LIST", '"" (INBOX Archive) RETURN (STATUS (MESSAGES UNSEEN SIZE))'
    )
    assert typ == "OK", text
    statuses = texts(untagged, "STATUS")
    assert len(statuses) == 2, statuses
    assert re.fullmatch(r"INBOX \(MESSAGES 4 UNSEEN 4 SIZE \d+\)", statuses[0]), statuses
    assert statuses[1] == "Archive (MESSAGES 0 UNSEEN 0 SIZE 0)", statuses
    client.logout()


def test_literal_minus_before_login(users):
    client = imaplib.IMAP4("127.0.0.1", users.ports["imap"], timeout=30)
    assert "LITERAL-" in client.capabilities and "LITERAL+" not in client.capabilities
    tag = client._new_tag().decode()
    client.send(f"{tag} LOGIN {{5000+}}\r\n".encode())
    line = client.readline()
    assert line.startswith(f"{tag} BAD [TOOBIG]".encode()), line
    assert client.readline().startswith(b"* BYE"), "the connection must close"
    client.shutdown()


def test_imap4rev2_session(users):
    deliver(users, 2)
    client = users.imap(*ALICE)
    assert "IMAP4REV2" in client.capabilities, client.capabilities
    typ, _, untagged = command(client, "ENABLE", "IMAP4rev2")
    assert texts(untagged, "ENABLED") == ["IMAP4rev2"], untagged
    _, _, untagged = raw_select(client, "INBOX")
    assert "RECENT" not in untagged, untagged
    assert texts(untagged, "LIST") == ['() "/" INBOX'], untagged
    typ, text, untagged = command(client, "SEARCH", "ALL")
    esearch = texts(untagged, "ESEARCH")
    assert len(esearch) == 1 and re.fullmatch(r'\(TAG "\w+"\) ALL 1:2', esearch[0]), untagged
    typ, data = client.fetch("1:*", "(FLAGS)")
    assert all(b"\\Recent" not in d for d in data), data
    client.logout()


def thread_message(subject: str, msgid: str, refs: str = "", body: str = "Hello.\r\n",
                   date: str = "Mon, 23 Nov 2026 10:00:00 +0000") -> bytes:
    extra = f"References: {refs}\r\n" if refs else ""
    return (
        "From: Sender <sender@example.net>\r\n"
        "To: Alice <alice@example.com>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {msgid}\r\n"
        f"Date: {date}\r\n"
        f"{extra}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    ).encode() + body.encode()


def test_text_search_sort_and_thread(users):
    for m in [
        thread_message("Plan", "<p1@t>", date="Mon, 23 Nov 2026 10:00:00 +0000"),
        thread_message("Re: Plan", "<p2@t>", "<p1@t>", "Gr=C3=BC=C3=9Fe\r\n",
                       date="Mon, 23 Nov 2026 11:00:00 +0000"),
        thread_message("Agenda", "<a1@t>", date="Mon, 23 Nov 2026 09:00:00 +0000"),
    ]:
        deliver_ok(users, [ALICE[0]], m)
    client = users.imap(*ALICE)
    client.select("INBOX")
    # RFC 9051 section 6.4.4: text keys, and a UTF-8 string sent as a literal.
    typ, data = client.search(None, "SUBJECT", "plan")
    assert data == [b"1 2"], data
    client.literal = "grüße".encode()
    typ, data = client.search("UTF-8", "BODY")
    assert typ == "OK" and data == [b"2"], data
    typ, data = client.search(None, 'TEXT "not in any message"')
    assert data == [b""], data
    # RFC 5256.
    typ, data = client.sort("(DATE)", "UTF-8", "ALL")
    assert data == [b"3 1 2"], data
    typ, data = client.sort("(SUBJECT REVERSE DATE)", "UTF-8", "ALL")
    assert data == [b"3 2 1"], data
    typ, data = client.thread("REFERENCES", "UTF-8", "ALL")
    assert data == [b"(3)(1 2)"], data
    typ, data = client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data == [b"(3)(1 2)"], data
    client.logout()


def test_objectid_and_utf8_accept(users):
    deliver(users, 1)
    client = users.imap(*ALICE)
    assert "OBJECTID" in client.capabilities and "UTF8=ACCEPT" in client.capabilities
    # RFC 8474: CREATE names the new mailbox's id, STATUS repeats it, FETCH EMAILID.
    typ, text, _ = command(client, "CREATE", "Projects")
    created = re.match(r"\[MAILBOXID \((\w+)\)\]", text)
    assert typ == "OK" and created, text
    typ, data = client.status("Projects", "(MAILBOXID)")
    assert data == [f"Projects (MAILBOXID ({created.group(1)}))".encode()], data
    client.select("INBOX")
    typ, data = client.fetch("1", "(EMAILID THREADID)")
    assert re.fullmatch(rb"1 \(EMAILID \(E[0-9a-f]{24}\) THREADID NIL\)", data[0]), data
    client.copy("1", "Projects")
    client.select("Projects")
    typ, copied = client.fetch("1", "(EMAILID)")
    assert copied[0].split(b"EMAILID")[1] == data[0].split(b"EMAILID")[1].split(b" THREADID")[0] + b")", (data, copied)

    # RFC 6855: after ENABLE UTF8=ACCEPT names are UTF-8 and SEARCH takes no CHARSET.
    client.unselect()
    client.untagged_responses.clear()
    typ, data = client.enable("UTF8=ACCEPT")  # imaplib then sends UTF-8
    assert client.untagged_responses.get("ENABLED") == [b"UTF8=ACCEPT"], client.untagged_responses
    typ, data = client.create('"Grüße"')
    assert typ == "OK", data
    typ, data = client.list('""', '"Gr*"')
    assert typ == "OK" and data[0][1] == "Grüße".encode(), data
    client.select("INBOX")
    try:
        command(client, "SEARCH", "CHARSET UTF-8 ALL")  # imaplib's search() refuses it
    except imaplib.IMAP4.error as e:
        assert "no CHARSET after ENABLE UTF8=ACCEPT" in str(e), e
    else:
        raise AssertionError("SEARCH CHARSET was accepted after ENABLE UTF8=ACCEPT")
    client.logout()


def test_recent_belongs_to_one_rev1_session(users):
    """RFC 3501 section 2.3.2: a message is \\Recent in exactly one session; EXAMINE
    and STATUS look without claiming, and a session with the mailbox selected claims a
    delivery when it is first told of it."""
    deliver(users, 2)
    looker = users.imap(*ALICE)
    typ, data = looker.status("INBOX", "(RECENT)")
    assert data[0] == b"INBOX (RECENT 2)", data
    looker.select("INBOX", readonly=True)
    assert looker.untagged_responses.get("RECENT") == [b"0"], looker.untagged_responses
    looker.close()

    first = users.imap(*ALICE)
    typ, data = first.select("INBOX")
    assert first.untagged_responses.get("RECENT") == [b"2"], first.untagged_responses
    typ, data = first.fetch("1:*", "(FLAGS)")
    assert all(b"\\Recent" in d for d in data), data
    first.store("1", "+FLAGS", "(\\Seen)")
    assert first.search(None, "NEW")[1] == [b"2"]
    assert first.search(None, "RECENT")[1] == [b"1 2"]

    second = users.imap(*ALICE)
    second.select("INBOX")
    assert second.untagged_responses.get("RECENT") == [b"0"], second.untagged_responses
    assert second.search(None, "OLD")[1] == [b"1 2"]
    typ, data = looker.status("INBOX", "(RECENT)")
    assert data[0] == b"INBOX (RECENT 0)", data

    # Delivered while both have INBOX selected: the first to ask gets it.
    deliver(users, 1)
    second.untagged_responses.clear()
    typ, data = second.noop()
    assert second.untagged_responses.get("EXISTS") == [b"3"], second.untagged_responses
    assert second.untagged_responses.get("RECENT") == [b"1"], second.untagged_responses
    assert second.search(None, "RECENT")[1] == [b"3"]
    first.noop()
    assert first.search(None, "RECENT")[1] == [b"1 2"]
    typ, data = first.fetch("3", "(FLAGS)")
    assert b"\\Recent" not in data[0], data
    for client in (looker, first, second):
        client.logout()
