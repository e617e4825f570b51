"""Cluster membership, draining, and (with Galera) the proxy in front of several
nodes, against the real binary.

Membership and draining need only one node, so they run on SQLite. Several nodes
must share a database that several processes can use at once, so the proxy tests
run on the Galera cluster of EVERMAIL_TEST_MYSQL_URLS, a fresh database each.
"""

from __future__ import annotations

import imaplib
import time

from conftest import ALICE, CONFIG, HOST

FAST = "\n[cluster]\nheartbeat_ms = 200\ndown_after_ms = 2000\nsecret = \"test-secret\"\n"
WAIT = 20.0  # seconds any state change may take to show (heartbeats are 0.2 s)


def wait_for(what, check, timeout: float = WAIT):
    """Polls `check` until it returns a true value (returned) or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


def node_lines(srv) -> dict[str, str]:
    out = srv.cli("--config", str(srv.config_path), "node", "list").out
    return {line.split()[0]: line for line in out.splitlines() if " sessions=" in line}


def test_a_node_registers_heartbeats_and_drains_through_the_database(make_server):
    srv = make_server("n1", 'node_name = "n1"\n' + CONFIG + FAST).start()
    srv.add_account(*ALICE)
    line = wait_for("n1 listed", lambda: node_lines(srv).get("n1"))
    assert " active up " in line, line
    assert f"imap={HOST}:{srv.ports['imap']}" in line, line
    assert f"lmtp={HOST}:{srv.ports['lmtp']}" in line, line

    # Load: an open session is counted at the next heartbeat.
    client = srv.imap(*ALICE)
    wait_for("one session counted", lambda: " sessions=1 " in node_lines(srv)["n1"])

    srv.cli("--config", str(srv.config_path), "node", "drain", "n1")
    # The open session is told to go away, in words a client acts on.
    try:
        client.noop()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            client.noop()
            time.sleep(0.1)
        raise AssertionError("the session was not ended by the drain")
    except imaplib.IMAP4.abort as err:
        assert "UNAVAILABLE" in str(err), err
    wait_for("readyz 503", lambda: srv.http_get("/readyz")[0] == 503)
    try:
        imaplib.IMAP4(HOST, srv.ports["imap"], timeout=5)
        raise AssertionError("a drained node accepted an IMAP connection")
    except OSError:
        pass
    line = node_lines(srv)["n1"]
    assert " draining up " in line, line
    assert srv.running, "drain must not stop the process"

    # Undrain: the same addresses serve again.
    srv.cli("--config", str(srv.config_path), "node", "undrain", "n1")
    wait_for("readyz 200", lambda: srv.http_get("/readyz")[0] == 200)
    client = srv.imap(*ALICE)
    assert client.select("INBOX")[0] == "OK"
    client.logout()

    # Forget refuses a node that is up; a stopped node is down after down_after_ms.
    refused = srv.cli("--config", str(srv.config_path), "node", "forget", "n1", check=False)
    assert refused.returncode != 0 and "is up" in refused.stderr.decode(), refused.stderr
    srv.stop()
    wait_for("n1 down", lambda: " down " in node_lines(srv)["n1"])
    srv.cli("--config", str(srv.config_path), "node", "forget", "n1")
    assert "n1" not in node_lines(srv)
