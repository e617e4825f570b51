"""`evermail account ...` while the server runs: what the CLI changes, LMTP
and IMAP see at once. Passwords always go through standard input."""

import imaplib

import pytest

from conftest import HOST, deliver_ok, fetch_bodies, lmtp_deliver, message

ADDR = "carol@example.com"
PASSWORD = "carol-Old-Pass-1"


def login_fails(server, user, password) -> bool:
    client = imaplib.IMAP4(HOST, server.ports["imap"], timeout=30)
    try:
        client.login(user, password)
    except imaplib.IMAP4.error as err:
        assert "AUTHENTICATIONFAILED" in str(err), str(err)
        return True
    finally:
        client.shutdown()
    return False


def listed_accounts(server) -> list[str]:
    out = server.cli("account", "list").out
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_add_then_list_then_login(server):
    server.add_account(ADDR, PASSWORD)
    assert ADDR in listed_accounts(server)
    client = server.imap(ADDR, PASSWORD)
    client.logout()


def test_list_shows_every_account_once(server):
    names = ["a1@example.com", "a2@example.com", "a3@example.com"]
    for name in names:
        server.add_account(name, "pw-" + name)
    listed = listed_accounts(server)
    assert sorted(listed) == sorted(names), listed


def test_new_account_receives_mail_without_restart(server):
    client = server.lmtp()
    try:
        res = lmtp_deliver(client, "s@example.net", [ADDR], message("before"))
        assert res[ADDR][0] == 550, res
        server.add_account(ADDR, PASSWORD)
        data = message("after")
        res = lmtp_deliver(client, "s@example.net", [ADDR], data)
        assert res[ADDR][0] == 250, res
    finally:
        client.close()
    imap = server.imap(ADDR, PASSWORD)
    try:
        assert list(fetch_bodies(imap).values()) == [data]
    finally:
        imap.logout()


def test_duplicate_add_fails_nonzero(server):
    server.add_account(ADDR, PASSWORD)
    proc = server.cli("account", "add", ADDR, stdin="another-Pass-2\n", check=False)
    assert proc.returncode != 0, proc.out
    assert proc.err.strip(), "no error message on stderr"
    # The first password still works: the failed add changed nothing.
    server.imap(ADDR, PASSWORD).logout()
    assert listed_accounts(server).count(ADDR) == 1


@pytest.mark.parametrize("bad", ["not-an-address", "@example.com", "carol@", "a b@example.com"])
def test_add_bad_address_fails_nonzero(server, bad):
    proc = server.cli("account", "add", bad, stdin="pw-Pass-1\n", check=False)
    assert proc.returncode != 0, (bad, proc.out)
    assert proc.err.strip(), "no error message on stderr"
    assert bad not in listed_accounts(server)


def test_passwd_changes_the_password(server):
    server.add_account(ADDR, PASSWORD)
    server.cli("account", "passwd", ADDR, stdin="carol-New-Pass-2\n")
    assert login_fails(server, ADDR, PASSWORD), "old password still works"
    server.imap(ADDR, "carol-New-Pass-2").logout()


def test_passwd_of_unknown_account_fails_nonzero(server):
    proc = server.cli("account", "passwd", "ghost@example.com", stdin="x-Pass-1\n", check=False)
    assert proc.returncode != 0
    assert proc.err.strip()


def test_remove_account(server):
    server.add_account(ADDR, PASSWORD)
    deliver_ok(server, [ADDR], message("soon gone"))
    server.cli("account", "remove", ADDR)
    assert ADDR not in listed_accounts(server)
    assert login_fails(server, ADDR, PASSWORD), "removed account can still log in"
    client = server.lmtp()
    try:
        res = lmtp_deliver(client, "s@example.net", [ADDR], message("to removed"))
    finally:
        client.close()
    assert res[ADDR][0] == 550, res


def test_remove_unknown_account_fails_nonzero(server):
    proc = server.cli("account", "remove", "ghost@example.com", check=False)
    assert proc.returncode != 0
    assert proc.err.strip()


def test_alias_delivers_to_target_inbox(server):
    server.add_account(ADDR, PASSWORD)
    server.cli("account", "alias", "add", "info@example.com", ADDR)
    listing = server.cli("account", "alias", "list").out.splitlines()
    assert "info@example.com -> carol@example.com" in [line.strip() for line in listing], listing
    data = message("to the alias")
    deliver_ok(server, ["info@example.com"], data)
    imap = server.imap(ADDR, PASSWORD)
    try:
        assert list(fetch_bodies(imap).values()) == [data]
    finally:
        imap.logout()
    # An alias is not an account: it cannot log in.
    assert login_fails(server, "info@example.com", PASSWORD)


def test_alias_and_target_in_one_transaction(server):
    server.add_account(ADDR, PASSWORD)
    server.cli("account", "alias", "add", "info@example.com", ADDR)
    data = message("alias and target")
    results = deliver_ok(server, [ADDR, "info@example.com"], data)
    assert len(results) == 2
    imap = server.imap(ADDR, PASSWORD)
    try:
        bodies = list(fetch_bodies(imap).values())
    finally:
        imap.logout()
    # Whether the second copy is kept or folded, every copy is the message.
    assert 1 <= len(bodies) <= 2 and all(b == data for b in bodies), bodies


def test_alias_remove_stops_delivery(server):
    server.add_account(ADDR, PASSWORD)
    server.cli("account", "alias", "add", "info@example.com", ADDR)
    server.cli("account", "alias", "remove", "info@example.com")
    listing = server.cli("account", "alias", "list").out
    assert "info@example.com" not in listing, listing
    client = server.lmtp()
    try:
        res = lmtp_deliver(client, "s@example.net", ["info@example.com"], message("x"))
    finally:
        client.close()
    assert res["info@example.com"][0] == 550, res


def test_alias_to_unknown_target_fails_nonzero(server):
    proc = server.cli("account", "alias", "add", "info@example.com", "ghost@example.com",
                      check=False)
    assert proc.returncode != 0
    assert proc.err.strip()


def test_password_is_read_from_first_line_of_stdin_only(server):
    # Only the first line is the password; what follows is ignored.
    server.add_account(ADDR, PASSWORD + "\nsecond-line-ignored")
    server.imap(ADDR, PASSWORD).logout()


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", 'quote"and\\backslash', "  leading and trailing  "],
    ids=["spaces", "quote-backslash", "outer-spaces"],
)
def test_password_with_spaces_and_quotes(server, password):
    server.add_account(ADDR, password)
    server.imap(ADDR, password).logout()
