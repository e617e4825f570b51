"""LMTP (RFC 2033) replies: extensions, errors, pipelining, BDAT, bad input."""

import random
import re
import time

import pytest

from conftest import (
    ALICE,
    BOB,
    MAX_MESSAGE_SIZE,
    Closed,
    deliver_ok,
    fetch_bodies,
    lmtp_deliver,
    message,
)

SENDER = "sender@example.net"


def enhanced(text: str) -> str:
    """The enhanced status code at the start of a reply text ('' if none)."""
    m = re.match(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b", text)
    return m.group(1) if m else ""


def inbox(server, user):
    client = server.imap(*user)
    try:
        return list(fetch_bodies(client).values())
    finally:
        client.logout()


def sized_message(subject: str, total: int) -> bytes:
    """A message of exactly `total` bytes, with 76-byte body lines."""
    head = message(subject, "")
    left = total - len(head)
    line = b"x" * 74 + b"\r\n"
    count, rest = divmod(left, len(line))
    assert count >= 1
    body = line * count
    if rest >= 2:
        body += b"y" * (rest - 2) + b"\r\n"
    elif rest == 1:
        body = body[:-2] + b"x\r\n"
    data = head + body
    assert len(data) == total, (len(data), total)
    return data


def test_lhlo_advertises_required_extensions(users):
    client = users.lmtp()
    try:
        for ext in ("pipelining", "enhancedstatuscodes", "8bitmime", "size", "chunking"):
            assert client.has_extn(ext), f"LHLO lacks {ext.upper()}: {client.esmtp_features}"
        size = client.esmtp_features.get("size", "").strip()
        if size:
            assert int(size) == MAX_MESSAGE_SIZE, f"SIZE {size}"
    finally:
        client.close()


def test_unknown_recipient_is_550_while_other_recipient_gets_250(users):
    data = message("one known, one unknown")
    client = users.lmtp()
    try:
        res = lmtp_deliver(client, SENDER, [ALICE[0], "nobody@example.com"], data)
    finally:
        client.close()
    assert res["nobody@example.com"][0] == 550, res
    assert enhanced(res["nobody@example.com"][1]) == "5.1.1", res
    assert res[ALICE[0]][0] == 250, res
    assert enhanced(res[ALICE[0]][1]).startswith("2."), res
    assert inbox(users, ALICE) == [data]


def test_unknown_domain_is_550(users):
    client = users.lmtp()
    try:
        res = lmtp_deliver(client, SENDER, ["alice@elsewhere.invalid"], message("x"))
    finally:
        client.close()
    code, text = res["alice@elsewhere.invalid"]
    assert code == 550 and enhanced(text) == "5.1.1", res


def test_oversize_data_is_552_and_connection_stays_usable(users):
    big = sized_message("too big", MAX_MESSAGE_SIZE + 200_000)
    small = message("after the big one")
    client = users.lmtp()
    try:
        res = lmtp_deliver(client, SENDER, [ALICE[0]], big)
        assert res[ALICE[0]][0] == 552, res
        assert enhanced(res[ALICE[0]][1]) == "5.3.4", res
        res = lmtp_deliver(client, SENDER, [ALICE[0]], small)
        assert res[ALICE[0]][0] == 250, res
        assert client.noop()[0] == 250
    finally:
        client.close()
    assert inbox(users, ALICE) == [small]


def test_message_of_exactly_max_size_is_accepted(users):
    data = sized_message("exactly the limit", MAX_MESSAGE_SIZE)
    deliver_ok(users, [ALICE[0]], data, mail_options=[f"SIZE={len(data)}"])
    assert inbox(users, ALICE) == [data]


def test_size_parameter_over_limit_is_552_at_mail(users):
    client = users.lmtp()
    try:
        code, text = client.mail(SENDER, [f"SIZE={MAX_MESSAGE_SIZE + 1}"])
        assert code == 552, (code, text)
        assert enhanced(text.decode()) == "5.3.4", text
        # A normal transaction still works on the same connection.
        res = lmtp_deliver(client, SENDER, [ALICE[0]], message("fine"))
        assert res[ALICE[0]][0] == 250, res
    finally:
        client.close()


def test_over_quota_is_452_for_that_recipient_only(users):
    users.add_account("tiny@example.com", "tiny-Secret-3", quota="1M")
    first = sized_message("fills the quota", 600_000)
    second = sized_message("over the quota", 600_000)
    deliver_ok(users, ["tiny@example.com"], first)
    client = users.lmtp()
    try:
        res = lmtp_deliver(client, SENDER, ["tiny@example.com", BOB[0]], second)
    finally:
        client.close()
    code, text = res["tiny@example.com"]
    assert code == 452, res
    assert enhanced(text) == "4.2.2", res
    assert res[BOB[0]][0] == 250, res
    assert inbox(users, ("tiny@example.com", "tiny-Secret-3")) == [first]
    assert inbox(users, BOB) == [second]


def test_already_over_quota_is_452_at_rcpt_or_after_data(users):
    users.add_account("tiny@example.com", "tiny-Secret-3", quota="1M")
    deliver_ok(users, ["tiny@example.com"], sized_message("a", 600_000))
    client = users.lmtp()
    try:
        for i in range(3):
            res = lmtp_deliver(client, SENDER, ["tiny@example.com"],
                               sized_message(f"b{i}", 600_000))
            code, text = res["tiny@example.com"]
            assert code == 452 and enhanced(text) == "4.2.2", res
    finally:
        client.close()


@pytest.mark.parametrize(
    "line",
    [
        "FROBNICATE now",
        "MAIL FROM:<unterminated@example.net",
        "MAIL FROM:",
        "MAIL TO:<x@example.net>",
        "MAIL FROM:<a@example.net> NOSUCHPARAM=1",
        "MAIL FROM:<a@example.net> SIZE=notanumber",
    ],
)
def test_malformed_command_is_500_or_501_with_5_5_x(users, line):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        code, texts = conn.cmd(line)
        assert code in (500, 501, 504, 555), (line, code, texts)
        status = enhanced(texts[-1])
        # Bad address syntax may also be reported as 5.1.3/5.1.7 (RFC 3463).
        assert status.startswith("5.5.") or status in ("5.1.3", "5.1.7"), (line, code, texts)
        # The session is still usable.
        assert conn.cmd("NOOP")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    finally:
        conn.close()


def test_malformed_rcpt_is_501(users):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, texts = conn.cmd("RCPT TO:<not an address")
        # 553 5.1.3 (bad destination syntax, RFC 5321/3463) is as good as 501.
        assert code in (500, 501, 553), (code, texts)
        assert enhanced(texts[-1]).startswith("5."), texts
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
    finally:
        conn.close()


def test_rcpt_before_mail_is_503(users):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        code, texts = conn.cmd(f"RCPT TO:<{ALICE[0]}>")
        assert code == 503 and enhanced(texts[-1]) == "5.5.1", (code, texts)
    finally:
        conn.close()


def test_data_before_rcpt_is_503(users):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        code, texts = conn.cmd("DATA")
        assert code == 503 and enhanced(texts[-1]) == "5.5.1", ("DATA before MAIL", code, texts)
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        code, texts = conn.cmd("DATA")
        assert code == 503 and enhanced(texts[-1]) == "5.5.1", ("DATA before RCPT", code, texts)
    finally:
        conn.close()


def test_data_after_only_failed_rcpts_is_503(users):
    # RFC 2033 section 4.2: with no successful RCPT, DATA MUST fail with 503.
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.cmd("RCPT TO:<nobody@example.com>")[0] == 550
        code, texts = conn.cmd("DATA")
        assert code == 503, ("DATA with no accepted recipient", code, texts)
        assert conn.cmd("RSET")[0] == 250
    finally:
        conn.close()


def test_mail_before_lhlo_is_503(users):
    conn = users.raw_lmtp()
    try:
        code, texts = conn.cmd(f"MAIL FROM:<{SENDER}>")
        assert code == 503 and enhanced(texts[-1]).startswith("5.5."), (code, texts)
    finally:
        conn.close()


def test_pipelined_commands_get_replies_in_order(users):
    data = message("pipelined", "one\r\n.dot line\r\n")
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        # RFC 2920: DATA may only end a group, and message content may start one.
        conn.send(
            f"MAIL FROM:<{SENDER}>\r\n".encode()
            + f"RCPT TO:<{ALICE[0]}>\r\n".encode()
            + b"RCPT TO:<nobody@example.com>\r\n"
            + f"RCPT TO:<{BOB[0]}>\r\n".encode()
            + b"DATA\r\n"
        )
        codes = [conn.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 550, 250, 354], codes
        conn.send(data.replace(b"\r\n.", b"\r\n..") + b".\r\nRSET\r\nNOOP\r\n")
        replies = [conn.reply() for _ in range(4)]
        assert [c for c, _ in replies] == [250, 250, 250, 250], replies
        for _, texts in replies[:2]:
            assert enhanced(texts[-1]).startswith("2."), replies
        assert conn.cmd("QUIT")[0] == 221
        _, closed = conn.read_until_closed(10)
        assert closed, "server did not close after QUIT"
    finally:
        conn.close()
    assert inbox(users, ALICE) == [data]
    assert inbox(users, BOB) == [data]


def test_bdat_chunks_are_stored_without_unstuffing(users):
    data = message("chunked", ".not stuffed\r\n..two\r\n.\r\nend\r\n")
    cut = len(data) // 2
    first, last = data[:cut], data[cut:]
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}> BODY=8BITMIME")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{BOB[0]}>")[0] == 250
        conn.send(f"BDAT {len(first)}\r\n".encode() + first)
        code, texts = conn.reply()
        assert code == 250, ("BDAT chunk", code, texts)
        conn.send(f"BDAT {len(last)} LAST\r\n".encode() + last)
        replies = [conn.reply() for _ in range(2)]
        assert [c for c, _ in replies] == [250, 250], replies
        assert conn.cmd("NOOP")[0] == 250
    finally:
        conn.close()
    assert inbox(users, ALICE) == [data]
    assert inbox(users, BOB) == [data]


