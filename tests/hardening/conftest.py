"""Fixtures shared by the hardening tests: the train job tests' ``env`` workspace (model ``jt``)."""

from __future__ import annotations

from tests.jobs.test_train import env  # noqa: F401  (a fixture: pytest finds it by name)
