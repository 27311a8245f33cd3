"""DESIGN.md's import rules, checked."""

import ast
from pathlib import Path

import mailsim

PACKAGE = Path(mailsim.__file__).parent


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pure_modules_import_neither_simpy_nor_matplotlib():
    pure = [*PACKAGE.glob("protocols/*.py"), PACKAGE / "units.py", PACKAGE / "retry.py"]
    for path in pure:
        assert not imports(path) & {"simpy", "matplotlib"}, path


def test_only_the_scenario_loader_reads_yaml():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "scenario.py":
            assert "yaml" not in imports(path), path


def test_public_api():
    assert set(mailsim.__all__) == {
        "Builder", "InputError", "Result", "Scenario", "ScenarioError", "Stepper",
        "__version__", "grade", "load", "loads", "run", "sweep",
    }  # fmt: skip
    for name in mailsim.__all__:
        assert hasattr(mailsim, name)
