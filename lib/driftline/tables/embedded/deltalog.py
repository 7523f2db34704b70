"""The Delta log through delta-rs: open a snapshot, refuse what this backend cannot read, history."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from pyspark.sql.types import StructType

from driftline.errors import TableError
from driftline.tables import schema as policy
from driftline.tables.backend import Snapshot, error_line
from driftline.tables.commit import history_entry, parse_user_metadata
from driftline.tables.names import Location

log = logging.getLogger(__name__)

# Reader features this backend honours; anything else (deletionVectors, columnMapping, ...) is refused.
READABLE_FEATURES = {"timestampNtz"}
# How far back a write looks for its own commit (delta-rs does not return the version it made).
OWN_COMMIT_LOOKBACK = 100


def load(loc: Location, version: int | None = None) -> DeltaTable | None:
    """The table's snapshot (latest or ``version``); None when no Delta table is there."""
    try:
        return DeltaTable(loc.uri, version=version)
    except TableNotFoundError:
        return None
    except DeltaError as exc:
        if version is not None and DeltaTable.is_deltatable(loc.uri):
            raise TableError(f"table {loc.name}: version {version} not available: {error_line(exc)}") from None
        if DeltaTable.is_deltatable(loc.uri):
            raise TableError(f"table {loc.name}: cannot open the Delta log: {error_line(exc)}") from None
        return None


def require(loc: Location, version: int | None = None) -> DeltaTable:
    """`load`, with `TableError` when the table does not exist."""
    table = load(loc, version)
    if table is None:
        raise TableError(f"table {loc.name} does not exist at {loc.uri}")
    return table


def check_supported(loc: Location, table: DeltaTable) -> None:
    """Refuse tables whose reader features this backend would silently misread."""
    proto = table.protocol()
    features = set(proto.reader_features or [])
    mapping = (table.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    if proto.min_reader_version == 2 or proto.min_reader_version > 3 or features - READABLE_FEATURES or (
        mapping not in (None, "none")
    ):
        raise TableError(
            f"table {loc.name}: needs reader version {proto.min_reader_version} with features "
            f"{sorted(features)} (column mapping: {mapping}); the embedded backend reads only "
            f"reader version 1 or 3 with {sorted(READABLE_FEATURES)}; use storage.backend: native"
        )


def snapshot(loc: Location, table: DeltaTable, app_id: str | None = None) -> Snapshot:
    """What the pre-flight needs from a loaded snapshot; `TableError` for a table this backend cannot read."""
    check_supported(loc, table)
    return Snapshot(
        table_schema(table),
        tuple(table.metadata().partition_columns),
        table.transaction_version(app_id) if app_id is not None else None,
    )


def table_schema(table: DeltaTable) -> StructType:
    """The snapshot's schema as a Spark StructType (partition columns included)."""
    return policy.from_delta_json(table.schema().to_json())


def add_rows(table: DeltaTable) -> list[dict[str, Any]]:
    """The snapshot's add actions, flattened (``path``, ``size_bytes``, ``partition.<col>`` typed, ...)."""
    import pyarrow as pa

    return pa.table(table.get_add_actions(flatten=True)).to_pylist()


def history(loc: Location) -> list[dict[str, Any]]:
    """`TableStore.history` rows, newest first."""
    out = []
    for item in require(loc).history():
        stamp = dt.datetime.fromtimestamp(item["timestamp"] / 1000, tz=dt.UTC)
        out.append(history_entry(item["version"], stamp, item.get("operation"), item.get("userMetadata")))
    return sorted(out, key=lambda e: e["version"], reverse=True)


def landed(loc: Location, app_id: str, txn_version: int, write_id: str) -> bool:
    """After an unexpected error: is the commit of this write (app transaction and write id) in the log?"""
    try:
        table = load(loc)
        if table is None or table.transaction_version(app_id) != txn_version:
            return False
        return version_of(loc, write_id) is not None
    except Exception:  # noqa: BLE001 - if the log cannot be read, say no: the error is reported
        return False


def version_of(loc: Location, write_id: str) -> int | None:
    """Version whose commit carries this write's id (delta-rs does not return it)."""
    for item in require(loc).history(limit=OWN_COMMIT_LOOKBACK):
        if parse_user_metadata(item.get("userMetadata")).get("write_id") == write_id:
            return int(item["version"])
    log.warning("table %s: committed write %s not among the last %d versions", loc.name, write_id, OWN_COMMIT_LOOKBACK)
    return None
