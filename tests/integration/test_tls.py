"""TLS: imaps (implicit TLS) and STARTTLS with Python's imaplib and ssl, trusting
only the certificate the server generated into DATA/tls/cert.pem; the
certificate is reused across restarts; a configured certificate is used; a
broken [tls] section stops the start with a clear error."""

import imaplib
import os
import shutil
import ssl
import subprocess

import pytest

from conftest import ALICE, CONFIG, HOST, NET_TIMEOUT, READY_TIMEOUT, deliver_ok, message, select


def trusting(server) -> ssl.SSLContext:
    """A client context that trusts only the server's generated certificate and
    checks the host name (127.0.0.1 is in its subjectAltName)."""
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "tls" / "cert.pem"))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


def capabilities(client: imaplib.IMAP4) -> set[str]:
    typ, data = client.capability()
    assert typ == "OK", (typ, data)
    return set(data[0].decode().upper().split())


def test_imaps_serves_mail(users):
    deliver_ok(users, [ALICE[0]], message("over tls", body="secret body\r\n"))
    client = imaplib.IMAP4_SSL(
        HOST, users.ports["imaps"], ssl_context=trusting(users), timeout=NET_TIMEOUT
    )
    try:
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        caps = capabilities(client)
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        typ, _ = client.login(*ALICE)
        assert typ == "OK"
        assert select(client) == 1
        typ, data = client.fetch("1", "(BODY.PEEK[TEXT])")
        assert typ == "OK" and data[0][1] == b"secret body\r\n", data
    finally:
        client.logout()


def test_starttls_upgrades_the_plain_listener(users):
    client = imaplib.IMAP4(HOST, users.ports["imap"], timeout=NET_TIMEOUT)
    try:
        assert "STARTTLS" in capabilities(client)
        typ, _ = client.starttls(ssl_context=trusting(users))
        assert typ == "OK"
        # imaplib asks for CAPABILITY again after the handshake, as it must.
        caps = capabilities(client)
        assert "STARTTLS" not in caps, caps
        typ, _ = client.login(*ALICE)
        assert typ == "OK"
        assert select(client) == 0
    finally:
        client.logout()


def test_a_wrong_trust_anchor_fails_the_handshake(users, make_server):
    other = make_server("other").start()
    client = imaplib.IMAP4(HOST, users.ports["imap"], timeout=NET_TIMEOUT)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(ssl_context=trusting(other))
    finally:
        client.sock.close()


def test_plaintext_auth_never_means_logindisabled_until_starttls(make_server):
    config = CONFIG.replace("[imap]\n", '[imap]\nplaintext_auth = "never"\n', 1)
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    client = imaplib.IMAP4(HOST, server.ports["imap"], timeout=NET_TIMEOUT)
    try:
        caps = capabilities(client)
        assert {"STARTTLS", "LOGINDISABLED"} <= caps and "AUTH=PLAIN" not in caps, caps
        # imaplib itself refuses LOGIN when LOGINDISABLED is advertised; send it
        # raw to see the server's own answer.
        typ, data = client._simple_command("LOGIN", ALICE[0], client._quote(ALICE[1]))
        assert typ == "NO" and b"PRIVACYREQUIRED" in data[0], (typ, data)
        client.starttls(ssl_context=trusting(server))
        caps = capabilities(client)
        assert "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, caps
        typ, _ = client.login(*ALICE)
        assert typ == "OK"
    finally:
        client.logout()


def test_the_generated_certificate_is_reused_across_restarts(server):
    cert = server.data_dir / "tls" / "cert.pem"
    key = server.data_dir / "tls" / "key.pem"
    before = (cert.read_bytes(), key.read_bytes(), cert.stat().st_mtime_ns)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert any("tls certificate" in line and str(cert) in line for line in server.stdout_lines)
    ctx = trusting(server)
    server.restart()
    assert (cert.read_bytes(), key.read_bytes(), cert.stat().st_mtime_ns) == before
    # A client that trusted the first start still trusts the second.
    client = imaplib.IMAP4_SSL(HOST, server.ports["imaps"], ssl_context=ctx, timeout=NET_TIMEOUT)
    client.logout()


def test_a_configured_certificate_is_used(make_server):
    # A certificate from elsewhere: another server's generated pair, copied.
    donor = make_server("donor").start()
    certs = donor.workdir / "certs"
    shutil.copytree(donor.data_dir / "tls", certs)
    donor.stop()
    config = CONFIG + f'\n[tls]\ncert_path = "{certs}/cert.pem"\nkey_path = "{certs}/key.pem"\n'
    server = make_server("configured", config=config).start()
    assert not (server.data_dir / "tls").exists(), "generated one despite [tls]"
    ctx = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    client = imaplib.IMAP4_SSL(HOST, server.ports["imaps"], ssl_context=ctx, timeout=NET_TIMEOUT)
    client.logout()


@pytest.mark.parametrize(
    "tls,mentions",
    [
        ('cert_path = "/nonexistent/cert.pem"\nkey_path = "/nonexistent/key.pem"\n', "/nonexistent/cert.pem"),
        ('cert_path = "cert.pem"\n', "key_path"),
        ('cert_path = "junk.pem"\nkey_path = "junk.pem"\n', "not readable PEM"),
    ],
)
def test_a_broken_tls_section_fails_the_start(binary, tmp_path, tls, mentions):
    workdir = tmp_path / "srv"
    config = CONFIG + "\n[tls]\n" + tls
    data = workdir / "data"
    data.mkdir(parents=True)
    (data / "junk.pem").write_text("this is not PEM\n")
    (workdir / "evermail.toml").write_text(config)
    proc = subprocess.run(
        [binary, "--data-dir", str(data), "--config", str(workdir / "evermail.toml"), "serve"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=workdir,
        timeout=READY_TIMEOUT,
        env=dict(os.environ, NO_COLOR="1"),
    )
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode != 0, out
    assert "ready" not in proc.stdout.decode().split(), out
    assert mentions in out, out
    assert "listening" not in proc.stdout.decode(), out