def test_binary_garbage_gets_errors_or_close_and_server_keeps_serving(users):
    rng = random.Random(20261123)
    garbage = bytes(rng.randrange(256) for _ in range(16384))
    garbage = garbage.replace(b"\n", b"\0")
    # Some CRLFs so a line-based reader sees whole "lines" of garbage, and
    # plenty of NULs and high bytes.
    chunks = [garbage[i:i + 700] for i in range(0, len(garbage), 700)]
    payload = b"\r\n".join(chunks) + b"\r\n\0\0\0\xff\xfe"
    bad = users.raw_lmtp(timeout=20)
    try:
        try:
            bad.send(payload)
        except OSError:
            pass  # The server may close as soon as it sees garbage.
        # Meanwhile another client is served normally.
        other = users.raw_lmtp()
        try:
            assert other.cmd("LHLO client.test")[0] == 250
            assert other.cmd("NOOP")[0] == 250
        finally:
            other.close()
        received, closed = bad.read_until_closed(timeout=20)
        codes = re.findall(rb"^(\d{3})[ -]", received, flags=re.M)
        assert closed or codes, f"no reply and no close for garbage: {received[:300]!r}"
        for code in codes:
            assert code.startswith(b"5") or code == b"421", f"reply {code} to garbage"
        assert users.running, "server died on binary garbage"
    finally:
        bad.close()
    data = message("after garbage")
    deliver_ok(users, [ALICE[0]], data)
    assert inbox(users, ALICE) == [data]


