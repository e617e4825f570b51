"""Fixtures and helpers for the black-box integration tests.

Every test starts the real `evermail` binary (EVERMAIL_BIN) on 127.0.0.1 with
port 0 everywhere, reads the real ports from its stdout, and talks to it with
clients nobody here wrote: smtplib.LMTP, imaplib and urllib. Every process a
test starts is stopped by its pid, and every wait is bounded in time.
"""

from __future__ import annotations

import imaplib
import os
import queue
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0  # seconds to wait for the `ready` line
STOP_TIMEOUT = 20.0  # seconds to wait for exit after SIGTERM before SIGKILL
CLI_TIMEOUT = 60.0  # seconds for one `evermail account ...` invocation
NET_TIMEOUT = 30.0  # socket timeout for LMTP and IMAP clients
TEST_WATCHDOG = 300.0  # a test still running after this has its servers killed

LMTP_TIMEOUT_SECS = 5  # the server's [lmtp] timeout_secs in CONFIG
MAX_MESSAGE_SIZE = 1048576  # the server's [lmtp] max_message_size in CONFIG

CONFIG = f"""\
[imap]
listen = ["{HOST}:0"]
tls_listen = ["{HOST}:0"]

[pop3]
listen = ["{HOST}:0"]
tls_listen = ["{HOST}:0"]

[lmtp]
listen = ["{HOST}:0"]
max_message_size = {MAX_MESSAGE_SIZE}
timeout_secs = {LMTP_TIMEOUT_SECS}

[admin]
listen = "{HOST}:0"
"""

LISTEN_RE = re.compile(r"^listening (imaps|imap|pop3s|pop3|lmtp|admin) (\S+):(\d+)\s*$")

# Every process a test started, so the watchdog and the session end can stop
# them by pid.
_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def evermail_bin() -> str:
    """Where the binary under test is: EVERMAIL_BIN, else the debug build."""
    path = os.environ.get("EVERMAIL_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/evermail-target")
        path = os.path.join(target, "debug", "evermail")
    return path


# --------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------


