"""Fault injection for the R6 test, loaded by every Python started with this folder on PYTHONPATH.

When ``DRIFTLINE_FLAKY_MARKER`` names a file, the scoring core raises on the first attempt of
partition 0 of every Spark task that calls it (and records that it did in the marker file); the
retry runs the real core. Spark's Python workers inherit PYTHONPATH from the JVM, so the patch is
in place in the workers before driftline's Spark wrapper imports the core.
"""

from __future__ import annotations

import os

_MARKER = os.environ.get("DRIFTLINE_FLAKY_MARKER")

if _MARKER:
    import driftline.scoring.core as _core

    _real = _core.score_arrays

    def _flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        from pyspark import TaskContext

        tc = TaskContext.get()
        if tc is not None and tc.attemptNumber() == 0 and tc.partitionId() == 0:
            with open(_MARKER, "a") as fh:
                fh.write(f"stage {tc.stageId()} partition 0 attempt 0 failed on purpose\n")
            raise RuntimeError("injected failure on the first attempt (R6 test)")
        return _real(*args, **kwargs)

    _core.score_arrays = _flaky
