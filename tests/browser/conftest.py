"""A real browser for the report tests: Debian's Chromium driven by Playwright (no browser download).

``chromium_executable`` (session): the system Chromium. When there is none and the run is root with apt-get (CI's
fresh machine), it installs Debian's ``chromium`` package once (`apt-get update`, `apt-get install chromium`,
at most ``INSTALL_TIMEOUT`` seconds) and says so on the terminal. Without a Chromium after that the tests skip with
one reason naming what was tried. ``playwright install`` is never run: its browser download is not possible here.

``browser`` (module): headless Chromium launched by Playwright's sync API with that executable. A Chromium that is
installed but does not start is a failure, not a skip.

``scored`` (module): the monitor job tests' workspace (`tests.jobs.test_monitor.scored`, on the train tests' ``env``)
the report tests run the monitor job on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.jobs.test_monitor import scored  # noqa: F401  (fixtures: pytest finds them by name)
from tests.jobs.test_train import env  # noqa: F401

NAMES = ("chromium", "chromium-browser")
PATHS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
PACKAGE = "chromium"
INSTALL_TIMEOUT = 600.0   # seconds, apt-get update and install together
LOCK_WAIT = 120           # seconds apt-get waits for another apt/dpkg run's lock
ATTEMPTS = 2


def find_chromium() -> str | None:
    """The system Chromium: on PATH under one of ``NAMES``, else at one of ``PATHS``."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in PATHS if os.access(p, os.X_OK)), None)


def _say(config: pytest.Config, line: str) -> None:
    """One line on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line, file=sys.stderr)


def install_chromium(config: pytest.Config) -> str:
    """Install Debian's ``chromium`` with apt-get; '' when done, else why it was not (for the skip reason)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, so apt-get was not tried"
    apt = shutil.which("apt-get")
    if apt is None:
        return "no apt-get on PATH"
    _say(config, f"browser tests: no Chromium found; installing Debian's {PACKAGE} package with apt-get "
                 f"(at most {INSTALL_TIMEOUT:.0f} s)")
    deadline = time.monotonic() + INSTALL_TIMEOUT
    env_ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={LOCK_WAIT}"]   # another apt/dpkg run (unattended upgrades): wait for it
    for args in (["update", "-qq", *lock], ["install", "-y", "-qq", *lock, PACKAGE]):
        command = " ".join(["apt-get", *args])
        for attempt in range(1, ATTEMPTS + 1):   # a mirror hiccup: try again once
            try:
                done = subprocess.run([apt, *args], env=env_, capture_output=True, text=True,
                                      timeout=max(deadline - time.monotonic(), 1.0), check=False)
            except subprocess.TimeoutExpired:
                return f"`{command}` did not finish within {INSTALL_TIMEOUT:.0f} s"
            if done.returncode == 0:
                break
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            if attempt == ATTEMPTS or time.monotonic() > deadline:
                return f"`{command}` exited {done.returncode} ({attempt} attempts): {tail}"
            _say(config, f"browser tests: `{command}` exited {done.returncode}, trying again: {tail}")
            time.sleep(5)
    return ""


@pytest.fixture(scope="session")
def chromium_executable(request: pytest.FixtureRequest) -> str:
    found = find_chromium()
    if found is not None:
        return found
    started = time.monotonic()
    failed = install_chromium(request.config)
    found = find_chromium()
    if found is None:
        tried = f"{' / '.join(NAMES)} on PATH, {', '.join(PATHS)}"
        why = failed or f"apt-get installed {PACKAGE} but no executable appeared"
        pytest.skip(f"no Chromium to drive: looked for {tried}; installing Debian's {PACKAGE} package: {why}")
    _say(request.config, f"browser tests: {PACKAGE} installed in {time.monotonic() - started:.0f} s: {found}")
    return found


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()