class Server:
    """One `evermail serve` process over a data directory that outlives it.

    `start()` may be called again after `kill()` or `terminate()`: the data
    directory and config stay, the ports change.
    """

    def __init__(self, binary: str, workdir: Path, config: str = CONFIG):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "evermail.toml"
        self.config_path.write_text(config)
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.stdout_lines: list[str] = []
        self.starts = 0
        self._log = None
        self._reader: threading.Thread | None = None

    # -- process control ----------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.workdir / f"server-{self.starts}.log"

    def start(self) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.ports = {}
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--data-dir",
                str(self.data_dir),
                "--config",
                str(self.config_path),
                "serve",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE[self.proc.pid] = self.proc
        lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self.proc, lines), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                pytest.fail(
                    f"server printed no `ready` within {READY_TIMEOUT}s; "
                    f"stdout={self.stdout_lines!r}\n{self.log_tail()}"
                )
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    pytest.fail(
                        f"server exited with {self.proc.returncode} before `ready`; "
                        f"stdout={self.stdout_lines!r}\n{self.log_tail()}"
                    )
                continue
            if line is None:
                continue
            m = LISTEN_RE.match(line)
            if m:
                kind, host, port = m.group(1), m.group(2).strip("[]"), int(m.group(3))
                assert host == HOST, f"server listens on {host}, not {HOST}: {line!r}"
                assert port != 0, f"printed port 0: {line!r}"
                self.ports.setdefault(kind, port)
            elif line.strip() == "ready":
                break
        missing = {"imap", "lmtp", "admin"} - set(self.ports)
        assert not missing, f"no `listening` line for {missing}: {self.stdout_lines!r}"
        return self

    def _read_stdout(self, proc: subprocess.Popen, lines: queue.Queue) -> None:
        # Keep draining stdout for the life of the process so it never blocks
        # on a full pipe.
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            lines.put(line)
        lines.put(None)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _reap(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        with _LIVE_LOCK:
            _LIVE.pop(self.proc.pid, None)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def kill(self) -> None:
        """SIGKILL by pid and wait for the process to be gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self._reap(timeout=30)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Wait for the process to exit by itself; its exit code or None."""
        assert self.proc is not None
        return self._reap(timeout=timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by pid; the exit code, or None if it did not exit in time."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self._reap(timeout=timeout)

    def stop(self) -> None:
        """Best-effort stop for teardown: SIGTERM, then SIGKILL."""
        if self.proc is None:
            return
        if self.terminate() is None:
            self.kill()

    def restart(self) -> "Server":
        if self.running:
            self.stop()
        return self.start()

    def log_tail(self, lines: int = 80) -> str:
        out = []
        for i in range(1, self.starts + 1):
            path = self.workdir / f"server-{i}.log"
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            out.append(f"--- server log #{i} (last {lines} lines) ---")
            out.extend(text[-lines:])
        return "\n".join(out)

    # -- the CLI ------------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None, check: bool = True):
        """Run `evermail --data-dir DIR ARGS...`; the CompletedProcess."""
        proc = subprocess.run(
            [self.binary, "--data-dir", str(self.data_dir), *args],
            input=(stdin or "").encode(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
            timeout=CLI_TIMEOUT,
        )
        proc.out = proc.stdout.decode("utf-8", "replace")
        proc.err = proc.stderr.decode("utf-8", "replace")
        if check:
            assert proc.returncode == 0, (
                f"evermail {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.out}\nstderr: {proc.err}"
            )
        return proc

    def add_account(self, address: str, password: str, quota: str | None = None):
        args = ["account", "add", address]
        if quota is not None:
            args += ["--quota", quota]
        return self.cli(*args, stdin=password + "\n")

    # -- clients ------------------------------------------------------------

    def lmtp(self, timeout: float = NET_TIMEOUT) -> smtplib.LMTP:
        """An smtplib.LMTP client that has already said LHLO."""
        client = smtplib.LMTP(HOST, self.ports["lmtp"], timeout=timeout)
        code, resp = client.ehlo("client.test")
        assert code == 250, (code, resp)
        return client

    def raw_lmtp(self, timeout: float = NET_TIMEOUT) -> "RawLine":
        """A plain socket to the LMTP port, greeting already read."""
        conn = RawLine(HOST, self.ports["lmtp"], timeout=timeout)
        code, lines = conn.reply()
        assert code == 220, (code, lines)
        return conn

    def imap(self, user: str, password: str, timeout: float = NET_TIMEOUT):
        """An imaplib.IMAP4 client, logged in as `user`."""
        client = imaplib.IMAP4(HOST, self.ports["imap"], timeout=timeout)
        typ, data = client.login(user, password)
        assert typ == "OK", (typ, data)
        return client

    def http_get(self, path: str, timeout: float = 10.0):
        """(status, content-type, body bytes) of GET on the admin port."""
        # An empty ProxyHandler: never send loopback requests to a proxy that
        # the environment may name.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://{HOST}:{self.ports['admin']}{path}"
        try:
            with opener.open(url, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()


# --------------------------------------------------------------------------
# A line-oriented raw socket client, for what smtplib will not send
# --------------------------------------------------------------------------


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


class RawLine:
    """A plain TCP client that reads SMTP-style replies.

    Used for pipelining, BDAT, garbage and slow clients: things a polite
    client library refuses to do.
    """

    def __init__(self, host: str, port: int, timeout: float = NET_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data before the deadline")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data before the deadline") from None
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            raise Closed() from None
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk

    def line(self, timeout: float = NET_TIMEOUT) -> bytes:
        """One line without its CRLF; Closed or TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self, timeout: float = NET_TIMEOUT) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: (code, [text of each line])."""
        deadline = time.monotonic() + timeout
        texts = []
        while True:
            raw = self.line(max(0.0, deadline - time.monotonic()) or 0.001)
            text = raw.decode("utf-8", "replace")
            m = re.match(r"^(\d{3})([ -])(.*)$", text) or re.match(r"^(\d{3})()()$", text)
            assert m, f"not an SMTP reply line: {text!r}"
            texts.append(m.group(3))
            if m.group(2) != "-":
                return int(m.group(1)), texts

    def cmd(self, line: str, timeout: float = NET_TIMEOUT) -> tuple[int, list[str]]:
        self.send(line.encode() + b"\r\n")
        return self.reply(timeout)

    def read_until_closed(self, timeout: float) -> tuple[bytes, bool]:
        """Everything the peer sends until it closes; (bytes, closed?)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            try:
                self._fill(deadline)
            except Closed:
                break
            except TimeoutError:
                break
        data, self.buf = self.buf, b""
        return data, self.closed

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# LMTP and IMAP helpers
# --------------------------------------------------------------------------


def lmtp_deliver(client: smtplib.LMTP, sender: str, rcpts, data: bytes, mail_options=()):
    """One LMTP transaction; {recipient: (code, text)} with one entry each.

    smtplib.LMTP reads only the first reply after the final dot, so the
    further per-recipient replies (RFC 2033 section 4.2) are read here with
    getreply(), in the order the recipients were accepted.
    """
    code, resp = client.mail(sender, list(mail_options))
    if code != 250:
        client.rset()
        return {r: (code, resp.decode("utf-8", "replace")) for r in rcpts}
    results = {}
    accepted = []
    for rcpt in rcpts:
        code, resp = client.rcpt(rcpt)
        results[rcpt] = (code, resp.decode("utf-8", "replace"))
        if code == 250:
            accepted.append(rcpt)
    if not accepted:
        client.rset()
        return results
    code, resp = client.data(data)
    results[accepted[0]] = (code, resp.decode("utf-8", "replace"))
    for rcpt in accepted[1:]:
        code, resp = client.getreply()
        results[rcpt] = (code, resp.decode("utf-8", "replace"))
    return results


def deliver_ok(server: Server, rcpts, data: bytes, sender: str = "sender@example.net", **kw):
    """Deliver one message on a fresh connection; assert every recipient got 250."""
    client = server.lmtp()
    try:
        results = lmtp_deliver(client, sender, rcpts, data, **kw)
        client.quit()
    finally:
        client.close()
    for rcpt, (code, text) in results.items():
        assert code == 250, f"delivery to {rcpt}: {code} {text}"
    return results


_ATOM_END = set(b" ()\"\r\n")


def _tokenize(text: bytes, out: list) -> None:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in b" \r\n":
            i += 1
        elif c in b"()":
            out.append(chr(c))
            i += 1
        elif c == ord('"'):
            i += 1
            val = bytearray()
            while i < n and text[i] != ord('"'):
                if text[i] == ord("\\") and i + 1 < n:
                    i += 1
                val.append(text[i])
                i += 1
            i += 1
            out.append(("str", bytes(val)))
        else:
            start = i
            while i < n and text[i] not in _ATOM_END:
                if text[i] == ord("["):
                    close = text.find(b"]", i)
                    i = n if close < 0 else close + 1
                else:
                    i += 1
            atom = text[start:i].decode("utf-8", "replace")
            out.append(None if atom.upper() == "NIL" else ("atom", atom))


_LITERAL_AT_END = re.compile(rb"\{(\d+)\}$")


def imap_tokens(data) -> list:
    """Tokens of imaplib's response data: a list of bytes and (bytes, literal)."""
    out: list = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            head, literal = item
            _tokenize(_LITERAL_AT_END.sub(b"", head), out)
            out.append(("str", literal))
        else:
            _tokenize(item, out)
    return out


def _value(tok):
    if tok is None:
        return None
    return tok[1]


def parse_sexp(tokens: list, pos: int = 0):
    """One value at tokens[pos]: a list, bytes (string/literal), str (atom) or None."""
    tok = tokens[pos]
    if tok == "(":
        items = []
        pos += 1
        while tokens[pos] != ")":
            val, pos = parse_sexp(tokens, pos)
            items.append(val)
        return items, pos + 1
    if tok == ")":
        raise ValueError(f"unexpected ')' at {pos}")
    return _value(tok), pos + 1


def parse_fetch(data) -> dict[int, dict[str, object]]:
    """imaplib FETCH data as {sequence number: {ITEM NAME: value}}."""
    tokens = imap_tokens(data)
    result: dict[int, dict[str, object]] = {}
    pos = 0
    while pos < len(tokens):
        seq, pos = parse_sexp(tokens, pos)
        items, pos = parse_sexp(tokens, pos)
        assert isinstance(seq, str) and seq.isdigit(), f"bad FETCH response: {data!r}"
        assert isinstance(items, list) and len(items) % 2 == 0, f"bad FETCH items: {items!r}"
        entry = result.setdefault(int(seq), {})
        for name, value in zip(items[0::2], items[1::2]):
            entry[str(name).upper()] = value
    return result


def parse_list(data) -> list[tuple[list[str], object, str]]:
    """imaplib LIST data as [(attributes, delimiter, name)]."""
    out = []
    for item in data:
        if item is None:
            continue
        tokens = imap_tokens([item])
        attrs, pos = parse_sexp(tokens, 0)
        delim, pos = parse_sexp(tokens, pos)
        name, pos = parse_sexp(tokens, pos)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        out.append(([str(a) for a in attrs], delim, name))
    return out


def imap_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def select(client: imaplib.IMAP4, mailbox: str = "INBOX") -> int:
    """SELECT; the EXISTS count.

    A delivery may land while SELECT runs; the server then announces it with a
    second EXISTS before the tagged OK, and imaplib returns every EXISTS it saw,
    oldest first, so the last one is the current count."""
    typ, data = client.select(imap_quote(mailbox))
    assert typ == "OK", (mailbox, typ, data)
    return int(data[-1])


def fetch_bodies(client: imaplib.IMAP4, mailbox: str = "INBOX") -> dict[int, bytes]:
    """{UID: BODY[] bytes} of every message in `mailbox`, with BODY.PEEK."""
    exists = select(client, mailbox)
    if exists == 0:
        return {}
    typ, data = client.fetch("1:*", "(UID BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    msgs = parse_fetch(data)
    # Mail delivered since SELECT may be announced (EXISTS) and fetched too.
    missing = set(range(1, exists + 1)) - set(msgs)
    assert not missing, f"FETCH 1:* left out messages {sorted(missing)} of {exists}"
    out = {}
    for seq, items in sorted(msgs.items()):
        assert "UID" in items and "BODY[]" in items, f"FETCH {seq} lacks UID or BODY[]: {items}"
        uid = int(items["UID"])
        assert uid not in out, f"UID {uid} appears twice"
        out[uid] = items["BODY[]"]
    return out


def message(subject: str, body: str = "Hello.\r\n", msgid: str | None = None,
            extra_headers: str = "") -> bytes:
    """A small RFC 5322 message with CRLF line ends, ending in CRLF."""
    msgid = msgid or f"<{subject.replace(' ', '-')}-{time.monotonic_ns()}@test.example>"
    text = (
        "From: Sender <sender@example.net>\r\n"
        "To: Alice <alice@example.com>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {msgid}\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        f"{extra_headers}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    )
    return text.encode() + body.encode()


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

ALICE = ("alice@example.com", "alice-Secret-1")
BOB = ("bob@example.com", "bob-Secret-2")


@pytest.fixture(scope="session")
def binary() -> str:
    path = evermail_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"evermail binary not found at {path}: build it with "
            "`cargo build --bin evermail` or set EVERMAIL_BIN"
        )
    return path


@pytest.fixture
def make_server(binary, tmp_path, request):
    """A factory of Server objects (not started) in this test's tmp dir."""
    servers: list[Server] = []

    def make(name: str = "srv", config: str = CONFIG) -> Server:
        workdir = tmp_path / name
        workdir.mkdir()
        srv = Server(binary, workdir, config)
        servers.append(srv)
        return srv

    # The watchdog kills this test's servers if the test hangs, which makes
    # any blocked socket call fail instead of hanging the whole run.
    def watchdog():
        for srv in servers:
            if srv.running:
                os.kill(srv.proc.pid, signal.SIGKILL)

    timer = threading.Timer(TEST_WATCHDOG, watchdog)
    timer.daemon = True
    timer.start()
    yield make
    timer.cancel()
    failed = getattr(request.node, "rep_call", None)
    for srv in servers:
        srv.stop()
        if failed is not None and failed.failed:
            stdout = "\n".join(srv.stdout_lines[-40:])
            print(f"\n{srv.workdir}:\n--- stdout (last 40 lines) ---\n{stdout}\n{srv.log_tail()}")


@pytest.fixture
def server(make_server) -> Server:
    """A running server with no accounts."""
    return make_server().start()


@pytest.fixture
def users(server) -> Server:
    """A running server with alice@example.com and bob@example.com."""
    server.add_account(*ALICE)
    server.add_account(*BOB)
    return server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("call", "teardown"):
        # The evidence of a Galera failure is gone once the cluster is repaired or
        # stopped (and CI's cluster directory with it): keep the tails in the report.
        for cluster in getattr(item, "galera_clusters", []):
            try:
                text = cluster.evidence()
            except Exception as e:  # the report must not fail over its evidence
                text = f"(could not collect: {type(e).__name__}: {e})"
            rep.sections.append((f"galera cluster {cluster.dir} at {rep.when}", text))


def pytest_sessionfinish(session, exitstatus):
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --------------------------------------------------------------------------
# The MySQL (MariaDB Galera) metadata backend
# --------------------------------------------------------------------------


class MysqlServer(Server):
    """A Server whose config says `[metadata] backend = "mysql"`; its CLI calls read
    the same config, since the database is named there, not in the data dir."""

    def cli(self, *args: str, stdin: str | None = None, check: bool = True):
        return super().cli("--config", str(self.config_path), *args, stdin=stdin, check=check)


def mysql_config(urls: list[str], node_name: str, blobs: Path | None = None,
                 extra: str = "") -> str:
    """CONFIG plus a [metadata] section for these node URLs and, when `blobs` is
    given, one fs store "shared" at that path (the same id and path on every
    evermail node, so each reads what the others wrote)."""
    quoted = ", ".join(f'"{u}"' for u in urls)
    text = f'node_name = "{node_name}"\n' + CONFIG
    text += f'\n[metadata]\nbackend = "mysql"\nmysql_urls = [{quoted}]\n{extra}'
    if blobs is not None:
        text += f'\n[[storage.stores]]\nkind = "fs"\nid = "shared"\npath = "{blobs}"\n'
    return text


@pytest.fixture
def galera(request):
    """The Galera cluster of EVERMAIL_TEST_MYSQL_URLS (skipped, or failed under CI,
    without one), left whole and Synced after the test."""
    from galera import Cluster, cluster_urls

    cluster = Cluster(cluster_urls())
    _watch_galera(request, cluster)
    yield cluster
    cluster.repair()


@pytest.fixture
def own_galera(request):
    """A 3-node Galera cluster of this test's own (scripts/galera up in a fresh
    directory, ports shifted by galera.OWN_PORT_OFFSET), stopped by pid after the
    test, for a test that may leave a cluster broken (a donor stuck in a state
    transfer): the shared `galera` cluster, and the tests after it, are never touched.
    Needs MariaDB/Galera installed (skipped without, failed under CI)."""
    from galera import OWN_PORT_OFFSET, Cluster, galera_missing, start_own_cluster

    missing = galera_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have MariaDB/Galera installed: no {missing}")
        pytest.skip(f"MariaDB/Galera is not installed: no {missing}")
    # Not tmp_path: a node's unix socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="evermail-it-galera.", dir="/var/tmp"))
    cluster = Cluster([], directory, OWN_PORT_OFFSET)
    try:
        cluster = start_own_cluster(directory, OWN_PORT_OFFSET)
        _watch_galera(request, cluster)
        yield cluster
    finally:
        try:
            cluster.down()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _watch_galera(request, cluster) -> None:
    """Have a failure of this test report the cluster's state and log tails."""
    clusters = getattr(request.node, "galera_clusters", [])
    clusters.append(cluster)
    request.node.galera_clusters = clusters


@pytest.fixture
def mysql_db(galera):
    """A fresh, uniquely named database on the cluster, dropped after the test;
    (cluster, name, [one URL per node for that database])."""
    name = galera.create_database()
    yield galera, name, [node.url_for(name) for node in galera.nodes]
    galera.drop_database(name)


@pytest.fixture
def make_mysql_server(binary, tmp_path, make_server):
    """A factory of MysqlServer objects (not started) over the `mysql_db` database:
    make(name, urls, blobs=None, extra="") with the URLs in the order to try."""

    def make(name: str, urls: list[str], blobs: Path | None = None,
             extra: str = "") -> MysqlServer:
        srv = make_server(name, mysql_config(urls, name, blobs, extra))
        srv.__class__ = MysqlServer
        return srv

    return make


def pytest_terminal_summary(terminalreporter):
    """Say why tests were skipped even under -q (e.g. no Galera cluster), so a green
    run that skipped a backend is visibly not a full run."""
    reasons = set()
    for rep in terminalreporter.stats.get("skipped", []):
        if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            reasons.add(str(rep.longrepr[2]).removeprefix("Skipped: "))
    for reason in sorted(reasons):
        terminalreporter.write_line(f"SKIPPED: {reason}", yellow=True)
