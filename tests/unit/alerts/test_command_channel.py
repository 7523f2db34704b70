"""The command channel: a real program run with the alert's JSON on its standard input and DRIFTLINE_ALERT_*
in its environment; exit codes, timeouts and a missing program are failed results (never an exception)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from driftline.alerts.channels import ChannelConfig, CommandChannel, Message, describe, payload, send

LOGGER = "driftline.alerts.channels"

# writes what it got (stdin, its DRIFTLINE_ALERT_* variables, its working folder) to argv[1]; exits with argv[2]
HOOK = """
import json, os, sys
got = {"stdin": json.load(sys.stdin), "cwd": os.getcwd(),
       "env": {k: v for k, v in os.environ.items() if k.startswith("DRIFTLINE_ALERT_")}}
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(got) + "\\n")
if int(sys.argv[2]):
    print("retraining service said no", file=sys.stderr)
sys.exit(int(sys.argv[2]))
"""


def message() -> Message:
    return Message(model="loans", rule="retrain_needed", window="2026-03-02", severity="warning", status="firing",
                   title="loans: the retrain policy fired", reason="auc 0.61 below 0.7 on 2 of 3 windows",
                   value=0.61, threshold=0.7, report=None, dedup_key="driftline/loans/retrain_needed/2026-03-02",
                   details={"decision": "fired"})


def channel(**data: Any) -> ChannelConfig:
    return TypeAdapter(ChannelConfig).validate_python({"type": "command", **data})


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    path = tmp_path / "hook.py"
    path.write_text(HOOK)
    return path


def test_the_program_gets_the_json_on_stdin_and_the_alert_in_its_environment(tmp_path: Path, hook: Path) -> None:
    out = tmp_path / "got.jsonl"
    work = tmp_path / "work"
    work.mkdir()
    cfg = channel(argv=[sys.executable, str(hook), str(out), "0"], cwd=str(work))
    assert isinstance(cfg, CommandChannel) and cfg.retries == 0 and cfg.timeout_seconds == 60
    result = send("upstream", cfg, message(), environ={"PATH": "/usr/bin:/bin", "UNRELATED": "x"})
    assert (result.ok, result.attempts, result.error) == (True, 1, None)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(got) == 1
    assert got[0]["stdin"] == payload("upstream", cfg, message())
    assert got[0]["stdin"]["model"] == "loans" and got[0]["stdin"]["details"] == {"decision": "fired"}
    assert Path(got[0]["cwd"]).resolve() == work.resolve()
    assert got[0]["env"] == {"DRIFTLINE_ALERT_MODEL": "loans", "DRIFTLINE_ALERT_RULE": "retrain_needed",
                             "DRIFTLINE_ALERT_WINDOW": "2026-03-02", "DRIFTLINE_ALERT_STATUS": "firing",
                             "DRIFTLINE_ALERT_SEVERITY": "warning",
                             "DRIFTLINE_ALERT_DEDUP_KEY": "driftline/loans/retrain_needed/2026-03-02"}


def test_a_failing_program_is_a_failed_result_with_its_exit_code_and_last_stderr_line(
        tmp_path: Path, hook: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "got.jsonl"
    cfg = channel(argv=[sys.executable, str(hook), str(out), "3"], retries=1, backoff_seconds=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = send("upstream", cfg, message())
    assert (result.ok, result.attempts) == (False, 2)   # retried once, as configured
    assert result.error == f"{sys.executable} exited with code 3: retraining service said no"
    assert len(out.read_text().splitlines()) == 2
    assert "giving up (the job goes on)" in caplog.records[-1].getMessage()


def test_a_missing_program_is_final_and_a_slow_one_is_killed_at_the_timeout(tmp_path: Path) -> None:
    missing = send("upstream", channel(argv=[str(tmp_path / "no-such-hook"), "x"], retries=3), message())
    assert (missing.ok, missing.attempts) == (False, 1)   # not retried: it would fail the same way
    assert missing.error == f"cannot run '{tmp_path / 'no-such-hook'}': No such file or directory"
    started = time.monotonic()
    slow = send("upstream", channel(argv=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_seconds=1),
                message())
    assert time.monotonic() - started < 10
    assert (slow.ok, slow.attempts, slow.error) == (False, 1, "timed out after 1s")


def test_work_left_running_in_the_background_does_not_hold_the_send(tmp_path: Path) -> None:
    # exits 0 at once; its child keeps the inherited stdout/stderr open for 20 s
    started = time.monotonic()
    result = send("upstream", channel(argv=["/bin/sh", "-c", f"{sys.executable} -c 'import time; time.sleep(20)' &"
                                                            " exit 0"], timeout_seconds=10), message())
    assert (result.ok, result.error) == (True, None) and time.monotonic() - started < 5


def test_a_timeout_kills_what_the_program_started_too(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    late = f"import time, pathlib; time.sleep(2); pathlib.Path({str(marker)!r}).touch()"
    script = f"{sys.executable} -c {late!r} & sleep 30"   # a grandchild that would write the marker after 2 s
    result = send("upstream", channel(argv=["/bin/sh", "-c", script], timeout_seconds=1), message())
    assert (result.ok, result.error) == (False, "timed out after 1s")
    time.sleep(2.5)
    assert not marker.exists()


def test_a_program_that_ignores_stdin_and_floods_stderr_still_reports_its_last_line() -> None:
    flood = "import sys; sys.stderr.write('x' * 1_000_000 + chr(10) + 'last words' + chr(10)); sys.exit(1)"
    result = send("upstream", channel(argv=[sys.executable, "-c", flood]), message())
    assert (result.ok, result.error) == (False, f"{sys.executable} exited with code 1: last words")


@pytest.mark.parametrize(("argv", "found"), [([], "found an empty list"), ([" "], "found an empty program name")])
def test_an_empty_command_is_refused_at_load(argv: list[str], found: str) -> None:
    with pytest.raises(ValidationError, match=found):
        channel(argv=argv)


def test_dry_run_text_names_the_command_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = channel(argv=["touch", str(marker)], cwd="/srv/models")
    text = describe("upstream", cfg, message())
    assert text.splitlines()[0] == (f'channel \'upstream\' (command): run "touch" "{marker}" in /srv/models with the '
                                    "JSON on its standard input and DRIFTLINE_ALERT_* variables; timeout 60s, up to "
                                    "0 retries (first after 1s, doubling)")
    assert json.loads("\n".join(text.splitlines()[1:]))["rule"] == "retrain_needed"
    assert not marker.exists()
