"""A user can never read, list or learn of another user's mailboxes."""

import imaplib

import pytest

from conftest import ALICE, BOB, deliver_ok, fetch_bodies, imap_quote, message, parse_list

BOB_SECRET = b"bob-secret-token-7f3a9"
ALICE_SECRET = b"alice-secret-token-19c2"

# Names under which a server might (wrongly) expose another user's mailboxes.
FOREIGN_NAMES = [
    "bob@example.com",
    "bob@example.com/INBOX",
    "bob",
    "bob/INBOX",
    "user/bob",
    "user/bob@example.com",
    "user.bob",
    "Other Users/bob@example.com",
    "Other Users/bob@example.com/INBOX",
    "#users/bob@example.com",
    "Shared/bob@example.com",
    "../bob@example.com/INBOX",
    "/bob@example.com/INBOX",
    "INBOX/../../bob@example.com/INBOX",
    "~bob@example.com/INBOX",
]


@pytest.fixture
def two_users(users):
    deliver_ok(users, [BOB[0]], message("for bob", "secret: " + BOB_SECRET.decode() + "\r\n"))
    deliver_ok(users, [ALICE[0]], message("for alice", "secret: " + ALICE_SECRET.decode() + "\r\n"))
    return users


def names(client, pattern="*"):
    typ, data = client.list('""', pattern)
    assert typ == "OK", (typ, data)
    return [name for _, _, name in parse_list(data)]


def test_list_shows_only_own_mailboxes(two_users):
    client = two_users.imap(*ALICE)
    try:
        for pattern in ("*", "%", "*bob*", "%/%", "*/*"):
            found = names(client, pattern)
            assert not [n for n in found if "bob" in n.lower()], (pattern, found)
        mine = names(client, "*")
    finally:
        client.logout()
    client = two_users.imap(*BOB)
    try:
        assert sorted(names(client, "*")) == sorted(mine), "users see different mailbox sets"
    finally:
        client.logout()


@pytest.mark.parametrize("name", FOREIGN_NAMES)
def test_cannot_select_another_users_mailbox(two_users, name):
    client = two_users.imap(*ALICE)
    try:
        try:
            typ, data = client.select(imap_quote(name))
        except imaplib.IMAP4.error as err:
            typ, data = "BAD", [str(err).encode()]
        assert typ != "OK", f"alice could SELECT {name!r}: {data}"
        # Whatever the answer, it does not leak bob's mail count or content.
        assert BOB_SECRET.decode() not in repr(data)
    finally:
        client.logout()


def test_no_mailbox_of_alice_holds_bobs_mail(two_users):
    client = two_users.imap(*ALICE)
    try:
        seen = []
        for name in names(client, "*"):
            for body in fetch_bodies(client, name).values():
                seen.append(body)
                assert BOB_SECRET not in body, f"bob's mail visible in alice's {name}"
        assert any(ALICE_SECRET in body for body in seen), "alice's own mail is missing"
    finally:
        client.logout()
    client = two_users.imap(*BOB)
    try:
        bodies = list(fetch_bodies(client).values())
        assert len(bodies) == 1 and BOB_SECRET in bodies[0]
        assert all(ALICE_SECRET not in b for b in bodies)
    finally:
        client.logout()


def test_uid_fetch_of_others_uids_returns_nothing(two_users):
    client = two_users.imap(*BOB)
    try:
        bob_uids = list(fetch_bodies(client))
    finally:
        client.logout()
    client = two_users.imap(*ALICE)
    try:
        alice_uids = set(fetch_bodies(client))
        wanted = ",".join(str(u) for u in bob_uids + [u + 1000 for u in bob_uids])
        typ, data = client.uid("FETCH", wanted, "(BODY.PEEK[])")
        assert typ == "OK", (typ, data)
        blob = b"".join(
            part if isinstance(part, bytes) else b"".join(part) for part in data if part
        )
        assert BOB_SECRET not in blob
        # Only alice's own UIDs may come back.
        if set(bob_uids) & alice_uids == set():
            assert data == [None] or not [d for d in data if d], data
    finally:
        client.logout()


def test_one_users_password_does_not_open_another(two_users):
    client = imaplib.IMAP4("127.0.0.1", two_users.ports["imap"], timeout=30)
    try:
        with pytest.raises(imaplib.IMAP4.error) as err:
            client.login(BOB[0], ALICE[1])
        assert "AUTHENTICATIONFAILED" in str(err.value)
    finally:
        client.shutdown()
