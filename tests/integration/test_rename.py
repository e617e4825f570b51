"""RENAME with Python's imaplib against the real binary (RFC 9051 section 6.3.6):
the hierarchy moves with the mailbox, a taken name gets NO [ALREADYEXISTS], and
renaming INBOX moves its delivered mail to the new name and leaves INBOX empty,
ready for the next delivery."""

import imaplib

from conftest import ALICE, deliver_ok, fetch_bodies, message, parse_list, select


def names(client) -> set[str]:
    typ, data = client.list('""', "*")
    assert typ == "OK", data
    return {name for _attrs, _delim, name in parse_list(data)}


def test_rename_moves_children_and_refuses_taken_names(users):
    client = users.imap(*ALICE)
    for name in ["projects", "projects/a", "projects/a/b", "projectsX"]:
        assert client.create(name)[0] == "OK"
    assert client.rename("projects", "archive/2026")[0] == "OK"
    now = names(client)
    assert {"archive/2026", "archive/2026/a", "archive/2026/a/b", "projectsX"} <= now
    assert not {"projects", "projects/a", "projects/a/b"} & now

    typ, data = client.rename("projectsX", "Sent")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0], (typ, data)
    typ, data = client.rename("nowhere", "elsewhere")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], (typ, data)
    client.logout()


def test_renaming_inbox_moves_its_mail(users):
    sent = {}
    for i in range(3):
        body = message(f"inbox {i}")
        deliver_ok(users, [ALICE[0]], body)
        sent[i] = body
    client = users.imap(*ALICE)
    before = fetch_bodies(client)
    assert sorted(before.values()) == sorted(sent.values())
    client.close()

    assert client.rename("INBOX", "Before-2026")[0] == "OK"
    assert select(client, "INBOX") == 0
    assert fetch_bodies(client, "Before-2026") == before

    later = message("after the rename")
    deliver_ok(users, [ALICE[0]], later)
    after = fetch_bodies(client, "INBOX")
    assert list(after.values()) == [later]
    assert min(after) > max(before), "INBOX reused a UID"
    client.logout()
