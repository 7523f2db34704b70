"""Small tables read on the driver with delta-rs, without Spark (`DriverTables`): for commands that must answer
in a second or two (``driftline status``), on tables either backend wrote.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.tables.commit import parse_user_metadata
from driftline.tables.contract_steps import outdated
from driftline.tables.embedded.deltalog import table_schema
from driftline.tables.names import resolve_location

if TYPE_CHECKING:
    from driftline.tables.spec import StorageConfig

HISTORY_LOOKBACK = 50  # commits looked at for a table's last driftline write


class Row(dict):  # type: ignore[type-arg]
    """A table row whose columns an older table contract lacks read as None (a workspace before `migrate`)."""

    def __missing__(self, key: str) -> None:
        return None


@dataclass(frozen=True)
class DriverTables:
    """The workspace's tables, read with delta-rs (no JVM): rows as dicts, [] for a table not written yet."""

    storage: StorageConfig
    workspace: str

    def _table(self, name: str, current: bool = False) -> Any:
        """The table (None when absent); ``current``: refuse one an earlier release wrote, whose rows have other
        columns (say `migrate`, as every job)."""
        from deltalake import DeltaTable

        uri = resolve_location(name, self.storage, self.workspace).uri
        if not DeltaTable.is_deltatable(uri):
            return None
        table = DeltaTable(uri)
        error = outdated(name, table_schema(table)) if current else None
        if error is not None:
            raise error
        return table

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(resolve_location(name, self.storage, self.workspace).uri))

    def rows(self, name: str, **equal: Any) -> list[dict[str, Any]]:
        """Rows whose columns equal ``equal`` (partition columns: pruned by the log)."""
        table = self._table(name, current=True)
        if table is None:
            return []
        import pyarrow.dataset as ds

        where = None
        for column, value in equal.items():   # typed: a date compares with a date column, as Spark would
            term = ds.field(column) == value
            where = term if where is None else where & term
        return [Row(r) for r in table.to_pyarrow_table(filters=where).to_pylist()]

    def last_write(self, name: str) -> dict[str, Any] | None:
        """The newest commit a driftline job made to the table: job, logical date, run id, time (UTC)."""
        table = self._table(name)
        if table is None:
            return None
        for entry in table.history(limit=HISTORY_LOOKBACK):
            meta = parse_user_metadata(entry.get("userMetadata"))
            if meta.get("job"):
                stamp = dt.datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=dt.UTC)
                return {"job": meta["job"], "date": meta.get("date"), "run_id": meta.get("run_id"),
                        "version": entry.get("version"), "committed_at": stamp}
        return None