def test_overlong_command_line_is_rejected(users):
    conn = users.raw_lmtp(timeout=20)
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        try:
            conn.send(b"MAIL FROM:<" + b"a" * 200_000 + b"@example.net>\r\n")
        except OSError:
            pass
        received, closed = conn.read_until_closed(timeout=15)
        codes = re.findall(rb"^(\d{3})[ -]", received, flags=re.M)
        assert codes or closed, "no reply and no close for a 200 kB command line"
        if codes:
            assert codes[0].startswith(b"5"), received[:300]
    finally:
        conn.close()
    assert users.running
    deliver_ok(users, [ALICE[0]], message("after the long line"))


def test_eight_bit_body_is_accepted_with_8bitmime(users):
    data = message("8bit", "").replace(b"us-ascii", b"utf-8") + "Ça va? Ÿes — ok\r\n".encode()
    deliver_ok(users, [ALICE[0]], data, mail_options=["BODY=8BITMIME"])
    assert inbox(users, ALICE) == [data]


def test_many_recipients_in_one_transaction(users):
    names = [f"user{i}@example.com" for i in range(8)]
    for name in names:
        users.add_account(name, "pw-" + name)
    data = message("to many")
    started = time.monotonic()
    deliver_ok(users, names, data)
    assert time.monotonic() - started < 30
    for name in (names[0], names[-1]):
        assert inbox(users, (name, "pw-" + name)) == [data]


def test_quit_closes_connection(users):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        code, _ = conn.cmd("QUIT")
        assert code == 221
        with pytest.raises(Closed):
            conn.line(timeout=10)
    finally:
        conn.close()


def test_rset_clears_the_transaction(users):
    conn = users.raw_lmtp()
    try:
        assert conn.cmd("LHLO client.test")[0] == 250
        assert conn.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.cmd(f"RCPT TO:<{ALICE[0]}>")[0] == 250
        assert conn.cmd("RSET")[0] == 250
        code, texts = conn.cmd("DATA")
        assert code == 503, ("DATA after RSET", code, texts)
    finally:
        conn.close()


