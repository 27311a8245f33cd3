"""IMAP as pure dialogues: the polling and IDLE clients against the pure server."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from mailsim.protocols import Commands, Idle, Reply, meaning
from mailsim.protocols.imap import IDLE_RENEWAL, IMAP_PORT, IMAPS_PORT, ImapServer, client, idle
from tests.dialogue import play


def logged_in(mailbox: list[int], **kwargs) -> ImapServer:
    server = ImapServer("imap.home.example", mailbox, "builder", tls=None, **kwargs)
    assert server.handle("a1 LOGIN bob builder").code == "OK"
    return server


def selected(mailbox: list[int], **kwargs) -> ImapServer:
    server = logged_in(mailbox, **kwargs)
    assert server.handle("a2 SELECT INBOX").code == "OK"
    return server


def test_a_poll_fetches_each_new_message_and_flags_it_seen():
    server = ImapServer("imap.home.example", [20_000, 500], password="builder")
    out, transcript = play(client("bob@home.example", "builder"), server)
    assert [sent for sent, _ in transcript] == [
        "connect:143", "a1 STARTTLS", "tls", "a2 CAPABILITY",
        "a3 LOGIN bob@home.example ********", "a4 SELECT INBOX", "a5 SEARCH UNSEEN",
        "a6 FETCH 1 (BODY.PEEK[] FLAGS)", "a7 STORE 1 +FLAGS (\\Seen)",
        "a8 FETCH 2 (BODY.PEEK[] FLAGS)", "a9 STORE 2 +FLAGS (\\Seen)", "a10 LOGOUT",
    ]  # fmt: skip
    assert all(codes in (("OK",), ("TLS",)) for _, codes in transcript)
    assert out.fetched == [1, 2]
    assert out.tls == "1.3"
    assert out.logged_out
    assert server.seen == {1, 2}
    assert server.state == "LOGOUT"


def test_mail_stays_on_the_server_and_the_next_poll_finds_nothing_new():
    mailbox = [20_000, 500]
    first = ImapServer("imap.home.example", mailbox, password="builder")
    play(client("bob", "builder"), first)
    assert mailbox == [20_000, 500]
    later = ImapServer("imap.home.example", mailbox, "builder", seen=first.seen,
                       announced=first.announced)  # fmt: skip
    out, transcript = play(client("bob", "builder"), later)
    assert out.fetched == []
    assert not any("FETCH" in sent for sent, _ in transcript)
    select = selected(mailbox, seen={1, 2}, announced=2).handle("a3 SELECT INBOX")
    assert "2 EXISTS" in select.data
    assert "0 RECENT" in select.data
    assert not any("UNSEEN" in line for line in select.data)


def test_select_is_worded_as_dovecot_words_it():
    server = logged_in([69, 70], seen={1})
    select = server.handle("a3 SELECT INBOX")
    assert select.wire() == (
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
        " Flags permitted.\r\n"
        "* 2 EXISTS\r\n"
        "* 2 RECENT\r\n"
        "* OK [UNSEEN 2] First unseen.\r\n"
        "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
        "* OK [UIDNEXT 3] Predicted next UID\r\n"
        "a3 OK [READ-WRITE] Select completed.\r\n"
    )
    assert str(select) == "OK [READ-WRITE] Select completed."
    assert select.ok


def test_a_fetch_carries_the_message_as_a_literal():
    server = selected([69, 70])
    fetch = server.handle("a3 FETCH 1 (BODY.PEEK[] FLAGS)")
    assert fetch.data == ("1 FETCH (FLAGS (\\Recent) BODY[] {69}",)
    assert fetch.payload == 69 + len(")\r\n")
    assert server.seen == set()  # PEEK leaves the message new
    uid = server.handle("a4 UID FETCH 2 (BODY.PEEK[] FLAGS)")
    assert uid.data == ("2 FETCH (UID 2 FLAGS (\\Recent) BODY[] {70}",)
    store = server.handle("a5 STORE 1 +FLAGS (\\Seen)")
    assert store.wire() == "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\na5 OK Store completed.\r\n"
    assert server.handle("a6 SEARCH UNSEEN").data == ("SEARCH 2",)
    body = server.handle("a7 FETCH 2 (BODY[])")  # BODY[] flags it \Seen at once
    assert body.data == ("2 FETCH (FLAGS (\\Seen \\Recent) BODY[] {70}",)
    assert server.handle("a8 SEARCH UNSEEN").wire() == ("* SEARCH\r\na8 OK Search completed.\r\n")


def test_sizes_on_the_wire_are_those_of_the_replies_as_sent():
    server = ImapServer("imap.home.example", [20_000, 500], password="builder")
    replies = [server.greeting()]
    for line in ("a1 CAPABILITY", "a2 STARTTLS"):
        replies.append(server.handle(line))
    server.tls_started("1.3")
    for line in ("a3 CAPABILITY", "a4 LOGIN bob builder", "a5 SELECT INBOX",
                 "a6 SEARCH UNSEEN", "a7 FETCH 1 (BODY.PEEK[] FLAGS)",
                 "a8 STORE 1 +FLAGS (\\Seen)", "a9 FETCH 9 (FLAGS)", "a10 IDLE"):  # fmt: skip
        replies.append(server.handle(line))
    replies.append(server.deliver(300))
    for line in ("DONE", "a11 NOOP", "a12 LOGOUT"):
        replies.append(server.handle(line))
    for reply in replies:
        assert reply is not None
        assert reply.size == len(reply.wire().encode()) + reply.payload, reply
    assert replies[7].payload == 20_003
    assert (
        replies[-4].wire() == "* 3 EXISTS\r\n* 3 RECENT\r\n"
    )  # every message \Recent to the session
    assert replies[-1].wire() == "* BYE Logging out\r\na12 OK Logout completed.\r\n"


def test_login_before_starttls_is_refused_where_login_is_disabled():
    server = ImapServer("imap.home.example", [], password="builder")
    assert "LOGINDISABLED" in server.greeting().text
    refused = server.handle("a1 LOGIN bob builder")
    assert str(refused) == (
        "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure"
        " (SSL/TLS) connections."
    )
    assert refused.data[0].startswith("BAD [ALERT] Plaintext authentication not allowed")
    secret = base64.b64encode(b"\0bob\0builder").decode()
    assert str(server.handle(f"a2 AUTHENTICATE PLAIN {secret}")) == (
        "NO [PRIVACYREQUIRED] Plaintext authentication disabled."
    )
    assert server.state == "NOT AUTHENTICATED"
    assert str(server.handle("a3 STARTTLS")) == "OK Begin TLS negotiation now."
    server.tls_started("1.3")
    assert str(server.handle("a4 STARTTLS")) == "BAD TLS is already active."
    assert "LOGINDISABLED" not in server.capabilities()
    assert "AUTH=PLAIN" in server.capabilities()
    assert server.handle("a5 LOGIN bob builder").code == "OK"


def test_a_wrong_password_is_no_and_nothing_is_fetched():
    server = ImapServer("imap.home.example", [100], password="builder")
    out, transcript = play(client("bob", "bilder"), server)
    assert str(out.error) == "NO [AUTHENTICATIONFAILED] Authentication failed."
    assert transcript[-2:] == [("a3 LOGIN bob ********", ("NO",)), ("a4 LOGOUT", ("OK",))]
    assert out.fetched == []
    assert not out.authenticated
    assert server.seen == set()


def test_commands_out_of_their_state_are_bad():
    server = ImapServer("imap.home.example", [10], password="builder", tls=None)
    before = server.handle("a1 SELECT INBOX")
    assert str(before) == "BAD Error in IMAP command received by server."
    server.handle("a2 LOGIN bob builder")
    assert str(server.handle("a3 FETCH 1 (BODY.PEEK[] FLAGS)")) == "BAD No mailbox selected."
    assert str(server.handle("a4 SEARCH UNSEEN")) == "BAD No mailbox selected."
    assert str(server.handle("a5 STARTTLS")) == (
        "BAD Error in IMAP command STARTTLS: Unknown command."
    )
    assert str(server.handle("a6 SELECT Junk")) == "NO Mailbox doesn't exist: Junk."
    server.handle("a7 SELECT INBOX")
    assert str(server.handle("a8 FETCH 2 (FLAGS)")) == (
        "BAD Error in IMAP command FETCH: Invalid messageset."
    )
    assert str(server.handle("a9 UID FETCH 2 (FLAGS)")) == "OK Fetch completed."
    assert server.handle("a10 IDLE").wire() == "+ idling\r\n"
    assert server.handle("a11 NOOP").wire() == "a10 BAD Expected DONE.\r\n"
    assert server.idling is None


def test_post_login_capabilities_go_untagged_once_the_client_asked_for_them():
    quiet = ImapServer("imap.home.example", [], password="pw", tls=None)
    coded = quiet.handle("a1 LOGIN bob pw")
    assert coded.data == ()
    assert coded.text.startswith("[CAPABILITY IMAP4rev1 ")
    assert coded.text.endswith("] Logged in")
    asking = ImapServer("imap.home.example", [], password="pw", tls=None)
    asking.handle("a1 CAPABILITY")
    listed = asking.handle("a2 LOGIN bob pw")
    assert listed.text == "Logged in"
    assert listed.data[0].startswith("CAPABILITY IMAP4rev1 ")
    assert "IDLE" in listed.data[0].split()
    # After STARTTLS a client must ask again (RFC 9051 §6.2.1): that tells Dovecot nothing.
    secured = ImapServer("imap.home.example", [], password="pw")
    secured.handle("a1 STARTTLS")
    secured.tls_started("1.3")
    secured.handle("a2 CAPABILITY")
    assert secured.handle("a3 LOGIN bob pw").text.startswith("[CAPABILITY IMAP4rev1 ")


def test_authenticate_plain_where_the_server_disables_login():
    class NoLogin(ImapServer):
        def capabilities(self) -> list[str]:
            caps = super().capabilities()
            return [*caps, "LOGINDISABLED"] if self.state == "NOT AUTHENTICATED" else caps

    server = NoLogin("imap.home.example", [5], password="pass word")
    out, transcript = play(client("bob", "pass word"), server)
    assert ("a3 AUTHENTICATE PLAIN ********", ("OK",)) in transcript
    assert not any("LOGIN" in sent.split()[1] for sent, _ in transcript if " " in sent)
    assert out.fetched == [1]
    waiting = ImapServer("imap.home.example", [], password="pw", tls=None)
    assert waiting.handle("a1 AUTHENTICATE PLAIN").wire() == "+ \r\n"
    answer = waiting.handle(base64.b64encode(b"\0bob\0pw").decode())
    assert answer.code == "OK"
    assert answer.tag == "a1"


def test_a_password_with_a_space_is_quoted_and_understood():
    server = ImapServer("imap.home.example", [], password='pass "word"', tls=None)
    commands = client("bob", 'pass "word"')
    out, transcript = play(commands, server)
    assert out.authenticated
    assert transcript[1] == ("a1 LOGIN bob ********", ("OK",))


def test_without_tls_on_offer_the_client_logs_in_in_the_clear_or_not_at_all():
    plain = ImapServer("imap.home.example", [], password="pw", tls=None)
    out, transcript = play(client("bob", "pw"), plain)
    greeting = ImapServer("imap.home.example", [], password="pw", tls=None).greeting()
    assert "AUTH=PLAIN" in greeting.text
    assert "STARTTLS" not in greeting.text
    assert out.tls is None
    assert out.authenticated
    strict = ImapServer("imap.home.example", [], password="pw", tls=None)
    out, transcript = play(client("bob", "pw", tls="encrypt"), strict)
    assert [sent for sent, _ in transcript] == ["connect:143", "a1 LOGOUT"]
    assert out.error is not None
    assert out.error.local
    assert not out.authenticated


def test_implicit_tls_connects_to_993_and_skips_starttls():
    server = ImapServer("imap.home.example", [], password="pw")
    out, transcript = play(client("bob", "pw", implicit=True), server)
    assert transcript[:2] == [(f"connect:{IMAPS_PORT}", ("TLS", "OK")),
                              ("a1 LOGIN bob ********", ("OK",))]  # fmt: skip
    assert IMAPS_PORT == 993
    assert out.tls == "1.3"
    assert out.authenticated


def test_the_client_asks_for_capabilities_the_greeting_does_not_list():
    class Terse(ImapServer):
        def greeting(self) -> Reply:
            return Reply("OK", ("Dovecot ready.",), tag="*")

    out, transcript = play(client("bob", "pw"), Terse("imap.home.example", [], password="pw"))
    assert [sent for sent, _ in transcript][:5] == [
        f"connect:{IMAP_PORT}", "a1 CAPABILITY", "a2 STARTTLS", "tls", "a3 CAPABILITY",
    ]  # fmt: skip
    assert out.authenticated


def test_idle_waits_for_the_push_then_fetches_the_new_message():
    server = ImapServer("imap.home.example", [], password="builder")
    out, transcript = play(idle("bob", "builder", idles=2), server, arrivals=(300,))
    assert transcript[7:] == [
        ("a6 IDLE", ("+",)), ("idle", ("*",)), ("DONE", ("OK",)),
        ("a7 FETCH 1 (BODY.PEEK[] FLAGS)", ("OK",)), ("a8 STORE 1 +FLAGS (\\Seen)", ("OK",)),
        ("a9 IDLE", ("+",)), ("idle", ()), ("DONE", ("OK",)), ("a10 LOGOUT", ("OK",)),
    ]  # fmt: skip
    assert out.fetched == [1]
    assert (out.idles, out.pushes) == (2, 1)
    assert server.mailbox == [300]


def test_idle_is_renewed_every_29_minutes():
    steps = idle("bob", "pw", tls="none")
    server = ImapServer("imap.home.example", [], password="pw", tls=None)
    step, waits = next(steps), []
    for _ in range(12):
        if isinstance(step, Idle):
            waits.append(step.timeout)
            step = steps.send([])  # no news: the wait runs out
        else:
            replies = [server.greeting()] if not isinstance(step, Commands) else [
                server.handle(line) for line in step.lines]  # fmt: skip
            step = steps.send(replies)
    assert waits == [IDLE_RENEWAL] * len(waits)
    assert len(waits) >= 2
    assert IDLE_RENEWAL == 29 * 60


def test_mail_arriving_outside_idle_is_told_at_the_next_noop():
    server = selected([10])
    assert server.deliver(20) is None
    noop = server.handle("a3 NOOP")
    assert noop.data == ("2 EXISTS", "2 RECENT")
    assert server.handle("a4 NOOP").data == ()
    server.handle("a5 IDLE")
    pushed = server.deliver(30)
    assert pushed is not None
    assert pushed.wire() == "* 3 EXISTS\r\n* 3 RECENT\r\n"
    assert str(server.handle("DONE")) == "OK Idle completed."


def test_a_full_mailbox_takes_no_more_mail():
    server = selected([60], quota=100)
    assert server.fits(40)
    assert not server.fits(41)
    server.handle("a3 IDLE")
    assert server.deliver(41) is None
    assert server.mailbox == [60]
    assert server.deliver(40) is not None


def test_imap_steps_have_meanings_for_learners():
    assert meaning("SELECT").startswith("IMAP: open a mailbox")
    assert meaning("a4 SELECT INBOX") == meaning("SELECT")
    assert meaning("a6 IDLE") == meaning("IDLE") != ""
    assert meaning("DONE") == "IMAP: stop idling"
    assert meaning("a3 LOGIN bob ********", "NO") == "IMAP: refused (e.g. a wrong password)"
    assert meaning("idle", "*").startswith("IMAP: data the server sends on its own")
    assert meaning("RETR 1") == ""  # POP3's words are looked up by the verb alone


_line = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)


@given(
    code=st.sampled_from(["OK", "NO", "BAD", "*", "+", "+OK", "-ERR", "250"]),
    tag=st.sampled_from([None, "", "*", "a1", "a12"]),
    text=st.lists(_line, max_size=1).map(tuple),
    data=st.lists(_line, max_size=4).map(tuple),
    payload=st.integers(0, 10**7),
)
def test_a_reply_size_is_its_bytes_on_the_wire_in_every_form(code, tag, text, data, payload):
    """IMAP's tagged and untagged forms, and the POP3 and SMTP forms beside them."""
    if tag is None and not code.startswith(("+", "-")):
        data = ()
    reply = Reply(code, text, data, payload, tag=tag)
    assert reply.size == len(reply.wire().encode()) + payload


def test_a_client_refusing_tls_sends_no_password_where_login_is_disabled():
    server = ImapServer("imap.home.example", [5], password="pw")
    out, transcript = play(client("bob", "pw", tls="none"), server)
    assert [sent for sent, _ in transcript] == ["connect:143", "a1 LOGOUT"]
    assert str(out.error) == "the server disables LOGIN and offers no AUTH=PLAIN"
    assert out.error.local
    assert server.state == "LOGOUT"
