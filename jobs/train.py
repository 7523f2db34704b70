"""spark-submit entry point of the train job; `driftline train --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("train", prog="jobs/train.py"))
