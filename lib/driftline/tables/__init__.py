"""Every Delta read and write: names → locations, partition overwrite, idempotent commits, history."""

from driftline.tables.commit import CommitInfo, WriteResult
from driftline.tables.names import validate_table_name
from driftline.tables.spec import StorageConfig
from driftline.tables.store import TableStore, open_store

__all__ = ["CommitInfo", "StorageConfig", "TableStore", "WriteResult", "open_store", "validate_table_name"]
