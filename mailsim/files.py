"""Files a user names on the command line: read within a bound, written with a clear error.

Inputs (scenario files, mail files) come from anywhere: a path may be a folder, a FIFO
that never ends, ``/dev/zero`` or a 4 GB mailbox. Each is read only if it is a regular
file (or standard input, ``-``) of at most :data:`MAX_INPUT_BYTES`, so no input can make
the program hang or fill the memory. Outputs are checked before a run starts (the folder
exists or can be made, and is writable), so a long simulation is never thrown away for a
typo in ``--out``; an error while writing (a full disk) is one line, exit code 1.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from mailsim.errors import InputError, Problem

# Larger than any scenario or message a class writes (the 17,000-message busy office is
# 9 KB; a message with a big attachment a few MB) and small enough to read in a blink.
MAX_INPUT_BYTES = 64 * 2**20
STDIN = "-"


class WriteError(Exception):
    """Writing an output failed after the checks (disk full, device gone): exit code 1."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: cannot write: {reason}")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def read_bytes(path: str | Path, stdin: BinaryIO | None = None) -> bytes:
    """The bytes of ``path`` (``-``: standard input), at most :data:`MAX_INPUT_BYTES`;
    InputError for a missing file, a folder, a FIFO or device, or a file too large."""
    name = str(path)
    limit = MAX_INPUT_BYTES
    too_large = f"is larger than {_mib(limit)}, the limit for an input file"
    if name == STDIN:
        source = stdin if stdin is not None else sys.stdin.buffer
        data = source.read(limit + 1)
        if len(data) > limit:
            raise InputError([Problem("<stdin>", "", too_large)])
        return data
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang; a regular file ignores it.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError([Problem(name, "", "no such file")]) from None
    except IsADirectoryError:
        raise InputError([Problem(name, "", "is a folder, not a file")]) from None
    except OSError as exc:
        raise InputError([Problem(name, "", f"cannot read it: {exc.strerror}")]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError([Problem(name, "", "is a folder, not a file")])
        raise InputError(
            [
                Problem(
                    name,
                    "",
                    "is not a regular file (a pipe or a device); save it to a file,"
                    " or pass it on standard input as -",
                )
            ]
        )
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise InputError([Problem(name, "", f"is {_mib(info.st_size)}: {too_large}")])
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InputError([Problem(name, "", f"cannot read it: {exc.strerror}")]) from None
    if len(data) > limit:  # it grew while we read it
        raise InputError([Problem(name, "", too_large)])
    return data


def read_text(path: str | Path, stdin: BinaryIO | None = None) -> str:
    """The text of ``path`` as UTF-8; a byte that is not UTF-8 is an error naming its
    line, so that a student finds it."""
    data = read_bytes(path, stdin)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        name = "<stdin>" if str(path) == STDIN else str(path)
        raise InputError(
            [Problem(name, "", f"byte {data[exc.start]:#04x} is not UTF-8 text", line)]
        ) from None


def _probe(folder: Path) -> str | None:
    """Why nothing can be written in ``folder``, or None: a real file is made and removed
    (``os.access`` says yes to root on a read-only file system)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def out_dir(path: str | Path, option: str) -> Path:
    """A folder to write into, made if missing; InputError (exit 2) if it cannot be."""
    name = str(path)
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError([Problem(name, option, "exists and is not a folder")])
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError([Problem(name, option, f"cannot create it: {exc.strerror}")]) from None
    reason = _probe(folder)
    if reason is not None:
        raise InputError([Problem(name, option, f"cannot write in it: {reason}")])
    return folder


def out_file(path: str | Path, option: str) -> Path:
    """A file to write: its folder must exist and be writable, and the name must not be
    a folder; InputError (exit 2) otherwise. A device such as /dev/null is allowed."""
    name = str(path)
    target = Path(path)
    if name in ("", STDIN):
        raise InputError([Problem(name or "''", option, "give a file name")])
    if target.is_dir():
        raise InputError([Problem(name, option, "is a folder; give a file name")])
    parent = target.parent
    if not parent.is_dir():
        raise InputError([Problem(name, option, f"the folder {str(parent)!r} does not exist")])
    if target.exists():
        if target.is_file() and not os.access(target, os.W_OK):
            raise InputError([Problem(name, option, "cannot write it: Permission denied")])
    else:
        reason = _probe(parent)
        if reason is not None:
            raise InputError([Problem(name, option, f"cannot write in its folder: {reason}")])
    return target


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data``; WriteError (exit 1) on an I/O failure."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def unique_name(name: str, taken: set[str], limit: int = 120) -> str:
    """A file name made of safe characters, at most ``limit`` long, not in ``taken``
    (compared without case, as on macOS and Windows): ``m/1`` and ``m?1`` both become
    ``m_1``, so the second gets ``m_1-2``. The name is added to ``taken``."""
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    suffix = "".join(c for c in suffix if c.isalnum())[:10]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.@") else "_" for c in stem)
    safe = safe.lstrip(".") or "_"
    room = limit - len(suffix) - len(dot) - 8  # room for "-99999"
    safe = safe[:room]
    candidate, n = safe, 1
    while f"{candidate}{dot}{suffix}".lower() in taken:
        n += 1
        candidate = f"{safe}-{n}"
    taken.add(f"{candidate}{dot}{suffix}".lower())
    return f"{candidate}{dot}{suffix}"
