"""RAIS maintenance against the real binary: three filesystem stores, the
store registry and the maintenance passes, driven through LMTP, IMAP and the
`evermail store` / `evermail blob` commands.

- A store's whole directory deleted and a byte flipped in another copy: every
  acknowledged message still reads back byte for byte (the corrupt copy is
  never served), a scrub finds the damage, and the maintenance worker inside
  `evermail serve` restores two good copies of every body on its own.
- `store remove` of a store holding the only copy of bodies is refused with the
  count; `store drain` then `blob repair` empties it, `store remove` succeeds,
  and nothing is lost.
- Garbage collection deletes an expunged body only after its grace period.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import ALICE, CONFIG, fetch_bodies, lmtp_deliver, message

SENDER = "sender@example.net"
WAIT = 60.0  # seconds the background worker may take to repair everything


def stores_config(tmp_path: Path, ids, replicas: int, maintenance: str) -> tuple[str, dict]:
    roots = {i: tmp_path / i for i in ids}
    config = CONFIG + f"""
[storage]
replicas = {replicas}
min_replicas = {replicas}
probe_interval_secs = 1
registry_refresh_secs = 1

[storage.maintenance]
{maintenance}
"""
    for i in ids:
        config += f"""
[[storage.stores]]
kind = "fs"
id = "{i}"
path = "{roots[i]}"
"""
    return config, roots


def files(root: Path) -> list[Path]:
    """The body files of a store (its temporary files excluded)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp"))


def deliver_all(server, n: int, tag: str) -> dict[bytes, bytes]:
    """Delivers n distinct messages to alice; {subject: message} of the 250s."""
    sent = {}
    client = server.lmtp()
    try:
        for i in range(n):
            subject = f"{tag} {i}"
            data = message(subject, body=f"body of {subject}\r\n" + "x" * (i * 101) + "\r\n")
            result = lmtp_deliver(client, SENDER, [ALICE[0]], data)
            assert result[ALICE[0]][0] == 250, result
            sent[subject.encode()] = data
        client.quit()
    finally:
        client.close()
    return sent


def check_mailbox(server, sent: dict[bytes, bytes]) -> None:
    """Every acknowledged message reads back over IMAP byte for byte."""
    client = server.imap(*ALICE)
    try:
        bodies = list(fetch_bodies(client).values())
    finally:
        client.logout()
    by_subject = {}
    for body in bodies:
        for line in body.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                by_subject[line[len(b"Subject: "):]] = body
    for subject, data in sent.items():
        assert by_subject.get(subject) == data, f"{subject!r} does not read back intact"


def copies_on_disk(roots: dict, data: bytes) -> list[Path]:
    return [p for root in roots.values() for p in files(root) if p.read_bytes() == data]


def cli(server, *args: str, check: bool = True):
    return server.cli("--config", str(server.config_path), *args, check=check)


def test_lost_store_and_flipped_byte_are_found_and_repaired_by_the_worker(make_server, tmp_path):
    # The worker repairs every second, and scrubs lightly every 2 s; no deep scrub
    # (a day), so the flipped byte is found by the read and by `blob scrub --deep`.
    config, roots = stores_config(
        tmp_path,
        ["s1", "s2", "s3"],
        replicas=2,
        maintenance="repair_interval_secs = 1\nscrub_interval_secs = 2\n",
    )
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    sent = deliver_all(server, 24, "rais")
    assert sum(len(files(r)) for r in roots.values()) == 48

    victim = next(iter(sent.values()))
    flipped = copies_on_disk(roots, victim)
    assert len(flipped) == 2
    raw = bytearray(flipped[0].read_bytes())
    raw[-3] ^= 0x01
    flipped[0].write_bytes(bytes(raw))
    # The whole of one store is lost: the one holding neither copy of the victim,
    # so the victim keeps one good copy.
    lost = next(
        i for i, r in roots.items() if not any(str(p).startswith(str(r) + "/") for p in flipped)
    )
    lost_count = len(files(roots[lost]))
    assert lost_count > 0
    for p in files(roots[lost]):
        p.unlink()

    # Nothing acknowledged is lost, and nothing corrupt is served.
    check_mailbox(server, sent)
    # The worker races this scrub (it may already have repaired some copies), so
    # only its completion is checked here.
    scrub = cli(server, "blob", "scrub", "--deep")
    assert "copies checked" in scrub.out, scrub.out

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        counts = [len(copies_on_disk(roots, data)) for data in sent.values()]
        if all(c == 2 for c in counts):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not every body got two good copies back: {counts}")
    status = cli(server, "store", "status")
    assert "bodies with fewer than 2 good copies: 0" in status.out, status.out
    status, _, metrics = server.http_get("/metrics")
    assert b"evermail_rais_copies_repaired_total" in metrics
    check_mailbox(server, sent)
    # A deep scrub now finds every copy intact.
    scrub = cli(server, "blob", "scrub", "--deep")
    assert "48 copies checked, 48 ok, 0 missing, 0 corrupt" in scrub.out, scrub.out


