"""QUOTA (RFC 9208) and MULTIAPPEND (RFC 3502) against the real binary: the quota
set with `evermail account add --quota` is what GETQUOTAROOT reports over imaplib,
SETQUOTA is refused, an APPEND over quota gets NO [OVERQUOTA] and stores nothing,
and a MULTIAPPEND is stored whole or not at all."""

import imaplib
import socket

from conftest import HOST, NET_TIMEOUT, select

CAROL = ("carol@example.com", "carol-Secret-3")


def raw_command(server, command: bytes) -> list[bytes]:
    """Logs CAROL in on a plain socket, sends `command` (which may carry LITERAL+
    literals) and returns its response lines through the tagged one."""
    with socket.create_connection((HOST, server.ports["imap"]), timeout=NET_TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"* OK")
        s.sendall(b"a LOGIN %s %s\r\n" % (CAROL[0].encode(), CAROL[1].encode()))
        while not (line := f.readline()).startswith(b"a "):
            assert line, "connection closed"
        assert line.startswith(b"a OK"), line
        s.sendall(b"b " + command + b"\r\n")
        lines = []
        while True:
            line = f.readline()
            assert line, f"connection closed after {lines}"
            lines.append(line.rstrip(b"\r\n"))
            if line.startswith(b"b "):
                return lines


def multiappend(mailbox: str, bodies: list[bytes]) -> bytes:
    command = b"APPEND " + mailbox.encode()
    for body in bodies:
        command += b" {%d+}\r\n%s" % (len(body), body)
    return command


def test_quota_multiappend_and_overquota(make_server):
    server = make_server().start()
    server.add_account(*CAROL, quota="8K")
    client = server.imap(*CAROL)
    typ, data = client.capability()
    caps = data[0].split()
    assert b"QUOTA" in caps and b"QUOTA=RES-STORAGE" in caps and b"MULTIAPPEND" in caps

    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK", data
    assert data == [[b'INBOX ""'], [b'"" (STORAGE 0 8)']], data
    typ, data = client.setquota('""', "(STORAGE 100000)")
    assert typ == "NO" and b"[NOPERM]" in data[0], (typ, data)

    # Three messages of 2000 bytes in one APPEND: stored together.
    body = b"Subject: m\r\n\r\n" + b"x" * 1986
    assert len(body) == 2000
    reply = raw_command(server, multiappend("INBOX", [body, body, body]))
    assert reply[-1].startswith(b"b OK [APPENDUID "), reply
    assert select(client, "INBOX") == 3
    typ, data = client.getquota('""')
    assert data == [b'"" (STORAGE 6 8)'], data

    # Two more would pass one at a time only for the first: nothing is stored.
    reply = raw_command(server, multiappend("INBOX", [body, body]))
    assert reply[-1].startswith(b"b NO [OVERQUOTA]"), reply
    typ, data = client.status("INBOX", "(MESSAGES)")
    assert b"(MESSAGES 3)" in data[0], data

    # A single APPEND over quota, through imaplib.
    typ, data = client.append("INBOX", None, None, body + b"y" * 2000)
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
    client.logout()
