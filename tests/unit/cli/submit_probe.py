"""Run under spark-submit by test_runner: a job that reports the session it was given.

It registers a job named 'probe' in the runner's job table and runs it through `run_job`, the same
path jobs/<job>.py take, then writes what the session looked like to $PROBE_OUT as JSON.
"""

from __future__ import annotations

import json
import os
import sys

from driftline.cli.runner import JOBS, JobSpec, run_job


def report(ctx) -> None:  # type: ignore[no-untyped-def]
    sc = ctx.spark.sparkContext
    with open(os.environ["PROBE_OUT"], "w") as fh:
        json.dump({
            "master": sc.master,
            "driver_memory": sc.getConf().get("spark.driver.memory", None),
            "time_zone": ctx.spark.conf.get("spark.sql.session.timeZone"),
            "timestamp_type": ctx.spark.conf.get("spark.sql.parquet.outputTimestampType"),
            "shuffle_partitions": ctx.spark.conf.get("spark.sql.shuffle.partitions"),
            "rows": ctx.spark.range(5).count(),
        }, fh)


if __name__ == "__main__":
    JOBS["probe"] = JobSpec("probe", "test job", "__main__:report", "-", "-", "-")
    sys.exit(run_job("probe"))
