"""Nothing acknowledged is lost: SIGKILL at random moments, SIGTERM with
sessions open, restarts on the same data directory."""

import base64
import os
import random
import re
import signal
import smtplib
import socket
import threading
import time

from conftest import (
    ALICE,
    BOB,
    HOST,
    LMTP_TIMEOUT_SECS,
    Closed,
    deliver_ok,
    fetch_bodies,
    lmtp_deliver,
    message,
    select,
)

SENDER = "sender@example.net"
MSGID_RE = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.M | re.I)

CRASH_KILLS = 10  # SIGKILLs in one crash test
CRASH_WORKERS = 3  # concurrent LMTP connections
CRASH_MAX_MESSAGES = 300  # messages attempted in all
CRASH_MAX_SECONDS = 90.0  # time spent delivering in all
CRASH_SIZES = [300, 2_000, 20_000, 120_000, 400_000]


def crash_message(msgid: str, size: int, rng: random.Random) -> bytes:
    head = message(f"crash {msgid}", "", msgid=msgid)
    body = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    return head + body


def inbox(server, user):
    client = server.imap(*user)
    try:
        return list(fetch_bodies(client).values())
    finally:
        client.logout()


class CrashLedger:
    """What was sent and what got a 250, shared by the delivering threads."""

    def __init__(self, max_messages: int):
        self.lock = threading.Lock()
        self.budget = max_messages
        self.sent: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self.acked: dict[str, set[str]] = {}
        self.refused: list = []  # non-250 replies from a server that was up

    def take(self) -> bool:
        with self.lock:
            if self.budget <= 0:
                return False
            self.budget -= 1
            return True


def crash_worker(port, wid, round_no, seed, ledger: CrashLedger, stop, deadline):
    rng = random.Random(seed)
    try:
        client = smtplib.LMTP(HOST, port, timeout=15)
        client.ehlo("crash.test")
    except (OSError, smtplib.SMTPException):
        return
    try:
        n = 0
        while not stop.is_set() and time.monotonic() < deadline and ledger.take():
            msgid = f"<crash-r{round_no}-w{wid}-{n}@test.example>"
            n += 1
            rcpts = tuple(rng.choice([[ALICE[0]], [BOB[0]], [ALICE[0], BOB[0]]]))
            data = crash_message(msgid, rng.choice(CRASH_SIZES), rng)
            with ledger.lock:
                ledger.sent[msgid] = (data, rcpts)
            try:
                res = lmtp_deliver(client, SENDER, rcpts, data)
            except (OSError, smtplib.SMTPException):
                return  # The server was killed under us.
            with ledger.lock:
                for rcpt, (code, text) in res.items():
                    if code == 250:
                        ledger.acked.setdefault(msgid, set()).add(rcpt)
                    else:
                        ledger.refused.append((msgid, rcpt, code, text))
    finally:
        client.close()


def test_sigkill_during_deliveries_loses_no_acknowledged_message(users):
    seed = int(os.environ.get("EVERMAIL_CRASH_SEED", time.time_ns() % 1_000_000))
    print(f"crash test seed: {seed} (set EVERMAIL_CRASH_SEED to replay)")
    rng = random.Random(seed)
    ledger = CrashLedger(CRASH_MAX_MESSAGES)
    deadline = time.monotonic() + CRASH_MAX_SECONDS
    kills = 0
    for round_no in range(CRASH_KILLS):
        if not users.running:
            users.start()
        # An even share of the message budget per round, so every round
        # (and every kill) happens.
        round_budget = CRASH_MAX_MESSAGES // CRASH_KILLS
        with ledger.lock:
            ledger.budget = round_budget
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=crash_worker,
                args=(users.ports["lmtp"], wid, round_no, rng.random(), ledger, stop, deadline),
                daemon=True,
            )
            for wid in range(CRASH_WORKERS)
        ]
        for worker in workers:
            worker.start()
        # Kill at a random moment while deliveries are in full flow: once a
        # random number of this round's messages have been started, plus a
        # random few milliseconds (so the kill lands in any phase of one).
        target = len(ledger.sent) + rng.randint(5, round_budget - 10)
        wait_until = min(deadline, time.monotonic() + 20)
        while len(ledger.sent) < target and time.monotonic() < wait_until:
            if not any(w.is_alive() for w in workers):
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))
        users.kill()
        kills += 1
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
            assert not worker.is_alive(), "a delivering thread hung after the kill"
        if time.monotonic() > deadline:
            break

    users.start()
    acked_total = sum(len(r) for r in ledger.acked.values())
    print(f"{kills} kills, {len(ledger.sent)} messages sent, {acked_total} deliveries acknowledged")
    assert kills >= 3, f"only {kills} kills before the time ran out"
    assert acked_total >= 10, f"only {acked_total} deliveries acknowledged: test proves little"
    assert not ledger.refused, f"a running server refused deliveries: {ledger.refused[:5]}"

    problems = []
    for user in (ALICE, BOB):
        client = users.imap(*user)
        try:
            bodies = fetch_bodies(client)
        finally:
            client.logout()
        seen = set()
        for uid, body in bodies.items():
            m = MSGID_RE.search(body)
            if not m:
                problems.append(f"{user[0]} UID {uid}: no Message-ID, {len(body)} bytes: "
                                f"{body[:120]!r}")
                continue
            msgid = m.group(1).decode()
            if msgid not in ledger.sent:
                problems.append(f"{user[0]} UID {uid}: unknown Message-ID {msgid}")
                continue
            data, rcpts = ledger.sent[msgid]
            if body != data:
                problems.append(
                    f"{user[0]} UID {uid} {msgid}: {len(body)} bytes differ from the "
                    f"{len(data)} bytes sent (partial or corrupt)"
                )
            if user[0] not in rcpts:
                problems.append(f"{user[0]} UID {uid} {msgid}: was not sent to this user")
            if msgid in seen:
                problems.append(f"{user[0]} UID {uid} {msgid}: stored twice")
            seen.add(msgid)
        for msgid, rcpts in ledger.acked.items():
            if user[0] in rcpts and msgid not in seen:
                problems.append(f"{user[0]}: {msgid} got 250 but is missing after restart")
        unacked = [m for m, (_, r) in ledger.sent.items()
                   if user[0] in r and user[0] not in ledger.acked.get(m, ())]
        print(f"{user[0]}: {len(unacked)} deliveries cut by a kill, "
              f"{sum(m in seen for m in unacked)} of them stored in full anyway")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])


