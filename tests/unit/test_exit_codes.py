"""One exit code per kind of failure, the same in every job, and the README's exit-code table says so.

Every expected failure is a `DriftlineError` subclass; its kind is the nearest of the kinds in
`driftline.errors` (config, usage, environment, input contract: 2; quality gate: 3; everything else: 1).
The same failure raises the same kind in every job (e.g. a features table without a model column is an
`InputContractError` in score and monitor: tests/unit/scoring, tests/unit/monitoring/test_schema_changes.py).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import driftline
from driftline import errors

README = Path(__file__).resolve().parents[2] / "README.md"
KINDS = {errors.DriftlineError: 1, errors.ConfigError: 2, errors.UsageError: 2, errors.EnvironmentProblem: 2,
         errors.InputContractError: 2, errors.QualityGateError: 3}


def every_error_class() -> list[type[errors.DriftlineError]]:
    found = set()
    for mod in pkgutil.walk_packages(driftline.__path__, "driftline."):
        if mod.name.startswith("driftline.jvm.src"):
            continue
        module = importlib.import_module(mod.name)
        found |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, errors.DriftlineError) and c.__module__ == mod.name}
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__name__}")


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_exits_with_its_kinds_code(cls: type[errors.DriftlineError]) -> None:
    kind = next(k for k in cls.__mro__ if k in KINDS)
    if cls.__name__ == "StepFailed":  # the pipeline exits with the failing step's own code
        assert cls("x", 3).exit_code == 3
        return
    assert cls.exit_code == KINDS[kind], f"{cls.__name__} is a {kind.__name__}: exit {KINDS[kind]}"


def test_readme_lists_each_kinds_exit_code() -> None:
    table = {name: int(code) for code, name in
             re.findall(r"^\| \*\*(\d)\*\* \| `(\w+)`", README.read_text(), flags=re.M)}
    assert table == {k.__name__: code for k, code in KINDS.items()}, (
        "README: expected an exit-code table with one row per kind, like | **2** | `ConfigError` | ...")

