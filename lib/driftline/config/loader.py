"""Layered configuration: ``conf/base.yaml`` → ``conf/models/<name>.yaml`` → ``--set`` overrides.

Mappings merge key by key; any other value (scalars, lists) is replaced by the later layer. Every
leaf remembers which layer set it, so a validation error names the file (or the ``--set`` flag)
and the dotted key path, e.g. ``conf/models/churn.yaml: monitoring.drift.psi_treshold: unknown
key``. Errors are raised as `ConfigError` (exit 2) before any Spark work starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from driftline.config.schema import DriftlineConfig, WorkspaceConfig
from driftline.errors import ConfigError
from driftline.spec import IDENTIFIER, mask_userinfo

KeyPath = tuple[str | int, ...]

# Keys of the resolved config that say where/how a job runs, not what it computes. They are
# left out of the config hash so the same model gives the same hash locally and on a cluster, and
# adding an alert rule or a channel (`alerts`: who is told, not what is computed) neither makes the
# pipeline redo its completed dates nor the train job retrain.
ENVIRONMENT_KEYS = ("workspace", "runtime", "storage", "mlflow", "logging", "alerts")

_SECRET_KEY = re.compile(r"(secret|password|passwd|token|credential|access[._-]?key|private)", re.I)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from and its hash."""

    config: DriftlineConfig
    files: tuple[str, ...]
    overrides: tuple[str, ...]
    config_hash: str = field(default="")
    conf_dir: str = field(default="")  # the --conf-dir it was read from (jobs that start other jobs forward it)

    def redacted(self) -> dict[str, Any]:
        """The resolved config as plain data with secrets masked, for logs."""
        return redact(self.config.model_dump(mode="json"))

    def redacted_overrides(self) -> tuple[str, ...]:
        """The ``--set KEY=VALUE`` overrides with secrets masked (as `redacted`), for logs."""
        out = []
        for item in self.overrides:
            key, sep, raw = item.partition("=")
            if not sep:
                out.append(item)
                continue
            _, value = parse_override(item)
            masked = redact(value, key)
            # a structured value (a mapping such as runtime.spark_conf={...}) is shown as masked JSON
            out.append(f"{key}={masked if isinstance(masked, str) else json.dumps(masked, sort_keys=True)}"
                       if masked != value else item)
        return tuple(out)


# --------------------------------------------------------------------------- public entry point


def load_config(
    model: str,
    conf_dir: str | os.PathLike[str] = "conf",
    overrides: Iterable[str] = (),
    workspace: str | None = None,
) -> LoadedConfig:
    """Read, merge and validate the configuration of ``model``; raise `ConfigError` on any problem."""
    if not IDENTIFIER.fullmatch(model or ""):
        raise ConfigError(
            f"--model: expected a model name of letters, digits and '_', found {model!r}"
        )
    conf = Path(conf_dir)
    if not conf.is_dir():
        raise ConfigError(f"--conf-dir: expected a folder with base.yaml and models/, found no folder {_show(conf)}")

    merged: dict[str, Any] = {}
    origin: dict[KeyPath, str] = {}
    files: list[str] = []

    base = conf / "base.yaml"
    if base.is_file():
        _merge(merged, origin, _read_yaml(base), _show(base))
        files.append(_show(base))

    model_file = conf / "models" / f"{model}.yaml"
    if not model_file.is_file():
        available = sorted(p.stem for p in (conf / "models").glob("*.yaml"))
        raise ConfigError(
            f"{_show(model_file)}: model file not found "
            f"(models in {_show(conf / 'models')}: {', '.join(available) or 'none'})"
        )
    model_data = _read_yaml(model_file)
    declared = model_data.get("name", model)
    if declared != model:
        raise ConfigError(f"{_show(model_file)}: name: expected {model!r} (the file name), found {declared!r}")
    model_data = {**model_data, "name": model}
    _merge(merged, origin, model_data, _show(model_file))
    files.append(_show(model_file))

    override_list = list(overrides)
    for item in override_list:
        path, value = parse_override(item)
        _set_path(merged, origin, path, value, f"--set {redact(item)}")  # errors never echo URI credentials
    if workspace is not None:
        _set_path(merged, origin, ("workspace",), workspace, "--workspace")

    try:
        cfg = DriftlineConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, _show(model_file))) from None

    return LoadedConfig(cfg, tuple(files), tuple(override_list), config_hash(cfg), str(conf))


