"""Encryption per hop: STARTTLS may/encrypt, implicit TLS (RFC 8314), the mail program's
connection security, and a man in the middle who strips STARTTLS."""

from __future__ import annotations

import pytest

import mailsim
from tests.conftest import SCENARIOS, shipped

DOWNGRADE = SCENARIOS / "tls-downgrade.yaml"
CLASSROOM = SCENARIOS / "classroom.yaml"
ALICE = 'users["alice@school.example"]'
BOB = 'users["bob@home.example"]'
REQUIRED = "TLS is required, but was not offered by the server (4.7.4)"


def hops_of(result: mailsim.Result, message: str):
    hops = result.hops
    return hops[hops["message"] == message].reset_index(drop=True)


def session_steps(result: mailsim.Result, session: int) -> list[str]:
    events = result.events
    return list(events.loc[events["session"] == session, "step"])


def test_opportunistic_tls_goes_on_in_plaintext_when_starttls_is_stripped():
    result = shipped(DOWNGRADE)
    relay = hops_of(result, "m1").iloc[1]
    assert (relay["src"], relay["dst"], relay["code"], relay["tls"]) == (
        "msa-school", "mx-home", "250", "",
    )  # fmt: skip
    steps = session_steps(result, int(relay["session"]))
    assert "STARTTLS" not in steps
    assert "ClientHello (key share)" not in steps
    assert result.copy("m1").status == "retrieved"


def test_required_tls_defers_until_the_man_in_the_middle_is_gone():
    # Queue scans at round numbers, for exact retry times.
    result = mailsim.run(mailsim.load(DOWNGRADE, ["nodes.msa-strict.queue.scan_phase=0s"]))
    relays = hops_of(result, "m2")
    relays = relays[relays["protocol"] == "smtp"]
    before, after = relays[relays["start"] < 3600], relays[relays["start"] >= 3600]
    assert len(before) == 4  # 10 s, then Postfix's backoff: 600, 1200, 2400 s
    assert set(before["code"]) == {"4.7.4"}
    assert set(before["outcome"]) == {REQUIRED}
    assert set(before["tls"]) == {""}
    # The client reads the EHLO reply, finds no STARTTLS and says QUIT: no envelope,
    # no message on the wire.
    steps = session_steps(result, int(before.iloc[0]["session"]))
    assert steps == ["SYN", "SYN-ACK", "ACK", "220", "EHLO", "250", "QUIT", "221"]
    (first_after,) = after.itertuples()
    assert (first_after.code, first_after.tls) == ("250", "1.3")
    assert first_after.start == pytest.approx(4800, abs=1)
    assert result.copy("m2").status == "retrieved"


def test_implicit_tls_saves_the_starttls_round_trips_and_leaves_nothing_to_strip():
    """alice (465) and carol (587, STARTTLS) submit over the same 2 ms link: implicit TLS
    skips STARTTLS and the second EHLO, 2 round trips and 2 commands' work."""
    result = shipped(DOWNGRADE)
    alice, carol = hops_of(result, "m1").iloc[0], hops_of(result, "m2").iloc[0]
    took = (alice["end"] - alice["start"], carol["end"] - carol["start"])
    # (and the ~190 bytes of those four lines at 100 Mbps: 15 µs)
    assert took[1] - took[0] == pytest.approx(2 * (2 * 0.002) + 2 * 0.0005, abs=2e-5)
    assert alice["tls"] == carol["tls"] == "1.3"
    steps = session_steps(result, int(alice["session"]))
    assert steps[:6] == ["SYN", "SYN-ACK", "ACK", "ClientHello (key share)",
                         "ServerHello, Certificate, Finished", "220"]  # fmt: skip
    assert "STARTTLS" not in steps


