"""Groups of users in one line, and traffic that follows the hours of a working day."""

from __future__ import annotations

import numpy as np
import pytest

import mailsim
from mailsim.groups import expand, resolve_all
from mailsim.traffic import WORKING_DAY, arrivals, seconds_into_day, weights

OFFICE = """
name: office
start: "2026-11-02T07:00:00+01:00"
duration: 2h
nodes:
  pcs:  {role: client}
  mail: {role: smtp, host: mail.office.example, domains: [office.example]}
  pop:  {role: pop}
  dns:  {role: dns}
links:
  - {between: [pcs, mail], latency: 1ms}
  - {between: [pcs, pop], latency: 1ms}
  - {between: [mail, pop], latency: 1ms}
  - {between: [mail, dns], latency: 1ms}
dns:
  zones:
    office.example: {mx: [{preference: 10, host: mail.office.example}],
                     a: {mail.office.example: mail}}
users:
  staff{001..120}@office.example: {client: pcs, smtp: mail, mailbox: pop, poll: 10min,
                                   poll_start: spread}
  boss@office.example: {client: pcs, smtp: mail, mailbox: pop}
"""


def office(extra: str = "", overrides: tuple[str, ...] = ()) -> mailsim.Scenario:
    return mailsim.loads(OFFICE + extra, "office.yaml", overrides)


def test_a_range_is_written_out_like_bash_brace_expansion():
    assert expand("a{1..3}@x.example") == ["a1@x.example", "a2@x.example", "a3@x.example"]
    assert expand("s{08..10}@x.example") == ["s08@x.example", "s09@x.example", "s10@x.example"]
    assert expand("r{1..2}.{1..2}@x.example") == [
        "r1.1@x.example", "r1.2@x.example", "r2.1@x.example", "r2.2@x.example",
    ]  # fmt: skip
    assert expand("bob@x.example") == ["bob@x.example"]
    with pytest.raises(ValueError, match=r"\{9\.\.1\} counts down"):
        expand("s{9..1}@x.example")
    with pytest.raises(ValueError, match="is 1,000,000 addresses; at most 100,000"):
        expand("s{1..1000}.{1..1000}@x.example")


def test_globs_pick_declared_users_in_order_each_once():
    users = ["a1@x.example", "a2@x.example", "b@y.example"]
    assert resolve_all(["*@X.example", "a1@x.example"], users) == users[:2]
    assert resolve_all(["a?@x.example", "c@z.example"], users) == [*users[:2], "c@z.example"]
    with pytest.raises(ValueError, match=r"'\*@nowhere.example' matches no user in users"):
        resolve_all(["*@nowhere.example"], users)


def test_a_group_declares_every_user_and_spreads_their_first_polls():
    scenario = office()
    accounts = scenario.accounts
    assert len(scenario.users) == 2
    assert len(accounts) == 121
    assert list(accounts)[:2] == ["staff001@office.example", "staff002@office.example"]
    assert accounts["staff001@office.example"] is accounts["staff120@office.example"]
    assert scenario.addresses(["*@office.example"]) == list(accounts)
    # The compact form survives a dump: run.json stays readable.
    assert "staff{001..120}@office.example" in scenario.model_dump(by_alias=True)["users"]


def test_spread_first_polls_are_drawn_from_the_seed_within_one_interval():
    """120 programs started at random moments of the first 10 minutes — not one every
    5 s in order, as no office does; each user's moment is its own, from the seed."""
    from mailsim.rng import uniform

    def first_logins(seed: int) -> dict[str, float]:
        """When each user's program first sends its USER line."""
        events = mailsim.run(office(), seed=seed).events
        users = events[events["step"] == "USER"]
        firsts = users.groupby("detail", observed=True)["time"].min()
        return {str(k).split()[1]: float(v) for k, v in firsts.items()}

    staff = [f"staff{n:03d}@office.example" for n in range(1, 121)]
    logins = first_logins(7)
    draws = {a: 600 * uniform(7, "poll-start", a) for a in staff}
    # The same connection set-up after each user's drawn moment.
    offsets = [logins[a] - draws[a] for a in staff]
    assert max(offsets) - min(offsets) < 1e-6
    assert 0 < offsets[0] < 0.1
    assert all(0 <= draws[a] < 600 for a in staff)
    assert max(draws.values()) - min(draws.values()) > 500  # they fill the interval
    assert sorted(draws, key=draws.__getitem__) != staff  # not in the users' order
    assert first_logins(8) != logins  # another seed, other moments
    assert first_logins(7) == logins


