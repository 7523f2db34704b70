"""What every commit carries: who wrote it, for which logical key, and the idempotency key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.errors import TableError

METADATA_KEYS = ("job", "run_id", "date", "code_version", "config_hash", "idempotency_key", "txn_version")


@dataclass(frozen=True)
class CommitInfo:
    """Provenance of one job write; ``key`` is the logical date or partition key (e.g. "2026-01-05")."""

    job: str
    run_id: str
    key: str
    code_version: str
    config_hash: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def app_id(self, table: str) -> str:
        """Delta app transaction id: one idempotency key per (job, table, key), never a counter (R2)."""
        for label, value in (("job", self.job), ("key", self.key), ("run_id", self.run_id)):
            if not isinstance(value, str) or not value or "\n" in value:
                raise TableError(f"CommitInfo.{label} must be a non-empty single-line string, found {value!r}")
        return f"driftline/{self.job}/{table}/{self.key}"

    def user_metadata(self, table: str, txn_version: int, write_id: str) -> str:
        """JSON stored as the commit's ``userMetadata`` (the same field delta-spark's history shows)."""
        return json.dumps(
            {
                "job": self.job,
                "run_id": self.run_id,
                "date": self.key,
                "code_version": self.code_version,
                "config_hash": self.config_hash,
                "idempotency_key": self.app_id(table),
                "txn_version": txn_version,
                "write_id": write_id,
                "extra": dict(self.extra),
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one write: ``version`` is None when the write was skipped (nothing committed)."""

    table: str
    version: int | None
    rows: int
    files: int
    replaced: bool
    skipped: bool


def parse_user_metadata(raw: Any) -> dict[str, Any]:
    """Our fields from a commit's ``userMetadata`` (empty for commits written by someone else)."""
    if not isinstance(raw, str) or not raw.startswith("{"):
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def history_entry(version: int, timestamp: Any, operation: Any, user_metadata: Any) -> dict[str, Any]:
    """One `TableStore.history` row: version, timestamp, operation and our metadata keys (None if absent)."""
    meta = parse_user_metadata(user_metadata)
    entry: dict[str, Any] = {"version": version, "timestamp": timestamp, "operation": operation}
    for key in METADATA_KEYS:
        entry[key] = meta.get(key)
    entry["extra"] = meta.get("extra") or {}
    return entry
