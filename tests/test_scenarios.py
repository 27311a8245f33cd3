"""Every shipped scenario runs, and its outcome matches the committed golden summary.

After an intended change of behaviour, regenerate with
``MAILSIM_UPDATE_GOLDEN=1 python -m pytest tests/test_scenarios.py`` and review the diff.
"""

from __future__ import annotations

import json
import os

import pytest

import mailsim
from tests.conftest import ROOT, SCENARIOS

GOLDEN = ROOT / "tests" / "golden"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def summary(result: mailsim.Result) -> dict:
    def ms(value):
        return None if value is None or value != value else round(float(value), 3)

    return {
        "summary": result.summary(),
        "messages": [
            {
                "id": row.id,
                "recipient": row.recipient,
                "status": row.status,
                "hops": int(row.hops),
                "delivered_at": ms(row.delivered_at),
                "retrieved_at": ms(row.retrieved_at),
            }
            for row in result.messages.itertuples()
        ],
    }


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_scenario_matches_golden(path):
    got = summary(mailsim.run(mailsim.load(path), seed=0))
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