def test_a_mail_program_without_encryption_is_refused_before_its_password_is_sent():
    """Postfix offers AUTH only under TLS (smtpd_tls_auth_only), so a program set to no
    encryption sees no AUTH and sends none (RFC 4954 §4); the submission port wants
    STARTTLS first and refuses MAIL with 530 5.7.0. The password never crossed the wire,
    and the program shows the error at once: refused, no bounce."""
    result = mailsim.run(mailsim.load(CLASSROOM, [f"{ALICE}.security=none"]))
    (submission,) = hops_of(result, "m1").itertuples()
    assert submission.outcome == "530 5.7.0 Must issue a STARTTLS command first"
    assert submission.tls == ""
    assert not submission.auth
    assert result.copy("m1").status == "refused"
    assert result.summary()["bounces_sent"] == 0
    steps = session_steps(result, int(submission.session))
    assert "AUTH" not in steps
    assert steps[steps.index("MAIL") + 1] == "530"


def test_required_starttls_without_a_tls_server_stays_in_the_outbox():
    scenario = mailsim.load(
        CLASSROOM, [f"{ALICE}.security=starttls", "nodes.msa-school.tls=none", "duration=12min"]
    )
    result = mailsim.run(scenario)
    attempts = hops_of(result, "m1")
    assert list(attempts["start"]) == [10.0, pytest.approx(310, abs=0.1),
                                       pytest.approx(610, abs=0.1)]  # fmt: skip
    assert set(attempts["code"]) == {"4.7.4"}
    assert result.copy("m1").status == "in_flight"


def test_implicit_tls_to_a_server_without_tls_finds_the_port_closed():
    scenario = mailsim.load(CLASSROOM, [f"{ALICE}.security=tls", "nodes.msa-school.tls=none",
                                        "duration=1min"])  # fmt: skip
    (attempt,) = hops_of(mailsim.run(scenario), "m1").itertuples()
    assert attempt.outcome == ("connect to mail.school.example:465: Connection refused (4.4.1)")


def test_pop3_in_plaintext_sends_user_and_pass_in_the_clear():
    result = mailsim.run(mailsim.load(CLASSROOM, [f"{BOB}.security=none"]))
    pop = hops_of(result, "m1").iloc[-1]
    assert (pop["protocol"], pop["tls"]) == ("pop3", "")
    steps = session_steps(result, int(pop["session"]))
    assert "STLS" not in steps
    assert {"USER", "PASS", "RETR"} <= set(steps)


def test_pop3_requiring_tls_gives_up_before_the_password():
    scenario = mailsim.load(CLASSROOM, [f"{BOB}.security=starttls", "nodes.pop-home.tls=none"])
    result = mailsim.run(scenario)
    assert result.copy("m1").status == "delivered"  # on the server, never fetched
    events = result.events
    pop = events[events["protocol"] == "pop3"]
    assert "PASS" not in set(pop["step"])
    assert "CAPA" in set(pop["step"])


def test_pop3s_implicit_tls_on_995():
    result = mailsim.run(mailsim.load(CLASSROOM, [f"{BOB}.security=tls"]))
    pop = hops_of(result, "m1").iloc[-1]
    assert pop["tls"] == "1.3"
    steps = session_steps(result, int(pop["session"]))
    assert steps[3] == "ClientHello (key share)"
    assert "STLS" not in steps


# --- eavesdroppers: free-vs-paid-provider.yaml --------------------------------------------

PROVIDERS = SCENARIOS / "free-vs-paid-provider.yaml"


@pytest.fixture(scope="module")
def heard():
    from mailsim.eavesdrop import summary

    result = shipped(PROVIDERS)
    table = summary(result.overheard)
    messages = result.overheard.groupby("session")["message"].first()
    table["message"] = table["session"].map(messages)
    return table


def sessions_of(heard, message: str):
    return heard[heard["message"].str.split().apply(lambda ids: message in ids)]


def test_eve_reads_the_body_on_every_plaintext_hop(heard):
    """alice's message and carol's answer to her: submission, relay, relay, POP3 — each
    crosses the backbone in plaintext, and eve reads the message each time."""
    for message, hops in (("m1", {("alice-pc", "msa-free"), ("msa-free", "mx-college")}),
                          ("m3", {("mx-college", "msa-free"), ("alice-pc", "pop-free")})):  # fmt: skip
        seen = sessions_of(heard, message)
        assert set(zip(seen["src"], seen["dst"], strict=True)) == hops
        assert all("headers and body" in read for read in seen["read"])
        assert all(tls == 0 for tls in seen["tls_bytes"])
    submission = sessions_of(heard, "m1").iloc[0]
    assert submission["details"] == [
        "alice@freemail.example / wonderland (AUTH PLAIN is base64, not encryption)",
        "MAIL FROM:<alice@freemail.example> SIZE=20000",
        "RCPT TO:<carol@college.example>",
        "a message of 20000 bytes",
    ]
    fetch = sessions_of(heard, "m3")
    fetch = fetch[fetch["dst"] == "pop-free"].iloc[0]
    assert fetch["details"][0] == "alice@freemail.example / wonderland (POP3 PASS)"


