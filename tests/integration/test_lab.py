"""`evermail lab up|status|down`: a local cluster in one command, used as a newcomer
would, then through both of its proxies with imaplib and smtplib.LMTP."""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOST, evermail_bin, lmtp_deliver

# `lab up` may start a Galera cluster: scripts/galera allows 2 x 120 s per node.
TIMEOUT = 900.0


def lab(*args: str) -> str:
    proc = subprocess.run([evermail_bin(), "lab", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    out = proc.stdout.decode()
    assert proc.returncode == 0, f"lab {args}: {out}\n{proc.stderr.decode()}"
    return out


def endpoints(out: str) -> dict[str, dict[str, int]]:
    found = {}
    for line in out.splitlines():
        m = re.match(r"^(?:node|proxy) (\S+) (.*)$", line)
        if m:
            found[m.group(1)] = {k: int(v.rsplit(":", 1)[1])
                                 for k, v in (p.split("=") for p in m.group(2).split())}
    return found


def pids(dir_) -> list[int]:
    return [int(line.split()[1]) for line in (dir_ / "pids").read_text().splitlines()]


def run_lab(tmp_path, extra: list[str], nodes: int) -> tuple[str, str]:
    """Up, use, down; (the output of `lab up`, of `lab status` while it ran)."""
    dir_ = tmp_path / "lab"
    try:
        out = lab("up", "--dir", str(dir_), *extra)
        ends = endpoints(out)
        assert sum(1 for n in ends if not n.startswith("p")) == nodes, out
        assert {"p1", "p2"} <= set(ends), out
        assert "try:" in out and "you@example.lab" in out, out
        status = lab("status", "--dir", str(dir_))
        assert status.count(" running ") == nodes + 2, status

        # Deliver through one proxy, read through the other (once it has seen the
        # nodes' heartbeats).
        msg = b"Subject: lab\r\nMessage-ID: <lab-1@test>\r\n\r\nhello lab\r\n"
        deadline = time.monotonic() + 30
        while True:
            client = smtplib.LMTP(HOST, ends["p2"]["lmtp"], timeout=30)
            client.ehlo("client.test")
            code = lmtp_deliver(client, "s@example.net", ["you@example.lab"], msg)[
                "you@example.lab"][0]
            client.quit()
            if code == 250:
                break
            assert time.monotonic() < deadline, f"delivery through the lab: {code}"
            time.sleep(0.5)
        imap = imaplib.IMAP4(HOST, ends["p1"]["imap"], timeout=30)
        assert imap.login("you@example.lab", "lab-password")[0] == "OK"
        typ, data = imap.select("INBOX")
        assert typ == "OK" and int(data[0]) == 1, data
        assert imap.fetch("1", "(BODY.PEEK[])")[1][0][1] == msg
        imap.logout()
    finally:
        if (dir_ / "pids").exists():
            lab("down", "--dir", str(dir_))
    for pid in pids(dir_):
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z", pid
    assert lab("status", "--dir", str(dir_)).count(" stopped ") == nodes + 2
    return out, status


def test_lab_on_sqlite_runs_one_node_and_says_why(tmp_path):
    out, _ = run_lab(tmp_path, ["--sqlite"], nodes=1)
    assert "SQLite, which only one mailbox node may serve" in out, out


def galera_missing() -> str | None:
    """What `lab up` needs for a Galera cluster of its own and does not find."""
    for name in ("mariadbd", "mariabackup", "socat"):
        if not (shutil.which(name) or Path("/usr/sbin", name).is_file()):
            return name
    if not Path("/usr/lib/galera/libgalera_smm.so").is_file():
        return "/usr/lib/galera/libgalera_smm.so"
    return None


def test_lab_starts_its_own_galera(tmp_path):
    """Without --mysql-url and with MariaDB/Galera installed, `lab up` starts a 3-node
    Galera cluster of its own (port offset 200, clear of the test clusters) and
    `lab down` stops it."""
    missing = galera_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have MariaDB/Galera installed: no {missing}")
        pytest.skip(f"MariaDB/Galera is not installed: no {missing}")
    out, status = run_lab(tmp_path, [], nodes=3)
    assert "starting a 3-node Galera cluster" in out, out
    galera = [line for line in status.splitlines() if line.startswith("galera node")]
    assert len(galera) == 3 and all("state=Synced" in g and "cluster_size=3" in g
                                    for g in galera), status
    for n in (1, 2, 3):
        pid_file = tmp_path / "lab" / "galera" / f"node{n}" / "node.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        assert not os.path.exists(f"/proc/{pid}"), f"galera node {n} (pid {pid}) still runs"
    after = lab("status", "--dir", str(tmp_path / "lab"))
    assert after.count(" stopped\n") >= 3, after


def test_lab_on_galera_runs_three_nodes(mysql_db, tmp_path):
    cluster, db, urls = mysql_db
    args = []
    for url in urls:
        args += ["--mysql-url", url]
    run_lab(tmp_path, args, nodes=3)
