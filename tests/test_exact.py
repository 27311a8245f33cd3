"""The exactness gate, CI's size: every shipped scenario (busy-office's first hour) and the
benchmark world at 1,000 messages, at every level of detail, with the engine's fast paths
on and off, give the same tables to the bit (``make exact`` runs the larger gate)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_fast_paths_change_no_result():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "exact.py"), "--quick"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    runs = lines[1:]
    scenarios = len(list((ROOT / "scenarios").glob("*.yaml")))
    assert len(runs) == 3 * (scenarios + 1)
    assert all(line.endswith("  yes") for line in runs), "\n".join(runs)


def test_the_fingerprint_holds_the_texts_as_sent():
    """At full detail the fingerprint hashes what each step put on the wire, secrets
    unmasked (what the capture files are made of): two runs whose only difference is a
    password of the same length have the same events table, and differ there."""
    import mailsim
    from mailsim.fingerprint import fingerprint
    from mailsim.scenario import validate
    from mailsim.world import World
    from tests.test_compiled import _office

    prints = []
    for password in ("secret", "Secret"):
        world = _office()
        world["users"]["user0@office.example"]["password"] = password
        run = World(validate(world), 0, "full")
        run.run()
        prints.append(fingerprint(mailsim.world_result(run)))
    same, other = prints
    assert set(same) == {"events", "hops", "messages", "wire", "end_time"}
    assert [name for name in same if same[name] != other[name]] == ["wire"]
