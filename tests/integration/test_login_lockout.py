"""The failed-login lockout IMAP and POP3 share ([auth]), against the real binary:
failures over IMAP lock the (address, user) pair out of IMAP and POP3 alike, the
right password included, with the RFC 5530 and RFC 3206 codes for "try later";
another user from the same address still gets in. Guessing spread over many
addresses locks the user, but not out of an address the user logged in from
(the test plays several clients on 127.0.0.0/8)."""

import imaplib
import poplib
import socket

import pytest

from conftest import ALICE, BOB, CONFIG, HOST, NET_TIMEOUT

LOCKOUT_CONFIG = (
    CONFIG.replace("[imap]\n", "[imap]\nauth_failure_delay_ms = 10\n")
    .replace("[pop3]\n", "[pop3]\nauth_failure_delay_ms = 10\n")
    + "\n[auth]\nmax_failures_per_pair = 3\nlockout_secs = 600\n"
)


def imap_login_error(server, user: str, password: str) -> str:
    """The text of the NO a LOGIN gets (fails the test if it succeeds)."""
    client = imaplib.IMAP4(HOST, server.ports["imap"], timeout=NET_TIMEOUT)
    try:
        with pytest.raises(imaplib.IMAP4.error) as refused:
            client.login(user, password)
        return str(refused.value)
    finally:
        client.shutdown()


def test_failures_lock_the_pair_out_of_imap_and_pop3(make_server):
    server = make_server(config=LOCKOUT_CONFIG).start()
    server.add_account(*ALICE)
    server.add_account(*BOB)

    for _ in range(3):
        assert "[AUTHENTICATIONFAILED]" in imap_login_error(server, ALICE[0], "wrong")

    # Locked out: the right password is refused too, as a temporary condition.
    assert "[UNAVAILABLE]" in imap_login_error(server, ALICE[0], ALICE[1])

    pop = poplib.POP3(HOST, server.ports["pop3"], timeout=NET_TIMEOUT)
    try:
        pop.user(ALICE[0])
        with pytest.raises(poplib.error_proto) as refused:
            pop.pass_(ALICE[1])
        assert b"[SYS/TEMP]" in refused.value.args[0], refused.value
        # Bob, from the same address, is not locked out.
        pop.user(BOB[0])
        assert pop.pass_(BOB[1]).startswith(b"+OK")
    finally:
        pop.quit()

    client = server.imap(*BOB)
    client.logout()


class IMAP4From(imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen loopback address (127.0.0.0/8 is all
    loopback on Linux), so one test can play clients on several addresses."""

    def __init__(self, source: str, port: int):
        self.source = source
        super().__init__(HOST, port, timeout=NET_TIMEOUT)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (self.source, 0))


def login_from(server, source: str, password: str) -> str:
    """'OK', or the text of the NO, for a LOGIN as alice from `source`."""
    client = IMAP4From(source, server.ports["imap"])
    try:
        client.login(ALICE[0], password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        client.shutdown()


USER_LOCK_CONFIG = (
    CONFIG.replace("[imap]\n", "[imap]\nauth_failure_delay_ms = 10\n")
    + "\n[auth]\nmax_failures_per_pair = 100\nmax_failures_per_user = 5\nlockout_secs = 600\n"
)


def test_a_user_lockout_spares_the_users_own_addresses(make_server):
    server = make_server(config=USER_LOCK_CONFIG).start()
    server.add_account(*ALICE)
    # Alice's own device logs in from 127.0.0.10.
    assert login_from(server, "127.0.0.10", ALICE[1]) == "OK"
    # Guessing spread over five addresses, one try each, locks the user...
    for i in range(2, 7):
        assert "[AUTHENTICATIONFAILED]" in login_from(server, f"127.0.0.{i}", "guess")
    # ...for every address, even with the right password,
    assert "[UNAVAILABLE]" in login_from(server, "127.0.0.20", ALICE[1])
    assert "[UNAVAILABLE]" in login_from(server, "127.0.0.2", ALICE[1])
    # but not for the address alice logged in from before.
    assert login_from(server, "127.0.0.10", ALICE[1]) == "OK"
