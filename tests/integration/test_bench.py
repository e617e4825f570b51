"""Smoke test of `evermail-bench`: every workload for a tiny count against the real
evermail, checking what each run reports and what it left in the mailboxes. No
timing is asserted; the figures belong in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import HOST, select

BENCH_TIMEOUT = 120.0  # seconds for one evermail-bench run
PASSWORD = "bench-password"
BIG = "bench@example.com"
USERS = ["u1@example.com", "u2@example.com"]


@pytest.fixture(scope="module")
def bench_bin(binary) -> str:
    """EVERMAIL_BENCH_BIN, else evermail-bench next to the evermail binary."""
    path = os.environ.get("EVERMAIL_BENCH_BIN") or os.path.join(
        os.path.dirname(binary), "evermail-bench"
    )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"evermail-bench not found at {path}: build it with "
            "`cargo build --bin evermail-bench` or set EVERMAIL_BENCH_BIN"
        )
    return path


@pytest.fixture
def bench(bench_bin, server, tmp_path):
    """Runs evermail-bench against `server`; the JSON rows it reported."""
    for user in [BIG, *USERS]:
        server.add_account(user, PASSWORD)
    runs = iter(range(1000))

    def run(*args: str) -> list[dict]:
        out = tmp_path / f"bench-{next(runs)}.jsonl"
        proc = subprocess.run(
            [bench_bin, "--json", str(out), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=BENCH_TIMEOUT,
        )
        assert proc.returncode == 0, (
            f"evermail-bench {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout.decode()}\nstderr: {proc.stderr.decode()}"
        )
        return [json.loads(line) for line in out.read_text().splitlines()]

    return run


def addr(server, proto: str) -> str:
    return f"{HOST}:{server.ports[proto]}"


def count(server, user: str, mailbox: str = "INBOX") -> int:
    client = server.imap(user, PASSWORD)
    try:
        return select(client, mailbox)
    finally:
        client.logout()


def test_provision_then_every_workload(bench, server):
    lmtp, imap = addr(server, "lmtp"), addr(server, "imap")

    [row] = bench("provision", "--lmtp", lmtp, "--rcpt", BIG, "--count", "30",
                  "--connections", "4", "--size", "mix")
    assert (row["workload"], row["ops"], row["errors"]) == ("provision", 30, 0)
    assert count(server, BIG) == 30
    client = server.imap(BIG, PASSWORD)
    try:
        select(client)
        typ, data = client.search(None, "ALL")
        assert typ == "OK" and len(data[0].split()) == 30
        # Message 7 of seed 1, whichever connection carried it.
        typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = {d[1].strip() for d in data if isinstance(d, tuple)}
        assert b"Subject: bench 1.7 topic007" in subjects
    finally:
        client.logout()

    rows = bench("deliver", "--lmtp", lmtp, "--rcpt", ",".join(USERS),
                 "--connections", "1,2", "--recipients", "1,2", "--size", "small",
                 "--count", "5", "--seconds", "60")
    assert [(r["params"], r["ops"], r["errors"]) for r in rows] == [
        ("conns=1 size=small rcpts=1", 5, 0),
        ("conns=2 size=small rcpts=1", 5, 0),
        ("conns=1 size=small rcpts=2", 5, 0),
        ("conns=2 size=small rcpts=2", 5, 0),
    ]
    assert sum(count(server, u) for u in USERS) == 5 + 5 + 10 + 10

    rows = bench("imap-read", "--imap", imap, "--user", BIG, "--password", PASSWORD,
                 "--count", "3", "--scan-count", "1", "--seconds", "60")
    by_op = {r["op"]: r for r in rows}
    assert list(by_op) == ["login", "select", "fetch-flags", "fetch-headers", "fetch-body",
                           "search-header", "search-body", "store", "append"]
    for op, r in by_op.items():
        assert r["params"] == "conns=1 msgs=30", r
        if op.startswith("search"):
            # Text SEARCH may be refused (NO) by a server without it; it must have run.
            assert r["ops"] + r["errors"] == 1, r
        else:
            assert (r["ops"], r["errors"]) == ((1, 0) if op in (
                "select", "fetch-flags", "fetch-headers") else (3, 0)), r
    # FETCH 1:* of flags reported every message; APPEND left three in its mailbox.
    assert by_op["fetch-flags"]["extra"]["bytes_per_op"] > 30 * len("* 1 FETCH (UID 1 FLAGS ())")
    assert count(server, BIG, "bench-append") == 3

    [row] = bench("idle", "--imap", imap, "--user", USERS[0], "--password", PASSWORD,
                  "--pid", str(server.proc.pid), "--connections", "20", "--settle", "0",
                  "--warmup", "4")
    assert (row["ops"], row["errors"]) == (20, 0)
    extra = row["extra"]
    assert extra["sessions_open"] == 20 and extra["processes_after"] == 1
    assert extra["warmup_sessions"] == 4 and extra["rss_cold_kib"] > 0
    assert extra["rss_after_kib"] > 0 and extra["pss_after_kib"] > 0

    rows = bench("mixed", "--imap", imap, "--lmtp", lmtp, "--users", ",".join(USERS),
                 "--password", PASSWORD, "--clients", "2", "--deliverers", "1",
                 "--sessions", "4", "--seconds", "60", "--idle-ms", "200")
    by_op = {r["op"]: r for r in rows}
    assert (by_op["session"]["ops"], by_op["session"]["errors"]) == (4, 0)
    for op in ("login", "select", "fetch-new", "logout"):
        assert by_op[op]["ops"] == 4, by_op[op]
    assert by_op["deliver"]["errors"] == 0
