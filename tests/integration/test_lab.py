"""`evermail lab up|status|down`: a local cluster in one command, used as a newcomer
would, then through both of its proxies with imaplib and smtplib.LMTP."""

from __future__ import annotations

import imaplib
import os
import re
import smtplib
import subprocess
import time


from conftest import HOST, evermail_bin, lmtp_deliver

TIMEOUT = 180.0


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


def run_lab(tmp_path, extra: list[str], nodes: int) -> None:
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


def test_lab_on_sqlite_runs_one_node_and_says_why(tmp_path):
    run_lab(tmp_path, [], nodes=1)


def test_lab_on_galera_runs_three_nodes(mysql_db, tmp_path):
    cluster, db, urls = mysql_db
    args = []
    for url in urls:
        args += ["--mysql-url", url]
    run_lab(tmp_path, args, nodes=3)
