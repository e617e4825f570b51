"""The admin HTTP endpoint: health, readiness and Prometheus metrics."""

import os
import re
import signal
import time

from conftest import ALICE, BOB, deliver_ok, message

METRIC = "evermail_lmtp_deliveries_total"


def metric_sum(text: str, name: str) -> float | None:
    """The sum over every series of `name` in Prometheus text; None if absent."""
    total = None
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)(\s+\d+)?$", line)
        if m:
            total = (total or 0.0) + float(m.group(2))
    return total


def test_healthz_is_200(server):
    status, _, _ = server.http_get("/healthz")
    assert status == 200


def test_readyz_is_200_when_serving(server):
    status, _, _ = server.http_get("/readyz")
    assert status == 200


def test_unknown_path_is_404(server):
    status, _, _ = server.http_get("/no-such-page")
    assert status == 404


def test_metrics_is_prometheus_text(server):
    status, ctype, body = server.http_get("/metrics")
    assert status == 200
    assert ctype.startswith("text/plain"), ctype
    text = body.decode("utf-8")
    assert METRIC in text, text[:2000]
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?\s+\S+(\s+\d+)?$", line), line


def test_metrics_count_a_delivery(users):
    _, _, body = users.http_get("/metrics")
    before = metric_sum(body.decode(), METRIC) or 0.0
    deliver_ok(users, [ALICE[0], BOB[0]], message("counted"))
    _, _, body = users.http_get("/metrics")
    text = body.decode()
    after = metric_sum(text, METRIC)
    assert after is not None, f"{METRIC} has no sample after a delivery:\n{text[:2000]}"
    assert after >= before + 1, (before, after)


def test_readyz_is_not_200_while_draining(users):
    # A transaction in the DATA phase keeps the server draining after SIGTERM
    # (until it completes or times out); meanwhile it must not claim to be ready.
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd("MAIL FROM:<s@example.net>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd("DATA")[0] == 354
        conn.send(message("slow", "")[:40])
        os.kill(users.proc.pid, signal.SIGTERM)
        time.sleep(0.5)
        try:
            status, _, _ = users.http_get("/readyz", timeout=3)
        except OSError:
            status = None  # The admin endpoint is already closed: also not ready.
        assert status != 200, "/readyz still 200 after SIGTERM"
    finally:
        conn.close()
    assert users.wait(timeout=20) == 0