def test_a_group_can_be_changed_with_set_by_its_pattern():
    scenario = office(overrides=('users["staff{001..120}@office.example"].poll=5min',))
    assert scenario.accounts["staff120@office.example"].poll == pytest.approx(300)


def test_everyone_in_a_group_gets_mail_and_nothing_is_lost():
    traffic = """
traffic:
  - {from: "*@office.example", to: "staff{001..120}@office.example", rate: 1/h, stop: 1h}
"""
    result = mailsim.run(office(traffic), seed=3)
    messages = result.messages
    senders = set(messages["sender"])
    assert len(senders) > 60
    assert senders <= set(office().accounts)
    assert (messages["status"] == "retrieved").all()
    assert set(messages["recipient"]) <= {f"staff{n:03d}@office.example" for n in range(1, 121)}
    assert (messages["sender"] != messages["recipient"]).all()


def test_senders_sharing_a_local_part_get_message_ids_of_their_own():
    branch = OFFICE.replace(
        "  boss@office.example: {client: pcs, smtp: mail, mailbox: pop}",
        "  boss@office.example: {client: pcs, smtp: mail, mailbox: pop}\n"
        "  boss@branch.example: {client: pcs, smtp: mail}",
    )
    traffic = """
traffic:
  - {from: [boss@office.example, boss@branch.example, staff001@office.example],
     to: "staff{002..010}@office.example", rate: 6/h, stop: 1h}
"""
    messages = mailsim.run(mailsim.loads(branch + traffic, "branch.yaml"), seed=0).messages
    assert messages["id"].is_unique
    ids = zip(messages["id"], messages["sender"], strict=True)
    prefixes = {message.rsplit(".", 1)[0]: sender for message, sender in ids}
    assert prefixes == {
        "t1.boss.office.example": "boss@office.example",
        "t1.boss.branch.example": "boss@branch.example",
        "t1.staff001": "staff001@office.example",
    }


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ("  s{9..1}@office.example: {client: pcs}\n",
         'office.yaml:23: users["s{9..1}@office.example"]: {9..1} counts down: write the smaller'
         " number first"),
        ("  staff{100..130}@office.example: {client: pcs}\n",
         'office.yaml:23: users["staff{100..130}@office.example"]: \'staff100@office.example\''
         " is already declared by 'staff{001..120}@office.example'"),
        ("traffic:\n  - {from: 'guest{1..5}@office.example', to: boss@office.example,"
         " rate: 1/h}\n",
         "office.yaml:24: traffic.0.from.0: 'guest1@office.example' (and 4 more) has no mail"
         " client: add it to users"),
        ("traffic:\n  - {from: boss@office.example, to: '*@nowhere.example', rate: 1/h}\n",
         "office.yaml:24: traffic.0.to.0: '*@nowhere.example' matches no user in users"),
        ("messages:\n  - {at: 0, from: 'staff{1..2}@office.example', to: boss@office.example}\n",
         "office.yaml:24: messages.0.from: a message has one sender; for many, use traffic"),
    ],
    ids=["counts-down", "declared-twice", "unknown-senders", "glob-nobody", "message-range"],
)  # fmt: skip
def test_group_mistakes_are_one_line_each(extra, line):
    with pytest.raises(mailsim.ScenarioError) as caught:
        office(extra)
    assert [str(p) for p in caught.value.problems] == [line]


