"""RAIS with real stores: two filesystem stores and a real S3 server (Garage,
started per test by scripts/garage on free loopback ports), replicas = 2 and
min_replicas = 2.

Stopping the S3 server mid-run must not cost a single delivery (the two fs
stores take the copies), every acknowledged message must read back byte for byte,
and once too few stores can take a copy, LMTP must answer 451 4.3.0 and leave
nothing visible.

Garage is found at EVERMAIL_GARAGE_BIN or /var/tmp/evermail-tools/bin/garage
(`scripts/garage up` installs it there). Without it these tests are skipped,
except when CI is set: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ALICE, CONFIG, HOST, fetch_bodies, lmtp_deliver, message

REPO = Path(__file__).resolve().parents[2]
GARAGE_SCRIPT = REPO / "scripts" / "garage"
GARAGE_UP_TIMEOUT = 180.0  # seconds for `scripts/garage up` (no install here)
SENDER = "sender@example.net"
MSGID_RE = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.M | re.I)


def garage_bin() -> str:
    tools = os.environ.get("EVERMAIL_TOOLS", "/var/tmp/evermail-tools")
    return os.environ.get("EVERMAIL_GARAGE_BIN") or os.path.join(tools, "bin", "garage")


def free_port_block() -> int:
    """A port P with P, P+1 and P+3 free on loopback (Garage's S3, RPC, admin)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((HOST, 0))
            base = s.getsockname()[1]
        if base + 3 > 65535:
            continue
        ok = True
        for port in (base, base + 1, base + 3):
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of loopback ports")


class Garage:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.env = dict(os.environ)
        self.env["EVERMAIL_GARAGE_PORT"] = str(free_port_block())
        self.env["EVERMAIL_GARAGE_BIN"] = garage_bin()
        self.vars: dict[str, str] = {}

    def script(self, *args: str, timeout: float = GARAGE_UP_TIMEOUT) -> str:
        proc = subprocess.run(
            [str(GARAGE_SCRIPT), *args, str(self.dir)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
        assert proc.returncode == 0, (
            f"scripts/garage {' '.join(args)} exited {proc.returncode}\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
        return proc.stdout.decode()

    def up(self) -> "Garage":
        out = self.script("up")
        self.vars = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert self.vars.get("EVERMAIL_TEST_S3_PID"), out
        return self

    @property
    def pid(self) -> int:
        return int(self.vars["EVERMAIL_TEST_S3_PID"])

    def kill(self) -> None:
        """SIGKILL by pid, as a crash or a cut cable would; wait until it is gone."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError(f"garage pid {self.pid} still alive after SIGKILL")

    def down(self) -> None:
        self.script("down", timeout=60)

    def store_config(self, store_id: str) -> str:
        v = self.vars
        return f"""
[[storage.stores]]
kind = "s3"
id = "{store_id}"
[storage.stores.s3]
endpoint = "{v['EVERMAIL_TEST_S3_ENDPOINT']}"
region = "{v['EVERMAIL_TEST_S3_REGION']}"
bucket = "{v['EVERMAIL_TEST_S3_BUCKET']}"
access_key_id = "{v['EVERMAIL_TEST_S3_ACCESS_KEY_ID']}"
secret_access_key = "{v['EVERMAIL_TEST_S3_SECRET_ACCESS_KEY']}"
prefix = "rais-{os.getpid()}-{time.monotonic_ns()}/"
allow_http = true
timeout_secs = 10
connect_timeout_secs = 2
max_retries = 1
"""


@pytest.fixture
def garage(tmp_path):
    binary = garage_bin()
    if not os.access(binary, os.X_OK):
        why = (
            f"no Garage at {binary}: run `scripts/garage up` once to install it "
            "(or set EVERMAIL_GARAGE_BIN)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI is set, so the S3 tests must run")
        pytest.skip(f"SKIPPED: {why}")
    g = Garage(tmp_path / "garage")
    try:
        yield g.up()
    finally:
        g.down()


class Unwritable:
    """Makes directories refuse writes: mode 0555, and where that does not stop
    us (root ignores modes) a read-only bind mount, which fails writes with EROFS
    as a remounted or failing disk does. Undone by restore()."""

    def __init__(self, *paths: Path):
        self.paths = paths
        self.mounted: list[Path] = []
        self.chmodded: list[Path] = []

    def apply(self) -> "Unwritable":
        for path in self.paths:
            if os.geteuid() == 0:
                subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
                self.mounted.append(path)
                subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
            else:
                for d in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
                    d.chmod(0o555)
                    self.chmodded.append(d)
            probe = path / ".write-test"
            with pytest.raises(OSError):
                probe.write_bytes(b"x")
        return self

    def restore(self) -> None:
        for path in self.mounted:
            subprocess.run(["umount", str(path)], check=False)
        self.mounted = []
        for d in self.chmodded:
            d.chmod(0o755)
        self.chmodded = []


def metric(server, name: str, store: str) -> float | None:
    status, _, body = server.http_get("/metrics")
    assert status == 200
    total = None
    for line in body.decode().splitlines():
        if line.startswith(name) and f'store="{store}"' in line:
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def deliver(server, data: bytes) -> tuple[int, str]:
    client = server.lmtp()
    try:
        results = lmtp_deliver(client, SENDER, [ALICE[0]], data)
        client.quit()
    finally:
        client.close()
    return results[ALICE[0]]


def test_s3_outage_costs_no_delivery_and_too_few_stores_get_451(make_server, garage, tmp_path):
    fs1, fs2 = tmp_path / "fs1", tmp_path / "fs2"
    config = (
        CONFIG
        + f"""
[storage]
replicas = 2
min_replicas = 2
probe_interval_secs = 1

[[storage.stores]]
kind = "fs"
id = "fs1"
path = "{fs1}"

[[storage.stores]]
kind = "fs"
id = "fs2"
path = "{fs2}"
"""
        + garage.store_config("garage")
    )
    server = make_server(config=config).start()
    server.add_account(*ALICE)

    acknowledged: dict[bytes, bytes] = {}

    def deliver_batch(label: str, n: int) -> None:
        for i in range(n):
            text = f"{label} body {i}\r\n" + "x" * (i * 97 % 3000) + "\r\n"
            data = message(f"{label} {i}", text)
            code, text = deliver(server, data)
            assert code == 250, f"{label} {i}: {code} {text}"
            acknowledged[MSGID_RE.search(data).group(1)] = data

    deliver_batch("before", 15)
    # Placement spread copies over all three stores, the bucket included.
    assert (metric(server, "evermail_blob_put_seconds_count", "garage") or 0) > 0

    # Three connections keep delivering while Garage is killed under them, so some
    # of its writes are in flight when it dies.
    lock = threading.Lock()
    failures: list[str] = []
    sent = [0]

    def worker(w: int) -> None:
        for i in range(15):
            text = f"during {w}-{i}\r\n" + "y" * (i * 331 % 20000) + "\r\n"
            data = message(f"during {w}-{i}", text)
            try:
                code, reply = deliver(server, data)
            except Exception as e:  # noqa: BLE001 - reported below
                code, reply = 0, repr(e)
            with lock:
                sent[0] += 1
                if code == 250:
                    acknowledged[MSGID_RE.search(data).group(1)] = data
                else:
                    failures.append(f"during {w}-{i}: {code} {reply}")

    workers = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(3)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 60
    while sent[0] < 6:
        assert time.monotonic() < deadline, "deliveries did not start"
        time.sleep(0.01)
    garage.kill()
    for t in workers:
        t.join(timeout=120)
        assert not t.is_alive(), "a delivery worker hung"
    assert not failures, failures
    deliver_batch("after", 10)
    # The bucket was tried, failed, and left write placement; mail kept flowing.
    assert (metric(server, "evermail_blob_put_errors_total", "garage") or 0) >= 1
    assert metric(server, "evermail_blob_store_healthy", "garage") == 0

    def check_mailbox() -> None:
        client = server.imap(*ALICE)
        try:
            bodies = fetch_bodies(client)
        finally:
            client.logout()
        by_id = {MSGID_RE.search(b).group(1): b for b in bodies.values()}
        assert len(by_id) == len(bodies), "a message appears twice"
        assert set(by_id) == set(acknowledged), (
            f"missing {sorted(set(acknowledged) - set(by_id))[:5]}, "
            f"unexpected {sorted(set(by_id) - set(acknowledged))[:5]}"
        )
        for msgid, data in acknowledged.items():
            assert by_id[msgid] == data, f"{msgid!r} differs"

    # Every acknowledged body reads back, whichever stores hold it.
    check_mailbox()

    # Now neither fs store takes a write and the bucket is down: no delivery may be
    # acknowledged, and none may become visible.
    frozen = Unwritable(fs1, fs2).apply()
    try:
        for i in range(3):
            data = message(f"refused {i}")
            code, text = deliver(server, data)
            assert code == 451, f"refused {i}: {code} {text}"
            assert "4.3.0" in text, text
        check_mailbox()
    finally:
        frozen.restore()

    # The fs stores are back: the probes put them back in placement and mail flows.
    deadline = time.monotonic() + 15
    while metric(server, "evermail_blob_store_healthy", "fs1") != 1 or metric(
        server, "evermail_blob_store_healthy", "fs2"
    ) != 1:
        assert time.monotonic() < deadline, "fs stores not probed back within 15s"
        time.sleep(0.2)
    deliver_batch("recovered", 3)
    check_mailbox()


def test_store_add_s3_at_run_time_takes_new_bodies(make_server, garage, tmp_path):
    """`evermail store add ID --s3-...` while a node serves: the secret comes from a
    file (never argv), a wrong one is refused by the probe and nothing is registered,
    `store list` shows endpoint and bucket but no secret, and the running node opens
    the store from the registry: with the fs store read-only, new bodies land on S3."""
    v = garage.vars
    fs1 = tmp_path / "fs1"
    config = CONFIG + f"""
[storage]
replicas = 1
min_replicas = 1
registry_refresh_secs = 1

[storage.maintenance]
enabled = false

[[storage.stores]]
kind = "fs"
id = "fs1"
path = "{fs1}"
"""
    server = make_server(config=config).start()
    server.add_account(*ALICE)

    def cli(*args: str, check: bool = True):
        return server.cli("--config", str(server.config_path), *args, check=check)

    code, text = deliver(server, message("before", "on the fs store\r\n"))
    assert code == 250, text

    secret = v["EVERMAIL_TEST_S3_SECRET_ACCESS_KEY"]
    s3_args = [
        "--s3-endpoint", v["EVERMAIL_TEST_S3_ENDPOINT"],
        "--s3-bucket", v["EVERMAIL_TEST_S3_BUCKET"],
        "--s3-region", v["EVERMAIL_TEST_S3_REGION"],
        "--s3-access-key-id", v["EVERMAIL_TEST_S3_ACCESS_KEY_ID"],
        "--s3-prefix", f"added-{os.getpid()}-{time.monotonic_ns()}/",
        "--s3-allow-http",
    ]
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("0" * len(secret) + "\n")
    refused = cli("store", "add", "bucket", *s3_args, "--s3-secret-file", str(wrong),
                  check=False)
    assert refused.returncode != 0, refused.out
    assert "probing store bucket" in refused.err, refused.err
    assert "bucket" not in [l.split()[0] for l in cli("store", "list").out.splitlines()]

    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    added = cli("store", "add", "bucket", *s3_args, "--s3-secret-file", str(secret_file),
                "--weight", "5")
    assert "store bucket added" in added.out, added.out
    listing = cli("store", "list").out
    row = next(l for l in listing.splitlines() if l.split()[:1] == ["bucket"])
    assert v["EVERMAIL_TEST_S3_ENDPOINT"] in row and v["EVERMAIL_TEST_S3_BUCKET"] in row, row
    assert secret not in listing, listing

    # New bodies can go only to the bucket now; the node re-reads the registry every
    # second and opens the store from its entry there (its config does not name it).
    cli("store", "set", "fs1", "--state", "read-only")
    time.sleep(2.5)
    before_files = sorted(p for p in fs1.rglob("*") if p.is_file())
    sent = {}
    for i in range(5):
        data = message(f"after {i}", f"on the bucket {i}\r\n")
        code, text = deliver(server, data)
        assert code == 250, f"{i}: {code} {text}"
        sent[MSGID_RE.search(data).group(1)] = data
    assert sorted(p for p in fs1.rglob("*") if p.is_file()) == before_files
    assert (metric(server, "evermail_blob_put_seconds_count", "bucket") or 0) >= 5
    status = cli("store", "status").out
    row = next(l for l in status.splitlines() if l.split()[:1] == ["bucket"])
    assert " yes " in f" {row} ", status
    # Read back through IMAP, from the bucket.
    client = server.imap(*ALICE)
    try:
        bodies = fetch_bodies(client)
    finally:
        client.logout()
    got = {MSGID_RE.search(b).group(1): b for b in bodies.values() if MSGID_RE.search(b)}
    for msgid, data in sent.items():
        assert got.get(msgid) == data, msgid
