"""The lesson notebooks' housekeeping: outputs are not committed.

python -m mailsim.notebooks strip notebooks/*.ipynb    # remove outputs in place
python -m mailsim.notebooks check notebooks/*.ipynb    # exit 1 if any has outputs
"""

from __future__ import annotations

import sys
from pathlib import Path


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
