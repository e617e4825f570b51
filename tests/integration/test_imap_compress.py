"""COMPRESS=DEFLATE (RFC 4978) against the real binary, over a raw socket with Python's
zlib in raw mode (wbits=-15): offered only after login, OK DEFLATE active, commands and
responses compressed both ways, NO [COMPRESSIONACTIVE] on a second COMPRESS."""

import socket
import time
import zlib

from conftest import ALICE, deliver_ok, message

TIMEOUT = 10.0


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.inflater = None
        self.deflater = None

    def send(self, line: bytes) -> None:
        if self.deflater is not None:
            line = self.deflater.compress(line) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(line)

    def line(self) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while b"\r\n" not in self.buf:
            assert time.monotonic() < deadline, f"no full line in {self.buf!r}"
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed; have {self.buf!r}"
            if self.inflater is not None:
                chunk = self.inflater.decompress(chunk)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def command(self, tag: str, text: str) -> list[bytes]:
        self.send(f"{tag} {text}\r\n".encode())
        lines = []
        for _ in range(10_000):
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines
        raise AssertionError(f"no tagged reply: {lines[-5:]!r}")


def test_compress_deflate_after_login(users):
    for i in range(3):
        deliver_ok(users, [ALICE[0]], message(f"compress {i}", body="squeeze me " * 200))
    conn = Conn(users.ports["imap"])
    greeting = conn.line()
    assert b"COMPRESS=DEFLATE" not in greeting, greeting
    lines = conn.command("a1", "COMPRESS DEFLATE")
    assert lines[-1].startswith(b"a1 BAD"), lines
    lines = conn.command("a2", f"LOGIN {ALICE[0]} {ALICE[1]}")
    assert lines[-1].startswith(b"a2 OK"), lines
    caps = b" ".join(conn.command("a3", "CAPABILITY"))
    assert b" COMPRESS=DEFLATE" in caps, caps

    assert conn.command("a4", "COMPRESS DEFLATE") == [b"a4 OK DEFLATE active"]
    conn.inflater = zlib.decompressobj(wbits=-15)
    conn.deflater = zlib.compressobj(wbits=-15)
    lines = conn.command("a5", "SELECT INBOX")
    assert b"* 3 EXISTS" in lines and lines[-1].startswith(b"a5 OK"), lines
    lines = conn.command("a6", "FETCH 1:3 (BODY.PEEK[TEXT])")
    assert sum(b"squeeze me" in l for l in lines) == 3, lines[:3]
    assert lines[-1].startswith(b"a6 OK"), lines
    caps = b" ".join(conn.command("a7", "CAPABILITY"))
    assert b"COMPRESS=DEFLATE" not in caps, caps
    lines = conn.command("a8", "COMPRESS DEFLATE")
    assert lines[-1].startswith(b"a8 NO [COMPRESSIONACTIVE]"), lines
    lines = conn.command("a9", "LOGOUT")
    assert lines[0].startswith(b"* BYE") and lines[-1].startswith(b"a9 OK"), lines
    conn.sock.close()


def test_compress_unknown_mechanism_is_refused(users):
    conn = Conn(users.ports["imap"])
    conn.line()
    assert conn.command("b1", f"LOGIN {ALICE[0]} {ALICE[1]}")[-1].startswith(b"b1 OK")
    lines = conn.command("b2", "COMPRESS LZMA")
    assert lines[-1].startswith(b"b2 BAD"), lines
    # Still plaintext.
    assert conn.command("b3", "NOOP")[-1].startswith(b"b3 OK")
    conn.sock.close()


def test_idle_under_compression_sees_a_delivery(users):
    conn = Conn(users.ports["imap"])
    conn.line()
    assert conn.command("c1", f"LOGIN {ALICE[0]} {ALICE[1]}")[-1].startswith(b"c1 OK")
    assert conn.command("c2", "COMPRESS DEFLATE") == [b"c2 OK DEFLATE active"]
    conn.inflater = zlib.decompressobj(wbits=-15)
    conn.deflater = zlib.compressobj(wbits=-15)
    assert conn.command("c3", "SELECT INBOX")[-1].startswith(b"c3 OK")
    conn.send(b"c4 IDLE\r\n")
    assert conn.line().startswith(b"+ "), "IDLE continuation"
    deliver_ok(users, [ALICE[0]], message("during idle"))
    assert conn.line() == b"* 1 EXISTS"
    assert conn.line() == b"* 1 RECENT"
    conn.send(b"DONE\r\n")
    assert conn.line().startswith(b"c4 OK"), "IDLE ends on a compressed DONE"
    conn.sock.close()
