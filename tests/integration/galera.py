"""The MariaDB Galera cluster the MySQL-backend tests run against.

Its node URLs come from EVERMAIL_TEST_MYSQL_URLS (`scripts/galera urls`); its
directory (pid files, for killing and restarting nodes with scripts/galera) from
EVERMAIL_GALERA_DIR, default /var/tmp/evermail-galera, with the port offset in
EVERMAIL_GALERA_PORT_OFFSET as for scripts/galera. The URLs and the directory are
checked to describe the same cluster before anything is killed.

A test that may leave a cluster broken (a donor stuck in an interrupted state
transfer) starts one of its own instead (`start_own_cluster`, conftest's `own_galera`),
in a fresh directory on ports shifted by OWN_PORT_OFFSET. When a test on either fails,
its report gets each node's state and the ends of its logs (`Cluster.evidence`).

SQL goes through the `mariadb` client (installed with the server) as the evermail
user over TCP, the password in MYSQL_PWD rather than on the command line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

URLS_VAR = "EVERMAIL_TEST_MYSQL_URLS"
DIR_VAR = "EVERMAIL_GALERA_DIR"
OFFSET_VAR = "EVERMAIL_GALERA_PORT_OFFSET"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "galera"
SQL_TIMEOUT = 30.0
# Longer than scripts/galera's own bounds (a node start: twice 120 s plus waiting for
# its ports), so the script, not this timeout, says what went wrong.
SCRIPT_TIMEOUT = 900.0


def cluster_urls() -> list[str]:
    """The node URLs; fails the test when CI is set and there are none, else skips."""
    urls = [u.strip() for u in os.environ.get(URLS_VAR, "").split(",") if u.strip()]
    if urls:
        return urls
    if os.environ.get("CI"):
        pytest.fail(
            f"{URLS_VAR} is not set, but CI is: the MariaDB/Galera integration tests "
            f"must run in CI (scripts/galera up; export {URLS_VAR}=$(scripts/galera urls))"
        )
    pytest.skip(
        f"{URLS_VAR} is not set: no Galera cluster to test against "
        f"(scripts/galera up; export {URLS_VAR}=$(scripts/galera urls))"
    )


class Node:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 3306
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")

    def url_for(self, database: str) -> str:
        return re.sub(r"/[^/]*$", "/" + database, self.url)


class Cluster:
    def __init__(self, urls: list[str], directory: Path | None = None,
                 port_offset: int | None = None):
        self.nodes = [Node(u) for u in urls]
        self.dir = directory or Path(os.environ.get(DIR_VAR, "/var/tmp/evermail-galera"))
        # None: scripts/galera takes EVERMAIL_GALERA_PORT_OFFSET from the environment.
        self.port_offset = port_offset
        self._sst_ports: dict[int, int] = {}

    # -- SQL ----------------------------------------------------------------

    def sql(self, i: int, statement: str, database: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Runs SQL on node i (0-based); the CompletedProcess (stdout: tab-separated)."""
        node = self.nodes[i]
        args = ["mariadb", "--no-defaults", "--protocol=tcp", f"-h{node.host}",
                f"-P{node.port}", f"-u{node.user}", "--batch", "--skip-column-names",
                "--connect-timeout=5", "-e", statement]
        if database:
            args.append(database)
        env = dict(os.environ, MYSQL_PWD=node.password)
        proc = subprocess.run(args, env=env, capture_output=True, text=True,
                              timeout=SQL_TIMEOUT)
        if check:
            assert proc.returncode == 0, f"node {i + 1}: {statement!r}: {proc.stderr}"
        return proc

    def status(self, i: int, name: str) -> str | None:
        """A GLOBAL STATUS value of node i, or None when it does not answer."""
        proc = self.sql(i, f"SHOW GLOBAL STATUS LIKE '{name}'", check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        return proc.stdout.split("\t", 1)[1].strip()

    def create_database(self) -> str:
        name = f"evermail_it_{uuid.uuid4().hex[:12]}"
        self.sql(0, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        # The DDL replicates in total order, but another node may apply it a moment
        # after node 1 answered; a server connecting there by name would get 1049.
        query = ("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM "
                 f"information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'")
        for i in range(len(self.nodes)):
            deadline = time.monotonic() + 10
            while self.sql(i, query).stdout.strip() != "1":
                assert time.monotonic() < deadline, f"database {name} never reached node {i + 1}"
                time.sleep(0.1)
        return name

    def drop_database(self, name: str) -> None:
        for i in range(len(self.nodes)):
            if self.sql(i, f"DROP DATABASE IF EXISTS `{name}`", check=False).returncode == 0:
                return

    # -- processes ----------------------------------------------------------

    def _node_dir(self, n: int) -> Path:
        return self.dir / f"node{n}"

    def check_dir_matches_urls(self) -> None:
        """Refuse to kill anything unless DIR's nodes listen on the URLs' ports."""
        for n, node in enumerate(self.nodes, start=1):
            cnf = self._node_dir(n) / "my.cnf"
            if not cnf.is_file():
                pytest.fail(f"no {cnf}: set {DIR_VAR} to the directory of the cluster "
                            f"{URLS_VAR} points at")
            m = re.search(r"^port = (\d+)$", cnf.read_text(), re.M)
            if not m or int(m.group(1)) != node.port:
                pytest.fail(f"{cnf} is not the node on port {node.port} of {URLS_VAR}; "
                            f"set {DIR_VAR} (and EVERMAIL_GALERA_PORT_OFFSET) to match")

    def sst_port(self, n: int) -> int:
        """The port node n (1-based) receives a state snapshot (SST) on."""
        if n not in self._sst_ports:
            cnf = (self._node_dir(n) / "my.cnf").read_text()
            m = re.search(r"^wsrep_sst_receive_address = [\d.]+:(\d+)$", cnf, re.M)
            assert m, f"no wsrep_sst_receive_address in node {n}'s my.cnf"
            self._sst_ports[n] = int(m.group(1))
        return self._sst_ports[n]

    def pid(self, n: int) -> int | None:
        """The pid of node n (1-based) from scripts/galera's pid file, if alive."""
        try:
            pid = int((self._node_dir(n) / "node.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def session_pids(self, session: int) -> list[int]:
        """Live processes in session `session`: what a node (its session leader, see
        scripts/galera) started, such as its state-transfer helpers."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The fields after the command name, which may hold spaces and parentheses.
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z" and int(fields[3]) == session:
                out.append(int(entry.name))
        return out

    def donor_processes(self, n: int) -> dict[int, str]:
        """{pid: command line} of the donor side of a state transfer to node n: what
        the other nodes run in their sessions for it (wsrep_sst_mariabackup --role
        donor --address 127.0.0.1:<n's SST port>/..., its `sleep 10`, mariabackup)."""
        port = self.sst_port(n)
        out = {}
        for m in range(1, len(self.nodes) + 1):
            sid = self.pid(m) if m != n else None
            if sid is None:
                continue
            session = {p: cmdline(p) for p in self.session_pids(sid)}
            scripts = {p for p, cmd in session.items()
                       if "wsrep_sst_mariabackup" in cmd and "donor" in cmd
                       and f"127.0.0.1:{port}/" in cmd}
            for p, cmd in session.items():
                if p in scripts or _ppid(p) in scripts:
                    out[p] = cmd
        return out

    def listening(self, port: int) -> bool:
        """Whether some socket listens on 127.0.0.1:port."""
        proc = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True,
                              text=True, timeout=SQL_TIMEOUT)
        return bool(proc.stdout.strip())

    def kill(self, n: int) -> None:
        """SIGKILL node n by its pid and wait until the process is gone."""
        pid = self.pid(n)
        assert pid is not None, f"node {n} is not running"
        os.kill(pid, signal.SIGKILL)
        self.kill_wait(n)

    def kill_wait(self, n: int) -> None:
        """Wait until node n, sent SIGKILL, is gone."""
        pid = self.pid(n)
        deadline = time.monotonic() + 30
        while self.pid(n) is not None:
            assert time.monotonic() < deadline, f"node {n} (pid {pid}) survived SIGKILL"
            time.sleep(0.1)

    def script(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                              timeout=SCRIPT_TIMEOUT, stdin=subprocess.DEVNULL,
                              env=self.script_env())
        assert proc.returncode == 0, (
            f"scripts/galera {' '.join(args)} exited {proc.returncode}\n{proc.stderr}")
        return proc

    def script_env(self) -> dict[str, str]:
        """The environment for scripts/galera: this cluster's directory (and port
        offset, for a cluster of a test's own)."""
        env = dict(os.environ, EVERMAIL_GALERA_DIR=str(self.dir))
        if self.port_offset is not None:
            env[OFFSET_VAR] = str(self.port_offset)
        return env

    def node_healthy(self, n: int) -> bool:
        """Node n (1-based) runs, is Synced and ready, in a cluster of every node."""
        return (self.pid(n) is not None
                and self.status(n - 1, "wsrep_local_state") == "4"
                and self.status(n - 1, "wsrep_ready") == "ON"
                and self.status(n - 1, "wsrep_cluster_size") == str(len(self.nodes)))

    def healthy(self) -> bool:
        return all(self.node_healthy(n) for n in range(1, len(self.nodes) + 1))

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert time.monotonic() < deadline, "the cluster is not whole and Synced"
            time.sleep(0.5)

    def repair(self) -> None:
        """Leave the cluster whole for the next test, whatever this one did: nodes
        that are down are started; a node still not healthy after 120 s (a donor
        stuck in a transfer, a node out of the Primary component) is restarted, and
        the whole cluster when no node is healthy."""
        if self.healthy():
            return
        every = range(1, len(self.nodes) + 1)
        running = [n for n in every if self.pid(n) is not None]
        if not running:
            self.script("up", str(self.dir))
        else:
            for n in every:
                if self.pid(n) is None:
                    self.script("start-node", str(n), str(self.dir))
        try:
            self.wait_healthy()
            return
        except AssertionError:
            pass
        stuck = [n for n in every if not (
            self.pid(n) is not None and self.status(n - 1, "wsrep_local_state") == "4"
            and self.status(n - 1, "wsrep_ready") == "ON")]
        if not stuck or len(stuck) == len(self.nodes):
            self.script("down", str(self.dir))
            self.script("up", str(self.dir))
        else:
            for n in stuck:
                self.script("stop-node", str(n), str(self.dir))
                self.script("start-node", str(n), str(self.dir))
        self.wait_healthy()

    def down(self) -> None:
        """Stops every node by its pid (scripts/galera down)."""
        self.script("down", str(self.dir))

    # -- evidence -----------------------------------------------------------

    def _states(self, i: int) -> str:
        """Node i's Galera state in one line, asked with a short timeout."""
        node = self.nodes[i]
        names = ("wsrep_local_state_comment", "wsrep_ready", "wsrep_cluster_status",
                 "wsrep_cluster_size", "wsrep_connected")
        args = ["mariadb", "--no-defaults", "--protocol=tcp", f"-h{node.host}",
                f"-P{node.port}", f"-u{node.user}", "--batch", "--skip-column-names",
                "--connect-timeout=3", "-e",
                "SHOW GLOBAL STATUS WHERE Variable_name IN ("
                + ", ".join(f"'{n}'" for n in names) + ")"]
        try:
            proc = subprocess.run(args, env=dict(os.environ, MYSQL_PWD=node.password),
                                  capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return "no answer within 10 s"
        if proc.returncode != 0:
            return proc.stderr.strip()[-300:]
        return " ".join(line.replace("\t", "=") for line in proc.stdout.splitlines())

    def evidence(self, lines: int = 40) -> str:
        """What to read when a test on this cluster failed: each node's pid and Galera
        state, what runs in its session (its state-transfer helpers), and the ends of
        its error log (mariadbd's and the SST script's lines) and of the mariabackup
        logs of its last state transfer. Tails only, never whole files."""
        out = []
        for n in range(1, len(self.nodes) + 1):
            d = self._node_dir(n)
            pid = self.pid(n)
            if pid is None:
                out.append(f"=== node {n} ({d}): not running")
            else:
                out.append(f"=== node {n} ({d}): pid {pid}, {self._states(n - 1)}")
                for p in self.session_pids(pid):
                    if p != pid:
                        out.append(f"  session process {p}: {cmdline(p)}")
            for name, count, pattern in (
                    ("error.log", lines, _LOG_LINES),
                    ("data/mariabackup.backup.log", 5, None),
                    ("data/mariabackup.prepare.log", 3, None)):
                tail = _tail(d / name, count, pattern)
                if tail:
                    what = "lines on state, SST and errors" if pattern else "lines"
                    out.append(f"--- node {n} {name} (last {count} {what})")
                    out.append(tail)
        return "\n".join(out)


# The error log lines worth reading after a failure: state changes, state transfers
# (WSREP_SST is the SST script's), membership, warnings and errors.
_LOG_LINES = re.compile(r"WSREP_SST|\[ERROR\]|\[Warning\]|Shifting|state transfer|"
                        r"State transfer|SST|IST|[Dd]onor|joiner|Member|non-Primary|"
                        r"starting as process|ready for connections|[Aa]bort")


def _tail(path: Path, lines: int, pattern: re.Pattern | None = None) -> str:
    """The last `lines` lines of a file (of its last 256 KiB) matching `pattern`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 262144))
            data = f.read()
    except OSError:
        return ""
    text = data.decode(errors="replace").splitlines()
    if pattern is not None:
        text = [line for line in text if pattern.search(line)]
    return "\n".join(line[:300] for line in text[-lines:])


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def cmdline(pid: int) -> str:
    """The command line of process `pid`, or '(gone)'."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "(gone)"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


# A cluster of a test's own runs on ports shifted by this, clear of a developer's
# cluster (offset 0), CI's (100, .ci/run) and `evermail lab`'s and the benchmarks'
# (200): mysqld 33361..33363, Galera 45971..45973, IST 45981..45983, SST 44741..44743.
OWN_PORT_OFFSET = 300


def galera_missing() -> str | None:
    """What of MariaDB/Galera is not installed, or None."""
    for name in ("mariadbd", "mariabackup", "socat", "mariadb"):
        if not (shutil.which(name) or Path("/usr/sbin", name).is_file()):
            return name
    if not Path("/usr/lib/galera/libgalera_smm.so").is_file():
        return "/usr/lib/galera/libgalera_smm.so"
    return None


def start_own_cluster(directory: Path, port_offset: int = OWN_PORT_OFFSET) -> Cluster:
    """Starts a 3-node cluster in `directory` (scripts/galera up) for one test that may
    leave it broken, so the cluster the other tests share is never touched. The caller
    stops it with `down()`, also when this fails (the nodes already started)."""
    env = dict(os.environ, **{DIR_VAR: str(directory), OFFSET_VAR: str(port_offset)})
    proc = subprocess.run([str(SCRIPT), "up", str(directory)], capture_output=True,
                          text=True, timeout=SCRIPT_TIMEOUT, stdin=subprocess.DEVNULL,
                          env=env)
    assert proc.returncode == 0, (
        f"scripts/galera up {directory} exited {proc.returncode}\n{proc.stderr[-4000:]}")
    urls = proc.stdout.split()
    assert len(urls) == 3, f"scripts/galera up printed {proc.stdout!r}"
    return Cluster(urls, directory, port_offset)