def test_uids_and_uidvalidity_survive_sigkill(users):
    first = [message(f"before kill {i}") for i in range(3)]
    for data in first:
        deliver_ok(users, [ALICE[0]], data)
    client = users.imap(*ALICE)
    try:
        select(client)
        _, (validity_before,) = client.response("UIDVALIDITY")
        before = fetch_bodies(client)
    finally:
        client.logout()

    users.kill()
    users.start()
    later = message("after kill")
    deliver_ok(users, [ALICE[0]], later)
    client = users.imap(*ALICE)
    try:
        select(client)
        _, (validity_after,) = client.response("UIDVALIDITY")
        after = fetch_bodies(client)
    finally:
        client.logout()

    assert validity_after == validity_before, "UIDVALIDITY changed across a restart"
    assert {uid: body for uid, body in after.items() if uid in before} == before
    new = [uid for uid in after if uid not in before]
    assert len(new) == 1 and after[new[0]] == later, after.keys()
    assert new[0] > max(before), f"UID {new[0]} reused or lower than {max(before)}"


def test_sigterm_with_idle_sessions_exits_zero(users):
    lmtp = [users.raw_lmtp() for _ in range(2)]
    imap = [users.imap(*ALICE), users.imap(*BOB)]
    for conn in lmtp:
        assert conn.cmd("LHLO client.test")[0] == 250
    for client in imap:
        select(client)
    started = time.monotonic()
    rc = users.terminate(timeout=LMTP_TIMEOUT_SECS + 15)
    elapsed = time.monotonic() - started
    try:
        assert rc is not None, "still running 20s after SIGTERM"
        assert rc == 0, f"exit status {rc} after SIGTERM"
        for conn in lmtp:
            received, closed = conn.read_until_closed(timeout=5)
            assert closed, "LMTP session left open after exit"
            if received:
                assert received.startswith(b"421"), received
        for client in imap:
            client.sock.settimeout(5)
            try:
                received = client.sock.recv(4096)
            except ConnectionResetError:
                received = b""
            if received:
                assert received.startswith(b"* BYE"), received
    finally:
        for conn in lmtp:
            conn.close()
        for client in imap:
            client.shutdown()
    print(f"exited {elapsed:.1f}s after SIGTERM")


def test_sigterm_after_final_dot_still_gets_250(users):
    data = message("sent just before SIGTERM",
                   base64.encodebytes(os.urandom(600_000)).decode().replace("\n", "\r\n"))
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{BOB[0]}>")[0] == 250
        assert conn.cmd("DATA")[0] == 354
        conn.send(data + b".\r\n")
        os.kill(users.proc.pid, signal.SIGTERM)
        replies = [conn.reply(timeout=30) for _ in range(2)]
    finally:
        conn.close()
    rc = users.wait(timeout=LMTP_TIMEOUT_SECS + 15)
    assert [code for code, _ in replies] == [250, 250], replies
    assert rc == 0, f"exit status {rc} after SIGTERM"
    users.start()
    assert inbox(users, ALICE) == [data]
    assert inbox(users, BOB) == [data]


def test_sigterm_mid_data_stores_all_or_nothing(users):
    data = message("half sent at SIGTERM", "line\r\n" * 20_000)
    half = len(data) // 2
    conn = users.raw_lmtp()
    code = None
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd("DATA")[0] == 354
        conn.send(data[:half])
        time.sleep(0.3)
        os.kill(users.proc.pid, signal.SIGTERM)
        time.sleep(0.5)
        try:
            conn.send(data[half:] + b".\r\n")
            code, texts = conn.reply(timeout=LMTP_TIMEOUT_SECS + 10)
        except (OSError, Closed):
            code = None  # Closed before the message was complete.
    finally:
        conn.close()
    rc = users.wait(timeout=LMTP_TIMEOUT_SECS + 15)
    assert rc == 0, f"exit status {rc} after SIGTERM"
    assert code in (None, 250, 421), code
    print(f"half-sent delivery at SIGTERM: {'closed' if code is None else code}")
    users.start()
    assert inbox(users, ALICE) == ([data] if code == 250 else [])


