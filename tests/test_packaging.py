"""The wheel a teacher installs: the code, and the scenarios and lessons to start from."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = out.glob("mailsim-*.whl")
    return built


def test_the_wheel_carries_the_scenarios_and_the_lessons(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for scenario in (ROOT / "scenarios").glob("*.yaml"):
        assert f"mailsim/examples/scenarios/{scenario.name}" in names
    lessons = [p for p in (ROOT / "notebooks").rglob("*") if p.suffix in (".ipynb", ".yaml", ".md")]
    assert len(lessons) > 20  # both tracks, the quizzes, the glossary
    for lesson in lessons:
        assert f"mailsim/examples/notebooks/{lesson.relative_to(ROOT / 'notebooks')}" in names
    assert "mailsim/py.typed" in names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


def test_installed_from_the_wheel_it_runs_the_classroom_by_name(wheel, tmp_path):
    """A fresh virtual environment outside the checkout: mailsim from the wheel, its
    dependencies from this environment (they are not what is tested)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (packages,) = venv.glob("lib/python*/site-packages")
    (packages / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()

    def mailsim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "mailsim"), *args], cwd=elsewhere, capture_output=True, text=True
        )

    where = subprocess.run(
        [str(python), "-c", "import mailsim; print(mailsim.__file__)"],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(packages))  # not the checkout
    ran = mailsim("run", "classroom")
    assert ran.returncode == 0, ran.stderr
    assert "m1  alice@school.example → bob@home.example" in ran.stdout
    listed = mailsim("examples")
    assert "classroom" in listed.stdout
    assert "01-first-email" in listed.stdout
    lines = [line for line in listed.stdout.splitlines() if str(packages) not in line]
    assert max(len(line) for line in lines) <= 80, listed.stdout  # COLUMNS=80, paths aside
    copied = mailsim("examples", "copy", "lessons")
    assert copied.returncode == 0, copied.stderr
    assert (elsewhere / "lessons" / "scenarios" / "classroom.yaml").is_file()
    assert (elsewhere / "lessons" / "notebooks" / "01-first-email.ipynb").is_file()
    school = elsewhere / "lessons" / "notebooks" / "school"
    assert (school / "01-first-email.ipynb").is_file()
    assert (school / ".." / "quizzes" / "school-01-first-email.yaml").is_file()  # its quiz
    assert (school / "glossary.ipynb").is_file()  # and the words it links to
    activities = elsewhere / "lessons" / "scenarios" / "activities"
    assert (activities / "solutions" / "fix-dns.yaml").is_file()
    checked = mailsim("check", str(activities / "fix-dns.yaml"))  # its start: wrong-mx.yaml
    assert checked.returncode == 1, checked.stderr
    again = mailsim("examples", "copy", "lessons")
    assert again.returncode == 2
    assert "exists already" in again.stderr


def python_blocks(markdown: str) -> list[str]:
    blocks, inside = [], None
    for line in markdown.splitlines():
        if inside is None and line.strip() == "```python":
            inside = []
        elif inside is not None and line.strip() == "```":
            blocks.append("\n".join(inside) + "\n")
            inside = None
        elif inside is not None:
            inside.append(line)
    return blocks


@pytest.mark.parametrize("number", range(len(python_blocks((ROOT / "README.md").read_text()))))
def test_every_python_block_of_the_readme_runs_as_a_script(number, tmp_path):
    """Copied into a file and run, as a programmer tries the README first."""
    script = tmp_path / f"readme_{number}.py"
    script.write_text(python_blocks((ROOT / "README.md").read_text())[number])
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_a_sweep_in_a_script_without_the_guard_stops_at_once_in_one_line(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(
        "import mailsim\n\n"
        'table = mailsim.sweep("scenarios/classroom.yaml",'
        ' {"links.r-school/r-home.latency": ["10ms", "100ms"]}, replications=2, workers=2)\n'
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"mailsim: {script}:3: mailsim.sweep() runs in worker processes, which import this"
        ' script again: put the code that calls it under `if __name__ == "__main__":`'
        " (or pass workers=1)\n"
    )
