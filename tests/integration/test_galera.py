"""The real binary on the MariaDB Galera metadata backend.

Each test gets a fresh database on the cluster of EVERMAIL_TEST_MYSQL_URLS (see
galera.py; skipped without one, failed under CI), and leaves the cluster whole and
Synced; the two that kill a joiner during its state transfer start a cluster of their
own (`own_galera`). Counts and times are bounded: at most 200 messages and 60 s per
loop.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

from conftest import (
    ALICE,
    NET_TIMEOUT,
    READY_TIMEOUT,
    fetch_bodies,
    lmtp_deliver,
    message,
)
from galera import SCRIPT as GALERA_SCRIPT
from galera import cmdline

LOOP_MESSAGES = 200
LOOP_SECONDS = 60.0
# Fail over quickly: a dead node costs at most a second before it is skipped.
FAST_FAILOVER = """
[metadata.mysql]
connect_timeout_ms = 1000
probe_interval_ms = 500
"""


def serve_fails(srv) -> str:
    """Starts `evermail serve` expecting it to refuse; its stderr."""
    proc = subprocess.run(
        [srv.binary, "--data-dir", str(srv.data_dir), "--config", str(srv.config_path),
         "serve"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=READY_TIMEOUT,
    )
    assert proc.returncode != 0, f"serve started: {proc.stdout}"
    assert "ready" not in proc.stdout.splitlines(), proc.stdout
    return proc.stderr


def bodies_by_id(srv, user=ALICE) -> dict[str, list[bytes]]:
    """{Message-ID: [bodies]} of the INBOX, read over IMAP."""
    client = srv.imap(*user)
    try:
        got = fetch_bodies(client)
        client.logout()
    finally:
        try:
            client.shutdown()
        except OSError:
            pass
    out: dict[str, list[bytes]] = {}
    for body in got.values():
        for line in body.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                out.setdefault(line.split(b":", 1)[1].strip().decode(), []).append(body)
                break
    return out


def one(srv, data: bytes) -> tuple[int, str]:
    """Deliver `data` to alice on a fresh connection: (code, text), or (0, error)."""
    try:
        client = srv.lmtp(timeout=NET_TIMEOUT)
    except OSError as e:
        return 0, f"connect: {e}"
    try:
        code, text = lmtp_deliver(client, "s@example.net", [ALICE[0]], data)[ALICE[0]]
        client.quit()
        return code, text
    except Exception as e:  # a dropped connection: the outcome is unknown
        return 0, f"{type(e).__name__}: {e}"
    finally:
        client.close()


def test_every_node_runs_with_the_durability_settings(galera):
    """What the crash tests rely on, checked on the cluster they run against: each
    commit fsynced to the redo log, torn pages recoverable, the binary log (if on)
    synced, causal reads, and the gcache recovered after a crash (so rejoining nodes
    take IST)."""
    for i in range(len(galera.nodes)):
        row = galera.sql(i, "SELECT @@innodb_flush_log_at_trx_commit, @@innodb_doublewrite, "
                         "@@log_bin, @@sync_binlog, @@wsrep_on, @@wsrep_sync_wait, "
                         "@@wsrep_provider_options").stdout.rstrip("\n").split("\t")
        flush, doublewrite, log_bin, sync_binlog, wsrep_on, sync_wait, provider = row
        assert flush == "1", f"node {i + 1}: innodb_flush_log_at_trx_commit={flush}"
        assert doublewrite == "1", f"node {i + 1}: innodb_doublewrite={doublewrite}"
        assert log_bin == "0" or sync_binlog == "1", f"node {i + 1}: sync_binlog={sync_binlog}"
        assert wsrep_on == "1", f"node {i + 1} is not a Galera node"
        assert int(sync_wait) & 1, f"node {i + 1}: wsrep_sync_wait={sync_wait}"
        assert "gcache.recover = yes" in provider, f"node {i + 1}: {provider}"


def test_migrate_status_and_two_nodes_share_the_cluster(mysql_db, make_mysql_server,
                                                        tmp_path):
    cluster, db, urls = mysql_db
    blobs = tmp_path / "shared-blobs"
    # Each evermail node tries a different database node first.
    a = make_mysql_server("a", [urls[0], urls[1], urls[2]], blobs)
    b = make_mysql_server("b", [urls[1], urls[2], urls[0]], blobs)

    # A new database: serve refuses and says what to do; status says the same.
    err = serve_fails(a)
    assert "evermail db migrate" in err, err
    status = a.cli("db", "status", check=False)
    assert status.returncode != 0
    assert "backend: mysql" in status.out and "evermail db migrate" in status.out, status.out
    migrated = a.cli("db", "migrate")
    assert "migrated" in migrated.out, migrated.out
    assert "nothing to migrate" in b.cli("db", "migrate").out
    status = a.cli("db", "status")
    assert "current" in status.out, status.out
    node_lines = [l for l in status.out.splitlines() if l.startswith("node ")]
    assert len(node_lines) == 3, status.out
    for line in node_lines:
        assert "reachable=yes state=Synced cluster_size=3" in line, status.out
    assert cluster.nodes[0].password not in status.out + status.err, "password shown"

    a.start()
    b.start()
    a.add_account(*ALICE)
    sent: dict[str, bytes] = {}
    bodies = [
        "Hello.\r\n",
        "Caf\u00e9 \u2014 8-bit UTF-8 body \u00fc\u00f6\u00e4.\r\n",
        ".leading dot\r\n..two dots\r\n.\r\nend\r\n",
        "x" * 5000 + "\r\n",
    ]
    for i in range(20):
        srv = a if i % 2 == 0 else b
        msgid = f"<galera-{i}-{time.monotonic_ns()}@test.example>"
        data = message(f"via {srv.workdir.name} {i}", bodies[i % len(bodies)], msgid)
        code, text = one(srv, data)
        assert code == 250, f"delivery {i} through {srv.workdir.name}: {code} {text}"
        sent[msgid] = data
    # Everything acknowledged through either node is read through both, byte for byte.
    for srv in (a, b):
        got = bodies_by_id(srv)
        assert set(got) == set(sent), f"through {srv.workdir.name}"
        for msgid, data in sent.items():
            assert got[msgid] == [data], f"{msgid} through {srv.workdir.name}"

    # A schema newer than this build: both the CLI and a new node refuse, clearly.
    cluster.sql(0, "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)",
                database=db)
    c = make_mysql_server("c", urls, blobs)
    err = serve_fails(c)
    assert "newer than this evermail" in err and "9999" in err, err
    status = c.cli("db", "status", check=False)
    assert status.returncode != 0 and "newer than this evermail" in status.out, status.out
    cluster.sql(0, "DELETE FROM schema_migrations WHERE version = 9999", database=db)


def test_sqlite_refuses_a_newer_schema_through_the_cli(make_server):
    srv = make_server()
    srv.start()
    srv.stop()
    status = srv.cli("--config", str(srv.config_path), "db", "status")
    assert "backend: sqlite" in status.out and "current" in status.out, status.out
    with sqlite3.connect(srv.data_dir / "meta.sqlite") as conn:
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
    err = serve_fails(srv)
    assert "newer than this evermail" in err and "9999" in err, err


def known_schema(srv) -> int:
    """The newest schema version this evermail knows, as `db status` says."""
    out = srv.cli("db", "status", check=False).out
    m = re.search(r"this evermail knows up to (\d+)", out)
    assert m, out
    return int(m.group(1))


def check_rolling_upgrade_rule(srv, record) -> None:
    """A node on a schema one expand-only migration newer than it knows starts and `db
    status` says so; one contract migration newer, it refuses naming both versions.
    `record(version, compatible_down_to)` adds a migration row as a newer build would."""
    latest = known_schema(srv)
    record(latest + 1, latest)
    status = srv.cli("db", "status")
    assert (f"version {latest + 1} (compatible down to {latest}; this evermail knows up "
            f"to {latest})") in status.out, status.out
    assert "compatible with it" in status.out and "may run" in status.out, status.out
    srv.start()
    srv.add_account(*ALICE)
    code, text = one(srv, message("on N+1's schema", "expand only\r\n"))
    assert code == 250, f"{code} {text}"
    srv.stop()

    record(latest + 2, latest + 2)
    err = serve_fails(srv)
    assert f"version {latest + 2}, newer than this evermail understands ({latest})" in err, err
    assert f"knows schema version {latest + 2} or newer" in err, err
    status = srv.cli("db", "status", check=False)
    assert status.returncode != 0 and "not compatible" in status.out, status.out


def test_mysql_runs_on_a_compatible_newer_schema_and_refuses_an_incompatible_one(
        mysql_db, make_mysql_server, tmp_path):
    cluster, db, urls = mysql_db
    srv = make_mysql_server("a", urls, tmp_path / "blobs")
    srv.cli("db", "migrate")

    def record(version: int, down_to: int) -> None:
        cluster.sql(0, "INSERT INTO schema_migrations (version, applied_at, "
                    f"compatible_down_to) VALUES ({version}, 0, {down_to})", database=db)

    check_rolling_upgrade_rule(srv, record)


def test_sqlite_runs_on_a_compatible_newer_schema_and_refuses_an_incompatible_one(
        make_server):
    srv = make_server()
    srv.start()
    srv.stop()
    # Every CLI call reads the node's config, as MysqlServer's do.
    plain_cli = srv.cli
    srv.cli = lambda *args, **kw: plain_cli("--config", str(srv.config_path), *args, **kw)

    def record(version: int, down_to: int) -> None:
        with sqlite3.connect(srv.data_dir / "meta.sqlite") as conn:
            conn.execute("INSERT INTO schema_migrations (version, applied_at, "
                         "compatible_down_to) VALUES (?, 0, ?)", (version, down_to))

    check_rolling_upgrade_rule(srv, record)


def delivery_loop(srv, stop_at: float, acked: dict, refused: list, unknown: list,
                  prefix: str, count: int) -> None:
    for i in range(count):
        if time.monotonic() > stop_at:
            return
        msgid = f"<{prefix}-{i}-{time.monotonic_ns()}@test.example>"
        data = message(f"{prefix} {i}", f"message {i} of {prefix}\r\n", msgid)
        code, text = one(srv, data)
        if code == 250:
            acked[msgid] = data
        elif code == 451:
            refused.append((msgid, text))
        elif code == 0:
            unknown.append((msgid, text))
        else:
            raise AssertionError(f"{prefix} {i}: unexpected reply {code} {text}")


def test_kill_one_galera_node_during_deliveries(mysql_db, make_mysql_server, tmp_path):
    cluster, db, urls = mysql_db
    cluster.check_dir_matches_urls()
    cluster.wait_healthy()
    srv = make_mysql_server("a", urls, tmp_path / "blobs", FAST_FAILOVER)
    srv.cli("db", "migrate")
    srv.start()
    srv.add_account(*ALICE)

    victim = 1  # node 1, the first URL: the one this evermail node tries first
    acked: dict[str, bytes] = {}
    refused: list = []
    unknown: list = []
    stop_at = time.monotonic() + LOOP_SECONDS
    # Two connections deliver at once, 100 messages each, while node 1 is killed.
    loops = [
        threading.Thread(target=delivery_loop, daemon=True,
                         args=(srv, stop_at, acked, refused, unknown, f"k{t}",
                               LOOP_MESSAGES // 2))
        for t in range(2)
    ]
    for t in loops:
        t.start()
    while len(acked) < 30 and any(t.is_alive() for t in loops):
        time.sleep(0.05)
    before_kill = len(acked)
    cluster.kill(victim)
    killed_at = time.monotonic()
    for t in loops:
        t.join(timeout=LOOP_SECONDS + NET_TIMEOUT)
        assert not t.is_alive(), "the delivery loop did not end in time"
    after_kill = len(acked) - before_kill
    print(f"\nkill one node: {len(acked)} acknowledged ({before_kill} before the kill, "
          f"{after_kill} after), {len(refused)} got 451, {len(unknown)} unknown; "
          f"loop ran {time.monotonic() - killed_at:.1f} s after the kill")
    assert after_kill >= 50, (
        f"deliveries did not continue through the other nodes: {after_kill} after the "
        f"kill; 451s: {refused[:5]} unknown: {unknown[:5]}")
    assert not unknown, f"connections dropped mid-delivery: {unknown[:5]}"

    # Every acknowledged message is there, exactly once, byte for byte.
    got = bodies_by_id(srv)
    for msgid, data in acked.items():
        assert got.get(msgid) == [data], f"{msgid}: {len(got.get(msgid, []))} copies"
    stored = sum(len(v) for v in got.values())
    assert stored <= len(acked) + len(refused), "more messages stored than sent"

    # The killed node rejoins and catches up.
    cluster.script("start-node", str(victim), str(cluster.dir))
    cluster.wait_healthy(timeout=120)
    assert cluster.status(victim - 1, "wsrep_local_state_comment") == "Synced"
    assert cluster.status(victim - 1, "wsrep_cluster_size") == "3"
    count = cluster.sql(victim - 1, "SELECT COUNT(*) FROM messages", database=db).stdout
    assert int(count) == stored, f"node {victim} has {count.strip()} messages, not {stored}"


def test_crash_of_every_galera_node_loses_nothing_acknowledged(mysql_db, make_mysql_server,
                                                               tmp_path):
    cluster, db, urls = mysql_db
    cluster.check_dir_matches_urls()
    cluster.wait_healthy()
    srv = make_mysql_server("a", urls, tmp_path / "blobs",
                            FAST_FAILOVER + "max_attempts = 5\n")
    srv.cli("db", "migrate")
    srv.start()
    srv.add_account(*ALICE)

    acked: dict[str, bytes] = {}
    for i in range(40):
        msgid = f"<crash-{i}-{time.monotonic_ns()}@test.example>"
        data = message(f"crash {i}", f"before the crash {i}\r\n", msgid)
        code, text = one(srv, data)
        assert code == 250, f"{i}: {code} {text}"
        acked[msgid] = data

    # A crash of the whole cluster: SIGKILL of every node, none shut down cleanly.
    for n in (1, 2, 3):
        cluster.kill(n)
    code, text = one(srv, message("while down", "no database\r\n"))
    assert code == 451, f"with every database node down: {code} {text}"

    started = time.monotonic()
    cluster.script("up", str(cluster.dir))
    cluster.wait_healthy(timeout=120)
    print(f"\ncluster restarted after a crash of every node in "
          f"{time.monotonic() - started:.1f} s")

    # evermail finds the nodes again by itself (its probe), then delivers.
    deadline = time.monotonic() + 30
    while True:
        msgid = f"<after-{time.monotonic_ns()}@test.example>"
        data = message("after the restart", "after\r\n", msgid)
        code, text = one(srv, data)
        if code == 250:
            acked[msgid] = data
            break
        assert code == 451 and time.monotonic() < deadline, f"{code} {text}"
        time.sleep(0.5)

    got = bodies_by_id(srv)
    for msgid, data in acked.items():
        assert got.get(msgid) == [data], f"{msgid}: {len(got.get(msgid, []))} copies"
    # The "while down" delivery got 451, so at most it is missing; nothing else is.
    assert len(got) in (len(acked), len(acked) + 1), sorted(set(got) - set(acked))
    for i in range(3):
        count = cluster.sql(i, "SELECT COUNT(*) FROM messages", database=db).stdout
        assert int(count) == len(got), f"node {i + 1}: {count.strip()} messages"


def test_a_node_killed_during_its_state_transfer_starts_again(own_galera):
    """A joiner SIGKILLed while it waits for its snapshot leaves wsrep_sst_mariabackup
    and a `timeout 300 socat` listener on its SST port behind; scripts/galera must stop
    them and start the node at once, not fail or hang for 300 s. On a cluster of its
    own: a donor left in the interrupted transfer must not break the tests after it."""
    cluster = own_galera
    cluster.check_dir_matches_urls()
    cluster.wait_healthy()
    n = 3
    port = cluster.sst_port(n)
    cluster.kill(n)
    # The kill races with the donor: once the donor's first stream (the GTID file)
    # reached the joiner, its SST script sees its parent gone and leaves nothing
    # behind. Such a run proves nothing here, so it is tried again (at most 3 times).
    for attempt in range(1, 4):
        session = kill_joiner_waiting_for_its_snapshot(cluster, n, port)
        left = cluster.session_pids(session)
        if left and cluster.listening(port):
            break
        print(f"\nattempt {attempt}: the donor's stream came first, nothing left behind")
    assert left, "the killed joiner left no state-transfer helpers behind (3 attempts)"
    assert cluster.listening(port), f"nothing holds the SST port {port} after the kill"
    print(f"\nkilled joiner left {len(left)} processes, port {port} still listening")

    started = time.monotonic()
    cluster.script("start-node", str(n), str(cluster.dir))
    cluster.wait_healthy(timeout=120)
    print(f"node {n} started again in {time.monotonic() - started:.1f} s")
    assert not cluster.session_pids(session), "helpers of the killed run are still alive"
    assert cluster.session_pids(cluster.pid(n)), "the new run is not in a session of its own"


def kill_joiner_waiting_for_its_snapshot(cluster, n: int, port: int) -> int:
    """Starts stopped node n without grastate.dat (so it needs a full snapshot, SST by
    mariabackup) and SIGKILLs it as soon as its SST listener is up; its session id."""
    (cluster.dir / f"node{n}" / "data" / "grastate.dat").unlink(missing_ok=True)
    starting = subprocess.Popen(
        [str(GALERA_SCRIPT), "start-node", str(n), str(cluster.dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=cluster.script_env())
    try:
        deadline = time.monotonic() + 60
        while not cluster.listening(port):
            assert starting.poll() is None, f"start-node ended early: {starting.stderr.read()}"
            assert time.monotonic() < deadline, f"node {n} never listened on {port} for SST"
            time.sleep(0.02)
        session = cluster.pid(n)
        assert session is not None, f"node {n} exited before its SST"
        # The script held first (it would otherwise clean up and retry the start by
        # itself), then the node at once, before a donor's stream can reach it.
        os.kill(starting.pid, signal.SIGSTOP)
        os.kill(session, signal.SIGKILL)
        # Gone with the script, the node is reaped by init (not left a zombie).
        starting.kill()
        starting.wait(timeout=30)
        cluster.kill_wait(n)
        return session
    finally:
        starting.kill()
        starting.wait(timeout=30)


def test_a_donor_still_sending_to_a_killed_joiner_is_stopped_before_it_starts_again(
        own_galera):
    """The donor chosen for a joiner that is then SIGKILLed goes on with the transfer:
    its script has streamed the snapshot's first part (the GTID file), sleeps 10 s,
    then streams the backup to the joiner's SST port. A slow donor (its sleep held
    here with SIGSTOP, as a loaded machine might) would stream into the new run of the
    joiner, which waits for a snapshot from another donor, or sit in Donor/Desynced;
    `scripts/galera start-node` must stop that donor's side of the old transfer, so the
    donor is Synced again and the node gets one snapshot from one donor."""
    cluster = own_galera
    cluster.check_dir_matches_urls()
    cluster.wait_healthy()
    n = 3
    port = cluster.sst_port(n)
    cluster.kill(n)
    (cluster.dir / f"node{n}" / "data" / "grastate.dat").unlink(missing_ok=True)
    starting = subprocess.Popen(
        [str(GALERA_SCRIPT), "start-node", str(n), str(cluster.dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=cluster.script_env())
    held: int | None = None
    try:
        # Wait until the donor has sent the GTID file and sleeps before the backup.
        deadline = time.monotonic() + 120
        while held is None:
            assert starting.poll() is None, f"start-node ended early: {starting.stderr.read()}"
            assert time.monotonic() < deadline, f"no donor started sending to node {n}"
            held = next((p for p, cmd in cluster.donor_processes(n).items()
                         if cmd.startswith("sleep")), None)
            time.sleep(0.05)
        os.kill(held, signal.SIGSTOP)
        stale = cluster.donor_processes(n)
        donors = [m for m in (1, 2)
                  if cluster.status(m - 1, "wsrep_local_state_comment") == "Donor/Desynced"]
        assert donors, "no node is the donor of the transfer"
        starting.kill()
        starting.wait(timeout=30)
        cluster.kill(n)
        print(f"\nnode {n} killed while node {donors[0]} was sending to it "
              f"({len(stale)} donor processes, sleep {held} held)")

        started = time.monotonic()
        cluster.script("start-node", str(n), str(cluster.dir))
        cluster.wait_healthy(timeout=120)
        print(f"node {n} started again in {time.monotonic() - started:.1f} s")
        alive = {p: cmd for p, cmd in stale.items() if cmdline(p) == cmd}
        assert not alive, f"the donor side of the killed run's transfer still runs: {alive}"
    finally:
        starting.kill()
        starting.wait(timeout=30)
        if held is not None and cmdline(held).startswith("sleep"):
            os.kill(held, signal.SIGCONT)
