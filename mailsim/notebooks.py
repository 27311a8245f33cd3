"""The lesson notebooks' housekeeping: outputs are not committed; a run gets its own kernel.

python -m mailsim.notebooks strip notebooks/*.ipynb    # remove outputs in place
python -m mailsim.notebooks check notebooks/*.ipynb    # exit 1 if any has outputs
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def has_outputs(path: Path) -> bool:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return any(
        cell.get("outputs") or cell.get("execution_count") is not None
        for cell in notebook.cells
        if cell.cell_type == "code"
    )


def strip(path: Path) -> None:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


def execute(
    notebook: Any, folder: Path, timeout: int, env: dict[str, str] | None = None, **options: Any
) -> None:
    """Run ``notebook`` in place in a fresh Python kernel started in ``folder``.

    The kernel is reached through Unix sockets in a folder of its own, not TCP ports: a
    client picks free ports and its kernel binds them a moment later, and a kernel that
    another process starts in between can take one (``Address already in use``, the kernel
    dies), as parallel test runs showed. ``env``, if given, is the kernel's environment;
    ``options`` go to ``nbclient.NotebookClient``."""
    import nbclient
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="mailsim-kernel-") as sockets:
        # Windows has no Unix sockets for the kernel's channels: TCP there.
        transport = {"transport": "ipc", "ip": os.path.join(sockets, "k")}
        config = Config({"KernelManager": transport if os.name == "posix" else {}})
        nbclient.NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", config=config,
            resources={"metadata": {"path": str(folder)}}, **options,
        ).execute(**({"env": env} if env is not None else {}))  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("strip", "check"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    paths = [Path(p) for p in argv[1:]]
    if argv[0] == "strip":
        for path in paths:
            strip(path)
        return 0
    dirty = [path for path in paths if has_outputs(path)]
    for path in dirty:
        print(f"{path}: has outputs; run `make strip-notebooks`", file=sys.stderr)
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
