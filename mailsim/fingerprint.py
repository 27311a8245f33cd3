"""A run's fingerprint: one hash per table, to tell two runs apart without reading them.

Two runs of the same scenario and seed must have the same fingerprint, whatever shortcut
the engine took (the exactness gate of ``make exact`` compares runs with the fast paths
on and off); a changed timing, outcome or step changes it. Each table is hashed row by
row with pandas (every column, its values and order; floats by their bits, so that a
difference in the last place is a difference), then the rows' hashes together.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from mailsim.result import Result

TABLES = ("events", "hops", "messages")


def fingerprint(result: Result) -> dict[str, str]:
    """SHA-256 of each table the run kept (events and hops only at full detail, with the
    texts each step put on the wire), and of its end time, as hex digests."""
    kept = {"full": TABLES, "hops": ("hops", "messages"), "outcomes": ("messages",)}
    out = {name: table_hash(getattr(result, name)) for name in kept[result.recorder.detail]}
    if result.recorder.detail == "full":  # the texts as sent, secrets and all: the captures'
        out["wire"] = hashlib.sha256("\0".join(result.recorder.wire_texts()).encode()).hexdigest()
    out["end_time"] = hashlib.sha256(struct.pack("<d", result.end_time)).hexdigest()
    return out


def table_hash(table: pd.DataFrame) -> str:
    """The hash of a table: its columns' names and dtypes, then every row."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in table.dtypes.items()]).encode())
    plain = table.copy()
    for column in plain.columns:  # categories hash by their values, not their codes
        if isinstance(plain[column].dtype, pd.CategoricalDtype):
            plain[column] = plain[column].astype(object)
    digest.update(pd.util.hash_pandas_object(plain, index=False).to_numpy().tobytes())
    return digest.hexdigest()
