"""Slow and stalled LMTP clients are cut off after timeout_secs, and nobody
else waits for them."""

import threading
import time

from conftest import ALICE, BOB, LMTP_TIMEOUT_SECS, deliver_ok, fetch_bodies, message

SENDER = "sender@example.net"
# How long past timeout_secs the cut-off may come: scheduling on a busy
# 2-core machine, not a second timeout.
SLACK = 10.0


def inbox(server, user):
    client = server.imap(*user)
    try:
        return list(fetch_bodies(client).values())
    finally:
        client.logout()


def start_transaction(server):
    conn = server.raw_lmtp(timeout=LMTP_TIMEOUT_SECS + SLACK + 10)
    assert conn.cmd("LHLO client.test")[0] == 250
    assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
    return conn


def await_cutoff(conn, started: float):
    """(bytes received, seconds from `started` to the close)."""
    received, closed = conn.read_until_closed(timeout=LMTP_TIMEOUT_SECS + SLACK)
    elapsed = time.monotonic() - started
    assert closed, (
        f"connection still open {elapsed:.1f}s after the stall or trickle began "
        f"(timeout_secs={LMTP_TIMEOUT_SECS}); got {received!r}"
    )
    return received, elapsed


def test_stall_mid_data_gets_421_while_others_deliver(users):
    conn = start_transaction(users)
    try:
        assert conn.cmd("DATA")[0] == 354
        conn.send(message("stalled", "this line never ends")[:-2])
        stalled_at = time.monotonic()

        # Another client is served at once, not after the stalled one.
        other = message("delivered meanwhile")
        deliver_ok(users, [BOB[0]], other)
        served_in = time.monotonic() - stalled_at
        assert served_in < LMTP_TIMEOUT_SECS, (
            f"the other delivery took {served_in:.1f}s, as if it waited for the stalled client"
        )

        received, elapsed = await_cutoff(conn, stalled_at)
    finally:
        conn.close()
    assert b"421" in received and b"4.4.2" in received, f"no `421 4.4.2` before close: {received!r}"
    assert received.startswith(b"421"), received
    assert elapsed >= LMTP_TIMEOUT_SECS - 1.5, f"cut off after only {elapsed:.1f}s"
    # The partial message is not stored; the other one is.
    assert inbox(users, ALICE) == []
    assert inbox(users, BOB) == [other]


def test_stall_mid_command_line_gets_421(users):
    conn = users.raw_lmtp(timeout=LMTP_TIMEOUT_SECS + SLACK + 10)
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        conn.send(b"MAIL FROM:<sender@exa")
        started = time.monotonic()
        received, elapsed = await_cutoff(conn, started)
    finally:
        conn.close()
    assert received.startswith(b"421") and b"4.4.2" in received, received
    assert elapsed >= LMTP_TIMEOUT_SECS - 1.5, f"cut off after only {elapsed:.1f}s"


class Trickle(threading.Thread):
    """Sends `data` one byte a second until it is all sent, the peer
    closes, or `max_seconds` pass."""

    def __init__(self, conn, data: bytes, max_seconds: float):
        super().__init__(daemon=True)
        self.conn, self.data, self.max_seconds = conn, data, max_seconds
        self.sent = 0
        self.error = None
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        for i in range(len(self.data)):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            try:
                self.conn.sock.send(self.data[i:i + 1])
            except OSError as err:
                self.error = err
                return
            self.sent += 1
            self.stop.wait(1.0)


def _trickle_is_cut_off(users, conn, data: bytes):
    trickle = Trickle(conn, data, max_seconds=LMTP_TIMEOUT_SECS + SLACK + 5)
    started = time.monotonic()
    trickle.start()
    try:
        # Meanwhile three other deliveries go through.
        others = [message(f"meanwhile {i}") for i in range(3)]
        for data_ in others:
            deliver_ok(users, [BOB[0]], data_)
        assert time.monotonic() - started < LMTP_TIMEOUT_SECS + SLACK, "others were held up"
        received, elapsed = await_cutoff(conn, started)
    finally:
        trickle.stop.set()
        trickle.join(timeout=5)
        conn.close()
    assert trickle.sent < len(data), "the whole trickle got through: no timeout at all"
    assert elapsed <= LMTP_TIMEOUT_SECS + SLACK, f"closed after {elapsed:.1f}s"
    # A reply, if any came before the close, is the timeout's.
    if received:
        assert received.startswith(b"421"), received
    assert inbox(users, BOB) == others
    return received


def test_one_byte_a_second_command_is_cut_off(users):
    conn = users.raw_lmtp(timeout=LMTP_TIMEOUT_SECS + SLACK + 10)
    assert conn.cmd("LHLO client.test")[0] == 250
    line = b"MAIL FROM:<a-rather-slow-sender@example.net>\r\n"
    assert len(line) > 3 * LMTP_TIMEOUT_SECS
    _trickle_is_cut_off(users, conn, line)


def test_one_byte_a_second_data_is_cut_off(users):
    conn = start_transaction(users)
    assert conn.cmd("DATA")[0] == 354
    body = message("trickled", "x" * 40 + "\r\n") + b".\r\n"
    _trickle_is_cut_off(users, conn, body)
    assert inbox(users, ALICE) == []


def test_idle_connections_do_not_block_others(users):
    idle = [users.raw_lmtp() for _ in range(20)]
    try:
        for conn in idle:
            assert conn.cmd("LHLO client.test")[0] == 250
        started = time.monotonic()
        data = message("with 20 idle neighbours")
        deliver_ok(users, [ALICE[0]], data)
        assert time.monotonic() - started < LMTP_TIMEOUT_SECS
    finally:
        for conn in idle:
            conn.close()
    assert inbox(users, ALICE) == [data]


