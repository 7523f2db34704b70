"""Orphan cleanup: data files no version in the log refers to (a write killed before its commit)."""

from __future__ import annotations

import json
import logging
import time

import pyarrow.fs as pafs
from deltalake import DeltaTable

from driftline.tables.embedded import deltalog
from driftline.tables.embedded.layout import is_stage_folder
from driftline.tables.names import Location

log = logging.getLogger(__name__)


def cleanup_orphans(loc: Location, retention_hours: float, dry_run: bool) -> list[str]:
    """Delete files no version in the log refers to, older than the retention (in-flight writes)."""
    table = deltalog.require(loc)
    fs, base = pafs.FileSystem.from_uri(loc.uri)
    referenced = _all_referenced(fs, base, table)
    cutoff = time.time() - retention_hours * 3600
    removed: list[str] = []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        rel = info.path[len(base) + 1 :]
        if info.type != pafs.FileType.File or rel.startswith(("_delta_log/", "_")):
            continue
        name = rel.rsplit("/", 1)[-1]
        owner = rel
        if name.startswith(".") and name.endswith(".crc"):  # Hadoop checksum of a data file
            owner = rel[: -len(name)] + name[1:-4]
        if owner in referenced:
            continue
        if info.mtime is not None and info.mtime.timestamp() > cutoff:
            continue
        removed.append(rel)
        if not dry_run:
            fs.delete_file(info.path)
    if not dry_run:
        _remove_empty_stage_dirs(fs, base, cutoff)
    log.info(
        "table %s: %s %d orphan files older than %.1f h",
        loc.name, "would remove" if dry_run else "removed", len(removed), retention_hours,
    )
    return sorted(removed)


def _all_referenced(fs: pafs.FileSystem, base: str, table: DeltaTable) -> set[str]:
    """Every data file any retained version refers to (commit files plus the current snapshot)."""
    from urllib.parse import unquote

    referenced = {unquote(a["path"]) for a in deltalog.add_rows(table)}
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/_delta_log", recursive=False)):
        if info.type != pafs.FileType.File or not info.path.endswith(".json"):
            continue
        with fs.open_input_stream(info.path) as handle:
            for line in handle.read().decode("utf-8").splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                for kind in ("add", "remove"):
                    if kind in action:
                        referenced.add(unquote(action[kind]["path"]))
    return referenced


def _remove_empty_stage_dirs(fs: pafs.FileSystem, base: str, cutoff: float) -> None:
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=False)):
        if info.type != pafs.FileType.Directory or not is_stage_folder(info.base_name):
            continue
        if info.mtime is not None and info.mtime.timestamp() > cutoff:
            continue  # maybe a write in flight that has not produced files yet
        inner = fs.get_file_info(pafs.FileSelector(info.path, recursive=True))
        if all(i.type == pafs.FileType.Directory for i in inner):
            fs.delete_dir(info.path)
