"""spark-submit entry point of the monitor job; `driftline monitor --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("monitor", prog="jobs/monitor.py"))