def test_drain_then_remove_empties_a_store_and_loses_nothing(make_server, tmp_path):
    config, roots = stores_config(
        tmp_path, ["a", "b"], replicas=1, maintenance="enabled = false\n"
    )
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    sent = deliver_all(server, 16, "drain")
    on_a = len(files(roots["a"]))
    assert 0 < on_a < 16, "placement spreads bodies over both stores"

    refused = cli(server, "store", "remove", "a", check=False)
    assert refused.returncode != 0
    assert f"only copy of {on_a} bodies" in refused.err, refused.err
    assert len(files(roots["a"])) == on_a

    cli(server, "store", "drain", "a")
    listing = cli(server, "store", "list").out
    assert any(l.split()[:1] == ["a"] and "draining" in l for l in listing.splitlines()), listing
    repair = cli(server, "blob", "repair")
    assert f"{on_a} copies added" in repair.out, repair.out
    assert f"{on_a} copies moved off draining stores" in repair.out, repair.out
    assert files(roots["a"]) == [], "the drained store is empty"
    assert len(files(roots["b"])) == 16

    cli(server, "store", "remove", "a")
    listing = cli(server, "store", "list").out
    assert not any(l.split()[:1] == ["a"] for l in listing.splitlines()), listing
    # The running node reads everything from b, and new mail goes to b alone.
    check_mailbox(server, sent)
    time.sleep(2)  # registry_refresh_secs = 1: the node has re-read the registry
    more = deliver_all(server, 4, "after")
    assert files(roots["a"]) == []
    assert len(files(roots["b"])) == 20
    check_mailbox(server, {**sent, **more})
    # A restart with `a` still in the config file does not bring it back.
    server.restart()
    listing = cli(server, "store", "list").out
    assert not any(l.split()[:1] == ["a"] for l in listing.splitlines()), listing
    check_mailbox(server, {**sent, **more})


def test_an_expunged_body_is_deleted_only_after_the_grace_period(make_server, tmp_path):
    config, roots = stores_config(
        tmp_path, ["s1", "s2"], replicas=2, maintenance="enabled = false\n"
    )
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    sent = deliver_all(server, 3, "gc")
    doomed = sent.pop(b"gc 0")
    client = server.imap(*ALICE)
    try:
        # "gc 0" was delivered first, so it is UID 1.
        assert fetch_bodies(client)[1] == doomed
        client.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        client.expunge()
    finally:
        client.logout()
    assert len(copies_on_disk(roots, doomed)) == 2

    gc = cli(server, "blob", "gc", "--grace-secs", "3600")
    assert "1 bodies newly unreferenced" in gc.out and "0 deleted" in gc.out, gc.out
    assert len(copies_on_disk(roots, doomed)) == 2, "deleted within the grace period"
    gc = cli(server, "blob", "gc", "--grace-secs", "0")
    assert "1 deleted" in gc.out, gc.out
    assert copies_on_disk(roots, doomed) == []
    check_mailbox(server, sent)
    assert sum(len(files(r)) for r in roots.values()) == 4

    # `blob stat` shows a body's copies by id (the file name is the id).
    name = files(roots["s1"])[0].name
    stat = cli(server, "blob", "stat", name, "--check").out
    assert f"blob {name}" in stat
    assert stat.count(" state ok ") == 2 and stat.count("check ok") == 2, stat


from test_rais import garage  # noqa: E402,F401  (the Garage fixture: a real S3 server)


def test_copies_missed_while_s3_was_down_are_added_when_it_returns(make_server, garage, tmp_path):
    # replicas = 3 on two fs stores and Garage, min_replicas = 2: with Garage killed
    # deliveries are acknowledged on the two fs stores, and once it is back the
    # worker adds each body's third copy there.
    config, roots = stores_config(
        tmp_path, ["fs1", "fs2"], replicas=3, maintenance="repair_interval_secs = 1\n"
    )
    config = config.replace("min_replicas = 3", "min_replicas = 2") + garage.store_config("s3")
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    sent = deliver_all(server, 4, "before")
    garage.kill()
    sent.update(deliver_all(server, 8, "outage"))
    status = cli(server, "store", "status").out
    assert "bodies with fewer than 3 good copies: 8 (0 with none)" in status, status
    check_mailbox(server, sent)

    garage.up()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        status = cli(server, "store", "status").out
        if "bodies with fewer than 3 good copies: 0" in status:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the third copies were not added: {status}\n{server.log_tail()}")
    # Every body is on both fs stores and, by its rows, on S3; a deep scrub reads the
    # S3 copies back and finds them intact.
    for data in sent.values():
        assert len(copies_on_disk(roots, data)) == 2
    scrub = cli(server, "blob", "scrub", "--deep")
    assert "36 copies checked, 36 ok, 0 missing, 0 corrupt" in scrub.out, scrub.out
    check_mailbox(server, sent)


