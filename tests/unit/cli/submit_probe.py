"""Run under spark-submit by test_runner: a job that reports the session it was given.

It registers a job named 'probe' in the job registry and runs it through `run_job`, the same
path jobs/<job>.py take, then writes what the session looked like to $PROBE_OUT as JSON.
"""

from __future__ import annotations

import json
import os
import sys

from driftline.cli.runner import run_job
from driftline.jobs import JOBS, JobSpec


def report(ctx):  # type: ignore[no-untyped-def]
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
    return ctx.result()


if __name__ == "__main__":
    JOBS["probe"] = JobSpec("probe", "test job", "-", "-", report)
    sys.exit(run_job("probe"))
