"""The job registry and `JobResult`: in-process steps, what a result holds, and the layering of the CLI."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from driftline import jobs
from driftline.config import load_config
from driftline.errors import QualityGateError
from driftline.jobs import JOBS, JobResult, JobSpec, TableWrite, retrain
from driftline.jobs.context import JobContext
from driftline.tables import WriteResult

LIB = Path(__file__).resolve().parents[2] / "lib" / "driftline"
D = dt.date(2026, 3, 1)


def test_no_library_module_imports_the_cli() -> None:
    """argv and subcommand parsers live in driftline.cli; nothing below it reaches up."""
    offenders = []
    for path in sorted(LIB.rglob("*.py")):
        if path.relative_to(LIB).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(LIB)}: {n}" for n in names if n == "driftline.cli"
                          or n.startswith("driftline.cli.")]
    assert offenders == []


class FakeStore:
    """The two write methods of a `TableStore` and its ``commits`` record, committing version 0, 1, ... of every
    table."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.commits: list[WriteResult] = []

    def _commit(self, name: str) -> WriteResult:
        self.versions[name] = self.versions.get(name, -1) + 1
        self.commits.append(WriteResult(name, self.versions[name], 3, 1, replaced=True, skipped=False))
        return self.commits[-1]

    def replace_partitions(self, name: str, df: object, *args: object, **kwargs: object) -> WriteResult:
        return self._commit(name)

    def append(self, name: str, df: object, commit: object) -> WriteResult:
        if name == "already":                      # this (job, table, key) appended before: nothing committed
            return WriteResult(name, None, 0, 0, replaced=False, skipped=True)
        return self._commit(name)


@pytest.fixture
def ctx(conf_dir: Path) -> JobContext:
    started = dt.datetime(2026, 3, 1, 5, tzinfo=dt.UTC)
    return JobContext(job="pipeline", loaded=load_config("churn", conf_dir), dates=(D,), spark=object(),  # type: ignore[arg-type]
                      run_id="pipeline-1", started_at=started, _store=FakeStore())  # type: ignore[arg-type]


def writes(*names: str):  # type: ignore[no-untyped-def]
    def run(ctx: JobContext) -> JobResult:
        for name in names:
            ctx.store.append(name, None, None)  # type: ignore[arg-type]
        return ctx.result(model_version="7" if "model" in names else None)
    return run


def test_a_result_holds_the_commits_of_its_run_and_its_steps(ctx: JobContext, monkeypatch) -> None:
    monkeypatch.setitem(JOBS, "a", JobSpec("a", "a", "-", "-", writes("t1", "already", "t2")))
    monkeypatch.setitem(JOBS, "b", JobSpec("b", "b", "-", "-", writes("t1", "model")))
    ctx.store.append("before", None, None)  # type: ignore[arg-type]
    a = jobs.run_step(ctx, "a", (D,))
    b = jobs.run_child(ctx, "b", (D,), force=True)
    assert (a.job, a.status, a.exit_code, a.model_version, a.error, a.steps) == ("a", "ok", 0, None, None, ())
    assert a.tables == (TableWrite("t1", 0, 3), TableWrite("t2", 0, 3))     # the skipped append is not a commit
    assert b.tables == (TableWrite("t1", 1, 3), TableWrite("model", 0, 3)) and b.model_version == "7"
    assert a.run_id.startswith("a-") and b.run_id.startswith("b-") and a.run_id != ctx.run_id
    whole = ctx.result(steps=(a, b))
    assert whole.tables == (TableWrite("before", 0, 3), *a.tables, *b.tables) and whole.steps == (a, b)
    assert whole.elapsed_seconds >= a.elapsed_seconds >= 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        whole.status = "failed"  # type: ignore[misc]


def test_a_child_shares_config_session_and_store(ctx: JobContext) -> None:
    child = ctx.child("score", (D, D + dt.timedelta(days=1)), force=True)
    assert (child.job, child.dates, child.force) == ("score", (D, D + dt.timedelta(days=1)), True)
    assert child.loaded is ctx.loaded and child.spark is ctx.spark and child.store is ctx.store
    assert child.config_hash == ctx.config_hash and child.run_id.startswith("score-")


def test_a_failing_step_is_a_failed_result_with_its_exit_code(ctx: JobContext, monkeypatch, caplog) -> None:
    def gate(ctx: JobContext) -> JobResult:
        ctx.store.append("half", None, None)  # type: ignore[arg-type]
        raise QualityGateError("quality gate: not_null(id) failed:\nexpected 0 nulls, found 3")

    def crash(ctx: JobContext) -> JobResult:
        raise RuntimeError("boom")

    monkeypatch.setitem(JOBS, "gate", JobSpec("gate", "-", "-", "-", gate))
    monkeypatch.setitem(JOBS, "crash", JobSpec("crash", "-", "-", "-", crash))
    failed = jobs.run_step(ctx, "gate", (D,))
    assert (failed.status, failed.exit_code, failed.ok) == ("failed", 3, False)
    assert failed.error == "quality gate: not_null(id) failed: expected 0 nulls, found 3"
    assert failed.tables == (TableWrite("half", 0, 3),)
    with caplog.at_level(logging.ERROR, logger="driftline.jobs"):
        crashed = jobs.run_step(ctx, "crash", (D,))
    assert (crashed.status, crashed.exit_code, crashed.error) == ("failed", 1, "RuntimeError: boom")
    assert caplog.records[-1].exc_info is not None       # the traceback is logged, as on the command line
    with pytest.raises(QualityGateError):
        jobs.run_child(ctx, "gate", (D,))                # run_child lets the caller handle it


class FakeRegistry:
    """A registry that knows version 4 only, and refuses to be searched."""

    def __init__(self, setup: object, name: str) -> None:
        self.name = name

    def get(self, version: str) -> SimpleNamespace:
        assert version == "4"
        return SimpleNamespace(version="4", tags={"driftline.run_id": "train-earlier", "driftline.gate.passed": "true",
                                                  "driftline.gate.metric": "auc", "other": "x"})

    def alias(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(version="4")

    def versions(self) -> list[object]:
        raise AssertionError("the trained version comes from the train job's result, not from a search")


@pytest.mark.parametrize(("status", "outcome", "run_id"), [("ok", retrain.TRAINED, "train-now"),
                                                             ("skipped", retrain.REUSED, "train-earlier")])
def test_retrain_takes_the_trained_version_from_the_train_jobs_result(ctx: JobContext, monkeypatch, status: str,
                                                                      outcome: str, run_id: str) -> None:
    from driftline.registry import client

    calls = []

    def run_child(parent: JobContext, job: str, dates: tuple[dt.date, ...], force: bool = False) -> JobResult:
        calls.append((parent, job, dates, force))
        return JobResult(job, "train-now", status, 0, 1.0, (TableWrite("reference_profiles", 9, 10),), "4")

    monkeypatch.setattr(jobs, "run_child", run_child)
    monkeypatch.setattr(client, "ModelRegistry", FakeRegistry)
    monkeypatch.setattr(client, "tracking_setup", lambda *a: None)
    got = retrain.train_challenger(ctx, D)
    assert calls == [(ctx, "train", (D,), False)]
    assert got == retrain.Outcome(outcome, run_id, "4", {"driftline.gate.passed": "true", "driftline.gate.metric": "auc"},
                                  "4")
