"""Shared pieces of every config slice (each package owns its own `spec.py`; `driftline.config` assembles them):
the frozen model base, identifiers, storage locations. Imports no driftline package."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

Identifier = Annotated[str, Field(pattern=IDENTIFIER.pattern)]

# Schemes both Delta backends open: Spark/Hadoop (s3a, abfss, gs, hdfs connectors) for the data
# files and delta-rs / pyarrow for the embedded backend's log and listings. ``s3`` is EMRFS on EMR
# (elsewhere Hadoop needs fs.s3.impl); ``dbfs:``/``wasbs:`` and web URLs are not storage roots.
STORAGE_SCHEMES = ("s3a", "s3", "abfss", "abfs", "gs", "hdfs", "file")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>.*)$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_AUTHORITY = re.compile(r"^//(?P<authority>[^/]*)(?P<path>/.*)?$")
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@]*)@")
_PLACEHOLDER = {"abfs": "container@account", "abfss": "container@account", "hdfs": "namenode"}


class Frozen(BaseModel):
    """Base of every config model: unknown keys forbidden, immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def is_uri(text: str) -> bool:
    """True for ``scheme:...`` (a URI), false for local paths, including ``C:\\...`` drive paths."""
    return bool(_SCHEME.match(text)) and not _WINDOWS_DRIVE.match(text)


_ANY_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


def mask_userinfo(text: str) -> str:
    """``text`` with the user info (possible credentials) of every ``scheme://user:password@host`` in it masked."""
    return _ANY_USERINFO.sub(r"\g<scheme>***@", text)


def _shown(value: str) -> str:
    """``value`` for an error message, user info (possible credentials) masked."""
    match = _USERINFO.match(value)
    if match is None or (match.group("scheme").lower().startswith("abfs") and ":" not in match.group("userinfo")):
        return repr(value)  # abfss://<container>@<account>: the container is not a secret
    return repr(match.group("scheme") + "***@" + value[match.end():])


def _single_line(value: str) -> None:
    if not value.strip():
        raise ValueError(f"expected a local path or a URI, found {_shown(value)}")
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"expected a path without surrounding spaces or control characters, found {_shown(value)}")


def check_storage_location(value: str) -> str:
    """A table root or table location: a local path, or a URI on a supported object store.

    Refused: other schemes (``http:``, ``dbfs:``, ``memory:`` ...), a URI without its bucket /
    container, credentials inside the URI, ``?``/``#`` parts and ``.``/``..`` segments in a URI.
    Table *names* are validated separately (identifiers only): this is about the configured root.
    """
    _single_line(value)
    match = _SCHEME.match(value)
    if match is None or _WINDOWS_DRIVE.match(value):
        return value  # a local path, relative ones are taken relative to the workspace
    scheme, rest = match.group("scheme").lower(), match.group("rest")
    if scheme not in STORAGE_SCHEMES:
        raise ValueError(
            f"expected a local path or a URI with scheme {', '.join(STORAGE_SCHEMES)}, found {_shown(value)}"
        )
    if "?" in value or "#" in value:
        raise ValueError(f"expected a URI without '?' or '#' parts, found {_shown(value)}")
    authority_match = _AUTHORITY.match(rest)
    if scheme == "file":
        path = (authority_match.group("path") or "") if authority_match else rest
        if authority_match and authority_match.group("authority") not in ("", "localhost"):
            raise ValueError(f"expected file:/absolute/path or file:///absolute/path, found {_shown(value)}")
        if not path.startswith("/"):
            raise ValueError(f"expected file:/absolute/path or file:///absolute/path, found {_shown(value)}")
    else:
        authority = authority_match.group("authority") if authority_match else None
        path = (authority_match.group("path") or "") if authority_match else rest
        if authority is None or (not authority and scheme != "hdfs"):
            raise ValueError(
                f"expected {scheme}://<{_PLACEHOLDER.get(scheme, 'bucket')}>/<path>, found {_shown(value)}"
            )
        userinfo, at, host = authority.rpartition("@")
        if at and (":" in userinfo or not scheme.startswith("abfs")):
            raise ValueError(
                "expected no credentials inside the URI (set them with runtime.spark_conf spark.hadoop.fs.* keys "
                f"and the environment, see docs/cluster.md), found user info in {_shown(value)}"
            )
        if scheme.startswith("abfs") and not (at and userinfo and host):
            raise ValueError(
                f"expected {scheme}://<container>@<account>.dfs.core.windows.net/<path>, found {_shown(value)}"
            )
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"expected a URI without '.' or '..' path segments, found {_shown(value)}")
    return value


def check_local_folder(value: str) -> str:
    """The workspace: a folder on the driver's file system, never a URI."""
    _single_line(value)
    if is_uri(value):
        raise ValueError(
            "expected a local folder on the driver (it holds the MLflow SQLite store, reports and Spark scratch "
            f"space; put tables on object storage with storage.root), found {_shown(value)}"
        )
    return value


StorageLocation = Annotated[str, AfterValidator(check_storage_location)]
LocalFolder = Annotated[str, AfterValidator(check_local_folder)]
