"""Mergeable uniform samples: bottom-k by a seeded hash of the entity key.

Each row gets a 64-bit priority from its key and the date (`priorities`); a sample keeps the rows with the
smallest priorities. The k smallest of any union of samples (a task's, a date's, a window's dates) are the k
smallest of the union of their rows, so samples merge like the profiles do and stay uniform. Stored as Arrow
IPC streams with the priority column (`PRIORITY`). Pure (numpy, pandas, pyarrow).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np

PRIORITY = "__priority__"  # the sample's column holding each row's priority (uint64)
_FULL = 2 ** 64


def sample_threshold(rows: int, limit: int) -> int:
    """The priority bound that keeps about 1.2 · ``limit`` of ``rows`` rows (every row when that is all of them)."""
    if limit <= 0 or rows <= 0:
        return 0
    share = 1.2 * limit / rows
    return _FULL if share >= 1 else max(1, int(share * _FULL))


def bottom_rows(parts: Iterable[bytes], limit: int) -> Any:
    """The ``limit`` rows of the Arrow IPC ``parts`` with the smallest priorities (a pyarrow Table, the priority
    column kept: merging samples again stays uniform), None when there are none."""
    import pyarrow as pa

    tables = [pa.ipc.open_stream(p).read_all() for p in parts]
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="permissive")
    if table.num_rows > limit:
        order = np.argsort(table.column(PRIORITY).to_numpy(), kind="stable")[:limit]
        table = table.take(pa.array(np.sort(order)))
    return table


def to_ipc(table: Any) -> bytes:
    """A pyarrow Table as an Arrow IPC stream (how samples are stored)."""
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def priorities(keys: Any, salt: str) -> np.ndarray:
    """Each row's sampling priority: a 64-bit hash of its key mixed with ``salt`` (deterministic across
    processes and runs; another date orders the same keys differently)."""
    import hashlib

    import pandas as pd

    h = pd.util.hash_array(keys.to_numpy(zero_copy_only=False), hash_key="driftline-sample")
    h ^= np.uint64(int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little"))
    h ^= h >> np.uint64(31)            # one splitmix64 finalizer round: the xor-ed salt reorders the keys
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    return h