def test_a_wrong_node_in_a_group_of_120_is_said_once():
    text = OFFICE.replace("client: pcs, smtp: mail, mailbox: pop, poll", "client: pc, smtp: mail,"
                          " mailbox: pop, poll")  # fmt: skip
    with pytest.raises(mailsim.ScenarioError) as caught:
        mailsim.loads(text, "office.yaml")
    assert [str(p) for p in caught.value.problems] == [
        'office.yaml:20: users["staff{001..120}@office.example"].client: unknown node'
        " 'pc'; did you mean 'pcs'?"
    ]


# --- the working day ---------------------------------------------------------------------


def test_the_working_day_adds_up_to_the_messages_people_send():
    """The comment's claim: at 3.5/h in the busiest hour a person sends about 33 a day
    (EmailAnalytics: 33.4 per working day)."""
    assert len(WORKING_DAY) == 24
    assert max(WORKING_DAY) == 1.0
    assert sum(WORKING_DAY) == pytest.approx(9.6)
    assert 3.5 * sum(WORKING_DAY) == pytest.approx(33.6)
    assert weights([0, 2, 4] + [0] * 21)[:3] == (0.0, 0.5, 1.0)


def test_the_clock_starts_at_the_scenarios_local_time():
    assert seconds_into_day("2026-11-02T09:00:00+01:00") == 9 * 3600
    assert seconds_into_day("2026-11-02T07:30:15-05:00") == 7 * 3600 + 30 * 60 + 15


def test_a_flat_profile_draws_exactly_a_plain_poisson_process():
    plain, profiled = np.random.default_rng(5), np.random.default_rng(5)
    expected, at = [], 0.0
    while (at := at + float(plain.exponential(100.0))) < 10_000:
        expected.append(at)
    assert list(arrivals(profiled, 0.01, 0.0, 10_000, "flat")) == expected


def test_no_one_writes_in_an_hour_of_weight_zero_and_busy_hours_get_their_share():
    """Thinning at 9:00–11:00 local with weights 1 and 0.25: hour 9 gets 4× hour 10,
    hour 11 (weight 0) nothing; counts within 4 standard deviations of a Poisson's."""
    profile = [0.0] * 24
    profile[9], profile[10] = 1.0, 0.25
    rng = np.random.default_rng(11)
    times = np.array(list(arrivals(rng, 1.0, 0.0, 3 * 3600, profile, clock=9 * 3600)))
    counts = np.bincount((times // 3600).astype(int), minlength=3)
    assert counts[2] == 0
    for observed, mean in zip(counts[:2], (3600.0, 900.0), strict=True):
        assert abs(observed - mean) < 4 * np.sqrt(mean)


def test_a_working_day_run_sends_most_mail_in_the_morning_rush():
    traffic = """
traffic:
  - {from: "*@office.example", to: boss@office.example, rate: 3/h, profile: working-day,
     stop: 2h}
"""
    # 07:00–09:00 local: weights 0.35 and 0.75, so about 126 then 270 messages.
    result = mailsim.run(office(traffic), seed=1, detail="outcomes")
    created = result.messages["submitted_at"].to_numpy()
    first, second = (created < 3600).sum(), (created >= 3600).sum()
    assert abs(first - 126) < 4 * np.sqrt(126)
    assert abs(second - 270) < 4 * np.sqrt(270)


@pytest.mark.parametrize(
    ("profile", "message"),
    [("[1, 2]", "a profile has one weight per hour, 24 in all, not 2"),
     ("[" + ", ".join(["0"] * 24) + "]", "at least one hour needs a weight above 0"),
     ("lunchtime", "Input should be 'flat' or 'working-day'")],
)  # fmt: skip
def test_a_bad_profile_is_named(profile, message):
    traffic = f"traffic:\n  - {{from: boss@office.example, to: boss@office.example, rate: 1/h, profile: {profile}}}\n"
    with pytest.raises(mailsim.ScenarioError) as caught:
        office(traffic)
    assert message in str(caught.value)
    assert "traffic.0.profile" in str(caught.value)
