"""A separate writer process for the R3/R4/R5 tests: its own SparkSession via driftline's builder.

Usage: concurrent_writer.py WORKSPACE TABLE DATE RUN_ID BARRIER_DIR PARTIES MODE
MODE ``write`` waits at a file barrier right before its first commit (so all writers have read the
same snapshot), then commits; ``crash`` kills the process at that point (files written, no commit).
Prints one JSON line: {"status": "ok"|"concurrent"|"error", ...}; exit 0 / 3 / 1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path


def main(argv: list[str]) -> int:
    workspace, table, date, run_id, barrier, parties, mode = argv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib"))
    from driftline.errors import ConcurrentRunError, DriftlineError
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.tables import CommitInfo, StorageConfig, embedded, open_store

    spark = build_spark(
        RuntimeConfig(master="local[1]", shuffle_partitions=1, app_name=f"writer-{run_id}"),
        workspace=Path(workspace) / f"spark-{run_id}",
    )
    store = open_store(spark, StorageConfig(backend="embedded"), workspace)
    original = embedded.commit_actions
    state = {"first": True}

    def gated(*args: object, **kwargs: object) -> None:
        if state["first"]:
            state["first"] = False
            Path(barrier, f"ready-{run_id}").touch()
            deadline = time.time() + 180
            while len(list(Path(barrier).glob("ready-*"))) < int(parties) and time.time() < deadline:
                time.sleep(0.02)
            if mode == "crash":
                os._exit(17)  # killed between the file write and the commit
        original(*args, **kwargs)

    embedded.commit_actions = gated
    day = dt.date.fromisoformat(date)
    rows = [(i, Decimal(f"{i}.50"), run_id, day) for i in range(10)]
    df = spark.createDataFrame(rows, "id long, amount decimal(12,2), run string, d date")
    commit = CommitInfo(job="score", run_id=run_id, key=date, code_version="test", config_hash="h")
    try:
        result = store.replace_partitions(table, df, ["d"], commit)
        print(json.dumps({"status": "ok", "version": result.version, "replaced": result.replaced}))
        return 0
    except ConcurrentRunError as exc:
        print(json.dumps({"status": "concurrent", "error": str(exc)}))
        return 3
    except DriftlineError as exc:
        print(json.dumps({"status": "error", "error": str(exc)}))
        return 1
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