def test_eve_reads_nothing_but_tls_on_the_encrypted_hops(heard):
    for message in ("m2", "m4"):
        for row in sessions_of(heard, message).itertuples():
            assert row.details == []
            assert row.tls_bytes > 20_000  # the message went by, encrypted
            assert set(row.read) <= {"TLS records", "connection", "commands"}
    # dave's mail program uses implicit TLS (465, 995): not even a greeting in plaintext.
    for row in heard[heard["src"] == "dave-pc"].itertuples():
        assert row.read == ["TLS records", "connection"]
    # College and paidmail talk STARTTLS: the greeting and EHLO go by in plaintext.
    relay = sessions_of(heard, "m2")
    assert relay[relay["src"] == "msa-paid"].iloc[0]["plaintext"] == ["commands"]


def test_the_report_says_what_eve_read(capsys):
    from mailsim.cli import main

    assert main(["run", str(PROVIDERS), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "What eve, listening on r-west–r-east, could read:" in out
    assert "  m2  dave-pc → msa-paid (submission): only TLS records, 25,114 bytes\n" in out
    flat = " ".join(out.split())  # long lines wrap at the terminal's width
    assert "m1 msa-free → mx-college (smtp): in plaintext — MAIL FROM:" in flat
    assert max(len(line) for line in out.splitlines()) <= 80


def test_the_route_marks_the_tap_and_every_plaintext_hop():
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    from mailsim import plot

    result = shipped(PROVIDERS)
    for message in ("m1", "m2"):
        ax = plot.route(result, message)
        try:
            hops = result.hops.set_index(["message", "index"])
            marks = [c for c in ax.collections if c.get_gid() == "eavesdropper"]
            assert len(marks) == 1
            assert "eve listens" in [t.get_text() for t in ax.texts]
            for arrow in ax.patches:
                if isinstance(arrow, FancyArrowPatch) and (arrow.get_gid() or "").startswith(
                    "hop-"
                ):
                    index = int(arrow.get_gid().split("-")[1])
                    plaintext = hops.loc[(message, index), "tls"] == ""
                    assert (arrow.get_linestyle() != "-") == plaintext
        finally:
            plt.close(ax.figure)


def test_an_eavesdropper_on_a_missing_link_is_named():
    with pytest.raises(mailsim.ScenarioError) as caught:
        mailsim.load(
            CLASSROOM,
            [
                "eavesdroppers=[{between: [alice-pc, bob-pc]}, {between: [r-school, r-home]}, {between: [r-home, mx-home]}]"
            ],
        )
    assert [p.message for p in caught.value.problems] == [
        "there is no link between 'alice-pc' and 'bob-pc'",
        "'eve' is used twice: name each one",
        "'eve' is used twice: name each one",
    ]


# --- authentication and relaying: open-relay.yaml ------------------------------------------

RELAY = SCENARIOS / "open-relay.yaml"


def test_an_open_relay_passes_the_bots_spam_on_and_a_closed_one_refuses_it():
    result = shipped(RELAY)
    spam = hops_of(result, "spam-old")
    assert list(zip(spam["src"], spam["dst"], spam["code"], strict=True)) == [
        ("bot-pc", "relay-old", "250"), ("relay-old", "mx-target", "250"),
        ("mx-target", "pop-target", "250"), ("pop-target", "target-pc", "+OK"),
    ]  # fmt: skip
    assert not spam.iloc[0]["auth"]
    assert result.copy("spam-old").status == "retrieved"
    (refused,) = hops_of(result, "spam-new").itertuples()
    assert refused.outcome == "554 5.7.1 <victim@target.example>: Relay access denied"
    assert result.copy("spam-new").status == "refused"  # the bot is told at once, no DSN
    # The bot spoke on port 25 and never sent AUTH.
    steps = session_steps(result, int(refused.session))
    assert "AUTH" not in steps
    # It waits for each reply (no pipelining): the 554 answers RCPT, and no DATA follows.
    assert steps[steps.index("RCPT") :] == ["RCPT", "554", "QUIT", "221"]


def test_the_servers_own_users_relay_after_auth_and_a_typo_gets_535():
    result = shipped(RELAY)
    sam = hops_of(result, "sam")
    assert (sam.iloc[0]["protocol"], sam.iloc[0]["auth"], sam.iloc[1]["code"]) == (
        "submission", True, "250",
    )  # fmt: skip
    (ria,) = hops_of(result, "ria").itertuples()
    assert ria.outcome == "535 5.7.8 Error: authentication failed: authentication failure"
    assert not ria.auth
    steps = session_steps(result, int(ria.session))
    assert steps[-4:] == ["AUTH", "535", "QUIT", "221"]


# --- sender authentication: spoofing.yaml and the checks themselves -------------------------

SPOOFING = SCENARIOS / "spoofing.yaml"


def test_spf_dkim_and_dmarc_tell_alice_from_mallory():
    result = shipped(SPOOFING)
    frame = result.messages.set_index("id")
    assert frame.loc["m1", "authentication"] == (
        "mx.home.example; spf=pass smtp.mailfrom=school.example; dkim=pass"
        " header.d=school.example; dmarc=pass (p=reject) header.from=school.example"
    )
    assert (frame.loc["m1", "status"], frame.loc["m1", "folder"]) == ("retrieved", "inbox")
    # mallory's own SPF passes, for her envelope domain; nothing aligns with school.example.
    assert frame.loc["m2", "authentication"] == (
        "mx.home.example; spf=pass smtp.mailfrom=evil.example; dkim=none;"
        " dmarc=fail (p=reject) header.from=school.example"
    )
    assert frame.loc["m2", "status"] == "bounced"
    assert frame.loc["m2", "reason"] == "550 5.7.1 rejected by DMARC policy for school.example"
    assert (frame.loc["m3", "status"], frame.loc["m3", "folder"]) == ("retrieved", "spam")
    assert (
        "dmarc=fail (p=quarantine) header.from=college.example" in frame.loc["m3", "authentication"]
    )
    # No policy published: the forgery reaches the inbox.
    assert (frame.loc["m4", "status"], frame.loc["m4", "folder"]) == ("retrieved", "inbox")
    assert "dmarc=none header.from=oldschool.example" in frame.loc["m4", "authentication"]


def test_the_delivered_copy_carries_authentication_results_and_the_forged_from():
    email = shipped(SPOOFING).email("m4")
    assert email["From"] == "head@oldschool.example"
    assert email["Return-Path"] == "<mallory@evil.example>"
    assert email["Authentication-Results"].startswith("mx.home.example; spf=pass")
    # Above home's MX's own Received line, below the mailbox server's (added later).
    items = email.items()
    where = [name for name, _ in items].index("Authentication-Results")
    assert items[where - 1][0] == "Received"
    assert "by pop.home.example" in " ".join(items[where - 1][1].split())
    assert "by mx.home.example" in " ".join(items[where + 1][1].split())


def test_a_relay_that_changes_the_body_breaks_dkim_and_dmarc_passes_on_spf():
    """school's mail goes out through a gateway that adds a disclaimer after msa-school
    signed: dkim=fail; the gateway is in school's SPF, so DMARC still passes."""
    from mailsim.scenario import validate

    data = mailsim.load(SPOOFING).model_dump(by_alias=True, exclude_none=True)
    data["nodes"]["msa-school"]["relayhost"] = "gw-school"
    data["nodes"]["gw-school"] = {"role": "smtp", "host": "gw.school.example", "mynetworks": ["msa-school"],
                                  "modifies_body": True}  # fmt: skip
    data["links"] += [{"between": ["msa-school", "gw-school"], "latency": 0.001},
                      {"between": ["gw-school", "r-net"], "latency": 0.001}]  # fmt: skip
    school = data["dns"]["zones"]["school.example"]
    school["a"]["gw.school.example"] = "gw-school"
    school["spf"] = "v=spf1 a:gw.school.example -all"
    scenario = validate(data)
    frame = mailsim.run(scenario).messages.set_index("id")
    assert "spf=pass" in frame.loc["m1", "authentication"]
    assert "dkim=fail header.d=school.example" in frame.loc["m1", "authentication"]
    assert "dmarc=pass" in frame.loc["m1", "authentication"]


@pytest.mark.parametrize(
    ("record", "ip", "result"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.7", "pass"),
        ("v=spf1 ip4:192.0.2.0/24 -all", "198.51.100.7", "fail"),
        ("v=spf1 ip4:192.0.2.0/24 ~all", "198.51.100.7", "softfail"),
        ("v=spf1 ?all", "198.51.100.7", "neutral"),
        ("v=spf1 a -all", "192.0.2.10", "pass"),
        ("v=spf1 mx -all", "192.0.2.25", "pass"),
        ("v=spf1 -a +all", "192.0.2.10", "fail"),
        ("v=spf1 ip4:192.0.2.1", "192.0.2.9", "neutral"),
        ("v=spf1 include:_spf.example.net -all", "192.0.2.9", "permerror"),
        (None, "192.0.2.9", "none"),
    ],
)
def test_spf_evaluates_mechanisms_in_order(record, ip, result):
    from mailsim.protocols.sender_auth import spf

    a = {"x.example": ["192.0.2.10"], "mx.x.example": ["192.0.2.25"]}
    got = spf(record, "x.example", ip, lambda h: a.get(h, []), lambda d: a["mx.x.example"])
    assert got == result


def test_alignment_and_dmarc_records():
    from mailsim.protocols.sender_auth import Dmarc, aligned

    assert aligned("mail.school.example", "school.example")
    assert not aligned("evil.example", "school.example")
    assert Dmarc.parse("v=DMARC1; p=quarantine; rua=mailto:d@x.example") == Dmarc("quarantine")
    assert Dmarc.parse("v=spf1 -all") is None
    assert Dmarc.parse(None) is None


# --- a failed TLS handshake --------------------------------------------------------------

BROKEN_TLS = "faults=[{kind: tls-fail, node: mx-home, start: 0, end: 20min}]"


def test_opportunistic_tls_falls_back_to_plaintext_on_the_next_attempt():
    """Postfix's "may": a failed handshake defers (4.7.5); the retry goes in plaintext
    instead of failing again (TLS_README, client_tls_may)."""
    result = mailsim.run(mailsim.load(CLASSROOM, [BROKEN_TLS]))
    relays = hops_of(result, "m1")
    relays = relays[relays["protocol"] == "smtp"]
    assert list(relays["outcome"].str[:44]) == [
        "Cannot start TLS: handshake failure (4.7.5)", "250 2.0.0 Ok: queued as ED99800002",
    ]  # fmt: skip
    assert list(relays["tls"]) == ["", ""]  # the retry is plaintext, though mx-home offers TLS
    failed = session_steps(result, int(relays.iloc[0]["session"]))
    assert failed[failed.index("STARTTLS") :] == [
        "STARTTLS", "220", "ClientHello (key share)", "Alert",
    ]  # fmt: skip
    assert "STARTTLS" not in session_steps(result, int(relays.iloc[1]["session"]))


def test_required_tls_keeps_deferring_until_the_handshake_works():
    required = "nodes.msa-school.outgoing_tls=encrypt"
    pinned = "nodes.msa-school.queue.scan_phase=0s"  # queue scans at round numbers
    result = mailsim.run(mailsim.load(CLASSROOM, [BROKEN_TLS, required, pinned]))
    relays = hops_of(result, "m1")
    relays = relays[relays["protocol"] == "smtp"]
    assert list(relays["code"]) == ["4.7.5", "4.7.5", "250"]
    assert list(relays["tls"]) == ["", "", "1.3"]
    assert relays.iloc[2]["start"] == pytest.approx(1200, abs=1)  # after the fault's 20 min
