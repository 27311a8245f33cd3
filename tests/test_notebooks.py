"""The lessons: each runs top to bottom in a fresh kernel within 30 s, and is committed
without outputs."""

from __future__ import annotations

import time

import pytest

from mailsim.notebooks import has_outputs
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LESSONS = ["01-first-email", "02-dns-and-mx", "03-when-things-fail", "04-what-if-latency",
           "05-speed-and-load", "06-security", "07-read-a-real-email"]  # fmt: skip


def test_every_lesson_is_there():
    assert [p.stem for p in NOTEBOOKS] == LESSONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    assert not has_outputs(path), f"{path.name} has outputs: run `make strip-notebooks`"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runs_top_to_bottom_within_30_seconds(path):
    """A failing cell fails the test; the time counts from the kernel's start."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    began = time.perf_counter()
    nbclient.NotebookClient(
        notebook,
        timeout=30,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    took = time.perf_counter() - began
    assert took <= 30, f"{path.name} took {took:.1f} s"