def test_a_drain_on_one_node_reaches_the_other_through_galera(mysql_db, make_mysql_server,
                                                               tmp_path):
    # Two evermail nodes on one Galera database and three shared fs stores. The
    # registry lives in the database: a drain ordered through node b changes where
    # node a writes within registry_refresh_secs, repair through a empties the
    # store, b removes it, and both nodes still read every message.
    _, _, urls = mysql_db
    stores, roots = stores_config(tmp_path, ["g1", "g2", "g3"], replicas=2,
                                  maintenance="enabled = false\n")
    storage = stores[stores.index("[storage]"):]
    a = make_mysql_server("a", [urls[0], urls[1], urls[2]], extra=storage)
    b = make_mysql_server("b", [urls[1], urls[2], urls[0]], extra=storage)
    a.cli("db", "migrate")
    a.start()
    b.start()
    a.add_account(*ALICE)
    sent = deliver_all(a, 10, "galera")
    sent.update(deliver_all(b, 10, "galera-b"))
    assert sum(len(files(r)) for r in roots.values()) == 40

    b.cli("store", "drain", "g1")
    time.sleep(2)  # both nodes re-read the registry every second
    before = len(files(roots["g1"]))
    more = deliver_all(a, 6, "after-drain")
    assert len(files(roots["g1"])) == before, "node a still writes to the draining store"
    repair = a.cli("blob", "repair")
    assert "0 still short, 0 lost" in repair.out, repair.out
    assert files(roots["g1"]) == []
    b.cli("store", "remove", "g1")
    assert "g1" not in a.cli("store", "list").out
    sent.update(more)
    check_mailbox(a, sent)
    check_mailbox(b, sent)


def test_blob_commands_say_which_node_holds_the_pass_lease(make_server, tmp_path):
    # The worker repairs at start and keeps the repair lease for the interval (an
    # hour); its first scrub and collection are an hour away, so no node holds
    # their leases.
    config, roots = stores_config(
        tmp_path,
        ["s1", "s2"],
        replicas=2,
        maintenance="repair_interval_secs = 3600\nscrub_interval_secs = 3600\n"
        "gc_interval_secs = 3600\n",
    )
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    deliver_all(server, 2, "lease")
    deadline = time.monotonic() + WAIT
    while True:
        repair = cli(server, "blob", "repair")
        if "holds the repair lease" in repair.out or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # The command ran its pass anyway.
    assert "holds the repair lease" in repair.out, repair.out
    assert "running it here anyway" in repair.out, repair.out
    assert "bodies short of copies" in repair.out, repair.out
    scrub = cli(server, "blob", "scrub")
    assert "lease" not in scrub.out, scrub.out
    assert "4 copies checked, 4 ok" in scrub.out, scrub.out
    gc = cli(server, "blob", "gc")
    assert "lease" not in gc.out, gc.out
    _, _, metrics = server.http_get("/metrics")
    assert b'evermail_rais_lease_acquired_total{pass="repair"} 1' in metrics, metrics[-2000:]


def lease_counts(server, pass_kind: str) -> tuple[float, float]:
    """(acquired, skipped) of one pass kind's lease on a node, from /metrics."""
    _, _, body = server.http_get("/metrics")
    counts = {"acquired": 0.0, "skipped": 0.0}
    for line in body.decode().splitlines():
        for what in counts:
            if line.startswith(f'evermail_rais_lease_{what}_total{{pass="{pass_kind}"}}'):
                counts[what] += float(line.rsplit(" ", 1)[1])
    return counts["acquired"], counts["skipped"]


def test_two_nodes_on_galera_repair_once_under_the_lease(mysql_db, make_mysql_server, tmp_path):
    # Both nodes run the maintenance worker, which repairs at start: the first node
    # takes the repair lease and keeps it for the interval (an hour), the second
    # finds it held and skips; `blob repair` on the second names the first.
    _, _, urls = mysql_db
    stores, roots = stores_config(tmp_path, ["l1", "l2"], replicas=2,
                                  maintenance="repair_interval_secs = 3600\n")
    storage = stores[stores.index("[storage]"):]
    a = make_mysql_server("lease-a", [urls[0], urls[1], urls[2]], extra=storage)
    b = make_mysql_server("lease-b", [urls[1], urls[2], urls[0]], extra=storage)
    a.cli("db", "migrate")
    a.start()
    deadline = time.monotonic() + WAIT
    while lease_counts(a, "repair") == (0.0, 0.0) and time.monotonic() < deadline:
        time.sleep(0.2)
    b.start()
    while lease_counts(b, "repair") == (0.0, 0.0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lease_counts(a, "repair") == (1.0, 0.0)
    assert lease_counts(b, "repair") == (0.0, 1.0)
    repair = b.cli("blob", "repair")
    assert "note: node lease-a holds the repair lease" in repair.out, repair.out
    assert "0 still short, 0 lost" in repair.out, repair.out