def load_workspace_config(conf_dir: str | os.PathLike[str] = "conf", workspace: str | None = None
                          ) -> WorkspaceConfig:
    """The workspace keys of ``base.yaml`` (runtime, storage, MLflow, logging, workspace) without a model, for
    commands that act on a whole workspace; model keys in base.yaml are left to the models. `ConfigError`."""
    conf = Path(conf_dir)
    if not conf.is_dir():
        raise ConfigError(f"--conf-dir: expected a folder with base.yaml and models/, found no folder {_show(conf)}")
    merged: dict[str, Any] = {}
    origin: dict[KeyPath, str] = {}
    base = conf / "base.yaml"
    if base.is_file():
        layer = _read_yaml(base)
        _merge(merged, origin, {k: v for k, v in layer.items() if k in WorkspaceConfig.model_fields}, _show(base))
    if workspace is not None:
        _set_path(merged, origin, ("workspace",), workspace, "--workspace")
    try:
        return WorkspaceConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, _show(base))) from None


def config_hash(cfg: DriftlineConfig) -> str:
    """SHA-256 (first 16 hex digits) of the model's resolved keys, environment keys excluded."""
    data = cfg.model_dump(mode="json", exclude=set(ENVIRONMENT_KEYS))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_override(item: str) -> tuple[KeyPath, Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-typed value (``0.3`` → float, ``true`` → bool)."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set: expected KEY.PATH=VALUE (e.g. monitoring.drift.psi_threshold=0.3), found {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    path: KeyPath = tuple(int(p) if p.isdigit() else p for p in parts)
    return path, value


def redact(data: Any, key: str = "") -> Any:
    """Mask values whose key looks secret and credentials embedded in URIs."""
    if isinstance(data, Mapping):
        return {k: redact(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v, key) for v in data]
    if isinstance(data, str):
        if key and _SECRET_KEY.search(key):
            return "***"
        return mask_userinfo(data)
    return data


# --------------------------------------------------------------------------- internals


def _show(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{_show(path)}: invalid YAML{where}: {problem}") from None
    except OSError as exc:
        raise ConfigError(f"{_show(path)}: cannot read: {exc.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{_show(path)}: expected a mapping of keys at the top, found {type(data).__name__}")
    return data


def _merge(into: dict[str, Any], origin: dict[KeyPath, str], layer: Mapping[str, Any], source: str,
           prefix: KeyPath = ()) -> None:
    for key, value in layer.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], origin, value, source, path)
        else:
            into[key] = _plain(value)
            _forget_below(origin, path)
            _record(origin, path, value, source)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _record(origin: dict[KeyPath, str], path: KeyPath, value: Any, source: str) -> None:
    origin[path] = source
    if isinstance(value, Mapping):
        for k, v in value.items():
            _record(origin, (*path, k), v, source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _record(origin, (*path, i), v, source)


def _forget_below(origin: dict[KeyPath, str], path: KeyPath) -> None:
    for known in [p for p in origin if len(p) > len(path) and p[: len(path)] == path]:
        del origin[known]


def _set_path(root: dict[str, Any], origin: dict[KeyPath, str], path: KeyPath, value: Any, source: str) -> None:
    node: Any = root
    for depth, key in enumerate(path[:-1]):
        where = ".".join(map(str, path[: depth + 1]))
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                raise ConfigError(f"{source}: {where}: expected a list index below {len(node)}, found {key!r}")
            node = node[key]
            continue
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, (dict, list)):
            raise ConfigError(f"{source}: {where}: is a {type(child).__name__} value, cannot set keys below it")
        node = child
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise ConfigError(f"{source}: {'.'.join(map(str, path))}: expected a list index below {len(node)}")
        node[last] = value
    else:
        node[last] = value
    _forget_below(origin, path)
    _record(origin, path, value, source)


def _describe(exc: ValidationError, origin: dict[KeyPath, str], model_file: str) -> str:
    """One line naming file, key path and what was expected/found for each error (first five)."""
    parts = []
    errors = exc.errors()
    for err in errors[:5]:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        source = _source_of(loc, origin, model_file)
        key = ".".join(map(str, loc)) or "(top level)"
        if err["type"] == "extra_forbidden":
            detail = "unknown key"
        elif err["type"] == "missing":
            detail = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            detail = f"{msg[0].lower()}{msg[1:]}"
            if "found" not in msg:  # our own validators already say what they found
                detail += f", found {err.get('input')!r}"
        parts.append(f"{source}: {key}: {detail}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _source_of(loc: KeyPath, origin: dict[KeyPath, str], model_file: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origin:
            return origin[loc[:n]]
    return model_file
