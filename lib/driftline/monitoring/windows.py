"""Monitoring windows: date arithmetic only (pure)."""

from __future__ import annotations

import datetime as dt

MAX_MATURED_WINDOWS = 50  # earlier windows recomputed on matured labels per run, at most


def window_of(date: dt.date, days: int) -> tuple[dt.date, ...]:
    """The dates of the window ending at ``date`` (inclusive), oldest first."""
    return tuple(date - dt.timedelta(days=days - 1 - i) for i in range(days))


def earlier_windows(date: dt.date, window_days: int, horizon_days: int) -> list[tuple[dt.date, ...]]:
    """The earlier windows a run on ``date`` recomputes on matured labels, newest first (pure).

    Back to back before the run's own window, down to the first one that ends on or before
    `driftline.training.dataset.last_matured_date` (``date`` − ``horizon_days`` − 1: the latest as-of
    date whose labels, arriving up to ``horizon_days`` late, are all known before ``date`` 00:00 UTC):
    K = ceil((``horizon_days`` + 1) / ``window_days``) windows, at most `MAX_MATURED_WINDOWS`. The
    windows after that one hold partly matured labels; the ones before it were final on earlier runs.
    """
    from driftline.training.dataset import last_matured_date

    matured = last_matured_date(date, horizon_days)
    end = window_of(date, window_days)[0] - dt.timedelta(days=1)
    windows: list[tuple[dt.date, ...]] = []
    while len(windows) < MAX_MATURED_WINDOWS and (not windows or windows[-1][-1] > matured):
        windows.append(window_of(end, window_days))
        end -= dt.timedelta(days=window_days)
    return windows
