"""POP3 with Python's poplib against the real binary: mail delivered over LMTP is
listed, identified and retrieved byte for byte; DELE takes effect only at QUIT; the
maildrop lock; UIDLs survive a restart; pop3s and STLS trusting only the
certificate the server generated; plaintext passwords refused where configured."""

import poplib
import ssl
import time

import pytest

from conftest import ALICE, BOB, CONFIG, HOST, NET_TIMEOUT, deliver_ok, message, select

DOTTED = (
    b"From: Sender <sender@example.net>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b"first line\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b".one dot\r\n"
    b"last line\r\n"
)


def pop3(server, user=ALICE) -> poplib.POP3:
    client = poplib.POP3(HOST, server.ports["pop3"], timeout=NET_TIMEOUT)
    client.user(user[0])
    client.pass_(user[1])
    return client


def trusting(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.data_dir / "tls" / "cert.pem"))


def retr(client: poplib.POP3, n: int) -> bytes:
    """RETR n as the bytes of the message (poplib has undone the dot-stuffing)."""
    resp, lines, _octets = client.retr(n)
    assert resp.startswith(b"+OK"), resp
    return b"".join(line + b"\r\n" for line in lines)


def uidls(client: poplib.POP3) -> dict[int, str]:
    resp, lines, _ = client.uidl()
    assert resp.startswith(b"+OK"), resp
    return {int(n): uid.decode() for n, uid in (line.split() for line in lines)}


def test_list_uidl_retr_byte_for_byte(users):
    first = message("first pop3 message")
    deliver_ok(users, [ALICE[0]], first)
    deliver_ok(users, [ALICE[0]], DOTTED)
    client = pop3(users)
    try:
        assert client.stat() == (2, len(first) + len(DOTTED))
        resp, lines, _ = client.list()
        assert resp.startswith(b"+OK"), resp
        assert lines == [f"1 {len(first)}".encode(), f"2 {len(DOTTED)}".encode()]
        ids = uidls(client)
        assert sorted(ids) == [1, 2] and len(set(ids.values())) == 2, ids
        assert client.uidl(2) == f"+OK 2 {ids[2]}".encode()
        assert retr(client, 1) == first
        assert retr(client, 2) == DOTTED
        resp, lines, _ = client.top(2, 1)
        assert b"".join(line + b"\r\n" for line in lines) == DOTTED[: DOTTED.index(b".\r\n")]
        assert client.quit().startswith(b"+OK")
    finally:
        client.close()
    # RETR marked both read, as an IMAP client sees.
    imap = users.imap(*ALICE)
    try:
        assert select(imap) == 2
        typ, data = imap.fetch("1:2", "(FLAGS)")
        assert typ == "OK" and all(b"\\Seen" in d for d in data), data
    finally:
        imap.logout()


def test_dele_takes_effect_only_at_quit(users):
    for i in range(3):
        deliver_ok(users, [ALICE[0]], message(f"dele {i}"))
    # DELE, then the connection drops without QUIT: nothing is deleted.
    client = pop3(users)
    assert client.dele(1).startswith(b"+OK")
    assert client.stat()[0] == 2
    client.close()
    _wait_unlocked(users)
    client = pop3(users)
    try:
        assert client.stat()[0] == 3
        ids = uidls(client)
        assert client.dele(1).startswith(b"+OK")
        assert client.rset().startswith(b"+OK")
        assert client.stat()[0] == 3
        assert client.dele(2).startswith(b"+OK")
        assert client.quit().startswith(b"+OK")
    finally:
        client.close()
    client = pop3(users)
    try:
        left = uidls(client)
        assert sorted(left.values()) == sorted([ids[1], ids[3]])
    finally:
        client.quit()


def _wait_unlocked(server) -> None:
    """The dropped session releases the lock once the server sees the close."""
    deadline = time.monotonic() + 10
    while True:
        try:
            pop3(server).quit()
            return
        except poplib.error_proto as err:
            assert b"[IN-USE]" in err.args[0], err
            assert time.monotonic() < deadline, "maildrop lock never released"
            time.sleep(0.05)


def test_maildrop_lock(users):
    first = pop3(users)
    try:
        with pytest.raises(poplib.error_proto) as err:
            pop3(users)
        assert err.value.args[0].startswith(b"-ERR [IN-USE]"), err.value
        # Another account has its own maildrop.
        pop3(users, BOB).quit()
    finally:
        first.quit()
    pop3(users).quit()


def test_wrong_password_gets_auth_code(users):
    client = poplib.POP3(HOST, users.ports["pop3"], timeout=NET_TIMEOUT)
    try:
        client.user(ALICE[0])
        with pytest.raises(poplib.error_proto) as err:
            client.pass_("wrong")
        assert err.value.args[0].startswith(b"-ERR [AUTH]"), err.value
    finally:
        client.close()


def test_uidl_is_stable_across_a_restart(users):
    deliver_ok(users, [ALICE[0]], message("survives"))
    deliver_ok(users, [ALICE[0]], message("also survives"))
    client = pop3(users)
    before = uidls(client)
    client.quit()
    users.restart()
    client = pop3(users)
    try:
        assert uidls(client) == before
    finally:
        client.quit()


def test_pop3s_and_stls(users):
    deliver_ok(users, [ALICE[0]], message("over tls", body="secret body\r\n"))
    client = poplib.POP3_SSL(
        HOST, users.ports["pop3s"], context=trusting(users), timeout=NET_TIMEOUT
    )
    try:
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert "STLS" not in client.capa()
        client.user(ALICE[0])
        client.pass_(ALICE[1])
        assert retr(client, 1).endswith(b"\r\n\r\nsecret body\r\n")
    finally:
        client.quit()

    client = poplib.POP3(HOST, users.ports["pop3"], timeout=NET_TIMEOUT)
    try:
        caps = client.capa()
        assert "STLS" in caps and "UIDL" in caps and "TOP" in caps, caps
        assert client.stls(context=trusting(users)).startswith(b"+OK")
        assert "STLS" not in client.capa()
        client.user(ALICE[0])
        client.pass_(ALICE[1])
        assert client.stat()[0] == 1
    finally:
        client.quit()


def test_plaintext_passwords_refused_when_configured(make_server):
    config = CONFIG.replace("[pop3]\n", '[pop3]\nplaintext_auth = "never"\n', 1)
    server = make_server(config=config).start()
    server.add_account(*ALICE)
    client = poplib.POP3(HOST, server.ports["pop3"], timeout=NET_TIMEOUT)
    try:
        caps = client.capa()
        assert "STLS" in caps and "USER" not in caps and "SASL" not in caps, caps
        with pytest.raises(poplib.error_proto) as err:
            client.user(ALICE[0])
        assert err.value.args[0].startswith(b"-ERR [AUTH]"), err.value
        client.stls(context=trusting(server))
        assert "USER" in client.capa()
        client.user(ALICE[0])
        client.pass_(ALICE[1])
    finally:
        client.quit()
