"""The MariaDB Galera cluster the MySQL-backend tests run against.

Its node URLs come from EVERMAIL_TEST_MYSQL_URLS (`scripts/galera urls`); its
directory (pid files, for killing and restarting nodes with scripts/galera) from
EVERMAIL_GALERA_DIR, default /var/tmp/evermail-galera, with the port offset in
EVERMAIL_GALERA_PORT_OFFSET as for scripts/galera. The URLs and the directory are
checked to describe the same cluster before anything is killed.

SQL goes through the `mariadb` client (installed with the server) as the evermail
user over TCP, the password in MYSQL_PWD rather than on the command line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

URLS_VAR = "EVERMAIL_TEST_MYSQL_URLS"
DIR_VAR = "EVERMAIL_GALERA_DIR"
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
    def __init__(self, urls: list[str]):
        self.nodes = [Node(u) for u in urls]
        self.dir = Path(os.environ.get(DIR_VAR, "/var/tmp/evermail-galera"))

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
        cnf = (self._node_dir(n) / "my.cnf").read_text()
        m = re.search(r"^wsrep_sst_receive_address = [\d.]+:(\d+)$", cnf, re.M)
        assert m, f"no wsrep_sst_receive_address in node {n}'s my.cnf"
        return int(m.group(1))

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
        """The environment for scripts/galera: this cluster's directory."""
        return dict(os.environ, EVERMAIL_GALERA_DIR=str(self.dir))

    def healthy(self) -> bool:
        return all(
            self.pid(n) is not None
            and self.status(n - 1, "wsrep_local_state") == "4"
            and self.status(n - 1, "wsrep_ready") == "ON"
            and self.status(n - 1, "wsrep_cluster_size") == str(len(self.nodes))
            for n in range(1, len(self.nodes) + 1)
        )

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert time.monotonic() < deadline, "the cluster is not whole and Synced"
            time.sleep(0.5)

    def repair(self) -> None:
        """Leave the cluster whole for the next test, whatever this one did."""
        if self.healthy():
            return
        running = [n for n in range(1, len(self.nodes) + 1) if self.pid(n) is not None]
        if not running:
            self.script("up", str(self.dir))
        else:
            for n in range(1, len(self.nodes) + 1):
                if self.pid(n) is None:
                    self.script("start-node", str(n), str(self.dir))
        self.wait_healthy()
