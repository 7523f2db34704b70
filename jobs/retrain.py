"""spark-submit entry point of the retrain job; `driftline retrain --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("retrain", prog="jobs/retrain.py"))
