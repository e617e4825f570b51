"""Many IMAP sessions on one mailbox at once against the real binary, on SQLite and
on the Galera cluster (there with two evermail nodes, the sessions split between
them): each session appends, stores flags, expunges, moves and fetches in a random
order. Every session applies the untagged responses of each command to its own
model of the mailbox (sequence number -> UID) and checks that the server never
contradicts it, that UIDs ascend with sequence numbers, that MODSEQs and
HIGHESTMODSEQ only grow and that no EXPUNGE comes during FETCH or STORE by sequence
number; at the end every session sees the same mailbox.

The client is a raw socket, not imaplib: imaplib files untagged responses by kind,
which loses the order that EXPUNGE and FETCH numbers depend on."""

import random
import re
import socket
import threading
import time


from conftest import ALICE, HOST, NET_TIMEOUT, deliver_ok, message

SESSIONS = 6
STEPS = 60
INITIAL = 20
DEADLINE = 240.0  # seconds for all sessions together


class Session:
    """One logged-in IMAP connection with a model of the selected INBOX."""

    def __init__(self, port: int, name: str):
        self.name = name
        self.sock = socket.create_connection((HOST, port), timeout=NET_TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.tag = 0
        self.uids: list[int | None] = []
        self.modseqs: dict[int, int] = {}
        self.highest_modseq = 0
        self.appended: list[int] = []
        assert self.file.readline().startswith(b"* OK")
        self.command(f"LOGIN {ALICE[0]} {ALICE[1]}")

    def command(self, text: str) -> str:
        """Sends one command and applies its untagged responses; the tagged line."""
        self.tag += 1
        tag = f"c{self.tag}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        while True:
            raw = self.file.readline()
            assert raw, f"{self.name}: connection closed during {text!r}"
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith(f"{tag} "):
                assert " BAD " not in line, f"{self.name}: {text!r}: {line}"
                self.check_order()
                return line
            if line.startswith("* "):
                self.apply(text, line)

    def apply(self, command: str, line: str) -> None:
        where = f"{self.name}, {command!r}: {line}"
        m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            assert int(m.group(1)) >= self.highest_modseq, f"HIGHESTMODSEQ went down: {where}"
            self.highest_modseq = int(m.group(1))
        m = re.match(r"\* (\d+) (EXISTS|EXPUNGE|FETCH|RECENT)\b", line)
        if not m:
            return
        n, kind = int(m.group(1)), m.group(2)
        if kind == "EXISTS":
            assert n >= len(self.uids), f"EXISTS shrank the mailbox: {where}"
            self.uids.extend([None] * (n - len(self.uids)))
        elif kind == "EXPUNGE":
            assert not re.match(r"(FETCH|STORE) ", command), f"EXPUNGE during {where}"
            assert 1 <= n <= len(self.uids), f"EXPUNGE of a message we do not have: {where}"
            del self.uids[n - 1]
        elif kind == "FETCH":
            assert 1 <= n <= len(self.uids), f"FETCH of a message we do not have: {where}"
            uid = re.search(r"\bUID (\d+)", line)
            if uid:
                uid = int(uid.group(1))
                known = self.uids[n - 1]
                assert known in (None, uid), f"sequence number {n} changed UID: {where}"
                self.uids[n - 1] = uid
                modseq = re.search(r"MODSEQ \((\d+)\)", line)
                if modseq:
                    assert int(modseq.group(1)) >= self.modseqs.get(uid, 0), f"MODSEQ went down: {where}"
                    self.modseqs[uid] = int(modseq.group(1))

    def check_order(self) -> None:
        known = [u for u in self.uids if u is not None]
        assert known == sorted(set(known)), f"{self.name}: UIDs do not ascend: {known}"

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        finally:
            self.sock.close()


def run_session(port: int, name: str, seed: int, done: threading.Barrier, out: dict) -> None:
    rng = random.Random(seed)
    s = Session(port, name)
    s.command("SELECT INBOX (CONDSTORE)")
    s.command("FETCH 1:* (UID MODSEQ)")
    for step in range(STEPS):
        seq = rng.randint(1, len(s.uids)) if s.uids else 0
        choice = rng.randrange(8)
        if choice < 2:
            body = f"Subject: {name} {step}\r\n\r\nfrom {name}\r\n"
            command = f"APPEND INBOX {{{len(body)}+}}\r\n{body}"
        elif choice == 2 and seq:
            command = f"STORE {seq} +FLAGS (\\Flagged)"
        elif choice == 3 and seq:
            command = f"STORE {seq} +FLAGS (\\Deleted)"
        elif choice == 4:
            command = "EXPUNGE"
        elif choice == 5 and seq:
            command = f"MOVE {seq} Archive"
        elif choice == 6 and seq and s.uids[seq - 1]:
            command = f"UID STORE {s.uids[seq - 1]} +FLAGS (\\Seen)"
        else:
            command = "FETCH 1:* (UID MODSEQ FLAGS)"
        tagged = s.command(command)
        m = re.search(r"\[APPENDUID \d+ (\d+)\]", tagged)
        if m:
            uid = int(m.group(1))
            assert not s.appended or uid > s.appended[-1], f"{name}: APPENDUID went down"
            s.appended.append(uid)
    done.wait(timeout=DEADLINE)
    s.command("NOOP")
    s.command("FETCH 1:* (UID MODSEQ)")
    assert None not in s.uids, f"{name}: FETCH 1:* left numbers without a UID"
    out[name] = (list(s.uids), list(s.appended))
    s.close()


def hammer(ports: list[int]) -> dict:
    done = threading.Barrier(SESSIONS)
    results: dict = {}
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            run_session(ports[i % len(ports)], f"s{i}", 1000 + i, done, results)
        except BaseException as e:  # reported below, with the others' results
            errors.append(e)
            done.abort()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(SESSIONS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, DEADLINE - (time.monotonic() - started)))
    assert not any(t.is_alive() for t in threads), "sessions did not finish in time"
    if errors:
        raise errors[0]
    print(f"{SESSIONS} sessions x {STEPS} steps on {len(ports)} node(s): "
          f"{time.monotonic() - started:.1f} s")
    return results


def check_results(results: dict) -> None:
    views = {name: uids for name, (uids, _) in results.items()}
    first = next(iter(views.values()))
    for name, uids in views.items():
        assert uids == first, f"{name} ends with a different view"
    appended = [uid for _, (_, mine) in results.items() for uid in mine]
    assert len(appended) == len(set(appended)), "two APPENDs were given one UID"
    assert all(uid > INITIAL for uid in appended), "an APPEND reused an initial UID"


def test_concurrent_sessions_on_sqlite(users):
    for i in range(INITIAL):
        deliver_ok(users, [ALICE[0]], message(f"initial {i}"))
    check_results(hammer([users.ports["imap"]]))


def test_concurrent_sessions_on_two_nodes_over_galera(mysql_db, make_mysql_server, tmp_path):
    _cluster, _db, urls = mysql_db
    blobs = tmp_path / "shared-blobs"
    a = make_mysql_server("a", [urls[0], urls[1], urls[2]], blobs)
    b = make_mysql_server("b", [urls[1], urls[2], urls[0]], blobs)
    a.cli("db", "migrate")
    a.start()
    b.start()
    a.add_account(*ALICE)
    for i in range(INITIAL):
        deliver_ok(a, [ALICE[0]], message(f"initial {i}"))
    check_results(hammer([a.ports["imap"], b.ports["imap"]]))
