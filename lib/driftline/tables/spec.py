"""Configuration slice of the table layer (``storage:`` in the config)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from driftline.spec import IDENTIFIER, Frozen, Identifier

_THRIFT = re.compile(r"^thrift://[A-Za-z0-9.\-]+:\d{1,5}$")


class CatalogConfig(Frozen):
    """``storage.catalog``: register the workspace's output tables (and dashboard views) in a Spark catalog.

    ``metastore``: ``derby`` (embedded Derby in ``<workspace>/metastore_db``, one process at a time),
    a thrift metastore URI list (``thrift://host:9083[,thrift://...]``, Spark's ``hive.metastore.uris``),
    or ``unity`` (the cluster's catalog, e.g. Databricks Unity Catalog: ``database`` is then
    ``<catalog>.<schema>``). ``enabled`` makes every job register the tables after its writes;
    ``driftline catalog sync`` and ``driftline sql-server`` register them whatever it says.
    See ``driftline.tables.catalog`` and docs/bi.md.
    """

    enabled: bool = False
    database: str = "driftline"
    metastore: str = "derby"
    views: bool = True

    @model_validator(mode="after")
    def _check(self) -> CatalogConfig:
        if self.metastore not in ("derby", "unity") and not all(
            _THRIFT.match(uri) for uri in self.metastore.split(",")
        ):
            raise ValueError(
                "metastore: expected derby, unity or thrift://host:port[,thrift://host:port...], "
                f"found {self.metastore!r}"
            )
        parts = self.database.split(".")
        if len(parts) > (2 if self.metastore == "unity" else 1) or not all(IDENTIFIER.fullmatch(p) for p in parts):
            shape = "<schema> or <catalog>.<schema>" if self.metastore == "unity" else "an identifier"
            raise ValueError(f"database: expected {shape}, found {self.database!r}")
        return self


class StorageConfig(Frozen):
    """Where Delta tables live and how they are written."""

    backend: Literal["auto", "embedded", "native"] = "auto"
    root: str | None = None
    tables: dict[Identifier, str] = Field(default_factory=dict)
    allow_new_columns: bool = False
    orphan_retention_hours: float = Field(24.0, ge=0)
    commit_retries: int = Field(3, ge=0, le=20)
    # per-file statistics delta-spark keeps in the tables the native backend creates: lineage = run_id only
    file_stats: Literal["lineage", "all"] = "lineage"
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
