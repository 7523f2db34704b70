"""Table names → storage locations (R20: a name can never point outside the configured storage)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import TableError
from driftline.spec import IDENTIFIER
from driftline.tables.spec import StorageConfig

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Hadoop spells object stores differently from delta-rs / pyarrow.
_DELTA_SCHEMES = {"s3a": "s3", "s3n": "s3", "abfss": "abfss", "gs": "gs", "file": "file"}


def validate_table_name(name: object) -> str:
    """Return ``name`` when it is a plain identifier; `TableError` for paths, URIs, empty or odd names."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise TableError(
            f"invalid table name {name!r}: expected an identifier (letters, digits, '_', not starting "
            "with a digit, at most 128 characters); paths and URIs are not table names"
        )
    return name


@dataclass(frozen=True)
class Location:
    """Where one table lives, spelled for each client that touches it."""

    name: str
    uri: str  # what users see and delta-rs opens: an absolute local path or a URI
    spark_uri: str  # what Spark/Hadoop opens
    local_path: Path | None  # set for the local file system

    def child(self, rel: str) -> str:
        """Spark URI of a path relative to the table root."""
        return self.spark_uri.rstrip("/") + "/" + rel


def _is_uri(text: str) -> bool:
    return bool(_URI.match(text)) and not re.match(r"^[A-Za-z]:[\\/]", text)  # not a Windows drive


def resolve_location(name: str, cfg: StorageConfig, workspace: str | os.PathLike[str]) -> Location:
    """Validated table name → `Location`: ``storage.tables[name]`` if mapped, else ``<root>/<name>``.

    ``root`` defaults to ``<workspace>/tables``; relative local paths are taken relative to the
    workspace. Only the configuration decides where a table may live, never the name itself.
    """
    validate_table_name(name)
    mapped = cfg.tables.get(name)
    if mapped is not None:
        target = mapped
    else:
        root = _root(cfg)
        target = root.rstrip("/") + "/" + name if _is_uri(root) else str(Path(root) / name)
    return _location(name, target, workspace)


def root_location(cfg: StorageConfig, workspace: str | os.PathLike[str]) -> Location:
    """Where the tables without an explicit ``storage.tables`` location live (``storage.root``)."""
    return _location("<tables root>", _root(cfg), workspace)


def _root(cfg: StorageConfig) -> str:
    return cfg.root if cfg.root else "tables"  # relative: resolved against the workspace


def _location(name: str, target: str, workspace: str | os.PathLike[str]) -> Location:
    if _is_uri(target):
        scheme, rest = target.split(":", 1)
        scheme = scheme.lower()
        if scheme == "file":
            path = Path(re.sub(r"^//(localhost)?", "", rest)).resolve()
            return Location(name, str(path), path.as_uri().replace("file:///", "file:/"), path)
        delta_scheme = _DELTA_SCHEMES.get(scheme, scheme)
        return Location(name, f"{delta_scheme}:{rest}".rstrip("/"), target.rstrip("/"), None)
    path = Path(target)
    if not path.is_absolute():
        path = Path(workspace) / path
    path = path.resolve()
    return Location(name, str(path), "file:" + str(path), path)
