"""``--set KEY=VALUE``: the paths a student writes, the values validated like the file,
and one line naming the key for everything wrong (exit 2)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import mailsim
from mailsim.cli import main
from mailsim.errors import InputError, key_path
from mailsim.overrides import apply, segments
from tests.bounded import mailsim as mailsim_command
from tests.bounded import refused
from tests.conftest import SCENARIOS
from tests.test_timing import RELAY_RTTS

CLASSROOM = SCENARIOS / "classroom.yaml"


def relay_hop(*overrides: str) -> float:
    result = mailsim.run(mailsim.load(CLASSROOM, list(overrides)))
    hop = result.hops.set_index("protocol").loc["smtp"]
    return float(hop["end"] - hop["start"])


def test_a_link_named_by_its_ends_changes_the_relay_by_its_round_trips():
    """The relay hop ends when mx-home has the message and sends its 250: every round
    trip of the session (QUIT travels with the "." and is not waited for), less the
    250's way back. 100 ms more one way on the backbone is 2 × 100 ms more per round
    trip."""
    before = relay_hop()
    after = relay_hop("links.r-school/r-home.latency=145ms")
    assert after - before == pytest.approx((RELAY_RTTS - 0.5) * 2 * 0.100, abs=1e-9)
    # Either order of the ends, or the link's position, name the same link.
    assert relay_hop("links.r-home/r-school.latency=145ms") == pytest.approx(after, abs=1e-12)
    assert relay_hop("links.3.latency=145ms") == pytest.approx(after, abs=1e-12)


def test_keys_with_dots_plain_or_quoted():
    plain = mailsim.load(CLASSROOM, ["users.bob@home.example.poll=2min"])
    quoted = mailsim.load(CLASSROOM, ['users["bob@home.example"].poll=2min'])
    assert plain.users["bob@home.example"].poll == quoted.users["bob@home.example"].poll == 120.0


def test_a_section_the_file_leaves_out_is_filled_in():
    scenario = mailsim.load(CLASSROOM, ["nodes.mx-home.processing.command=40ms"])
    assert scenario.nodes["mx-home"].processing.command == pytest.approx(0.040)


def test_later_assignments_win_and_an_empty_value_is_null():
    assert mailsim.load(CLASSROOM).users["bob@home.example"].mailbox == "pop-home"
    scenario = mailsim.load(
        CLASSROOM,
        ["links.3.latency=10ms", "links.3.latency=20ms", "users.bob@home.example.mailbox="],
    )
    assert scenario.links[3].latency == pytest.approx(0.020)
    assert scenario.users["bob@home.example"].mailbox is None


def test_segments():
    assert segments('users["a@b.example"].poll') == [("users", False), ("a@b.example", True),
                                                     ("poll", False)]  # fmt: skip
    assert segments("links.a/b.latency") == [("links", False), ("a/b", False), ("latency", False)]


@pytest.mark.parametrize(
    ("assignment", "line"),
    [
        ("links.r-school/r-hom.latency=1ms",
         "--set: links.r-school/r-hom.latency: no link between r-school and r-hom (links: "
         "alice-pc/msa-school, msa-school/dns, msa-school/r-school, r-school/r-home, "
         "r-home/mx-home, mx-home/pop-home, r-home/bob-pc)"),
        ("links.r-school/r-home.latency=fast",
         "--set: links.3.latency: 'fast' is not a duration; write it like \"20ms\", \"5min\" or \"2h\""),
        ("links.9.latency=1ms", "--set: links.9.latency: links has 7 items, there is no item 9"),
        ("nodes.mx-home.processing.comand=1ms",
         "--set: nodes.mx-home.processing.comand: unknown key; did you mean 'command'?"),
        ('users["bob@home.example"].poll=-1',
         "--set: users[\"bob@home.example\"].poll: must be greater than zero (got -1)"),
        ("latency", "--set: latency: expected KEY=VALUE, e.g. links.r-school/r-home.latency=150ms"),
        ("links.3.latency=[1",
         "--set: links.3.latency: the value '[1' is not valid YAML: did not find expected ',' or ']'"),
        ("links.3.latency.x=1", "--set: links.3.latency.x: links.3.latency is a single value "
         "('45ms'), it has no 'x'"),
        ("seed.x=1", "--set: seed: unknown key (allowed: name, description, start, duration, "
         "nodes, links, dns, users, messages, traffic, faults, eavesdroppers)"),
    ],
)  # fmt: skip
def test_bad_overrides_exit_2_with_one_line_naming_the_key(capsys, assignment, line):
    for command in ("run", "validate"):
        assert main([command, str(CLASSROOM), "--set", assignment]) == 2
        err = capsys.readouterr().err
        assert err == f"mailsim: {line}\n"
        assert "Traceback" not in err


def test_every_bad_override_is_reported_at_once():
    with pytest.raises(InputError) as caught:
        mailsim.load(CLASSROOM, ["links.9.latency=1ms", "nope", "links.3.latency=2ms"])
    assert [p.key for p in caught.value.problems] == ["links.9.latency", "nope"]


def test_run_with_set_changes_the_report(capsys):
    assert main(["run", str(CLASSROOM), "--set", "users.bob@home.example.poll=10min"]) == 0
    out = capsys.readouterr().out
    # The first lines say how to run it again, each --set whole on its line.
    assert out.splitlines()[:2] == [
        "mailsim 0.1.0 · scenario 'classroom' · seed 0 ·",
        "  --set users.bob@home.example.poll=10min · simulated 10 min 0 s",
    ]
    # bob's program polls at 10 min instead of 5 min: m1 (sent at 10 s) waits for it.
    assert "retrieved after 9 min 50 s" in out


@pytest.mark.parametrize("index", ["--1", "²", "1.5"])
def test_odd_list_positions_are_an_error_not_a_crash(index):
    with pytest.raises(InputError) as caught:
        mailsim.load(CLASSROOM, [f"links.{index}.latency=1ms"])
    assert caught.value.problems[0].file == "--set"


def test_negative_positions_count_from_the_end():
    scenario = mailsim.load(CLASSROOM, ["links.-1.latency=9ms"])
    assert scenario.links[-1].latency == pytest.approx(0.009)


def test_json_names_the_overrides(capsys):
    import json

    assert main(["run", str(CLASSROOM), "--json", "--set", "links.3.latency=50ms"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["set"] == ["links.3.latency=50ms"]
    assert main(["run", str(CLASSROOM), "--json"]) == 0
    assert "set" not in json.loads(capsys.readouterr().out)


def test_a_new_name_with_dots_must_be_quoted(capsys):
    assert (
        main(["validate", str(CLASSROOM), "--set", "users.carol@home.example.client=bob-pc"]) == 2
    )
    assert capsys.readouterr().err == (
        "mailsim: --set: users.carol@home.example.client: there is no 'carol@home.example' in"
        ' users; a new name that holds dots is written quoted: users["carol@home.example"].client\n'
    )
    scenario = mailsim.load(CLASSROOM, ['users["carol@home.example"].client=bob-pc'])
    assert scenario.users["carol@home.example"].client == "bob-pc"


def test_a_start_time_needs_no_quotes_and_a_bad_one_is_named():
    scenario = mailsim.load(SCENARIOS / "classroom.yaml", ["start=2026-11-02T09:30:00+01:00"])
    assert scenario.start == "2026-11-02T09:30:00+01:00"
    with pytest.raises(mailsim.ScenarioError) as caught:
        mailsim.load(SCENARIOS / "classroom.yaml", ["start=tomorrow"])
    assert str(caught.value) == (
        "--set: start: 'tomorrow' is not a date and time; write it like 2026-11-02T09:00:00+01:00"
    )


# --- what a --set blames, found over random assignments ------------------------------------

CLASSROOM_DATA = yaml.safe_load(CLASSROOM.read_text())
_NAMES = [
    "nodes", "links", "users", "messages", "dns", "zones", "home.example", "mx", "a",
    "mx-home", "alice-pc", "r-school/r-home", "bob@home.example", "alice@school.example",
    "processing", "command", "latency", "poll", "client", "smtp", "mailbox", "role", "host",
    "size", "id", "m1", "pos", "between", "faults", "traffic", "duration", "start", "name",
    "ttl", "queue", "policy", "x", "new@home.example",
]  # fmt: skip
_segment = st.one_of(
    st.sampled_from(_NAMES),
    st.integers(-3, 9).map(str),
    st.text(alphabet="ab.[]\"'/ -@=", min_size=1, max_size=6),
)


@st.composite
def _key(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.tuples(_segment, st.sampled_from(["plain", "dq", "sq"])), min_size=1, max_size=5
        )
    )
    out = ""
    for text, style in parts:
        if style == "dq":
            out += f'["{text}"]'
        elif style == "sq":
            out += f"['{text}']"
        else:
            out += ("." if out else "") + text
    return out


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["150ms", "2h", "20KB", "1Gbps", "smtp", "pop", "mx-home", "1.2", "spread"]),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_texts = st.one_of(
    _values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=20),
    st.sampled_from(["[1", "{a: *b}", "&a [*a]", "!!python/object:os.system x", "- a\n- b"]),
)


def _created(loc: tuple) -> tuple:
    """The part of ``loc`` that the assignment made: the first key the file lacks."""
    node = CLASSROOM_DATA
    for depth, part in enumerate(loc):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return loc[: depth + 1]
    return loc


def _inside(key: str, outer: str) -> bool:
    return key == outer or key.startswith((outer + ".", outer + "["))


@given(key=_key(), text=_texts)
def test_a_problem_in_a_set_value_blames_set(key, text):
    """Whatever is set, loading ends in a Scenario or in one-line problems, and a problem
    inside the value set (or inside what the assignment made) blames --set, never a
    line of the file."""
    assignment = f"{key}={text}"
    try:
        scenario = mailsim.load(CLASSROOM, [assignment])
    except InputError as exc:
        problems = exc.problems
    else:
        assert isinstance(scenario, mailsim.Scenario)
        return
    try:
        (loc,) = apply(copy.deepcopy(CLASSROOM_DATA), [f"{key}="], lambda k, t: None)
    except InputError:
        assert all(p.file == "--set" for p in problems), problems
        return
    made = key_path(_created(loc))
    for problem in problems:
        assert "\n" not in str(problem)
        if problem.file != "--set":
            assert problem.file == str(CLASSROOM), problem
            assert problem.line is not None, problem
            assert not _inside(problem.key, made), (assignment, problem)


@pytest.mark.parametrize(
    ("assignment", "line"),
    [
        ('users["a"]["b"]=1', "--set: users.a.b: unknown key"),
        ('users["a"]["b"]=1', "--set: users.a.client: required key is missing"),
        ("nodes.new.processing.command=1ms", "--set: nodes.new: missing 'role'"),
        ("messages.0.size=.inf", "--set: messages.0.size: must be a finite number, not .inf"),
    ],
)
def test_a_key_the_assignment_makes_blames_set(assignment, line):
    with pytest.raises(InputError) as caught:
        mailsim.load(CLASSROOM, [assignment])
    assert any(str(p).startswith(line) for p in caught.value.problems), caught.value.problems


def test_one_string_is_one_assignment():
    scenario = mailsim.load(CLASSROOM, "duration=2h")
    assert scenario.duration == 7200.0
    assert mailsim.loads(CLASSROOM.read_text(), "c.yaml", "duration=3h").duration == 10800.0


def test_validate_takes_any_mapping():
    from types import MappingProxyType

    from mailsim.scenario import validate

    scenario = validate(MappingProxyType(CLASSROOM_DATA))
    assert scenario.name == "classroom"
    with pytest.raises(InputError) as caught:
        validate(["nodes"])  # type: ignore[arg-type]
    assert str(caught.value) == "<scenario>: a scenario is a mapping of keys, got list"


def test_a_key_path_of_thousands_of_parts_is_refused_at_once():
    # Each part could be the start of a key that holds dots: searching them all took 16 s
    # for 5,000 parts. A scenario's deepest key has five parts.
    run = mailsim_command("validate", str(CLASSROOM), "--set", "a." * 5000 + "b=1")
    refused(run, "--set: a.a.a.", "the key path has more than 50 parts")
    assert run.seconds < 5


def test_a_long_key_is_shown_cut_so_that_its_problem_stays_one_short_line(capsys):
    assert main(["validate", str(CLASSROOM), "--set", "x" * 100_000 + "=1"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"mailsim: --set: {'x' * 199}…: unknown key (allowed: name, description,"
        " start, duration, nodes, links, dns, users, messages, traffic, faults, eavesdroppers)\n"
    )
