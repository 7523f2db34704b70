"""Fixtures shared by the job tests.

``env``: a workspace with the ``jt`` model's features (nulls included) and labels, built by the
train tests' fixture (`tests.jobs.test_train.env`); the score tests train real models on it.
"""

from __future__ import annotations

from tests.jobs.test_train import env  # noqa: F401  (a fixture: pytest finds it by name)