def test_restart_after_sigterm_keeps_everything(users):
    sent = [message(f"kept {i}") for i in range(5)]
    for data in sent:
        deliver_ok(users, [ALICE[0], BOB[0]], data)
    assert users.terminate() == 0
    users.start()
    assert inbox(users, ALICE) == sent
    assert inbox(users, BOB) == sent


def _tree_bytes(path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # A temporary file that went away.
    return total


def test_concurrent_deliveries_all_arrive_with_distinct_uids(users):
    ledger = CrashLedger(8 * 10)
    stop = threading.Event()
    deadline = time.monotonic() + 60
    workers = [
        threading.Thread(
            target=crash_worker,
            args=(users.ports["lmtp"], wid, 0, wid, ledger, stop, deadline),
            daemon=True,
        )
        for wid in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=90)
        assert not worker.is_alive(), "a delivering thread hung"
    assert not ledger.refused, ledger.refused[:5]
    assert len(ledger.sent) == 80, f"only {len(ledger.sent)} of 80 attempted"
    for user in (ALICE, BOB):
        want = {m: ledger.sent[m][0] for m, r in ledger.acked.items() if user[0] in r}
        client = users.imap(*user)
        try:
            bodies = fetch_bodies(client)  # asserts UIDs are distinct
        finally:
            client.logout()
        got = {MSGID_RE.search(b).group(1).decode(): b for b in bodies.values()}
        assert len(got) == len(bodies), "a message is stored twice"
        assert got == want


def test_many_recipients_store_the_body_once(users):
    names = [f"r{i}@example.com" for i in range(6)]
    for name in names:
        users.add_account(name, "pw-" + name)
    data = message("one body, six recipients",
                   base64.encodebytes(os.urandom(600_000)).decode().replace("\n", "\r\n"))
    before = _tree_bytes(users.data_dir)
    deliver_ok(users, names, data)
    grown = _tree_bytes(users.data_dir) - before
    assert grown < 2 * len(data), (
        f"data dir grew {grown} bytes for one {len(data)}-byte message to {len(names)} "
        "recipients: the body is stored more than once"
    )
    assert inbox(users, (names[-1], "pw-" + names[-1])) == [data]


def test_imap_never_sees_a_partial_message_during_deliveries(users):
    ledger = CrashLedger(60)
    stop = threading.Event()
    deadline = time.monotonic() + 60
    workers = [
        threading.Thread(
            target=crash_worker,
            args=(users.ports["lmtp"], wid, 0, 100 + wid, ledger, stop, deadline),
            daemon=True,
        )
        for wid in range(3)
    ]
    for worker in workers:
        worker.start()
    client = users.imap(*ALICE)
    problems, fetched, rounds = [], 0, 0
    try:
        # Read alice's INBOX over and over while the deliveries run.
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline and rounds < 200:
            rounds += 1
            for uid, body in fetch_bodies(client).items():
                fetched += 1
                m = MSGID_RE.search(body)
                with ledger.lock:
                    sent = ledger.sent.get(m.group(1).decode()) if m else None
                if sent is None or sent[0] != body:
                    problems.append(f"UID {uid}: {len(body)} bytes, not a message sent in full")
            if problems:
                break
    finally:
        stop.set()
        client.logout()
        for worker in workers:
            worker.join(timeout=30)
    assert not problems, problems[:10]
    assert not ledger.refused, ledger.refused[:5]
    print(f"{rounds} reads of INBOX, {fetched} messages checked")


def test_sigterm_stops_accepting_new_connections(users):
    # A transaction in its DATA phase keeps the server draining for a while
    # after SIGTERM; during that time no new session may start.
    conn = users.raw_lmtp()
    ports = dict(users.ports)
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd("DATA")[0] == 354
        conn.send(message("keeps the server draining", "")[:60])
        os.kill(users.proc.pid, signal.SIGTERM)
        time.sleep(1.0)
        for kind in ("lmtp", "imap"):
            try:
                late = socket.create_connection((HOST, ports[kind]), timeout=5)
            except OSError:
                continue  # Refused: not accepting. Good.
            try:
                late.settimeout(5)
                try:
                    greeting = late.recv(200)
                except (TimeoutError, ConnectionResetError):
                    greeting = b""
                # Accepted by the kernel's backlog at most: no greeting, or a refusal.
                assert not greeting.startswith((b"220", b"* OK")), (
                    f"{kind} greeted a new client after SIGTERM: {greeting!r}"
                )
            finally:
                late.close()
    finally:
        conn.close()
    assert users.wait(timeout=LMTP_TIMEOUT_SECS + 15) == 0
