"""Mergeable uniform samples: bottom-k by a seeded hash of the entity key.

Each row gets a 64-bit priority from its key and the date (`priority_column`, computed by Spark); a
sample keeps the rows with the smallest priorities. The k smallest of any union of samples (a task's,
a date's, a window's dates) are the k smallest of the union of their rows, so samples merge like the
profiles do and stay uniform. Stored as Arrow IPC streams with the priority column (`PRIORITY`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import Column

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


def priority_column(key: str, salt: str) -> Column:
    """Each row's sampling priority as a Spark column: ``xxhash64`` of its key (as a string) and ``salt`` (the
    date: another date orders the same keys differently) — deterministic across runs, uniform over 64 bits
    (read as unsigned with `as_priorities`)."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.col(key).cast("string"), F.lit(salt)).alias(PRIORITY)


def as_priorities(column: Any) -> np.ndarray:
    """The Arrow int64 column of `priority_column` as unsigned priorities."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64).view(np.uint64)
