"""Every shipped scenario runs, and its outcome matches the committed golden summary.

After an intended change of behaviour, regenerate with
``MAILSIM_UPDATE_GOLDEN=1 python -m pytest tests/test_scenarios.py`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

import mailsim
from mailsim import report
from tests.conftest import ROOT, SCENARIOS, shipped

GOLDEN = ROOT / "tests" / "golden"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
LISTED = 1000  # copies listed one by one in a golden file


def summary(result: mailsim.Result) -> dict:
    def ms(value):
        return None if value is None or value != value else round(float(value), 3)

    messages = [
        {
            "id": row.id,
            "recipient": row.recipient,
            "status": row.status,
            "hops": int(row.hops),
            "delivered_at": ms(row.delivered_at),
            "retrieved_at": ms(row.retrieved_at),
        }
        for row in result.messages.itertuples()
    ]
    if len(messages) <= LISTED:
        return {"summary": result.summary(), "messages": messages}
    # A day of an office: the first copies in full, every copy in the digest.
    everything = json.dumps(messages, sort_keys=True).encode()
    return {
        "summary": result.summary(),
        "messages_sha256": hashlib.sha256(everything).hexdigest(),
        "messages": messages[:LISTED],
    }


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_scenario_matches_golden(path):
    got = summary(shipped(path))
    golden = GOLDEN / f"{path.stem}.json"
    if os.environ.get("MAILSIM_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert golden.exists(), f"no golden file for {path.name}: run with MAILSIM_UPDATE_GOLDEN=1"
    assert got == json.loads(golden.read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_scenario_opens_with_a_comment_on_what_to_look_at(path):
    text = path.read_text()
    assert text.startswith("# ")
    assert "What to look at" in text


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in the JSON: not JSON")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_report_and_json_say_none_where_nothing_is_known(path):
    """A copy without Authentication-Results or folder (a bounce, a message that never
    reached a checking MX) has None for them, never NaN: the report reads them, and the
    JSON stays JSON."""
    result = shipped(path)
    text = report.text(result, limit=10_000)
    assert re.search(r"\bnan\b", text) is None
    messages = json.loads(result.to_json(), parse_constant=_no_constant)["messages"]
    assert len(messages) == len(result.messages)
    for m in messages:
        assert m["folder"] in (None, "inbox", "spam")
        assert m["authentication"] is None or m["authentication"].split(";")[0]
